// Package e2e builds topologies of real network namespaces joined by a
// tungate router, for end-to-end tests of tungate and of software that
// needs a router or NAT in its tests (SPEC: "Go API for tests").
//
//	topo := e2e.New(t)
//	r := topo.Router(`...TOML...`)
//	a := topo.Host("a", r.Interface("lan0"), "192.168.46.2/24")
//	out := a.Run(t, "ping", "-c1", "198.18.0.1")
//
// The router runs in the test process; its TUN devices are made in a
// namespace of the topology's own and moved into each host's namespace,
// so nothing touches the machine's own network. Every name carries a
// random prefix, so tests may run in parallel, and everything is removed
// by exact name when the test ends, failed or not.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/e2e/netns"
	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/admin"
)

// CommandTimeout bounds every command a Host runs.
const CommandTimeout = 60 * time.Second

// Topology is one test's namespaces and routers.
type Topology struct {
	t      testing.TB
	prefix string
	core   string // the namespace the routers' devices are made in
}

// New starts a topology for t. Without root it skips t, or fails it when
// CI=true: CI must run every end-to-end test.
func New(t testing.TB) *Topology {
	t.Helper()
	RequireRoot(t)
	var b [3]byte
	rand.Read(b[:])
	tp := &Topology{t: t, prefix: "tg" + hex.EncodeToString(b[:])}
	tp.core = tp.Netns("core")
	return tp
}

// RequireRoot skips t without root, or fails it when CI=true.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("end-to-end tests need root (namespaces, TUN devices); CI runs them as root")
	}
	t.Skip("skipping end-to-end test: needs root for network namespaces and TUN devices")
}

// Name is name made unique to this topology: "tg" and six random hex
// digits, a dash, then name. Keep name to 5 bytes or less for a device
// name (15 bytes at most).
func (tp *Topology) Name(name string) string { return tp.prefix + "-" + name }

// Netns makes a namespace called name in this topology and returns its
// full name; it is deleted when the test ends.
func (tp *Topology) Netns(name string) string {
	tp.t.Helper()
	full := tp.Name(name)
	if err := netns.Add(full); err != nil {
		tp.t.Fatal(err)
	}
	tp.t.Cleanup(func() { netns.Delete(full) })
	return full
}

// Router is a running tungate router in a topology.
type Router struct {
	*router.Router
	ifaces map[string]*Interface
}

// Interface is one of a Router's interfaces, to attach a Host to.
type Interface struct {
	cfg  config.Interface
	link *router.Link
}

// Router starts a router from a TOML config and stops it when the test
// ends. Interfaces with netns and peer keys are set up as `tungate run`
// would; the others wait for a Host.
func (tp *Topology) Router(toml string) *Router {
	tp.t.Helper()
	cfg, err := config.Parse(tp.t.Name()+".toml", []byte(toml))
	if err != nil {
		tp.t.Fatal(err)
	}
	r := &Router{ifaces: map[string]*Interface{}}
	open := func(ic config.Interface) (devs []router.Device, err error) {
		var l *router.Link
		err = netns.Do(tp.core, func() error {
			l, err = router.Open(ic)
			return err
		})
		if err != nil {
			return nil, err
		}
		r.ifaces[ic.Name] = &Interface{cfg: ic, link: l}
		return l.Queues, nil
	}
	log := slog.New(slog.NewTextHandler(testWriter{tp.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if r.Router, err = router.New(cfg, router.Options{OpenDevice: open, Logger: log}); err != nil {
		tp.t.Fatal(err)
	}
	r.Start()
	tp.t.Cleanup(func() {
		if tp.t.Failed() {
			st, _ := json.Marshal(r.Stats())
			tp.t.Logf("router stats: %s", st)
		}
		r.Close()
	})
	return r
}

// AdminSocket serves the router's admin API on a socket of the test's
// own, for `tungate` inspection commands, and returns its path. Reload
// through it is refused: the test owns the config.
func (r *Router) AdminSocket(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.sock")
	srv, err := admin.Listen(path, r.Router, func() error { return errors.New("reload is not available in e2e topologies") })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return path
}

// Interface is the router's interface called name.
func (r *Router) Interface(name string) *Interface {
	ifc, ok := r.ifaces[name]
	if !ok {
		panic(fmt.Sprintf("e2e: the router has no interface %q", name))
	}
	return ifc
}

// Host is a network namespace with a kernel network stack: a host on one
// of the router's links.
type Host struct {
	Netns string
}

// Host makes a host called name on the router interface ifc: ifc's
// device moves into the host's namespace with addrs on it, up, and a
// default route via the router's address on that link.
func (tp *Topology) Host(name string, ifc *Interface, addrs ...string) *Host {
	tp.t.Helper()
	h := &Host{Netns: tp.Netns(name)}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		p, err := netip.ParsePrefix(a)
		if err != nil {
			tp.t.Fatal(err)
		}
		prefixes = append(prefixes, p)
	}
	if err := ifc.link.ConfigurePeer(router.Peer(ifc.cfg, h.Netns, prefixes)); err != nil {
		tp.t.Fatal(err)
	}
	return h
}

// Command is argv to run inside the host, ended by ctx.
func (h *Host) Command(ctx context.Context, argv ...string) *exec.Cmd {
	return netns.Command(ctx, h.Netns, argv...)
}

// Run runs argv inside the host, bounded by CommandTimeout, and returns
// its combined output; the test fails if it does not exit 0.
func (h *Host) Run(t testing.TB, argv ...string) string {
	t.Helper()
	out, err := h.Try(argv...)
	if err != nil {
		t.Fatalf("%s: %s: %v\n%s", h.Netns, strings.Join(argv, " "), err, out)
	}
	return out
}

// Try runs argv inside the host like Run, and returns its error instead
// of failing the test.
func (h *Host) Try(argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	defer cancel()
	out, err := h.Command(ctx, argv...).CombinedOutput()
	return string(out), err
}

// Start runs argv inside the host in the background until the test ends.
func (h *Host) Start(t testing.TB, argv ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := h.Command(ctx, argv...)
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return cmd
}

// testWriter sends the router's log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
