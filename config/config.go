// Package config reads tungate's TOML file into typed, validated values.
//
// Loading happens in two steps (STYLE.md §10): Parse decodes strictly and
// validates, as a pure function of the file's name and bytes; nothing here
// touches the system. Every error names the file and the line
// ("tungate.toml:12: interface "lan0": unknown key "bogus""); an error that
// relates several tables, such as a route's next hop and the interfaces,
// names the tables instead ("tungate.toml: route 2: via ...").
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
	SNAT      []SNAT
	Forward   []Forward
	Service   []Service
	Filter    Filter
	Conntrack Conntrack
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
	Offload   bool           // IFF_VNET_HDR with segmentation offload; default true (router/link measured it faster on TUN and TAP)
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

// SNAT is one [[snat]] table: source NAT for packets that leave by Out
// with a source inside From (and, when given, a destination in Dest and
// DPorts). The rules are tried in order; the first that matches
// translates the flow, or, when Exempt, leaves it untranslated.
type SNAT struct {
	Out string // the egress interface, an [[interface]]; required
	// From holds the inside sources the rule translates: masked prefixes,
	// at least one. There is no "any source" default: it would hold the
	// external addresses too, which RFC 4787 REQ-7 forbids.
	From []netip.Prefix
	// Masquerade (to = "masquerade", the default) translates to the first
	// address of Out of the packet's family, link-local ones aside
	// (Interface.MasqueradeAddr); Addresses is then nil. Otherwise
	// Addresses is the pool: addresses and ranges "a-b" expanded in
	// order, as many as the file lists (RFC 6888 REQ-3), of one family,
	// at most MaxPoolSize addresses in all.
	Masquerade bool
	Addresses  []netip.Addr
	// Exempt (to = "none") leaves the packets the rule matches
	// untranslated: RFC 6888 REQ-6, "A CGN MUST support administrative
	// disabling of translation for given destinations", like an
	// nftables "return" before a masquerade. Masquerade is then false and
	// Addresses nil. The rules after it are not tried.
	Exempt bool
	// Dest and DPorts narrow the rule to packets to these destination
	// prefixes and, for TCP and UDP, destination ports; nil is any.
	Dest   []netip.Prefix
	DPorts PortSet
	// Ports is the external port (and ICMP identifier) range; default
	// DefaultSNATPorts, 1024-65535.
	Ports PortRange
	// Mapping is the RFC 4787 mapping behaviour; default
	// EndpointIndependent, which RFC 4787 REQ-1 and RFC 5382 REQ-1 make
	// a MUST; the others exist to emulate other NATs in tests.
	Mapping Behavior
	// Filtering is the RFC 4787 filtering behaviour; default
	// EndpointIndependent: RFC 6888 REQ-7 recommends it (address-dependent
	// only where known not to break applications), as RFC 4787 REQ-8 does
	// when transparency matters.
	Filtering Behavior
	// PortPreservation keeps the inside source port when it is free;
	// default true.
	PortPreservation bool
	// PortParity keeps the parity of the inside port when another port
	// has to be chosen (RFC 4787 REQ-4); default false, as RFC 7857 §8
	// no longer recommends it.
	PortParity bool
	// Hairpin lets inside hosts reach each other through their external
	// addresses, seeing the external source (RFC 4787 REQ-9); default true.
	Hairpin bool
	// MaxPortsPerHost bounds the external ports (and ICMP identifiers)
	// one inside address holds (RFC 6888 REQ-4); default 0, no limit.
	MaxPortsPerHost int
	// PCP lets the inside hosts ask for explicit mappings of this rule
	// by the Port Control Protocol (RFC 6887) or NAT-PMP (RFC 6886) on
	// UDP port 5351 of the router's inside addresses (RFC 6888 REQ-9);
	// default false.
	PCP bool
	// UnsolicitedSYN is what happens to an unsolicited inbound SYN after
	// it has been held 6 s (RFC 5382 REQ-4): SYNICMP (the default, ICMP
	// port unreachable) or SYNDrop.
	UnsolicitedSYN string
	Line           int // line of the [[snat]] header, for messages
}

// Behavior is an RFC 4787 §4.1 mapping or §5 filtering behaviour, by the
// name the file uses.
type Behavior string

const (
	EndpointIndependent     Behavior = "endpoint-independent"       // mapping: same external ip:port for every destination; filtering: anyone may send in
	AddressDependent        Behavior = "address-dependent"          // per destination address
	AddressAndPortDependent Behavior = "address-and-port-dependent" // per destination address and port ("symmetric" mapping)
)

