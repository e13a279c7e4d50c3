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
	"net/netip"
	"time"
)

// Config is one immutable snapshot of the file. Consumers must not modify it.
type Config struct {
	File      string // the path it was read from, for messages
	Router    Router
	Interface []Interface
	Route     []Route
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
	KindTAP Kind = "tap" // L2: Ethernet frames; refused by this version
)

// Interface is one [[interface]] table.
type Interface struct {
	Name      string         // a valid Linux device name, unique
	Kind      Kind           // always KindTUN in this version
	Addresses []netip.Prefix // the router's own addresses, as written: 192.168.46.1/24
	MTU       int            // default 1500; 576..65535, at least 1280 with IPv6
	FD        int            // an inherited, open TUN/TAP fd; -1 when absent
	Netns     string         // move the device into /run/netns/NAME; "" = stay
	Peer      []netip.Prefix // addresses for the kernel side, inside Addresses' prefixes
	Offload   bool           // tun only: IFF_VNET_HDR with GSO/GRO; default true
	Queues    int            // tun only: reader queues, 1..16; default 1
	Line      int            // line of the [[interface]] header, for messages
}

// Route is one [[route]] table.
type Route struct {
	To     netip.Prefix // masked; "default" becomes 0.0.0.0/0, or ::/0 when Via is IPv6
	Via    netip.Addr   // the next hop; invalid (zero) for an on-link route
	Dev    string       // always set: given, or the interface whose connected prefix holds Via
	Metric uint32
	Line   int // line of the [[route]] header, for messages
}

// Pipeline is the [pipeline] table: the stage names in order, checked
// against the rules in pipeline.go; DefaultStages when the table is omitted.
type Pipeline struct {
	Stages []string
}

// Durations are Go duration strings in the file.
type Duration = time.Duration
