package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const validConfig = `# a full config of what this version supports
[router]
admin_socket = "/tmp/tg.sock"
metrics_listen = "[::1]:9108"
log_level = "debug"

[[interface]]
name = "lan0"
kind = "tun"
addresses = ["192.168.46.1/24", "fd46::1/64"]
mtu = 9000
netns = "lan"
peer = ["192.168.46.2/24", "fd46::2/64"]
offload = false
queues = 4

[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24"]
fd = 3

[[interface]]
name = "eth0"
kind = "tap"
addresses = ["192.168.50.1/24", "fd50::1/64"]
mac = "02:00:00:00:50:01"
router_advertisements = true

[[route]]
to = "default"
via = "18.18.18.1"
metric = 100

[[route]]
to = "::/0"
via = "fd46::fe"
dev = "lan0"

[[route]]
to = "10.0.0.0/8"
dev = "wan0"

[[route]]
to = "fd60::/64"
via = "fe80::2"
dev = "eth0"

[[neighbor]]
ip = "192.168.50.2"
mac = "00:50:56:F4:6C:F2"
dev = "eth0"

[[neighbor]]
ip = "fe80::2"
mac = "0050.56f4.6cf3"
dev = "eth0"

[arp]
reachable = "5s"
stale = "1m30s"
retries = 5
retry_interval = "250ms"
queue = 16
max_entries = 100

[pipeline]
stages = ["validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"]

[[snat]]
out = "wan0"
from = ["192.168.46.0/24", "192.168.50.0/24"]
to = "18.18.18.9-18.18.18.11"
ports = "20000-29999"
mapping = "address-dependent"
filtering = "address-and-port-dependent"
port_preservation = false
hairpin = false
max_ports_per_host = 512
unsolicited_syn = "drop"

[[snat]]
out = "lan0"
from = ["fd50::/64"]
to = "masquerade"

[[snat]]
out = "wan0"
from = ["10.0.0.0/8"]
to = "18.18.18.8"
ports = "5000"

[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:8080"
to = "192.168.46.10:80"

[[forward]]
in = "lan0"
proto = "udp"
listen = "[fd46::1]:5353"
to = "[fd50::53]:53"

[conntrack]
max = 1000
tcp_established = "1h"
tcp_transitory = "30s"
tcp_closing = "5m"
udp = "2m"
icmp = "1m"

[filter]
policy = "drop"

[[filter.rule]]
state = ["established", "related"]
action = "accept"

[[filter.rule]]
in = "lan0"
out = "wan0"
proto = "tcp"
dport = "22"
action = "accept"
log = true
`

