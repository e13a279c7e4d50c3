// Package xlate rewrites packets as a NAT translates them: in place, in the
// packet's own buffer, without allocating, and with every checksum the
// change touches fixed by incremental update (RFC 1624).
//
// Three entry points:
//
//   - Rewrite gives a packet of a tracked flow (TCP, UDP, ICMP echo) its
//     translated source and destination endpoints: the fast path.
//   - RewriteAddrs changes addresses only, for what carries no ports: a
//     non-first fragment, or a protocol the NAT translates per address.
//   - ParseError validates an ICMP or ICMPv6 error and reads the packet it
//     quotes (RFC 5508 REQ-3); TranslateError then rewrites the outer and
//     the quoted headers (REQ-4, REQ-5, REQ-7).
//
// # Endpoints and ICMP echo
//
// Endpoints follow the conntrack key convention: TCP and UDP endpoints
// are address and port; an ICMP echo request or reply uses its identifier
// as the port of both endpoints, as the parsed view of packet.Packet does
// (RFC 5508 maps the query identifier as NAPT maps a port; REQ-1a: "NAT
// mapping of ICMP Query Identifiers SHOULD be external host
// independent"). The identifier belongs to the querier, which is the
// source of a request and the destination of its reply, so a translated
// request takes its identifier from the new source's port and a
// translated reply from the new destination's port; the other endpoint's
// port is not used.
//
// # Checksums
//
// Every changed 16-bit word m, replaced by m', is folded into the checksum
// HC that covers it with RFC 1624 eqn. 3:
//
//	HC' = ~(C + (-m) + m')    --    [Eqn. 3]
//	    = ~(~HC + ~m + m')
//
// which, unlike RFC 1141's eqn. 2, gives what a computation from scratch
// would. An address is several words; their ~m + m' terms are summed with
// gVisor's checksum package once and applied to each checksum the
// address is part of: the IPv4 header checksum, and the TCP, UDP and
// ICMPv6 checksums, whose pseudo-header holds both addresses (RFC 768,
// RFC 9293 §3.1, RFC 8200 §8.1). The ICMPv4 checksum covers the ICMP
// message only (RFC 792), so an address change leaves it alone.
//
// A UDP checksum of zero means the sender computed none. RFC 768: "An all
// zero transmitted checksum value means that the transmitter generated no
// checksum", so it stays zero; and "If the computed checksum is zero, it
// is transmitted as all ones", which the update honours when its result
// is zero. IPv6 forbids a zero UDP checksum except for tunnels that opt
// out (RFC 6935); such a packet keeps its zero too, and stays as valid or
// invalid as it was.
//
// # What the caller must not translate
//
// Both families are supported, one at a time: the new addresses must be
// of the packet's own family (IPv4 addresses as 4-byte netip.Addr values,
// not IPv4-mapped IPv6 ones), or the functions refuse the packet.
//
// A source-routed packet (IPv4 LSRR or SSRR options, an IPv6 Routing
// header with Segments Left above zero) carries an intermediate hop in its
// destination field while the transport checksum covers the final
// destination (RFC 8200 §8.1: "If the IPv6 packet contains a Routing
// header, the Destination Address used in the pseudo-header is that of the
// final destination"). Translating its destination would corrupt the
// checksum; the caller drops such packets before translation, as RFC 7126
// recommends for LSRR and SSRR (RFC 5095 deprecates Type 0 routing
// headers).
package xlate

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// Transport protocol numbers as the parsed view holds them.
const (
	protoTCP    = uint8(header.TCPProtocolNumber)
	protoUDP    = uint8(header.UDPProtocolNumber)
	protoICMPv4 = uint8(header.ICMPv4ProtocolNumber)
	protoICMPv6 = uint8(header.ICMPv6ProtocolNumber)
)

