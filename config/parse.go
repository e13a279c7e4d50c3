package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

// DefaultAdminSocket is where the admin API listens when [router] does not
// say, and where the inspection commands look without --socket or -c.
const DefaultAdminSocket = "/run/tungate/admin.sock"

// Load reads the file at path and parses it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse decodes and validates one configuration file; file is its name for
// messages, data its content. It touches nothing outside its arguments, so
// `tungate check`, a reload and the tests get the same answer. On failure
// it returns every problem it found, each an *Error, joined in file order.
func Parse(file string, data []byte) (*Config, error) {
	errs := &errorList{file: file}
	src := string(data)
	var doc map[string]any
	if _, err := toml.Decode(src, &doc); err != nil {
		syntaxError(errs, err)
		return nil, errs.err()
	}
	root := &table{errs: errs, m: doc, pos: locate(src)}
	c := decodeConfig(root)
	c.File = file
	checkInterfaces(errs, c.Interface)
	resolveRoutes(errs, c)
	resolveNeighbors(errs, c)
	resolveSNATs(errs, c)
	resolveForwards(errs, c)
	resolveServices(errs, c)
	resolveFilter(errs, c)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// syntaxError keeps toml's line and short message; toml's own Error()
// would repeat the line in its own format.
func syntaxError(errs *errorList, err error) {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		errs.errorf(pe.Position.Line, "%s", pe.Message)
		return
	}
	errs.errorf(0, "%v", err)
}

// decodeConfig decodes the tables one by one, each checked on its own;
// checks across tables come after, in Parse, except those reported at a
// line of one table, which come here while that table is at hand.
func decodeConfig(root *table) *Config {
	c := &Config{Router: decodeRouter(root.table("router"))}
	c.Interface = decodeInterfaces(root.tables("interface"))
	c.Route = decodeRoutes(root.tables("route"))
	c.Neighbor = decodeNeighbors(root.tables("neighbor"))
	arp := root.table("arp")
	c.ARP = decodeARP(arp)
	checkCacheSize(arp, root.errs, c.ARP, c.Neighbor)
	c.SNAT = decodeSNATs(root.tables("snat"))
	c.Forward = decodeForwards(root.tables("forward"))
	c.Service = decodeServices(root.tables("service"))
	c.Filter = decodeFilter(root.table("filter"))
	c.Conntrack = decodeConntrack(root.table("conntrack"))
	pipeline := root.table("pipeline")
	c.Pipeline.Stages = decodePipeline(pipeline)
	checkTapNeighbor(pipeline, c.Pipeline.Stages, c.Interface)
	checkNATStages(pipeline, c)
	checkFilterStage(pipeline, c)
	root.unknownKeys()
	return c
}

var logLevels = []string{"debug", "info", "warn", "error"}

// decodeRouter decodes [router]; t is nil when the file has none.
func decodeRouter(t *table) Router {
	r := Router{AdminSocket: DefaultAdminSocket, LogLevel: "info"}
	if s, ok := t.str("admin_socket"); ok {
		if err := checkSocketPath(s); err != nil {
			t.errorf(t.line("admin_socket"), "admin_socket: %v", err)
		}
		r.AdminSocket = s
	}
	if s, ok := t.str("metrics_listen"); ok {
		if _, err := netip.ParseAddrPort(s); s != "" && err != nil {
			t.errorf(t.line("metrics_listen"), `metrics_listen %q is not ip:port, e.g. "127.0.0.1:9108" or "[::1]:9108"`, s)
		}
		r.MetricsListen = s
	}
	if s, ok := t.str("log_level"); ok {
		if !slices.Contains(logLevels, s) {
			t.errorf(t.line("log_level"), "log_level %q must be one of %s", s, strings.Join(logLevels, ", "))
		}
		r.LogLevel = s
	}
	t.unknownKeys()
	return r
}

// maxSocketPath is the longest unix socket path bind(2) takes: sun_path is
// 108 bytes with the terminating NUL. A longer one would only fail at start.
const maxSocketPath = 107

func checkSocketPath(s string) error {
	switch {
	case strings.ContainsRune(s, 0):
		return errors.New("a path cannot hold a NUL byte")
	case len(s) > maxSocketPath:
		return fmt.Errorf("%q is %d bytes; a unix socket path holds at most %d", s, len(s), maxSocketPath)
	}
	return nil
}
