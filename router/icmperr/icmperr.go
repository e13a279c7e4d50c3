// Package icmperr turns a packet the router will not forward into the ICMP
// or ICMPv6 error that reports why, in place in the packet's own buffer.
//
// A stage that gives up on a packet does, in order:
//
//	if icmperr.Allowed(p, k) && limiter.Allow() && icmperr.Build(p, k, mtu, src) {
//		return packet.Reply(reason)
//	}
//	return packet.Drop(reason)
//
// Allowed applies the rules of when an error must not be sent (RFC 1812
// §4.3.2.7, RFC 4443 §2.4(e)); asking it before the Limiter keeps packets
// that may never be answered from spending tokens. Build checks Allowed
// again, so calling it alone is safe too.
//
// The error is written over the packet it reports: the original moves
// forward to make room for the new IP and ICMP headers, is cut to the
// size the RFCs allow, and the packet's parsed view is updated so that the
// pipeline can route the error like any packet of the router's own.
package icmperr

import (
	"math"
	"net/netip"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// Kind is the condition an error reports. Each has an IPv4 and an IPv6
// type and code; Build picks the one of the packet's version.
type Kind uint8

// Kinds of error. The zero Kind is not one: Build refuses it.
const (
	// TimeExceeded: TTL or hop limit reached zero in transit (RFC 1812
	// §5.3.1; RFC 4443 §3.3). IPv4 type 11 code 0, IPv6 type 3 code 0.
	TimeExceeded Kind = iota + 1
	// NetUnreachable: no route to the destination (RFC 1812 §5.2.7.1).
	// IPv4 type 3 code 0, IPv6 type 1 code 0 (no route to destination).
	NetUnreachable
	// HostUnreachable: the destination is on a connected network but does
	// not answer address resolution. IPv4 type 3 code 1, IPv6 type 1 code 3
	// (address unreachable).
	HostUnreachable
	// FragNeeded: too big for the next hop and may not be fragmented (IPv4
	// DF set, or any IPv6 packet). IPv4 type 3 code 4 with the next-hop MTU
	// (RFC 1191 §4), IPv6 type 2 Packet Too Big with the MTU (RFC 4443
	// §3.2). PacketTooBig is the same Kind by its IPv6 name.
	FragNeeded
	// AdminProhibited: a filter refused the packet. IPv4 type 3 code 13
	// (RFC 1812 §5.2.7.1), IPv6 type 1 code 1.
	AdminProhibited
	// PortUnreachable: addressed to the router, on a port no one listens
	// on. IPv4 type 3 code 3, IPv6 type 1 code 4.
	PortUnreachable

	numKinds
)

// PacketTooBig is FragNeeded by its ICMPv6 name: the same condition, so
// callers need not look at the version to report it.
const PacketTooBig = FragNeeded

var kindNames = [numKinds]string{
	TimeExceeded:    "time_exceeded",
	NetUnreachable:  "net_unreachable",
	HostUnreachable: "host_unreachable",
	FragNeeded:      "frag_needed",
	AdminProhibited: "admin_prohibited",
	PortUnreachable: "port_unreachable",
}

// String is the kind's name for counters and logs.
func (k Kind) String() string {
	if k.valid() {
		return kindNames[k]
	}
	return "unknown"
}

func (k Kind) valid() bool { return k > 0 && k < numKinds }

type v4Message struct {
	typ  header.ICMPv4Type
	code header.ICMPv4Code
}

type v6Message struct {
	typ  header.ICMPv6Type
	code header.ICMPv6Code
}

var v4Messages = [numKinds]v4Message{
	TimeExceeded:    {header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded},
	NetUnreachable:  {header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable},
	HostUnreachable: {header.ICMPv4DstUnreachable, header.ICMPv4HostUnreachable},
	FragNeeded:      {header.ICMPv4DstUnreachable, header.ICMPv4FragmentationNeeded},
	AdminProhibited: {header.ICMPv4DstUnreachable, header.ICMPv4AdminProhibited},
	PortUnreachable: {header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable},
}

var v6Messages = [numKinds]v6Message{
	TimeExceeded:    {header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceeded},
	NetUnreachable:  {header.ICMPv6DstUnreachable, header.ICMPv6NetworkUnreachable},
	HostUnreachable: {header.ICMPv6DstUnreachable, header.ICMPv6AddressUnreachable},
	FragNeeded:      {header.ICMPv6PacketTooBig, header.ICMPv6UnusedCode},
	AdminProhibited: {header.ICMPv6DstUnreachable, header.ICMPv6Prohibited},
	PortUnreachable: {header.ICMPv6DstUnreachable, header.ICMPv6PortUnreachable},
}

const (
	// hopLimit is the TTL / hop limit of every error. RFC 1700: "The
	// current recommended default time to live (TTL) for the Internet
	// Protocol (IP) is 64."
	hopLimit = 64

	// precedenceInternetControl is the IPv4 TOS byte with precedence 6.
	// RFC 1812 §4.3.2.5: "All other ICMP error messages (Destination
	// Unreachable, Redirect, Time Exceeded, and Parameter Problem) SHOULD
	// have their precedence value set to 6 (INTERNETWORK CONTROL) or 7
	// (NETWORK CONTROL)."
	precedenceInternetControl = 6 << 5

	// RFC 1812 §4.3.2.3: "the ICMP datagram SHOULD contain as much of the
	// original datagram as possible without the length of the ICMP
	// datagram exceeding 576 bytes." The ICMP datagram is the whole IP
	// packet carrying the message.
	maxV4 = header.IPv4MinimumProcessableDatagramSize
	// RFC 4443 §2.4(c): "Every ICMPv6 error message (type < 128) MUST
	// include as much of the IPv6 offending (invoking) packet (the packet
	// that caused the error) as possible without making the error message
	// packet exceed the minimum IPv6 MTU [IPv6]."
	maxV6 = header.IPv6MinimumMTU

	v4Headers = header.IPv4MinimumSize + header.ICMPv4MinimumSize
	v6Headers = header.IPv6MinimumSize + header.ICMPv6ErrorHeaderSize
)

// ipID numbers the IPv4 errors. RFC 791 asks for an identification
// "unique for that source-destination pair and protocol for the time the
// datagram will be active"; the errors are not atomic datagrams (no DF: a
// link narrower than 576 bytes may still carry them in fragments), so a
// shared counter is the cheap way to get that.
var ipID atomic.Uint32

var (
	// RFC 1122 §3.2.1.3: 0.0.0.0/8 is "this network", 127.0.0.0/8
	// loopback; RFC 1812 §4.2.2.11 and §5.3.7 keep both, and 240.0.0.0/4
	// (class E, which holds 255.255.255.255), out of valid sources.
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	classE      = netip.MustParsePrefix("240.0.0.0/4")
	// limitedBroadcast is the all-ones IPv4 address (RFC 919).
	limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
)

// Allowed reports whether the router may send an error of kind k about p.
// p's parsed view must be filled in (validate has run); a view that does
// not fit its buffer is never answered.
func Allowed(p *packet.Packet, k Kind) bool {
	if !k.valid() || !viewFits(p) {
		return false
	}
	switch p.Version {
	case header.IPv4Version:
		return allowedV4(p)
	case header.IPv6Version:
		return allowedV6(p, k)
	}
	return false
}

// viewFits checks that the parsed view describes bytes that exist, so the
// rest of the package may index by it.
func viewFits(p *packet.Packet) bool {
	minHeader := header.IPv4MinimumSize
	if p.Version == header.IPv6Version {
		minHeader = header.IPv6MinimumSize
	}
	return p.Start >= 0 && p.Start+p.Len <= len(p.Buf) &&
		p.HeaderLen >= minHeader && p.HeaderLen <= p.Len &&
		header.IPVersion(p.Data()) == int(p.Version)
}

// allowedV4 applies RFC 1812 §4.3.2.7: "An ICMP error message MUST NOT be
// sent as the result of receiving: [...]". The link-layer broadcast case
// is the caller's: the view does not know how the frame arrived.
func allowedV4(p *packet.Packet) bool {
	src, dst := p.Src, p.Dst
	if !src.Is4() || !dst.Is4() {
		return false
	}
	// "Any fragment of a datagram other then the first fragment (i.e., a
	// packet for which the fragment offset in the IP header is nonzero)."
	if p.NonFirstFragment {
		return false
	}
	// "A packet destined to an IP broadcast or IP multicast address."
	// Only the limited broadcast is known here; a directed broadcast is
	// for the caller, who knows the connected networks.
	if dst.IsMulticast() || dst == limitedBroadcast {
		return false
	}
	// "A packet whose source address has a network prefix of zero or is
	// an invalid source address (as defined in Section [5.3.7])": the
	// source must name one host, so not loopback, multicast, class E or
	// broadcast either.
	if thisNetwork.Contains(src) || src.IsLoopback() || src.IsMulticast() || classE.Contains(src) {
		return false
	}
	// "An ICMP error message". RFC 792's error types; queries (echo,
	// timestamp, information, address mask) may be answered.
	if p.Proto == uint8(header.ICMPv4ProtocolNumber) {
		icmp := header.ICMPv4(p.Data()[p.HeaderLen:])
		if len(icmp) < header.ICMPv4MinimumSize {
			// Too short to say what it is: it fails validation of its
			// own, and silence is the safe answer.
			return false
		}
		switch icmp.Type() {
		case header.ICMPv4DstUnreachable, header.ICMPv4SrcQuench, header.ICMPv4Redirect,
			header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
			return false
		}
	}
	return true
}

// allowedV6 applies RFC 4443 §2.4(e): "An ICMPv6 error message MUST NOT be
// originated as a result of receiving the following: [...]". Link-layer
// multicast and broadcast (e.4, e.5) are the caller's to know.
func allowedV6(p *packet.Packet, k Kind) bool {
	src, dst := p.Src, p.Dst
	if !src.Is6() || !dst.Is6() {
		return false
	}
	// "(e.3) A packet destined to an IPv6 multicast address. (There are
	// two exceptions to this rule: (1) the Packet Too Big Message
	// (Section 3.2) to allow Path MTU discovery to work for IPv6
	// multicast, [...])"
	if dst.IsMulticast() && k != PacketTooBig {
		return false
	}
	// "(e.6) A packet whose source address does not uniquely identify a
	// single node -- e.g., the IPv6 Unspecified Address, an IPv6
	// multicast address, or an address known by the ICMP message
	// originator to be an IPv6 anycast address." Loopback (RFC 4291
	// §2.5.3: "must never be sent outside of a single node") names no
	// node we could reach either.
	if src.IsUnspecified() || src.IsMulticast() || src.IsLoopback() {
		return false
	}
	// "(e.1) An ICMPv6 error message." and "(e.2) An ICMPv6 redirect
	// message [IPv6-DISC]." A non-first fragment carries no ICMPv6
	// header to look at; RFC 4443 does not forbid answering it, and Path
	// MTU discovery needs Packet Too Big for every fragment.
	if p.Proto == uint8(header.ICMPv6ProtocolNumber) && !p.NonFirstFragment {
		icmp := header.ICMPv6(p.Data()[p.HeaderLen:])
		if len(icmp) < header.ICMPv6MinimumSize {
			return false
		}
		if t := icmp.Type(); t.IsErrorType() || t == header.ICMPv6RedirectMsg {
			return false
		}
	}
	return true
}

// Build rewrites p, in place, into the ICMP error of kind k about it, sent
// from src (the router's address on the interface p came in on, of p's
// version) back to p's source. mtu is the next-hop MTU for FragNeeded /
// PacketTooBig and ignored otherwise.
//
// p stays at p.Start; Build may extend p.Buf up to its capacity when the
// error is longer than the original. It returns false, with p untouched,
// when the error is not Allowed, src is not a unicast address of p's
// version, or the buffer is too small. On success p's view describes the
// error (Proto ICMP, Src src, Dst the old source, no fragment), p.Origin
// is packet.Local and p.In is packet.NoInterface.
func Build(p *packet.Packet, k Kind, mtu uint32, src netip.Addr) bool {
	if !Allowed(p, k) || !src.IsValid() || src.IsUnspecified() || src.IsMulticast() {
		return false
	}
	var ok bool
	if p.Version == header.IPv4Version {
		src = src.Unmap()
		ok = buildV4(p, k, mtu, src)
	} else {
		ok = buildV6(p, k, mtu, src)
	}
	if !ok {
		return false
	}
	p.Dst, p.Src = p.Src, src
	p.Fragment, p.NonFirstFragment = false, false
	p.Origin = packet.Local
	p.In = packet.NoInterface
	return true
}

// makeRoom resizes the packet to headers+keep bytes, moving the first keep
// bytes of the original to just after the new headers (copy is a memmove,
// so old and new place may overlap), and returns it. It returns nil, with
// p untouched, when the buffer's capacity is too small.
func makeRoom(p *packet.Packet, headers, keep int) []byte {
	total := headers + keep
	end := p.Start + total
	if end > cap(p.Buf) {
		return nil
	}
	if end > len(p.Buf) {
		p.Buf = p.Buf[:cap(p.Buf)]
	}
	b := p.Buf[p.Start:end]
	copy(b[headers:], b[:keep])
	p.Len = total
	return b
}

func buildV4(p *packet.Packet, k Kind, mtu uint32, src netip.Addr) bool {
	if !src.Is4() {
		return false
	}
	// RFC 1812 §4.3.2.3: "The returned IP header (and user data) MUST be
	// identical to that which was received, except that the router is
	// not required to undo any modifications to the IP header that are
	// normally performed in forwarding that were performed before the
	// error was detected (e.g., decrementing the TTL, or updating
	// options)." So the original is copied as it is, only cut short.
	b := makeRoom(p, v4Headers, min(p.Len, maxV4-v4Headers))
	if b == nil {
		return false
	}
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TOS:         precedenceInternetControl,
		TotalLength: uint16(len(b)),
		ID:          uint16(ipID.Add(1)),
		TTL:         hopLimit,
		Protocol:    uint8(header.ICMPv4ProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4(src.As4()),
		DstAddr:     tcpip.AddrFrom4(p.Src.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())

	icmp := header.ICMPv4(b[header.IPv4MinimumSize:])
	// The second word is "unused" and "must be zero" (RFC 792) except
	// for the MTU; the bytes under it are the original's, so clear them.
	clear(icmp[:header.ICMPv4MinimumSize])
	m := v4Messages[k]
	icmp.SetType(m.typ)
	icmp.SetCode(m.code)
	if k == FragNeeded {
		// RFC 1191 §4: "the router MUST include the MTU of that
		// next-hop network in the low-order 16 bits of the ICMP header
		// field that is labelled 'unused' in the ICMP specification."
		icmp.SetMTU(uint16(min(mtu, math.MaxUint16)))
	}
	icmp.SetChecksum(header.ICMPv4Checksum(icmp[:header.ICMPv4MinimumSize], checksum.Checksum(icmp.Payload(), 0)))

	p.HeaderLen = header.IPv4MinimumSize
	p.Proto = uint8(header.ICMPv4ProtocolNumber)
	return true
}

func buildV6(p *packet.Packet, k Kind, mtu uint32, src netip.Addr) bool {
	if !src.Is6() || src.Is4In6() {
		return false
	}
	b := makeRoom(p, v6Headers, min(p.Len, maxV6-v6Headers))
	if b == nil {
		return false
	}
	srcAddr, dstAddr := tcpip.AddrFrom16(src.As16()), tcpip.AddrFrom16(p.Src.As16())
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(b) - header.IPv6MinimumSize),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          hopLimit,
		SrcAddr:           srcAddr,
		DstAddr:           dstAddr,
	})

	icmp := header.ICMPv6(b[header.IPv6MinimumSize:])
	// RFC 4443 §3.1: the second word is "Unused [...] MUST be
	// initialized to zero by the originator"; the bytes under it are the
	// original's.
	clear(icmp[:header.ICMPv6ErrorHeaderSize])
	m := v6Messages[k]
	icmp.SetType(m.typ)
	icmp.SetCode(m.code)
	if k == PacketTooBig {
		// RFC 4443 §3.2: "MTU: The Maximum Transmission Unit of the
		// next-hop link."
		icmp.SetMTU(mtu)
	}
	payload := icmp.Payload()
	// RFC 4443 §2.3: the checksum is over "the entire ICMPv6 message,
	// starting with the ICMPv6 message type field, and prepended with a
	// pseudo-header of IPv6 header fields".
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header:      icmp[:header.ICMPv6ErrorHeaderSize],
		Src:         srcAddr,
		Dst:         dstAddr,
		PayloadCsum: checksum.Checksum(payload, 0),
		PayloadLen:  len(payload),
	}))

	p.HeaderLen = header.IPv6MinimumSize
	p.Proto = uint8(header.ICMPv6ProtocolNumber)
	return true
}