func TestParseValid(t *testing.T) {
	c, err := Parse("tungate.toml", []byte(validConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		File:   "tungate.toml",
		Router: Router{AdminSocket: "/tmp/tg.sock", MetricsListen: "[::1]:9108", LogLevel: "debug"},
		Interface: []Interface{{
			Name:      "lan0",
			Kind:      KindTUN,
			Addresses: []netip.Prefix{netip.MustParsePrefix("192.168.46.1/24"), netip.MustParsePrefix("fd46::1/64")},
			MTU:       9000,
			FD:        -1,
			Netns:     "lan",
			Peer:      []netip.Prefix{netip.MustParsePrefix("192.168.46.2/24"), netip.MustParsePrefix("fd46::2/64")},
			Offload:   false,
			Queues:    4,
			Line:      7,
		}, {
			Name:      "wan0",
			Kind:      KindTUN,
			Addresses: []netip.Prefix{netip.MustParsePrefix("18.18.18.8/24")},
			MTU:       1500,
			FD:        3,
			Offload:   true,
			Queues:    1,
			Line:      17,
		}, {
			Name:                 "eth0",
			Kind:                 KindTAP,
			Addresses:            []netip.Prefix{netip.MustParsePrefix("192.168.50.1/24"), netip.MustParsePrefix("fd50::1/64")},
			MTU:                  1500,
			FD:                   -1,
			Offload:              true,
			Queues:               1,
			MAC:                  MAC{0x02, 0, 0, 0, 0x50, 0x01},
			RouterAdvertisements: true,
			Line:                 22,
		}},
		Route: []Route{
			{To: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("18.18.18.1"), Dev: "wan0", Metric: 100, Line: 29},
			{To: netip.MustParsePrefix("::/0"), Via: netip.MustParseAddr("fd46::fe"), Dev: "lan0", Line: 34},
			{To: netip.MustParsePrefix("10.0.0.0/8"), Dev: "wan0", Line: 39},
			{To: netip.MustParsePrefix("fd60::/64"), Via: netip.MustParseAddr("fe80::2"), Dev: "eth0", Line: 43},
		},
		Neighbor: []Neighbor{
			{IP: netip.MustParseAddr("192.168.50.2"), MAC: MAC{0x00, 0x50, 0x56, 0xf4, 0x6c, 0xf2}, Dev: "eth0", Line: 48},
			{IP: netip.MustParseAddr("fe80::2"), MAC: MAC{0x00, 0x50, 0x56, 0xf4, 0x6c, 0xf3}, Dev: "eth0", Line: 53},
		},
		ARP: ARP{
			Reachable:     5 * time.Second,
			Stale:         90 * time.Second,
			Retries:       5,
			RetryInterval: 250 * time.Millisecond,
			Queue:         16,
			MaxEntries:    100,
		},
		SNAT: []SNAT{{
			Out:              "wan0",
			From:             []netip.Prefix{netip.MustParsePrefix("192.168.46.0/24"), netip.MustParsePrefix("192.168.50.0/24")},
			Addresses:        []netip.Addr{netip.MustParseAddr("18.18.18.9"), netip.MustParseAddr("18.18.18.10"), netip.MustParseAddr("18.18.18.11")},
			Ports:            PortRange{20000, 29999},
			Mapping:          AddressDependent,
			Filtering:        AddressAndPortDependent,
			PortPreservation: false,
			Hairpin:          false,
			MaxPortsPerHost:  512,
			UnsolicitedSYN:   "drop",
			Line:             69,
		}, {
			Out:              "lan0",
			From:             []netip.Prefix{netip.MustParsePrefix("fd50::/64")},
			Masquerade:       true,
			Ports:            PortRange{1024, 65535},
			Mapping:          EndpointIndependent,
			Filtering:        EndpointIndependent,
			PortPreservation: true,
			Hairpin:          true,
			UnsolicitedSYN:   "icmp",
			Line:             81,
		}, {
			Out:              "wan0",
			From:             []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			Addresses:        []netip.Addr{netip.MustParseAddr("18.18.18.8")},
			Ports:            PortRange{5000, 5000},
			Mapping:          EndpointIndependent,
			Filtering:        EndpointIndependent,
			PortPreservation: true,
			Hairpin:          true,
			UnsolicitedSYN:   "icmp",
			Line:             86,
		}},
		Forward: []Forward{
			{In: "wan0", Proto: 6, Listen: netip.MustParseAddrPort("18.18.18.8:8080"), To: netip.MustParseAddrPort("192.168.46.10:80"), Line: 92},
			{In: "lan0", Proto: 17, Listen: netip.MustParseAddrPort("[fd46::1]:5353"), To: netip.MustParseAddrPort("[fd50::53]:53"), Line: 98},
		},
		Conntrack: Conntrack{
			Max:            1000,
			TCPEstablished: time.Hour,
			TCPOpening:     30 * time.Second,
			TCPClosing:     5 * time.Minute,
			UDP:            2 * time.Minute,
			ICMP:           time.Minute,
		},
		Filter: Filter{
			Policy: FilterDrop,
			Rules: []FilterRule{
				{Proto: -1, States: []string{"established", "related"}, Action: FilterAccept, Line: 115},
				{In: "lan0", Out: "wan0", Proto: 6, DPorts: PortSet{{22, 22}}, Action: FilterAccept, Log: true, Line: 119},
			},
			Line: 112,
		},
		Pipeline: Pipeline{Stages: []string{"validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	// Below the RFCs, and accepted: a harness wants quick expiry.
	below := []string{
		"tcp_established 1h0m0s is below 2h4m0s, the minimum of RFC 5382 REQ-5",
		"tcp_opening 30s is below 4m0s, the minimum of RFC 5382 REQ-5",
	}
	if got := c.Conntrack.BelowRFC(); !reflect.DeepEqual(got, below) {
		t.Errorf("BelowRFC() = %q, want %q", got, below)
	}
}

func TestParseDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[[interface]]
name = "tun0"
addresses = ["10.0.0.1/24"]

[[interface]]
name = "tap0"
kind = "tap"
addresses = ["10.1.0.1/24"]

[[route]]
to = "default"
via = "10.0.0.2"

[[neighbor]]
ip = "10.1.0.2"
mac = "02:00:00:00:00:02"
dev = "tap0"
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Router{AdminSocket: DefaultAdminSocket, LogLevel: "info"}); c.Router != want {
		t.Errorf("router = %+v, want %+v", c.Router, want)
	}
	in := c.Interface[0]
	if in.Kind != KindTUN || in.MTU != 1500 || in.FD != -1 || !in.Offload || in.Queues != 1 || in.Netns != "" || in.Peer != nil ||
		in.MAC != (MAC{}) || in.RouterAdvertisements {
		t.Errorf("interface defaults: %+v", in)
	}
	// A tap offloads too (SPEC said tun only; router/link measured it
	// faster on TAP) and has a MAC the router makes.
	tap := c.Interface[1]
	if tap.Kind != KindTAP || tap.MTU != 1500 || tap.FD != -1 || !tap.Offload || tap.Queues != 1 || tap.MAC != (MAC{}) || tap.RouterAdvertisements {
		t.Errorf("tap interface defaults: %+v", tap)
	}
	want := Neighbor{IP: netip.MustParseAddr("10.1.0.2"), MAC: MAC{2, 0, 0, 0, 0, 2}, Dev: "tap0", Line: 15}
	if len(c.Neighbor) != 1 || c.Neighbor[0] != want {
		t.Errorf("neighbors = %+v, want %+v", c.Neighbor, want)
	}
	// SPEC's defaults, spelled out: DefaultARP must not drift from them.
	arp := ARP{Reachable: 30 * time.Second, Stale: 10 * time.Minute, Retries: 3, RetryInterval: time.Second, Queue: 64, MaxEntries: 4096}
	if c.ARP != arp || DefaultARP != arp {
		t.Errorf("arp = %+v, DefaultARP = %+v, want %+v", c.ARP, DefaultARP, arp)
	}
	if r := c.Route[0]; r.Dev != "tun0" || r.Metric != 0 || r.To != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("route = %+v, want dev tun0 from via, metric 0, 0.0.0.0/0", r)
	}
	if !reflect.DeepEqual(c.Pipeline.Stages, DefaultStages) {
		t.Errorf("stages = %v, want %v", c.Pipeline.Stages, DefaultStages)
	}
	if len(c.SNAT) != 0 || len(c.Forward) != 0 {
		t.Errorf("snat = %+v, forward = %+v, want none", c.SNAT, c.Forward)
	}
	// SPEC's defaults, spelled out, as for [arp]; they meet every RFC minimum.
	ct := Conntrack{Max: 262144, TCPEstablished: 2*time.Hour + 4*time.Minute, TCPOpening: 4 * time.Minute, TCPClosing: 4 * time.Minute, UDP: 5 * time.Minute, ICMP: 60 * time.Second}
	if c.Conntrack != ct || DefaultConntrack != ct {
		t.Errorf("conntrack = %+v, DefaultConntrack = %+v, want %+v", c.Conntrack, DefaultConntrack, ct)
	}
	if below := c.Conntrack.BelowRFC(); below != nil {
		t.Errorf("default conntrack below the RFCs: %q", below)
	}
	// The snapshot must not share the package's default slice.
	c.Pipeline.Stages[0] = "changed"
	if DefaultStages[0] != "validate" {
		t.Error("Config.Pipeline.Stages aliases DefaultStages")
	}
}

func TestSNATDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(`
[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24", "fd46::1/64"]

[[interface]]
name = "wan0"
addresses = ["fe80::8/64", "18.18.18.8/24", "2001:db8::8/64", "18.18.19.8/24"]

[[snat]]
out = "wan0"
from = ["192.168.46.0/24", "fd46::/64"]
`))
	if err != nil {
		t.Fatal(err)
	}
	// RFC 4787 REQ-1 (mapping) and RFC 6888 REQ-7 (filtering): both
	// endpoint-independent unless the file says otherwise.
	want := SNAT{
		Out:              "wan0",
		From:             []netip.Prefix{netip.MustParsePrefix("192.168.46.0/24"), netip.MustParsePrefix("fd46::/64")},
		Masquerade:       true,
		Ports:            PortRange{1024, 65535},
		Mapping:          EndpointIndependent,
		Filtering:        EndpointIndependent,
		PortPreservation: true,
		Hairpin:          true,
		MaxPortsPerHost:  0,
		UnsolicitedSYN:   "icmp",
		Line:             10,
	}
	if len(c.SNAT) != 1 || !reflect.DeepEqual(c.SNAT[0], want) {
		t.Errorf("snat = %+v, want %+v", c.SNAT, want)
	}
	if DefaultSNATPorts != want.Ports {
		t.Errorf("DefaultSNATPorts = %v, want %v", DefaultSNATPorts, want.Ports)
	}
	// Masquerade takes the first address of the family, not link-local.
	wan := c.Interface[1]
	for _, tt := range []struct {
		is6  bool
		want string
	}{{false, "18.18.18.8"}, {true, "2001:db8::8"}} {
		if a, ok := wan.MasqueradeAddr(tt.is6); !ok || a != netip.MustParseAddr(tt.want) {
			t.Errorf("MasqueradeAddr(%v) = %v, %v; want %s", tt.is6, a, ok, tt.want)
		}
	}
	if a, ok := (Interface{Addresses: []netip.Prefix{netip.MustParsePrefix("fe80::1/64")}}).MasqueradeAddr(true); ok {
		t.Errorf("MasqueradeAddr of a link-local only interface = %v", a)
	}
}