// Rewrite sets the packet's source endpoint to src and its destination
// endpoint to dst: the IP addresses, and the TCP or UDP ports or the ICMP
// echo identifier (see the package comment for which endpoint's port an
// echo takes). It fixes every checksum incrementally and updates the
// parsed view (Src, Dst, SrcPort, DstPort). Parts that do not change cost
// a comparison and leave the bytes as they were.
//
// Rewrite needs the transport header: it refuses, leaving the packet
// untouched, a packet without HasPorts (a non-first fragment, another
// protocol, an ICMP message other than echo, a transport header cut
// short) and addresses of the other family. A first fragment is
// translated whole: its transport checksum covers the datagram's later
// fragments too, and incremental update does not need them, but each
// later fragment must then get the same addresses with RewriteAddrs, so
// the caller must be able to find their flow (by the IP identification)
// or must drop fragments altogether.
func Rewrite(p *packet.Packet, src, dst netip.AddrPort) bool {
	if !p.HasPorts || !sameFamily(p.Version, src.Addr(), dst.Addr()) {
		return false
	}
	b := p.Data()
	d := setAddrs(b, p.Version, src.Addr(), dst.Addr())
	p.SrcPort, p.DstPort = translateTransport(b[p.HeaderLen:], p.Proto, d, src.Port(), dst.Port())
	p.Src, p.Dst = src.Addr(), dst.Addr()
	return true
}

// RewriteAddrs sets the packet's source and destination addresses and
// nothing else: ports and identifiers stay. It fixes the IPv4 header
// checksum and, where the packet holds the start of a TCP, UDP or ICMPv6
// message, that message's checksum for its pseudo-header. It updates Src
// and Dst of the parsed view.
//
// It serves two cases. A non-first fragment holds no transport header, so
// only its IP header changes; it must get the addresses the first fragment
// of its datagram got, since that fragment's transport checksum covers
// them. A protocol without ports is translated per address (Basic NAT,
// RFC 3022); a protocol other than TCP, UDP and ICMP whose checksum has a
// pseudo-header (UDP-Lite, DCCP) would be left with a wrong checksum, so
// the caller does not hand those over. ICMP errors go to TranslateError
// instead, which translates what they quote as well.
//
// RewriteAddrs refuses, leaving the packet untouched, addresses of the
// other family and a first fragment or whole packet whose TCP, UDP or
// ICMPv6 header is too short to hold its checksum.
func RewriteAddrs(p *packet.Packet, src, dst netip.Addr) bool {
	if !sameFamily(p.Version, src, dst) {
		return false
	}
	b := p.Data()
	pseudo := false
	if !p.NonFirstFragment {
		switch p.Proto {
		case protoTCP, protoUDP:
			if !p.HasPorts {
				return false
			}
			pseudo = true
		case protoICMPv6:
			if len(b)-p.HeaderLen < header.ICMPv6MinimumSize {
				return false
			}
			pseudo = true
		}
	}
	d := setAddrs(b, p.Version, src, dst)
	if pseudo && d != 0 {
		l4 := b[p.HeaderLen:]
		switch p.Proto {
		case protoTCP:
			t := header.TCP(l4)
			t.SetChecksum(update(t.Checksum(), d))
		case protoUDP:
			updateUDP(header.UDP(l4), d)
		case protoICMPv6:
			m := header.ICMPv6(l4)
			m.SetChecksum(update(m.Checksum(), d))
		}
	}
	p.Src, p.Dst = src, dst
	return true
}

// sameFamily reports whether src and dst are addresses of IP version v.
func sameFamily(v uint8, src, dst netip.Addr) bool {
	if v == header.IPv4Version {
		return src.Is4() && dst.Is4()
	}
	return v == header.IPv6Version && src.Is6() && dst.Is6()
}

// echoIdent is the identifier a translated echo message carries: the
// querier's port, which is the source of a request and the destination
// of a reply.
func echoIdent(request bool, srcPort, dstPort uint16) uint16 {
	if request {
		return srcPort
	}
	return dstPort
}

