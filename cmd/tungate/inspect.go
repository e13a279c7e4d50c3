package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"runtime/debug"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/admin"
	"github.com/tungate/tungate/router/neigh"
)

// inspectFlags parses the flags every inspection command shares, and
// those more adds, and returns a client for the socket they name.
func inspectFlags(name string, args []string, more ...func(*flag.FlagSet)) (c *admin.Client, asJSON bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	socket := fs.String("socket", "", "admin socket `PATH`")
	file := fs.String("c", "", "config `FILE` whose admin_socket to use")
	fs.BoolVar(&asJSON, "json", false, "print JSON")
	for _, add := range more {
		add(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	path := *socket
	if path == "" && *file != "" {
		cfg, err := config.Load(*file)
		if err != nil {
			return nil, false, err
		}
		if path = cfg.Router.AdminSocket; path == "" {
			return nil, false, fmt.Errorf("%s disables the admin socket", *file)
		}
	}
	if path == "" {
		path = config.DefaultAdminSocket
	}
	return admin.NewClient(path), asJSON, nil
}

// fetch gets path from the admin API and prints it: the raw JSON with
// --json, else through show.
func fetch[T any](name, path string, args []string, stdout io.Writer, show func(io.Writer, T)) error {
	c, asJSON, err := inspectFlags(name, args)
	if err != nil {
		return err
	}
	var raw []byte
	if err := c.Get(path, &raw); err != nil {
		return err
	}
	if asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	show(stdout, v)
	return nil
}

func cmdRoutes(args []string, stdout io.Writer) error {
	return fetch("routes", "/routes", args, stdout, printRoutes)
}

func cmdARP(args []string, stdout io.Writer) error {
	return fetch("arp", "/neighbors", args, stdout, printNeighbors)
}

// printNeighbors prints the cache as `arp -an` does, IPv6 neighbors too,
// with the NUD state at the end of each line.
func printNeighbors(w io.Writer, ns []router.NeighborInfo) {
	for _, n := range ns {
		switch {
		case n.State == neigh.Incomplete:
			fmt.Fprintf(w, "? (%s) at <incomplete> on %s %s\n", n.IP, n.Iface, n.State)
		case n.State == neigh.Permanent:
			fmt.Fprintf(w, "? (%s) at %s [ether] PERM on %s %s\n", n.IP, n.MAC, n.Iface, n.State)
		default:
			fmt.Fprintf(w, "? (%s) at %s [ether] on %s %s\n", n.IP, n.MAC, n.Iface, n.State)
		}
	}
}

func cmdNAT(args []string, stdout io.Writer) error {
	return fetch("nat", "/conntrack", args, stdout, printNAT)
}

// printNAT prints the NAT's flows, one a line.
func printNAT(w io.Writer, flows []router.FlowInfo) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Proto\tInside\tOutside\tRemote\tState\tIdle\tExpires")
	for _, f := range flows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", f.Proto, f.Inside, f.Outside, f.Remote, f.State,
			f.Idle.Round(time.Second), f.Expires.Round(time.Second))
	}
	tw.Flush()
}

func cmdStats(args []string, stdout io.Writer) error {
	return fetch("stats", "/stats", args, stdout, printStats)
}

// printRoutes prints IPv4 routes as `route -n` does and IPv6 routes as
// `route -n -A inet6` does.
func printRoutes(w io.Writer, routes []router.RouteInfo) {
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	fmt.Fprintln(tw, "Destination\tGateway\tGenmask\tFlags\tMetric\tUse\tIface")
	for _, rt := range routes {
		if rt.Destination.Addr().Is4() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", rt.Destination.Addr(), gateway(rt.Gateway, "0.0.0.0"),
				netmask(rt.Destination), flags(rt), rt.Metric, rt.Use, rt.Iface)
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "Destination\tNext Hop\tFlag\tMet\tUse\tIf")
	for _, rt := range routes {
		if rt.Destination.Addr().Is6() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", rt.Destination, gateway(rt.Gateway, "::"), flags(rt), rt.Metric, rt.Use, rt.Iface)
		}
	}
	tw.Flush()
}