// TestSNATPoolsAndExemptions: a pool of several addresses and ranges
// (RFC 6888 REQ-3), and a to = "none" rule narrowed by dest and dport that
// exempts destinations from translation (RFC 6888 REQ-6).
func TestSNATPoolsAndExemptions(t *testing.T) {
	c, err := Parse("t.toml", []byte(natIfaces+`
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
dest = ["203.0.113.0/24", "198.51.100.7/32"]
dport = "53, 1000-2000,80"
to = "none"

[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = ["18.18.18.20", "18.18.18.30-18.18.18.32", "18.18.18.9"]
pcp = true
port_parity = true
`))
	if err != nil {
		t.Fatal(err)
	}
	exempt := c.SNAT[0]
	wantDest := []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("198.51.100.7/32")}
	wantPorts := PortSet{{53, 53}, {80, 80}, {1000, 2000}}
	if !exempt.Exempt || exempt.Masquerade || exempt.Addresses != nil ||
		!reflect.DeepEqual(exempt.Dest, wantDest) || !reflect.DeepEqual(exempt.DPorts, wantPorts) {
		t.Errorf("snat 1 = %+v, want exempt with dest %v and dport %v", exempt, wantDest, wantPorts)
	}
	for _, tt := range []struct {
		port uint16
		want bool
	}{{52, false}, {53, true}, {54, false}, {80, true}, {999, false}, {1000, true}, {1500, true}, {2000, true}, {2001, false}} {
		if got := exempt.DPorts.Contains(tt.port); got != tt.want {
			t.Errorf("DPorts.Contains(%d) = %v, want %v", tt.port, got, tt.want)
		}
	}
	var want []netip.Addr
	for _, s := range []string{"18.18.18.20", "18.18.18.30", "18.18.18.31", "18.18.18.32", "18.18.18.9"} {
		want = append(want, netip.MustParseAddr(s))
	}
	if pool := c.SNAT[1]; pool.Masquerade || pool.Exempt || !pool.PCP || !pool.PortParity || !reflect.DeepEqual(pool.Addresses, want) {
		t.Errorf("snat 2 = %+v, want the pool %v, serving PCP", pool, want)
	}
	if c.SNAT[0].PCP || c.SNAT[0].PortParity {
		t.Error("pcp or port_parity is on by default")
	}
}

func TestBelowRFC(t *testing.T) {
	c := DefaultConntrack
	c.TCPEstablished = 2*time.Hour + 4*time.Minute - time.Second
	c.UDP = 119 * time.Second
	c.ICMP = time.Second
	want := []string{
		"tcp_established 2h3m59s is below 2h4m0s, the minimum of RFC 5382 REQ-5",
		"udp 1m59s is below 2m0s, the minimum of RFC 4787 REQ-5",
		"icmp 1s is below 1m0s, the minimum of RFC 5508 REQ-2",
	}
	if got := c.BelowRFC(); !reflect.DeepEqual(got, want) {
		t.Errorf("BelowRFC() = %q, want %q", got, want)
	}
	c = DefaultConntrack
	c.UDP = 2 * time.Minute // the minimum itself is fine
	if got := c.BelowRFC(); got != nil {
		t.Errorf("BelowRFC() = %q, want nil", got)
	}
}

// iface is a valid interface table to build error cases on.
const iface = `[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24"]
`

// natIfaces are an inside and an outside interface to build NAT error
// cases on; the next line is 7.
const natIfaces = `[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24", "fd46::1/64"]
[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24"]
`

// tap is a valid tap interface to build error cases on.
const tap = `[[interface]]
name = "lan0"
kind = "tap"
addresses = ["192.168.46.1/24", "fd46::1/64"]
`