// The values of SNAT.UnsolicitedSYN.
const (
	SYNICMP = "icmp" // ICMP port unreachable (type 3, code 3), RFC 5382 REQ-4's SHOULD
	SYNDrop = "drop" // silently, the policy REQ-4a allows
)

// PortRange is an inclusive range of ports, 1 <= Lo <= Hi.
type PortRange struct{ Lo, Hi uint16 }

// DefaultSNATPorts is [[snat]] ports when left out: the ports above the
// well-known ones (RFC 4787 REQ-3a keeps the classes apart).
var DefaultSNATPorts = PortRange{1024, 65535}

// MaxPoolSize bounds an SNAT address range, which is expanded in full.
const MaxPoolSize = 65536

// Forward is one [[forward]] table: a static port forward (destination
// NAT) from one of the router's own addresses to an inside endpoint.
type Forward struct {
	In     string         // the interface the traffic arrives on, an [[interface]]
	Proto  uint8          // ProtoTCP or ProtoUDP; the file names them "tcp" and "udp"
	Listen netip.AddrPort // one of In's own addresses, port 1..65535
	To     netip.AddrPort // the inside endpoint: not a router address, same family as Listen, port 1..65535
	Line   int            // line of the [[forward]] header, for messages
}

// IP protocol numbers of Forward.Proto.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Service is one [[service]] table: a virtual service (VIP:port, protocol)
// balanced over real servers, LVS-style.
type Service struct {
	// Name is unique among the services: ASCII letters, digits, '-', '_' and
	// '.', at most 64 bytes, as it is a path element of the admin API's
	// URLs (POST /services/{name}/...).
	Name string
	// VIP is the virtual endpoint clients connect to: an address that can
	// be routed to (not link-local, no zone), port 1..65535. Services
	// differ in VIP or Proto, and none takes a [[forward]]'s listen
	// endpoint of the same protocol.
	VIP   netip.AddrPort
	Proto uint8 // ProtoTCP or ProtoUDP; the file names them "tcp" and "udp"
	// Scheduler picks the backend of each new flow: "rr", "wrr", "lc",
	// "wlc", "sh" or "maglev"; default "wlc", IPVS's default.
	Scheduler string
	// Forward is how packets reach a backend: ForwardNAT (the default),
	// ForwardDR or ForwardTunnel. With DR and tunnel every backend's port
	// is the VIP's; with DR every backend is on the link of a tap
	// interface; with tunnel the VIP and backends are IPv4.
	Forward string
	// Persistence is the client affinity window: new flows of a client
	// within it go to that client's backend. 0, the default, is off.
	Persistence Duration
	Health      Health
	// Backends are the real servers, addresses distinct and of the VIP's
	// family, at most 65536 (lb.New's bound). There may be none: the
	// service then refuses every new flow.
	Backends []Backend
	Line     int // line of the [[service]] header, for messages
}

// The values of Service.Forward, LVS's forwarding methods.
const (
	ForwardNAT    = "nat"    // LVS-NAT: the destination is rewritten to the backend's, and back on replies
	ForwardDR     = "dr"     // direct routing: the frame goes to the backend's MAC address, the packet unchanged
	ForwardTunnel = "tunnel" // IP-in-IP (RFC 2003): the packet goes to the backend inside another IPv4 header
)

// Health is [service.health]: how the router probes each backend.
// DefaultHealth holds the defaults.
type Health struct {
	Check    string   // CheckTCP (the default), CheckHTTP or CheckNone
	Interval Duration // between probes; > 0, default 2s
	Timeout  Duration // a probe's deadline; > 0 and at most Interval, default 1s
	Rise     int      // passed probes that make a backend healthy; 1..100, default 2
	Fall     int      // failed probes that make it unhealthy; 1..100, default 3
	// Path is the URL path CheckHTTP requests, starting with "/"; default
	// "/". It is "" for the other checks.
	Path string
}

// The values of Health.Check.
const (
	CheckTCP  = "tcp"  // a TCP connection to the backend's address opens
	CheckHTTP = "http" // GET Path on the backend's address answers 2xx or 3xx
	CheckNone = "none" // no probes: every backend is healthy
)

// DefaultHealth is [service.health] with every key left out.
var DefaultHealth = Health{
	Check:    CheckTCP,
	Interval: 2 * time.Second,
	Timeout:  time.Second,
	Rise:     2,
	Fall:     3,
}