func gateway(a netip.Addr, none string) string {
	if !a.IsValid() {
		return none
	}
	return a.String()
}

// netmask writes a prefix length as a dotted IPv4 mask.
func netmask(p netip.Prefix) string {
	m := ^uint32(0) << (32 - p.Bits())
	if p.Bits() == 0 {
		m = 0
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

// flags are route(8)'s: U up, G via a gateway, H a host route.
func flags(rt router.RouteInfo) string {
	f := "U"
	if rt.Gateway.IsValid() {
		f += "G"
	}
	if rt.Destination.IsSingleIP() {
		f += "H"
	}
	return f
}

func printStats(w io.Writer, st router.Stats) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "Iface\tRX packets\tRX bytes\tTX packets\tTX bytes\tTX errors")
	for _, i := range st.Interfaces {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\n", i.Name, i.RxPackets, i.RxBytes, i.TxPackets, i.TxBytes, i.TxErrors)
	}
	tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintln(tw, "Stage\tPackets\tTaken\tReplies\tFast\tDrops")
	for _, s := range st.Stages {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\n", s.Name, s.Packets, s.Taken, s.Replies, s.Skipped, reasons(s.Drops))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nDrops by reason: %s\n", reasons(st.Drops))
	fmt.Fprintf(w, "ICMP errors: %d sent, %d rate limited\n", st.ICMP.Sent, st.ICMP.RateLimited)
	n := st.Neighbors
	fmt.Fprintf(w, "Neighbors: %d entries, %d queue drops, %d refused (cache full), %d failed, %d invalid messages\n",
		n.Entries, n.QueueDrops, n.Refused, n.Failed, n.Invalid)
	if len(st.Filter) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
		fmt.Fprintln(tw, "Filter rule\tAction\tPackets\tBytes")
		for _, f := range st.Filter {
			name := fmt.Sprintf("%d (line %d)", f.Rule, f.Line)
			if f.Rule == 0 {
				name = "policy"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", name, f.Action, f.Packets, f.Bytes)
		}
		tw.Flush()
	}
	ct := st.Conntrack
	fmt.Fprintf(w, "Conntrack: %d flows, %d made, %d refused (table full), %d expired\n", ct.Entries, ct.Inserted, ct.RefusedFull, ct.Expired)
	for _, r := range st.NAT {
		fmt.Fprintf(w, "NAT rule %d (out %s): %d mappings, %d hosts, %d ports held back, refused: %d quota, %d exhausted, %d no address\n",
			r.Rule, r.Out, r.Mappings, r.Hosts, r.Held, r.RefusedQuota, r.RefusedExhausted, r.RefusedNoAddress)
		for _, p := range r.Ports {
			fmt.Fprintf(w, "  %s %s: %d ports in use, %d held back\n", p.Addr, p.Proto, p.Live, p.Held)
		}
	}
}

// reasons prints drop counts as "reason=N ...", sorted by reason, or "-".
func reasons(m map[string]uint64) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func cmdVersion(_ []string, stdout io.Writer) error {
	fmt.Fprintf(stdout, "tungate %s\n", version)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	fmt.Fprintf(stdout, "%s\n", info.GoVersion)
	for _, d := range info.Deps {
		switch {
		case strings.HasPrefix(d.Path, "gvisor.dev/"), strings.HasPrefix(d.Path, "golang.zx2c4.com/wireguard"),
			strings.HasPrefix(d.Path, "github.com/BurntSushi/toml"), strings.HasPrefix(d.Path, "github.com/gaissmai/bart"),
			strings.HasPrefix(d.Path, "github.com/vishvananda/"):
			fmt.Fprintf(stdout, "%s %s\n", d.Path, d.Version)
		}
	}
	return nil
}