// TestParseErrors lists configs and the complete error output each must
// give, line by line.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"syntax keeps toml's line", iface + "mtu = = 1\n", []string{
			"tungate.toml:4: expected value but found '=' instead",
		}},
		{"duplicate key is toml's", iface + "name = \"x\"\n", []string{
			"tungate.toml:4: Key 'interface.name' has already been defined.",
		}},
		{"no interface", "", []string{
			"tungate.toml: no [[interface]]: at least one is needed",
		}},
		{"unknown key in second interface", iface + `
[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24"]
bogus = 1
`, []string{
			`tungate.toml:8: interface "wan0": unknown key "bogus"`,
		}},
		{"unknown keys everywhere, all reported, with hints", `
top = 1
[router]
log_lvl = "info"
` + iface + `adresses = []
[interface.sub]
x = 1
[[route]]
to = "default"
dev = "lan0"
metrc = 1
[pipeline]
stage = []
[bogus]
`, []string{
			`tungate.toml:2: unknown key "top"`,
			`tungate.toml:4: router: unknown key "log_lvl" (did you mean "log_level"?)`,
			`tungate.toml:8: interface "lan0": unknown key "adresses" (did you mean "addresses"?)`,
			`tungate.toml:9: interface "lan0": unknown table "sub"`,
			`tungate.toml:14: route 1: unknown key "metrc" (did you mean "metric"?)`,
			`tungate.toml:16: pipeline: unknown key "stage" (did you mean "stages"?)`,
			`tungate.toml:17: unknown table "bogus"`,
		}},
		{"unknown key in an inline array of tables", `interface = [
  {name = "lan0", addresses = ["192.168.46.1/24"]},
  {name = "wan0", addresses = ["18.18.18.8/24"], bogus = 1},
]`, []string{
			`tungate.toml:3: interface "wan0": unknown key "bogus"`,
		}},
		{"tun keys on a tap, tap keys on a tun", `[[interface]]
name = "lan0"
kind = "tap"
offload = true
queues = 2
[[interface]]
name = "wan0"
mac = "02:00:00:00:00:01"
router_advertisements = false
[[interface]]
name = "odd0"
kind = "l2"
mac = "02:00:00:00:00:02"
offload = false
`, []string{
			`tungate.toml:5: interface "lan0": queues is for tun interfaces only`,
			`tungate.toml:8: interface "wan0": mac is for tap interfaces only`,
			`tungate.toml:9: interface "wan0": router_advertisements is for tap interfaces only`,
			// A bad kind is one error, not one per key.
			`tungate.toml:12: interface "odd0": kind "l2" must be "tun" or "tap"`,
		}},
		{"macs", `[[interface]]
name = "tap0"
kind = "tap"
mac = "02:00:00:00:00"
[[interface]]
name = "tap1"
kind = "tap"
mac = "01:00:5e:00:00:01"
[[interface]]
name = "tap2"
kind = "tap"
mac = "FF:FF:FF:FF:FF:FF"
[[interface]]
name = "tap3"
kind = "tap"
mac = "00-00-00-00-00-00"
[[interface]]
name = "tap4"
kind = "tap"
mac = "02:00:00:ff:fe:00:00:01"
[[interface]]
name = "tap5"
kind = 4
mac = 0x0200_0000_0001
`, []string{
			`tungate.toml:4: interface "tap0": mac "02:00:00:00:00" is not a MAC address like "02:00:00:00:00:01"`,
			`tungate.toml:8: interface "tap1": mac 01:00:5e:00:00:01 is a multicast address (the lowest bit of its first byte is set), not a host's address`,
			`tungate.toml:12: interface "tap2": mac FF:FF:FF:FF:FF:FF is the broadcast address, not a host's address`,
			`tungate.toml:16: interface "tap3": mac 00-00-00-00-00-00 is all zeros, not a host's address`,
			`tungate.toml:20: interface "tap4": mac 02:00:00:ff:fe:00:00:01 is 8 bytes; an Ethernet address has 6`,
			`tungate.toml:23: interface "tap5": kind must be a string, not the integer 4`,
			`tungate.toml:24: interface "tap5": mac must be a string, not the integer 2199023255553`,
		}},
		{"router advertisements need a /64", `[[interface]]
name = "lan0"
kind = "tap"
addresses = ["192.168.46.1/24", "fd46::1/80", "fd47::1/48"]
router_advertisements = true
[[interface]]
name = "lan1"
kind = "tap"
addresses = ["fe80::1/64"]
router_advertisements = true
[[interface]]
name = "lan2"
kind = "tap"
router_advertisements = "yes"
[[interface]]
name = "lan3"
kind = "tap"
addresses = ["10.3.0.1/24"]
router_advertisements = false
`, []string{
			`tungate.toml:5: interface "lan0": router_advertisements needs an IPv6 address with a /64 prefix (not link-local) on this interface to advertise: ` +
				`SLAAC forms addresses only in a /64 (RFC 4862 §5.5.3, RFC 4291 §2.5.1)`,
			`tungate.toml:10: interface "lan1": router_advertisements needs an IPv6 address with a /64 prefix (not link-local)`,
			`tungate.toml:14: interface "lan2": router_advertisements must be true or false, not the string "yes"`,
		}},
		{"arp values", iface + `[arp]
reachable = "0s"
stale = "10"
retries = 0
retry_interval = "-1s"
queue = 65536
max_entries = 0
bogus = 1
`, []string{
			`tungate.toml:5: arp: reachable "0s" must be more than 0`,
			`tungate.toml:6: arp: stale "10" is not a duration: missing unit; write it like "30s" or "2h4m"`,
			"tungate.toml:7: arp: retries 0 is out of range 1..100",
			`tungate.toml:8: arp: retry_interval "-1s" must be more than 0`,
			"tungate.toml:9: arp: queue 65536 is out of range 1..65535",
			"tungate.toml:10: arp: max_entries 0 is out of range 1..2147483647",
			`tungate.toml:11: arp: unknown key "bogus"`,
		}},
		{"arp types", iface + `[arp]
reachable = 30
stale = "1d"
retries = 101
retry_interval = "soon"
queue = "64"
`, []string{
			"tungate.toml:5: arp: reachable must be a string, not the integer 30",
			`tungate.toml:6: arp: stale "1d" is not a duration: unknown unit "d"; write it like "30s" or "2h4m"`,
			"tungate.toml:7: arp: retries 101 is out of range 1..100",
			`tungate.toml:8: arp: retry_interval "soon" is not a duration; write it like "30s" or "2h4m"`,
			`tungate.toml:9: arp: queue must be an integer, not the string "64"`,
		}},
		{"arp of the wrong shape", "arp = [1]\n" + iface, []string{
			"tungate.toml:1: arp must be a table, [arp], not an array",
		}},
		{"neighbor values", tap + `
[[neighbor]]
[[neighbor]]
ip = "fe80::2%lan0"
mac = "02:00:00:00:00"
dev = ""
[[neighbor]]
ip = "192.168.46.2"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "192.168.46.2"
mac = "02:00:00:00:00:03"
dev = "lan0"
[[neighbor]]
ip = "ff02::1"
mac = "33:33:00:00:00:01"
dev = "lan0"
state = "permanent"
`, []string{
			"tungate.toml:6: neighbor 1: ip is required",
			"tungate.toml:6: neighbor 1: mac is required",
			"tungate.toml:6: neighbor 1: dev is required",
			"tungate.toml:8: neighbor 2: ip fe80::2%lan0: name the interface with dev, not with a zone",
			`tungate.toml:9: neighbor 2: mac "02:00:00:00:00" is not a MAC address like "02:00:00:00:00:01"`,
			"tungate.toml:10: neighbor 2: dev is empty; name the tap interface the neighbor is on",
			"tungate.toml:15: neighbor 4: same dev (lan0) and ip (192.168.46.2) as neighbor 3",
			"tungate.toml:20: neighbor 5: ip ff02::1 is a multicast address, not a unicast host address",
			"tungate.toml:21: neighbor 5: mac 33:33:00:00:00:01 is a multicast address",
			`tungate.toml:23: neighbor 5: unknown key "state"`,
		}},
		{"neighbors against interfaces", tap + `mac = "02:00:00:00:00:01"
[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24"]
[[neighbor]]
ip = "192.168.46.2"
mac = "02:00:00:00:00:02"
dev = "eth9"
[[neighbor]]
ip = "18.18.18.1"
mac = "02:00:00:00:00:02"
dev = "wan0"
[[neighbor]]
ip = "18.18.18.1"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "169.254.0.1"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "192.168.46.1"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "192.168.46.255"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "fd46::"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "fe80::9"
mac = "02:00:00:00:00:01"
dev = "lan0"
[[neighbor]]
ip = "fe80::9"
mac = "02:00:00:00:00:09"
dev = "wan0"
`, []string{
			`tungate.toml: neighbor 1: dev "eth9" is not an [[interface]]`,
			`tungate.toml: neighbor 2: dev "wan0" is a tun interface, which has no neighbors: it carries IP packets without link-layer addresses; static neighbors are for tap interfaces`,
			`tungate.toml: neighbor 3: ip 18.18.18.1 is not inside a connected prefix of interface "lan0"; only IPv6 link-local addresses (fe80::/10) may be outside`,
			`tungate.toml: neighbor 4: ip 169.254.0.1 is not inside a connected prefix of interface "lan0"`,
			`tungate.toml: neighbor 5: ip 192.168.46.1 is the router's own address on interface "lan0"`,
			`tungate.toml: neighbor 6: ip 192.168.46.255 is the broadcast address of 192.168.46.0/24`,
			`tungate.toml: neighbor 7: ip fd46:: is the prefix fd46::/64 itself, not a host in it`,
			`tungate.toml: neighbor 8: mac 02:00:00:00:00:01 is the router's own on interface "lan0"`,
			`tungate.toml: neighbor 9: dev "wan0" is a tun interface`,
		}},
		{"static neighbors must fit the cache", tap + `[arp]
max_entries = 1
[[neighbor]]
ip = "192.168.46.2"
mac = "02:00:00:00:00:02"
dev = "lan0"
[[neighbor]]
ip = "192.168.46.3"
mac = "02:00:00:00:00:03"
dev = "lan0"
`, []string{
			"tungate.toml:6: arp: max_entries 1 cannot hold the 2 [[neighbor]] entries, which are never evicted",
		}},
		{"link-local next hops", tap + `[[interface]]
name = "wan0"
addresses = ["fd18::8/64"]
[[interface]]
name = "wan1"
addresses = ["fe80::1/64"]
[[route]]
to = "fd60::/64"
via = "fe80::1"
dev = "lan0"
[[route]]
to = "fd61::/64"
via = "fe80::1"
[[route]]
to = "fd62::/64"
via = "fe80::1"
dev = "wan0"
[[route]]
to = "fd63::/64"
via = "fe80::2"
dev = "wan1"
[[route]]
to = "fd64::/64"
via = "fe80::1"
dev = "nope"
[[route]]
to = "default"
via = "fe80::1%lan0"
`, []string{
			"tungate.toml:32: route 6: via fe80::1%lan0: name the interface with dev, not with a zone",
			"tungate.toml: route 2: via fe80::1 is link-local, on every link at once; name its tap interface with dev",
			`tungate.toml: route 3: via fe80::1 is link-local, a next hop only a tap interface can resolve; dev "wan0" is a tun interface (for an on-link route, leave via out)`,
			`tungate.toml: route 4: via fe80::2 is link-local, a next hop only a tap interface can resolve; dev "wan1" is a tun interface`,
			`tungate.toml: route 5: dev "nope" is not an [[interface]]`,
		}},
		{"a tap needs the neighbor stage", tap + `[[interface]]
name = "lan1"
kind = "tap"
[[interface]]
name = "wan0"
[pipeline]
stages = ["validate", "local", "route", "ttl"]
`, []string{
			`tungate.toml:11: pipeline: stage "neighbor" is required by tap interfaces "lan0", "lan1", to resolve next hops to MAC addresses`,
		}},
		{"one tap needs the neighbor stage, inline", "pipeline = {stages = [\"validate\", \"route\"]}\n" + tap, []string{
			`tungate.toml:1: pipeline: stage "neighbor" is required by tap interface "lan0", to resolve next hops to MAC addresses`,
		}},
		{"wrong types", `[router]
log_level = 1
[[interface]]
name = 7
addresses = "10.0.0.1/24"
mtu = "1500"
offload = "yes"
[pipeline]
stages = ["validate", 2, "route"]
`, []string{
			"tungate.toml:2: router: log_level must be a string, not the integer 1",
			"tungate.toml:4: interface 1: name must be a string, not the integer 7",
			`tungate.toml:5: interface 1: addresses must be an array of strings, not the string "10.0.0.1/24"`,
			`tungate.toml:6: interface 1: mtu must be an integer, not the string "1500"`,
			`tungate.toml:7: interface 1: offload must be true or false, not the string "yes"`,
			"tungate.toml:9: pipeline: stages: element 2 must be a string, not the integer 2",
		}},
		{"tables of the wrong shape", "router = 1\n[interface]\nname = \"x\"\n", []string{
			"tungate.toml:1: router must be a table, [router], not the integer 1",
			"tungate.toml:2: interface must be an array of tables, [[interface]], not a table",
			"tungate.toml: no [[interface]]",
		}},
		{"router values", `[router]
admin_socket = "/` + strings.Repeat("x", 120) + `"
metrics_listen = ":9108"
log_level = "verbose"
` + iface, []string{
			"is 121 bytes; a unix socket path holds at most 107",
			`tungate.toml:3: router: metrics_listen ":9108" is not ip:port, e.g. "127.0.0.1:9108" or "[::1]:9108"`,
			`tungate.toml:4: router: log_level "verbose" must be one of debug, info, warn, error`,
		}},
		{"interface names", `[[interface]]
addresses = ["10.0.0.1/24"]
[[interface]]
name = "a-very-long-name0"
[[interface]]
name = "eth0:1"
[[interface]]
name = "tun%d"
[[interface]]
name = "a b"
[[interface]]
name = ""
`, []string{
			"tungate.toml:1: interface 1: name is required",
			`tungate.toml:4: interface 2: name "a-very-long-name0" is 17 bytes; Linux takes at most 15 (IFNAMSIZ)`,
			`tungate.toml:6: interface 3: name "eth0:1" cannot contain '/' or ':'`,
			`tungate.toml:8: interface 4: name "tun%d" cannot contain '%'; give the name in full`,
			`tungate.toml:10: interface 5: name "a b" cannot contain whitespace or control characters`,
			`tungate.toml:12: interface 6: name "" is empty`,
		}},
		{"addresses, one line each", `[[interface]]
name = "lan0"
addresses = [
  "192.168.46.0/24",
  "192.168.47.255/24",
  "10.0.0.1",
  "10.0.0.1/33",
  "224.0.0.1/24",
  "::ffff:10.0.0.1/120",
  "fd00::/64",
  "10.9.9.9/0",
  "192.168.48.1/24",
  "192.168.48.1/25",
  "10.1.1.0/31",
  "10.2.2.2/32",
  "fd01::/127",
]
`, []string{
			"tungate.toml:4: interface \"lan0\": addresses: 192.168.46.0/24 is the prefix itself, not a host address in it, like 192.168.46.1/24",
			"tungate.toml:5: interface \"lan0\": addresses: 192.168.47.255/24 is the broadcast address of 192.168.47.0/24",
			`tungate.toml:6: interface "lan0": addresses: "10.0.0.1" has no prefix length, like the /24 of 192.168.46.1/24`,
			`tungate.toml:7: interface "lan0": addresses: "10.0.0.1/33" is not an IP prefix: prefix length out of range`,
			"tungate.toml:8: interface \"lan0\": addresses: 224.0.0.1 is a multicast address, not a unicast host address",
			"tungate.toml:9: interface \"lan0\": addresses: ::ffff:10.0.0.1/120 is IPv4-mapped IPv6; write it as IPv4",
			"tungate.toml:10: interface \"lan0\": addresses: fd00::/64 is the prefix itself",
			"tungate.toml:11: interface \"lan0\": addresses: 10.9.9.9/0: a /0 connected prefix would hold every address",
			"tungate.toml:13: interface \"lan0\": addresses: 192.168.48.1 is listed twice",
		}},
		{"odd names, kinds and addresses", `[[interface]]
name = ".."
kind = "l3"
addresses = ["0.0.0.0/8", "127.0.0.1/8", "255.255.255.255/32", "169.254.0.1/16", "fe80::1/64", "ff02::1/64"]
mtu = 1.5
fd = 1979-05-27
netns = ["a"]
queues = {a = 1}
offload = "\u001b"
`, []string{
			`tungate.toml:2: interface 1: name ".." is not a valid device name`,
			`tungate.toml:3: interface 1: kind "l3" must be "tun" or "tap"`,
			"tungate.toml:4: interface 1: addresses: 0.0.0.0 is the unspecified address, not a unicast host address",
			"tungate.toml:4: interface 1: addresses: 127.0.0.1 is a loopback address, not a unicast host address",
			"tungate.toml:4: interface 1: addresses: 255.255.255.255 is the broadcast address, not a unicast host address",
			"tungate.toml:4: interface 1: addresses: ff02::1 is a multicast address, not a unicast host address",
			"tungate.toml:5: interface 1: mtu must be an integer, not the float 1.5",
			"tungate.toml:6: interface 1: fd must be an integer, not a date or time",
			"tungate.toml:7: interface 1: netns must be a string, not an array",
			"tungate.toml:8: interface 1: queues must be an integer, not a table",
			`tungate.toml:9: interface 1: offload must be true or false, not the string "\x1b"`,
		}},
		{"an array of strings is not an array of tables", `interface = ["lan0"]`, []string{
			`tungate.toml:1: interface must be an array of tables, [[interface]]; element 1 is the string "lan0"`,
			"tungate.toml: no [[interface]]",
		}},
		{"interface numbers", `[[interface]]
name = "lan0"
addresses = ["fd00::1/64"]
mtu = 1000
fd = 1
netns = "a/b"
queues = 17
[[interface]]
name = "lan1"
mtu = 70000
fd = 4
queues = 2
[[interface]]
name = "lan2"
fd = -2
netns = ""
`, []string{
			`tungate.toml:4: interface "lan0": mtu 1000 is below 1280, the IPv6 minimum (RFC 8200 §5), and the interface has an IPv6 address`,
			`tungate.toml:5: interface "lan0": fd 1 is stdin, stdout or stderr; pass the device on fd 3 or above`,
			`tungate.toml:6: interface "lan0": netns "a/b" is not a file name under /run/netns`,
			`tungate.toml:7: interface "lan0": queues 17 is out of range 1..16`,
			`tungate.toml:10: interface "lan1": mtu 70000 is out of range 576..65535`,
			`tungate.toml:12: interface "lan1": queues 2 needs tungate to open the device itself; an inherited fd is one queue`,
			`tungate.toml:15: interface "lan2": fd -2 is out of range -1..2147483647`,
			`tungate.toml:16: interface "lan2": netns is empty; leave it out to keep the device in tungate's own namespace`,
		}},
		{"peers", `[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24"]
peer = ["192.168.46.1/24", "192.168.47.2/24", "192.168.46.2/24", "192.168.46.2/24"]
`, []string{
			`tungate.toml:4: interface "lan0": peer: 192.168.46.1 is the router's own address on this interface`,
			`tungate.toml:4: interface "lan0": peer: 192.168.47.2/24 is not inside any of this interface's prefixes`,
			`tungate.toml:4: interface "lan0": peer: 192.168.46.2 is listed twice`,
		}},
		{"interfaces against each other", iface + `
[[interface]]
name = "lan0"
[[interface]]
name = "wan0"
addresses = ["192.168.0.1/16", "fd00::1/64"]
[[interface]]
addresses = ["fd00::2/64"]
`, []string{
			`tungate.toml:6: interface 2: name "lan0" is already used by interface 1`,
			"tungate.toml:10: interface 4: name is required",
			`tungate.toml: interface "wan0": 192.168.0.1/16 overlaps 192.168.46.1/24 of interface "lan0"`,
			`tungate.toml: interface 4: fd00::2/64 overlaps fd00::1/64 of interface "wan0"`,
		}},
		{"route values", iface + `
[[route]]
to = "10.1.2.3/8"
via = "192.168.46.9"
[[route]]
via = "fe80::1%lan0"
[[route]]
to = "default"
[[route]]
to = "10.0.0.0/8"
via = "fd00::1"
dev = ""
[[route]]
to = "10.0.0.0/8"
dev = "lan0"
metric = -1
[[route]]
to = "1.2.3.4"
via = "bogus"
`, []string{
			"tungate.toml:6: route 1: to 10.1.2.3/8: invalid prefix for given prefix length (host bits set); did you mean 10.0.0.0/8?",
			"tungate.toml:8: route 2: to is required",
			"tungate.toml:9: route 2: via fe80::1%lan0: name the interface with dev, not with a zone",
			"tungate.toml:10: route 3: needs via (a next hop), dev (an on-link route), or both",
			"tungate.toml:14: route 4: via fd00::1 and to 10.0.0.0/8 are not the same IP family",
			"tungate.toml:15: route 4: dev is empty",
			"tungate.toml:19: route 5: metric -1 is out of range 0..4294967295",
			`tungate.toml:21: route 6: to "1.2.3.4" has no prefix length`,
			`tungate.toml:22: route 6: via "bogus" is not an IP address: unable to parse IP`,
			`tungate.toml: route 4: via fd00::1 is not inside any interface's connected prefix`,
		}},
		{"routes against interfaces and each other", iface + `
[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24"]
[[route]]
to = "default"
via = "10.9.9.9"
metric = 1
[[route]]
to = "default"
via = "18.18.18.1"
dev = "lan0"
metric = 2
[[route]]
to = "10.0.0.0/8"
dev = "wan9"
[[route]]
to = "0.0.0.0/0"
via = "18.18.18.1"
[[route]]
to = "default"
via = "18.18.18.2"
[[route]]
to = "10.0.0.0/8"
via = "18.18.18.8"
metric = 1
`, []string{
			`tungate.toml:23: route 5: same to (0.0.0.0/0) and metric (0) as route 4`,
			"tungate.toml: route 1: via 10.9.9.9 is not inside any interface's connected prefix",
			`tungate.toml: route 2: via 18.18.18.1 is not inside a connected prefix of interface "lan0" (unreachable next hop)`,
			`tungate.toml: route 3: dev "wan9" is not an [[interface]]`,
			`tungate.toml: route 6: via 18.18.18.8 is the router's own address on interface "wan0"`,
		}},
		{"inline routes on one line", `route = [{to = "default", dev = "lan0"}, {to = "0.0.0.0/0", dev = "lan0"}]` + "\n" + iface, []string{
			"tungate.toml:1: route 2: same to (0.0.0.0/0) and metric (0) as route 1",
		}},
		{"pipeline", iface + `[pipeline]
stages = [
  "local",
  "validate",
  "snat",
  "route",
  "neighbor",
  "ttl",
  "route",
  "nat",
]
`, []string{
			`tungate.toml:7: pipeline: validate must come first`,
			`tungate.toml:8: pipeline: snat must come after route`,
			`tungate.toml:10: pipeline: neighbor must come last`,
			`tungate.toml:12: pipeline: stage "route" is listed twice`,
			`tungate.toml:13: pipeline: unknown stage "nat"; the stages are validate, local, dnat, route, filter, ttl, snat, neighbor`,
		}},
		{"snat values", natIfaces + `[[snat]]
[[snat]]
out = ""
from = []
to = "bogus"
ports = "0-100"
mapping = "full-cone"
filtering = 1
port_preservation = "yes"
hairpin = 0
max_ports_per_host = -1
unsolicited_syn = "rst"
bogus = 1
`, []string{
			"tungate.toml:7: snat 1: out is required: the egress interface",
			`tungate.toml:7: snat 1: from is required: the inside prefixes to translate, like ["192.168.46.0/24"]`,
			"tungate.toml:9: snat 2: out is empty; name the egress interface",
			`tungate.toml:10: snat 2: from is empty; list the inside prefixes to translate, like ["192.168.46.0/24"]`,
			`tungate.toml:11: snat 2: to "bogus" is not "masquerade", an IP address or a range like "18.18.18.8-18.18.18.9"`,
			`tungate.toml:12: snat 2: ports "0-100": ports are 1..65535`,
			`tungate.toml:13: snat 2: mapping "full-cone" must be one of endpoint-independent, address-dependent, address-and-port-dependent`,
			"tungate.toml:14: snat 2: filtering must be a string, not the integer 1",
			`tungate.toml:15: snat 2: port_preservation must be true or false, not the string "yes"`,
			"tungate.toml:16: snat 2: hairpin must be true or false, not the integer 0",
			"tungate.toml:17: snat 2: max_ports_per_host -1 is out of range 0..2147483647",
			`tungate.toml:18: snat 2: unsolicited_syn "rst" must be "icmp" or "drop"`,
			`tungate.toml:19: snat 2: unknown key "bogus"`,
		}},
		{"snat from", natIfaces + `[[snat]]
out = "wan0"
from = [
  "192.168.46.1/24",
  "192.168.46.0/24",
  "192.168.46.0/24",
  "10.0.0.0",
  "fd46::/64",
  7,
]
to = "18.18.18.9"
`, []string{
			"tungate.toml:10: snat 1: from 192.168.46.1/24: invalid prefix for given prefix length (host bits set); did you mean 192.168.46.0/24?",
			"tungate.toml:12: snat 1: from 192.168.46.0/24 is listed twice",
			`tungate.toml:13: snat 1: from "10.0.0.0" has no prefix length`,
			"tungate.toml:14: snat 1: from fd46::/64 and to 18.18.18.9 are not the same IP family; write one [[snat]] per family",
			"tungate.toml:15: snat 1: from: element 6 must be a string, not the integer 7",
		}},
		{"snat from with only bad elements is not reported empty", natIfaces + `[[snat]]
out = "wan0"
from = [1]
`, []string{
			"tungate.toml:9: snat 1: from: element 1 must be a string, not the integer 1",
		}},
		{"snat pools and ports", `snat = [
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9-18.18.18.8"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9-fd18::9"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.0.0-18.19.0.0"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.0.0-18.18.255.255"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "169.253.255.255-169.254.0.1"},
  {out = "wan0", from = ["fd46::/64"], to = "fe80::1"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9-x"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "224.0.0.1"},
  {out = "wan0", from = ["10.0.0.0/8", "192.168.46.0/24"], to = "10.0.0.1-10.0.0.9"},
  {out = "wan0", from = ["fd46::/64"], to = "2001:db8::-2001:db8::1:0"},
  {out = "wan0", from = ["fd46::/64"], to = "2001:db8::-2001:db8::ffff"},
  {out = "wan0", from = ["fd46::/64"], to = "2001:db8::-2001:db9::"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "::ffff:18.18.18.9"},
  {out = "wan0", from = ["fd46::/64"], to = "fd18::9%wan0"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = "5000-4000"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = "1024-"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = "65536"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = "1-99999999999"},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = 1024},
  {out = "wan0", from = ["192.168.46.0/24"], to = "18.18.18.9", ports = "+1-2"},
]
` + natIfaces, []string{
			"tungate.toml:2: snat 1: to range 18.18.18.9-18.18.18.8: 18.18.18.9 comes after 18.18.18.8",
			"tungate.toml:3: snat 2: to range 18.18.18.9-fd18::9: 18.18.18.9 and fd18::9 are not the same IP family",
			"tungate.toml:4: snat 3: to range 18.18.0.0-18.19.0.0 holds more than 65536 addresses",
			"tungate.toml:6: snat 5: to range 169.253.255.255-169.254.0.1: 169.254.0.1 is link-local; a translated packet leaves its link",
			"tungate.toml:7: snat 6: to fe80::1 is link-local; a translated packet leaves its link",
			`tungate.toml:8: snat 7: to range "18.18.18.9-x": "x" is not an IP address: unable to parse IP`,
			"tungate.toml:9: snat 8: to 224.0.0.1 is a multicast address, not a unicast host address",
			"tungate.toml:10: snat 9: to 10.0.0.1-10.0.0.9 overlaps from 10.0.0.0/8: external addresses must not be inside ones (RFC 4787 REQ-7)",
			"tungate.toml:11: snat 10: to range 2001:db8::-2001:db8::1:0 holds more than 65536 addresses",
			"tungate.toml:13: snat 12: to range 2001:db8::-2001:db9:: holds more than 65536 addresses",
			"tungate.toml:14: snat 13: to ::ffff:18.18.18.9 is IPv4-mapped IPv6; write it as IPv4",
			"tungate.toml:15: snat 14: to fd18::9%wan0: a translated address takes no zone",
			`tungate.toml:16: snat 15: ports "5000-4000": 5000 is above 4000`,
			`tungate.toml:17: snat 16: ports "1024-" is not a port range like "1024-65535", or one port`,
			`tungate.toml:18: snat 17: ports "65536": ports are 1..65535`,
			`tungate.toml:19: snat 18: ports "1-99999999999": ports are 1..65535`,
			"tungate.toml:20: snat 19: ports must be a string, not the integer 1024",
			`tungate.toml:21: snat 20: ports "+1-2" is not a port range`,
		}},
		{"snat pool lists and exemptions", natIfaces + `[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = ["18.18.18.9", "fd18::9", "18.18.18.8-18.18.18.10", "x", 5]
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = []
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = 5
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = "none"
ports = "2000-3000"
hairpin = false
dest = ["203.0.113.1/24", "0.0.0.0/0", "0.0.0.0/0"]
dport = "53,50-60"
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
dport = "53,,80"
[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
to = ["192.168.46.100", "18.18.18.100"]
`, []string{
			"tungate.toml:10: snat 1: to: element 5 must be a string, not the integer 5",
			"tungate.toml:10: snat 1: to fd18::9 is not of the same IP family as 18.18.18.9; write one [[snat]] per family",
			"tungate.toml:10: snat 1: to 18.18.18.8-18.18.18.10: 18.18.18.9 is in the pool twice",
			`tungate.toml:10: snat 1: to "x" is not "masquerade", an IP address or a range like "18.18.18.8-18.18.18.9"`,
			"tungate.toml:14: snat 2: to is empty; leave it out for masquerade, or list addresses and ranges",
			`tungate.toml:18: snat 3: to must be "masquerade", "none", an address, a range, or an array of addresses and ranges, not the integer 5`,
			`tungate.toml:23: snat 4: ports has no meaning with to = "none", which translates nothing`,
			`tungate.toml:24: snat 4: hairpin has no meaning with to = "none", which translates nothing`,
			"tungate.toml:25: snat 4: dest 203.0.113.1/24: invalid prefix for given prefix length (host bits set); did you mean 203.0.113.0/24?",
			"tungate.toml:25: snat 4: dest 0.0.0.0/0 is listed twice",
			`tungate.toml:26: snat 4: dport "53,50-60": 50-60 and 53 overlap`,
			`tungate.toml:30: snat 5: dport "53,,80" has an empty entry; write ports and ranges like "22,80,1000-2000"`,
			"tungate.toml:34: snat 6: to 192.168.46.100, 18.18.18.100 overlaps from 192.168.46.0/24: external addresses must not be inside ones (RFC 4787 REQ-7)",
		}},
		{"snat against interfaces", natIfaces + `[[interface]]
name = "wan1"
addresses = ["fe80::1/64"]
[[snat]]
out = "wan9"
from = ["192.168.46.0/24"]
[[snat]]
out = "wan0"
from = ["192.168.46.0/24", "fd46::/64", "fd47::/64"]
[[snat]]
out = "wan1"
from = ["fd46::/64"]
[[snat]]
out = "wan0"
from = ["18.18.18.0/25", "18.0.0.0/8"]
[[snat]]
out = "wan0"
from = ["18.18.18.0/24"]
to = "18.18.19.1"
`, []string{
			`tungate.toml: snat 1: out "wan9" is not an [[interface]]`,
			`tungate.toml: snat 2: from fd46::/64 is IPv6, and interface "wan0" has no IPv6 address (not link-local) to masquerade as`,
			`tungate.toml: snat 3: from fd46::/64 is IPv6, and interface "wan1" has no IPv6 address (not link-local) to masquerade as`,
			`tungate.toml: snat 4: from 18.18.18.0/25 holds 18.18.18.8, an address of interface "wan0", which masquerade translates to: ` +
				"external addresses must not be inside ones (RFC 4787 REQ-7)",
			`tungate.toml: snat 4: from 18.0.0.0/8 holds 18.18.18.8, an address of interface "wan0"`,
		}},
		{"nat tables need their stages", natIfaces + `[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:80"
to = "192.168.46.2:80"
[pipeline]
stages = ["validate", "local", "route", "ttl", "neighbor"]
`, []string{
			`tungate.toml:16: pipeline: stage "snat" is required by [[snat]], to translate source addresses`,
			`tungate.toml:16: pipeline: stage "dnat" is required by [[forward]], to translate destination addresses`,
		}},
		{"forward values", natIfaces + `[[forward]]
[[forward]]
in = ""
proto = "icmp"
listen = "18.18.18.8"
to = "192.168.46.2:0"
[[forward]]
in = "wan0"
proto = 6
listen = "[fe80::1%wan0]:80"
to = "fd46::2:80"
extra = 1
[[forward]]
in = "wan0"
proto = "udp"
listen = "18.18.18.8:53"
to = "[fd46::53]:53"
[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:80"
to = "192.168.46.2:80"
[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:80"
to = "192.168.46.3:80"
[[forward]]
in = "wan0"
proto = "udp"
listen = "18.18.18.8:80"
to = "192.168.46.3:80"
[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:65536"
to = "224.0.0.1:80"
`, []string{
			"tungate.toml:7: forward 1: in is required",
			"tungate.toml:7: forward 1: proto is required",
			"tungate.toml:7: forward 1: listen is required",
			"tungate.toml:7: forward 1: to is required",
			"tungate.toml:9: forward 2: in is empty; name the interface the traffic arrives on",
			`tungate.toml:10: forward 2: proto "icmp" must be "tcp" or "udp"`,
			`tungate.toml:11: forward 2: listen "18.18.18.8" is not ip:port, like "18.18.18.8:8080" or "[fd18::8]:8080"`,
			"tungate.toml:12: forward 2: to 192.168.46.2:0: port 0 is not a port; ports are 1..65535",
			"tungate.toml:15: forward 3: proto must be a string, not the integer 6",
			"tungate.toml:16: forward 3: listen fe80::1%wan0: a translated address takes no zone",
			`tungate.toml:17: forward 3: to "fd46::2:80" is not ip:port`,
			`tungate.toml:18: forward 3: unknown key "extra"`,
			"tungate.toml:23: forward 4: to [fd46::53]:53 and listen 18.18.18.8:53 are not the same IP family",
			"tungate.toml:29: forward 6: same in (wan0), proto (tcp) and listen (18.18.18.8:80) as forward 5",
			`tungate.toml:42: forward 8: listen "18.18.18.8:65536" is not ip:port`,
			"tungate.toml:43: forward 8: to 224.0.0.1 is a multicast address, not a unicast host address",
		}},
		{"forwards against interfaces", `forward = [
  {in = "wan9", proto = "tcp", listen = "18.18.18.8:80", to = "192.168.46.2:80"},
  {in = "lan0", proto = "tcp", listen = "18.18.18.8:81", to = "192.168.46.2:80"},
  {in = "wan0", proto = "tcp", listen = "18.18.18.9:80", to = "192.168.46.2:80"},
  {in = "wan0", proto = "tcp", listen = "18.18.18.8:82", to = "192.168.46.1:80"},
  {in = "wan0", proto = "udp", listen = "18.18.18.8:83", to = "18.18.18.8:80"},
  {in = "wan0", proto = "tcp", listen = "18.18.18.8:80", to = "192.168.46.2:8080"},
  {in = "wan0", proto = "tcp", listen = "18.18.18.8:80", to = "192.168.46.3:80"},
  {in = "noaddr", proto = "tcp", listen = "18.18.18.8:80", to = "192.168.46.3:80"},
]
` + natIfaces + `[[interface]]
name = "noaddr"
`, []string{
			"tungate.toml:8: forward 7: same in (wan0), proto (tcp) and listen (18.18.18.8:80) as forward 6",
			`tungate.toml: forward 1: in "wan9" is not an [[interface]]`,
			`tungate.toml: forward 2: listen 18.18.18.8:81 is not an address of interface "lan0"; a forward listens on the router's own address there (192.168.46.1, fd46::1)`,
			`tungate.toml: forward 3: listen 18.18.18.9:80 is not an address of interface "wan0"; a forward listens on the router's own address there (18.18.18.8)`,
			`tungate.toml: forward 4: to 192.168.46.1:80 is the router's own address on interface "lan0"; a forward goes to another host`,
			`tungate.toml: forward 5: to 18.18.18.8:80 is the router's own address on interface "wan0"`,
			`tungate.toml: forward 8: listen 18.18.18.8:80 is not an address of interface "noaddr"; a forward listens on the router's own address there (it has none)`,
		}},
		{"conntrack values", iface + `[conntrack]
max = 0
tcp_established = "0s"
tcp_transitory = "4"
udp = 300
icmp = "-1m"
generic = "10m"
`, []string{
			"tungate.toml:5: conntrack: max 0 is out of range 1..2147483647",
			`tungate.toml:6: conntrack: tcp_established "0s" must be more than 0`,
			`tungate.toml:7: conntrack: tcp_transitory "4" is not a duration: missing unit; write it like "30s" or "2h4m"`,
			"tungate.toml:8: conntrack: udp must be a string, not the integer 300",
			`tungate.toml:9: conntrack: icmp "-1m" must be more than 0`,
			`tungate.toml:10: conntrack: unknown key "generic"`,
		}},
		{"nat tables of the wrong shape", "snat = 1\nforward = {}\nconntrack = []\n" + iface, []string{
			"tungate.toml:1: snat must be an array of tables, [[snat]], not the integer 1",
			"tungate.toml:2: forward must be an array of tables, [[forward]], not a table",
			"tungate.toml:3: conntrack must be a table, [conntrack], not an array",
		}},
		{"empty pipeline", iface + "[pipeline]\nstages = []\n", []string{
			`tungate.toml:5: pipeline: stage "validate" is required`,
			`tungate.toml:5: pipeline: stage "route" is required`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("tungate.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			if c != nil {
				t.Errorf("config %+v returned with an error", c)
			}
			checkErrorLines(t, err.Error(), tt.want)
		})
	}
}