// Backend is one [[service.backend]]: a real server.
type Backend struct {
	// Address is the backend's ip:port: an address that can be routed to,
	// not one of the router's own, port 1..65535.
	Address netip.AddrPort
	// Weight is its share of new flows, 0..65535, default 1; 0 drains it:
	// no new flows, the ones it has go on.
	Weight int
	Line   int // line of the [[service.backend]] header, for messages
}

// Filter is [filter] with its [[filter.rule]]s: the stateful filter of
// the filter stage, for forwarded packets only, like an nftables forward
// chain. Without the table it is Filter{Policy: FilterAccept}, no rules.
type Filter struct {
	Policy string       // FilterAccept (the default) or FilterDrop: for packets no rule matches
	Rules  []FilterRule // in order; the first that matches decides
	// Line is the line of [filter], or of what first implies it, such as
	// a [[filter.rule]] written without it; 0 when absent.
	Line int
}

// The values of Filter.Policy and FilterRule.Action.
const (
	FilterAccept = "accept"
	FilterDrop   = "drop"
	FilterReject = "reject" // ICMP administratively prohibited, or a TCP RST for TCP; not a policy
)

// FilterRule is one [[filter.rule]]: every key is optional; an absent key
// matches anything. A packet matches when every key present matches.
type FilterRule struct {
	In, Out string // interface names, each an [[interface]]; "" = any
	// From and To are source and destination prefixes, masked, IPv4 and
	// IPv6 alike, none listed twice; nil = any, never empty otherwise.
	// From, To and Proto leave the rule at least one IP family it can
	// match: "icmp" is IPv4's, "icmpv6" IPv6's.
	From, To []netip.Prefix
	// Proto is the IP protocol number, 0..255: the file writes "tcp",
	// "udp", "icmp", "icmpv6" or the number; -1 = any.
	Proto int
	// DPorts are destination ports, in a rule with Proto TCP or UDP only;
	// nil = any.
	DPorts PortSet
	// States are conntrack's view of the packet's flow: some of "new",
	// "established", "related" and "invalid", none twice; nil = any, never
	// empty otherwise.
	States []string
	Action string // FilterAccept, FilterDrop or FilterReject; required
	Log    bool   // log the packets the rule matches, rate limited
	Line   int    // line of the [[filter.rule]] header, for messages
}

// Conntrack is the [conntrack] table: the connection table's bound and its
// idle timeouts. DefaultConntrack holds the defaults; every duration is
// > 0. The RFCs set minimums for the timeouts, noted by each field; a
// shorter value is accepted, since tests and harnesses need quick expiry,
// and BelowRFC lists it so that `tungate check` can warn.
type Conntrack struct {
	Max int // flows in the table, >= 1; new ones beyond it are dropped and counted; default 262144
	// TCPEstablished: an idle established TCP flow; default 2h4m, the
	// RFC 5382 REQ-5 minimum ("MUST NOT be less than 2 hours 4 minutes").
	TCPEstablished Duration
	// TCPOpening and TCPClosing: a TCP flow opening (SYN seen, not yet
	// established) or closing (FIN or RST seen); default 4m each, the RFC
	// 5382 REQ-5 minimum. The file's tcp_transitory sets both;
	// tcp_opening and tcp_closing set one (RFC 7857 §2.1: a NAT "SHOULD
	// provide different configurable parameters for configuring the
	// open and closing idle timeouts").
	TCPOpening, TCPClosing Duration
	// UDP: a UDP mapping; default 5m. RFC 4787 REQ-5: at least 2 min;
	// 5 min or more RECOMMENDED (REQ-5c).
	UDP Duration
	// ICMP: an ICMP query (echo) mapping; default 60s, the RFC 5508 REQ-2
	// minimum.
	ICMP Duration
}

// DefaultConntrack is [conntrack] with every key left out.
var DefaultConntrack = Conntrack{
	Max:            262144,
	TCPEstablished: 2*time.Hour + 4*time.Minute,
	TCPOpening:     4 * time.Minute,
	TCPClosing:     4 * time.Minute,
	UDP:            5 * time.Minute,
	ICMP:           60 * time.Second,
}

// Pipeline is the [pipeline] table: the stage names in order, checked
// against the rules in pipeline.go; DefaultStages when the table is omitted.
type Pipeline struct {
	Stages []string
}

// Durations are Go duration strings in the file.
type Duration = time.Duration
