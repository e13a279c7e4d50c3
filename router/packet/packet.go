// Package packet holds the unit every stage works on: a buffer holding one
// IP packet, and the parsed view that the validate stage fills in once so
// later stages never parse the headers again.
package packet

import (
	"net/netip"
	"sync/atomic"
)

// Origin tells where a packet entered the pipeline.
type Origin uint8

const (
	Forwarded Origin = iota // read from a device: transit or for the router
	Local                   // sent by the router itself (its stack, or an ICMP error it made)
)

// NoInterface marks an unset interface index.
const NoInterface = -1

// Packet is one IP packet and what the pipeline knows about it. The zero
// value is not usable; the router resets a Packet for every buffer.
//
// Buf is the whole buffer; the packet is Buf[Start:Start+Len]. Bytes
// before Start are headroom a device may use (virtio header, Ethernet).
type Packet struct {
	Buf   []byte
	Start int
	Len   int

	In     int // ingress interface index, NoInterface for Local packets
	Out    int // egress interface index, set by route
	Origin Origin

	// NextHop is the address the packet is sent to on Out: the route's
	// gateway, or the destination itself for on-link routes.
	NextHop netip.Addr
	// RouteUse is the use counter of the route that chose Out, which a
	// flow's fast path remembers to count its packets too.
	RouteUse *atomic.Uint64
	// Direct is set when a stage chose Out and NextHop itself (a load
	// balancer's direct routing to a backend's MAC, or its tunnel to a
	// backend): route keeps them.
	Direct bool
	// TunnelTo is where the ttl stage sends the packet wrapped in IP-in-IP
	// (a load balancer's tunnel to a backend); the stages before it see
	// the packet as the client sent it.
	TunnelTo netip.Addr
	// FilterHit is the filter's counter of the rule that let the packet
	// through, which a flow's fast path keeps counting; NoFast says the
	// filter's decision may not stand for the flow's next packets.
	FilterHit any
	NoFast    bool

	// The parsed view, valid after validate.
	Version   uint8 // 4 or 6
	HeaderLen int   // IPv4 IHL*4; IPv6 40 plus extension headers walked
	Proto     uint8 // transport protocol (after IPv6 extension headers)
	Src, Dst  netip.Addr
	// Fragment is true for any fragment (MF set or offset != 0);
	// NonFirstFragment when the offset is not zero (no transport header).
	Fragment         bool
	NonFirstFragment bool
	FragID           uint32 // the datagram's Identification, for fragments
	// Reassociated marks a later fragment matched to its datagram's
	// first fragment, which has left the pipeline.
	Reassociated bool

	// The transport view, valid when HasPorts: TCP and UDP ports, or for
	// ICMP echo requests and replies the identifier in both (RFC 5508
	// treats it as the query's port). ICMPType is set for any ICMP or
	// ICMPv6 message whose header is present.
	HasPorts         bool
	SrcPort, DstPort uint16
	TCPFlags         uint8
	ICMPType         uint8

	// Connection tracking, owned by the router's NAT stages: the flow the
	// packet belongs to and its direction, looked up once by the first
	// stage that asks (FlowLooked); or, for the first packet of a flow, the
	// decisions that become a flow when the packet leaves (NewFlow).
	FlowLooked bool
	Flow       any
	FlowDir    uint8
	NewFlow    any
}

// Data is the IP packet.
func (p *Packet) Data() []byte { return p.Buf[p.Start : p.Start+p.Len] }