// setAddrs writes src and dst into the IP header at the start of b, of
// version v, updating the IPv4 header checksum. It returns what the change
// adds to a one's complement sum over both addresses (the ~m + m' of
// RFC 1624 eqn. 3), for the checksums whose pseudo-header holds them: zero
// when neither address changes.
//
// Each changed address is summed in the header before and after it is
// written; the new sum plus the complement of the old is its ~m + m'
// (one's complement negation distributes over addition). Writing the
// address straight from netip's array into the header, and summing it
// there, spares a copy that would load the array back in one piece right
// after As16 stored it in two, which stalls store forwarding.
func setAddrs(b []byte, v uint8, src, dst netip.Addr) uint16 {
	var d uint16
	if v == header.IPv4Version {
		ip := header.IPv4(b)
		if f := ip.SourceAddressSlice(); netip.AddrFrom4([4]byte(f)) != src {
			old := checksum.Checksum(f, 0)
			*(*[4]byte)(f) = src.As4()
			d = addChange(d, old, f)
		}
		if f := ip.DestinationAddressSlice(); netip.AddrFrom4([4]byte(f)) != dst {
			old := checksum.Checksum(f, 0)
			*(*[4]byte)(f) = dst.As4()
			d = addChange(d, old, f)
		}
		if d != 0 {
			ip.SetChecksum(update(ip.Checksum(), d))
		}
		return d
	}
	// The IPv6 header has no checksum field (RFC 8200 §3).
	ip := header.IPv6(b)
	if f := ip.SourceAddressSlice(); netip.AddrFrom16([16]byte(f)) != src {
		old := checksum.Checksum(f, 0)
		*(*[16]byte)(f) = src.As16()
		d = addChange(d, old, f)
	}
	if f := ip.DestinationAddressSlice(); netip.AddrFrom16([16]byte(f)) != dst {
		old := checksum.Checksum(f, 0)
		*(*[16]byte)(f) = dst.As16()
		d = addChange(d, old, f)
	}
	return d
}

// addChange adds to d the ~m + m' of a field that summed to old and now
// holds f.
func addChange(d, old uint16, f []byte) uint16 {
	return checksum.Combine(d, checksum.Checksum(f, ^old))
}

// portDelta adds to d the ~m + m' of one 16-bit field changed from old to
// new, or nothing when it does not change.
func portDelta(d, old, new uint16) uint16 {
	if old == new {
		return d
	}
	return checksum.Combine(d, checksum.Combine(^old, new))
}

// update applies d, a sum of ~m + m' terms, to the checksum field value
// xsum: RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m').
func update(xsum, d uint16) uint16 {
	return ^checksum.Combine(^xsum, d)
}

// updateUDP applies d to a UDP checksum unless the sender computed none.
// RFC 768: "An all zero transmitted checksum value means that the
// transmitter generated no checksum", and "If the computed checksum is
// zero, it is transmitted as all ones".
func updateUDP(u header.UDP, d uint16) {
	if d == 0 || u.Checksum() == 0 {
		return
	}
	xsum := update(u.Checksum(), d)
	if xsum == 0 {
		xsum = 0xffff
	}
	u.SetChecksum(xsum)
}

// translateTransport sets the ports or echo identifier of the transport
// header l4 of protocol proto, at least 8 bytes long (a quoted one may be
// no longer), to those of the endpoints srcPort and dstPort, and updates
// its checksum when l4 holds it; d is what the addresses' change adds to
// its pseudo-header's sum, if it has one. It returns the ports as the
// parsed view holds them.
func translateTransport(l4 []byte, proto uint8, d, srcPort, dstPort uint16) (uint16, uint16) {
	switch proto {
	case protoTCP:
		t := header.TCP(l4)
		d = portDelta(d, t.SourcePort(), srcPort)
		d = portDelta(d, t.DestinationPort(), dstPort)
		t.SetSourcePort(srcPort)
		t.SetDestinationPort(dstPort)
		if d != 0 && len(l4) >= header.TCPChecksumOffset+checksum.Size {
			t.SetChecksum(update(t.Checksum(), d))
		}
	case protoUDP:
		u := header.UDP(l4)
		d = portDelta(d, u.SourcePort(), srcPort)
		d = portDelta(d, u.DestinationPort(), dstPort)
		u.SetSourcePort(srcPort)
		u.SetDestinationPort(dstPort)
		updateUDP(u, d)
	case protoICMPv4:
		// The ICMPv4 checksum has no pseudo-header: d does not count.
		m := header.ICMPv4(l4)
		id := echoIdent(m.Type() == header.ICMPv4Echo, srcPort, dstPort)
		dd := portDelta(0, m.Ident(), id)
		m.SetIdent(id)
		if dd != 0 {
			m.SetChecksum(update(m.Checksum(), dd))
		}
		return id, id
	case protoICMPv6:
		m := header.ICMPv6(l4)
		id := echoIdent(m.Type() == header.ICMPv6EchoRequest, srcPort, dstPort)
		d = portDelta(d, m.Ident(), id)
		m.SetIdent(id)
		if d != 0 {
			m.SetChecksum(update(m.Checksum(), d))
		}
		return id, id
	}
	return srcPort, dstPort
}
