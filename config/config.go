// Package config reads tungate's TOML file into typed, validated values.
//
// Loading happens in two steps (STYLE.md §10): Parse decodes strictly and
// validates, as a pure function of the file's name and bytes; nothing here
// touches the system. Every error names the file and the line
// ("tungate.toml:12: interface "lan0": unknown key "bogus""); an error that
// relates several tables, such as a route's next hop and the interfaces,
// names the tables instead ("tungate.toml: route 2: via ...").
//
// The tables of SPEC that this version does not implement yet are refused
// with an error that says so, never ignored.
package config

import (
	"net"
	"net/netip"
	"time"
)

// Config is one immutable snapshot of the file. Consumers must not modify it.
type Config struct {
	File      string // the path it was read from, for messages
	Router    Router
	Interface []Interface
	Route     []Route
	Neighbor  []Neighbor
	ARP       ARP
	Pipeline  Pipeline
}

// Router is the [router] table.
type Router struct {
	AdminSocket   string // default DefaultAdminSocket; "" disables the admin API
	MetricsListen string // ip:port for Prometheus /metrics; "" = off
	LogLevel      string // debug | info | warn | error; default info
}

// Kind is the link type of an interface.
type Kind string

const (
	KindTUN Kind = "tun" // L3: IP packets, no link layer
	KindTAP Kind = "tap" // L2: Ethernet frames, next hops resolved by ARP and NDP
)

// Interface is one [[interface]] table.
type Interface struct {
	Name      string         // a valid Linux device name, unique
	Kind      Kind           // KindTUN (the default) or KindTAP
	Addresses []netip.Prefix // the router's own addresses, as written: 192.168.46.1/24
	MTU       int            // default 1500; 576..65535, at least 1280 with IPv6
	FD        int            // an inherited, open TUN/TAP fd; -1 when absent
	Netns     string         // move the device into /run/netns/NAME; "" = stay
	Peer      []netip.Prefix // addresses for the kernel side, inside Addresses' prefixes
	Offload   bool           // tun only: IFF_VNET_HDR with GSO/GRO; default true for tun, false for tap
	Queues    int            // tun only: reader queues, 1..16; default 1
	// MAC is a tap interface's own Ethernet address, unicast; the zero MAC
	// (always, on a tun) means the router generates one.
	MAC MAC
	// RouterAdvertisements: tap only, default false. When true the
	// interface has an IPv6 address with a /64 prefix, not link-local.
	RouterAdvertisements bool
	Line                 int // line of the [[interface]] header, for messages
}

// MAC is an Ethernet address. The zero MAC stands for none given; an
// accepted one is never zero and never multicast. It converts to the usual
// forms directly: net.HardwareAddr(m[:]), tcpip.LinkAddress(m[:]).
type MAC [6]byte

// String formats m as ip-link(8) does: 02:00:00:00:00:01.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// Route is one [[route]] table.
type Route struct {
	To     netip.Prefix // masked; "default" becomes 0.0.0.0/0, or ::/0 when Via is IPv6
	Via    netip.Addr   // the next hop; invalid (zero) for an on-link route
	Dev    string       // always set: given, or the interface whose connected prefix holds Via
	Metric uint32
	Line   int // line of the [[route]] header, for messages
}

// Neighbor is one [[neighbor]] table: a static neighbor cache entry, in
// state PERMANENT.
type Neighbor struct {
	IP   netip.Addr // inside a connected prefix of Dev, or IPv6 link-local (fe80::/10)
	MAC  MAC        // unicast, never zero
	Dev  string     // a tap interface
	Line int        // line of the [[neighbor]] header, for messages
}

// ARP is the [arp] table: the neighbor cache's timers and bounds, for ARP
// and NDP alike. DefaultARP holds the defaults; every duration is > 0.
type ARP struct {
	Reachable     Duration // a confirmed neighbor stays REACHABLE this long (RFC 4861 ReachableTime); default 30s
	Stale         Duration // an unused STALE entry is removed after this long; default 10m
	Retries       int      // solicitations sent before resolution fails; 1..100, default 3
	RetryInterval Duration // between solicitations (RFC 4861 RetransTimer); default 1s
	Queue         int      // packets held per unresolved neighbor; 1..65535, default 64
	// MaxEntries bounds the cache, all interfaces together, static entries
	// included; default 4096, at least 1. The key max_entries extends SPEC,
	// which says the tables are bounded but names no key for this one.
	MaxEntries int
}

// DefaultARP is [arp] with every key left out.
var DefaultARP = ARP{
	Reachable:     30 * time.Second,
	Stale:         10 * time.Minute,
	Retries:       3,
	RetryInterval: time.Second,
	Queue:         64,
	MaxEntries:    4096,
}

// Pipeline is the [pipeline] table: the stage names in order, checked
// against the rules in pipeline.go; DefaultStages when the table is omitted.
type Pipeline struct {
	Stages []string
}

// Durations are Go duration strings in the file.
type Duration = time.Duration
