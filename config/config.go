// Package config reads tungate's TOML file into typed, validated values.
//
// Loading happens in two steps (STYLE.md §10): Parse decodes strictly and
// validates, as a pure function of the file's name and bytes; nothing here
// touches the system. Every error names the file and the line, or for
// cross-field errors the table ("route 2").
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
	AdminSocket   string // "" disables the admin API
	MetricsListen string
	LogLevel      string // debug | info | warn | error
}

// Kind is the link type of an interface.
type Kind string

const (
	KindTUN Kind = "tun" // L3: IP packets, no link layer
	KindTAP Kind = "tap" // L2: Ethernet frames
)

// Interface is one [[interface]] table.
type Interface struct {
	Name      string
	Kind      Kind
	Addresses []netip.Prefix // the router's own addresses on this link
	MTU       int            // default 1500
	FD        int            // an inherited, open TUN/TAP fd; -1 when absent
	Netns     string         // move the device into /run/netns/NAME; "" = stay
	Peer      []netip.Prefix // addresses for the kernel side of the device
	Offload   bool           // tun only: IFF_VNET_HDR with GSO/GRO; default true
	Queues    int            // tun only: reader queues; default 1
	Line      int            // line of the [[interface]] header, for messages
}

// Route is one [[route]] table.
type Route struct {
	To     netip.Prefix // "default" becomes 0.0.0.0/0 (or ::/0 when via is IPv6)
	Via    netip.Addr   // invalid (zero) for an on-link route
	Dev    string       // "" = the interface whose connected prefix holds Via
	Metric uint32
	Line   int
}

// Pipeline is the [pipeline] table: the stage names in order.
type Pipeline struct {
	Stages []string
}

// DefaultStages is the pipeline when [pipeline] is omitted. It lists only
// the stages this version implements.
var DefaultStages = []string{"validate", "local", "route", "ttl"}

// Durations are Go duration strings in the file.
type Duration = time.Duration