// checkErrorLines checks that got has one line per want, in order, each
// containing its want.
func checkErrorLines(t *testing.T, got string, want []string) {
	t.Helper()
	lines := strings.Split(got, "\n")
	for i, w := range want {
		if i >= len(lines) || !strings.Contains(lines[i], w) {
			t.Errorf("line %d: want %q in\n%s", i+1, w, got)
			return
		}
	}
	if len(lines) != len(want) {
		t.Errorf("%d error lines, want %d:\n%s", len(lines), len(want), got)
	}
}

func TestErrorType(t *testing.T) {
	_, err := Parse("x.toml", []byte(iface+"bogus = 1\n[[route]]\nto = \"default\"\nvia = \"9.9.9.9\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v: not an *Error", err)
	}
	if *e != (Error{File: "x.toml", Line: 4, Msg: `interface "lan0": unknown key "bogus"`}) {
		t.Errorf("first error = %+v", *e)
	}
	all := err.(interface{ Unwrap() []error }).Unwrap()
	if len(all) != 2 || all[1].(*Error).Line != 0 {
		t.Errorf("errors = %q, want the line-less one last", all)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tungate.toml")
	if err := os.WriteFile(path, []byte(iface+"mtu = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:4: interface "lan0": mtu 1 is out of range 576..65535`; err == nil || err.Error() != want {
		t.Errorf("Load = %v, want %s", err, want)
	}
	if _, err := Load(path + ".missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want ErrNotExist", err)
	}
}
