package xlate

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// Embedded is the packet an ICMP error quotes, as ParseError read it.
//
// The quoted packet is one the sender of the error received, so it
// travelled the opposite way to the error, and as the NAT had translated
// it. Reversed, its endpoints are those of a packet of the same flow
// travelling with the error: the caller looks the flow up as it would
// such a packet, from Dst to Src, and reverses the translation it finds
// for it: innerSrc is that translation's destination, innerDst its
// source, and outerDst is innerSrc's address (RFC 5508 REQ-4c, REQ-7a:
// "translate the destination IP address of the outer IP header to be
// same as the source IP address of the embedded IP packet after the
// translation"). The three cases, for a flow from the inside host's
// endpoint I to a remote endpoint R through the NAT's external endpoint E:
//
//	error from a router beyond the NAT (REQ-4):
//	  quoted E -> R; look up R -> E, which translates to R -> I;
//	  innerSrc I, innerDst R; outerSrc unchanged, outerDst I's address
//	error from the inside host about a port-forwarded flow R -> E -> I (REQ-5):
//	  quoted R -> I; look up I -> R, which translates to E -> R;
//	  innerSrc R, innerDst E; outerSrc the NAT's public address (REQ-5c),
//	  outerDst unchanged (R's address)
//	hairpin: inside host B's error about A -> E(B) sent on as E(A) -> B (REQ-7):
//	  quoted E(A) -> B; look up B -> E(A), which translates to E(B) -> A;
//	  innerSrc A, innerDst E(B); outerSrc the public address, outerDst A's
//
// The lookup is a read: an error never creates, refreshes or deletes the
// flow it is about (REQ-6; RFC 4787 REQ-12; RFC 7857: "ICMP Errors or TCP
// RST outbound packets sent as a response to inbound packets SHOULD NOT
// refresh the mapping"). Without ports (HasPorts false) a NAPT cannot
// find the flow and drops the error (REQ-4, REQ-5: "the NAT SHOULD
// silently drop the ICMP Error packet"); a Basic NAT may translate the
// addresses alone.
type Embedded struct {
	// Proto is the quoted packet's transport protocol: the IPv4 protocol
	// field, or for IPv6 the header after its extension headers.
	Proto uint8
	// Src and Dst are the quoted packet's endpoints. Their ports are the
	// TCP or UDP ports, or for an ICMP echo request or reply the
	// identifier in both, when HasPorts; zero otherwise.
	Src, Dst netip.AddrPort
	// HasPorts is false when the quote ends before the transport's first
	// 8 bytes, or is a non-first fragment, or the protocol has no ports.
	HasPorts bool

	// Offsets into the packet's Data: the quoted IP header, its transport
	// header, and the end of the quoted packet.
	ip, l4, end int
}

// maxExtensionHeaders bounds the walk of a quoted IPv6 packet's extension
// headers, as the packet parser bounds its own.
const maxExtensionHeaders = 8

// Fields every IPv6 extension header starts with. RFC 8200 §4.3, §4.4,
// §4.6: "Next Header  8-bit selector" and "Hdr Ext Len  8-bit unsigned
// integer.  Length of the ... header in 8-octet units, not including the
// first 8 octets"; RFC 4302 §2.2 counts the Authentication Header's
// "Payload Len" in 32-bit words, minus 2.
const (
	extNextHeader = 0
	extLength     = 1
	extUnit       = 8
	ahUnit        = 4
)

// RFC 4884 length attribute units: "For ICMPv4 messages, the length
// attribute represents 32-bit words", "For ICMPv6 messages, the length
// attribute represents 64-bit words".
const (
	lengthUnitV4 = 4
	lengthUnitV6 = 8
)

// ParseError checks that p is an ICMP error NAT may translate and reads
// the packet it quotes. p must have passed packet.Parse. It reports false,
// meaning drop the error, for anything else:
//
//   - a fragment: the ICMP checksum covers the whole message, so a
//     fragment cannot be checked (errors are at most 576 bytes for IPv4,
//     RFC 1812 §4.3.2.3, and 1280 for IPv6, RFC 4443 §2.4(c), so they are
//     not fragmented in practice);
//   - a type other than Destination Unreachable, Time Exceeded and
//     Parameter Problem (ICMPv4 3, 11, 12; ICMPv6 1, 3, 4) and ICMPv6
//     Packet Too Big (2). ICMPv4 Source Quench (4) is deprecated: RFC
//     6633 "formally deprecates the use of ICMP Source Quench messages by
//     transport protocols", and hosts discard it. A Redirect (5) is about
//     the first hop of the host it is sent to, which for an inside host is
//     the NAT itself; RFC 1122 §3.2.2.2: "A Redirect message SHOULD be
//     silently discarded if ... the source of the Redirect is not the
//     current first-hop gateway for the specified destination". Other
//     ICMP messages are no errors (RFC 5508 REQ-11 lets a NAT drop the
//     non-QueryError ones);
//   - a bad checksum. RFC 5508 REQ-3: "When an ICMP Error packet is
//     received, if the ICMP checksum fails to validate, the NAT SHOULD
//     silently drop the ICMP Error packet." The ICMPv6 checksum includes
//     the pseudo-header (RFC 4443 §2.3);
//   - a quote shorter than an IP header of the error's own family, or one
//     whose IPv4 header checksum is wrong. REQ-3a: "If the IP checksum of
//     the embedded packet fails to validate, the NAT SHOULD silently drop
//     the Error packet";
//   - a quoted IPv6 packet whose extension headers end past the quote;
//   - a quoted ICMP error. RFC 1122 §3.2.2: "An ICMP error message MUST
//     NOT be sent as the result of receiving: an ICMP error message"; RFC
//     4443 §2.4(e) says the same for ICMPv6.
//
// Walking to the quoted transport header, it skips the IPv4 options
// (REQ-3b: "the NAT device MUST traverse past the IP options to locate
// the start of the transport header for the embedded packet") and the IPv6
// extension headers. It does not check the quoted transport checksum
// (REQ-3c: "The NAT device SHOULD NOT validate the transport checksum of
// the embedded packet within an ICMP Error message, even when it is
// possible to do so"). The quote ends where the quoted packet's own
// length says, or where an RFC 4884 length attribute says, whichever
// comes first, so ICMP extensions and their zero padding are never read
// as the quoted packet (REQ-3d: "the NAT device MUST exclude the optional
// zero-padding and the ICMP extensions when evaluating transport checksum
// for the embedded packet").
//
// ParseError does not change p.
func ParseError(p *packet.Packet) (Embedded, bool) {
	var e Embedded
	if p.Fragment {
		return e, false
	}
	b := p.Data()
	msg := b[p.HeaderLen:]
	var units, unit int
	switch {
	case p.Version == header.IPv4Version && p.Proto == protoICMPv4:
		if len(msg) < header.ICMPv4MinimumSize {
			return e, false
		}
		m := header.ICMPv4(msg)
		switch m.Type() {
		case header.ICMPv4DstUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
		default:
			return e, false
		}
		// RFC 792: "The checksum is the 16-bit one's complement of the
		// one's complement sum of the ICMP message starting with the ICMP
		// Type." Summed with the checksum, a valid message gives all ones.
		if checksum.Checksum(msg, 0) != 0xffff {
			return e, false
		}
		// RFC 4884 put the length attribute of these three types in "the
		// sixth octet", the second of the 32 bits after the checksum,
		// which header.ICMPv4 reads as the echo identifier.
		units, unit = int(uint8(m.Ident())), lengthUnitV4
	case p.Version == header.IPv6Version && p.Proto == protoICMPv6:
		if len(msg) < header.ICMPv6ErrorHeaderSize {
			return e, false
		}
		m := header.ICMPv6(msg)
		switch m.Type() {
		case header.ICMPv6DstUnreachable, header.ICMPv6TimeExceeded:
			// RFC 4884: "the fifth octet", the first after the checksum.
			units, unit = int(m.TypeSpecific()>>24), lengthUnitV6
		case header.ICMPv6PacketTooBig, header.ICMPv6ParamProblem:
			// The MTU and the pointer fill these words; RFC 4884 gives
			// them no length attribute.
		default:
			return e, false
		}
		ip := header.IPv6(b)
		pseudo := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(msg)))
		if checksum.Combine(pseudo, checksum.Checksum(msg, 0)) != 0xffff {
			return e, false
		}
	default:
		return e, false
	}
	start := p.HeaderLen + header.ICMPv4MinimumSize // ICMPv6ErrorHeaderSize alike
	quote := b[start:]
	if units != 0 && units*unit < len(quote) {
		quote = quote[:units*unit]
	}
	var next uint8
	off, nonFirst := 0, false
	if p.Version == header.IPv4Version {
		if len(quote) < header.IPv4MinimumSize || header.IPVersion(quote) != header.IPv4Version {
			return e, false
		}
		ip := header.IPv4(quote)
		// A total length below the header length fails the header
		// validation of RFC 1812 §5.2.2, and no error may quote a packet
		// that failed it (RFC 1812 §4.3.2.7).
		hlen, tlen := int(ip.HeaderLength()), int(ip.TotalLength())
		if hlen < header.IPv4MinimumSize || hlen > len(quote) || tlen < hlen || !ip.IsChecksumValid() {
			return e, false
		}
		quote = quote[:min(tlen, len(quote))]
		next, off, nonFirst = ip.Protocol(), hlen, ip.FragmentOffset() != 0
		e.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.SourceAddressSlice())), 0)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(ip.DestinationAddressSlice())), 0)
	} else {
		if len(quote) < header.IPv6MinimumSize || header.IPVersion(quote) != header.IPv6Version {
			return e, false
		}
		ip := header.IPv6(quote)
		quote = quote[:min(header.IPv6MinimumSize+int(ip.PayloadLength()), len(quote))]
		var ok bool
		if next, off, nonFirst, ok = walkIPv6(quote); !ok {
			return e, false
		}
		e.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip.SourceAddressSlice())), 0)
		e.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())), 0)
	}
	e.Proto = next
	e.ip, e.l4, e.end = start, start+off, start+len(quote)
	if nonFirst {
		return e, true
	}
	// RFC 792: "If a higher level protocol uses port numbers, they are
	// assumed to be in the first 64 data bits of the original datagram's
	// data." RFC 1122 §3.2.2: every error includes "at least the first 8
	// data octets of the datagram that triggered the error".
	l4 := quote[off:]
	switch {
	case next == protoTCP || next == protoUDP:
		if len(l4) >= header.UDPMinimumSize {
			// Both headers start with the source and destination ports.
			u := header.UDP(l4)
			e.setPorts(u.SourcePort(), u.DestinationPort())
		}
	case next == protoICMPv4 && p.Version == header.IPv4Version:
		if len(l4) == 0 {
			break
		}
		m := header.ICMPv4(l4)
		switch m.Type() {
		case header.ICMPv4DstUnreachable, header.ICMPv4SrcQuench, header.ICMPv4Redirect, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
			// The ICMP error messages of RFC 1122 §3.2.2.
			return Embedded{}, false
		case header.ICMPv4Echo, header.ICMPv4EchoReply:
			if len(l4) >= header.ICMPv4MinimumSize {
				e.setPorts(m.Ident(), m.Ident())
			}
		}
	case next == protoICMPv6 && p.Version == header.IPv6Version:
		if len(l4) == 0 {
			break
		}
		m := header.ICMPv6(l4)
		switch t := m.Type(); {
		case t.IsErrorType():
			return Embedded{}, false
		case t == header.ICMPv6EchoRequest || t == header.ICMPv6EchoReply:
			if len(l4) >= header.ICMPv6EchoMinimumSize {
				e.setPorts(m.Ident(), m.Ident())
			}
		}
	}
	return e, true
}

func (e *Embedded) setPorts(src, dst uint16) {
	e.HasPorts = true
	e.Src = netip.AddrPortFrom(e.Src.Addr(), src)
	e.Dst = netip.AddrPortFrom(e.Dst.Addr(), dst)
}

// walkIPv6 finds the transport header of the IPv6 packet b, which may be
// cut short after its extension headers: the protocol, its offset, and
// whether a fragment header says it is a non-first fragment (whose
// payload is no header). It reports false when the headers end past b or
// there are more than maxExtensionHeaders of them.
func walkIPv6(b []byte) (next uint8, off int, nonFirst bool, ok bool) {
	next, off = header.IPv6(b).NextHeader(), header.IPv6MinimumSize
	for range maxExtensionHeaders {
		var size int
		switch header.IPv6ExtensionHeaderIdentifier(next) {
		case header.IPv6HopByHopOptionsExtHdrIdentifier, header.IPv6RoutingExtHdrIdentifier, header.IPv6DestinationOptionsExtHdrIdentifier:
			if off+extLength >= len(b) {
				return 0, 0, false, false
			}
			size = (int(b[off+extLength]) + 1) * extUnit
		case header.IPv6AuthenticationExtHdrIdentifier:
			if off+extLength >= len(b) {
				return 0, 0, false, false
			}
			size = (int(b[off+extLength]) + 2) * ahUnit
		case header.IPv6FragmentExtHdrIdentifier:
			f := header.IPv6Fragment(b[off:])
			if !f.IsValid() {
				return 0, 0, false, false
			}
			if f.FragmentOffset() != 0 {
				return f.NextHeader(), off + header.IPv6FragmentHeaderSize, true, true
			}
			size = header.IPv6FragmentHeaderSize
		default:
			return next, off, false, true
		}
		if off+size > len(b) {
			return 0, 0, false, false
		}
		next, off = b[off+extNextHeader], off+size
	}
	return 0, 0, false, false
}

// TranslateError rewrites the ICMP error p, which ParseError(p) read as e
// and nothing has changed since: the outer source and destination
// addresses become outerSrc and outerDst, the quoted packet's endpoints
// become innerSrc and innerDst. The ICMP type and code stay (RFC 5508
// REQ-4b, REQ-5b: "Leave the ICMP Error type and code unchanged"). See
// Embedded for which values a NAT passes in which direction; they may
// all change at once, as for a hairpinned error (REQ-7).
//
// What changes, with the checksums that cover it:
//
//   - the outer IP addresses and the outer IPv4 header checksum;
//   - the quoted IP addresses and the quoted IPv4 header checksum, which
//     ParseError found valid and which stays valid (REQ-4a, REQ-5a:
//     "Revert the IP and transport headers of the embedded IP packet to
//     their original form");
//   - when e.HasPorts, the quoted TCP or UDP ports or echo identifier
//     (innerSrc's port for a request, innerDst's for a reply), and the
//     quoted transport checksum by incremental update when the quote
//     holds it: always for UDP and ICMP, whose checksum lies in the first
//     8 bytes, but for TCP only when 18 bytes are quoted (the checksum is
//     at offset 16). Without ports, the ports in innerSrc and innerDst
//     are not used. A quoted UDP checksum of zero stays zero;
//   - the ICMP or ICMPv6 checksum, recomputed over the whole message
//     including any RFC 4884 extension. Recomputing costs a pass over at
//     most 576 or 1280 bytes where an update would touch a dozen words,
//     but errors are rare and a sum from scratch is right by
//     construction; ParseError has checked the old one.
//
// No length changes, so a Parameter Problem pointer and an RFC 4884
// length attribute stay right. It updates Src and Dst of the parsed view;
// e is stale afterwards. It refuses, changing nothing, addresses of the
// other family, and an e that does not fit p (the zero Embedded, or a
// packet since cut shorter).
func TranslateError(p *packet.Packet, e Embedded, outerSrc, outerDst netip.Addr, innerSrc, innerDst netip.AddrPort) bool {
	b := p.Data()
	if e.end == 0 || e.end > len(b) ||
		!sameFamily(p.Version, outerSrc, outerDst) || !sameFamily(p.Version, innerSrc.Addr(), innerDst.Addr()) {
		return false
	}
	setAddrs(b, p.Version, outerSrc, outerDst)
	d := setAddrs(b[e.ip:e.end], p.Version, innerSrc.Addr(), innerDst.Addr())
	if e.HasPorts {
		translateTransport(b[e.l4:e.end], e.Proto, d, innerSrc.Port(), innerDst.Port())
	}
	msg := b[p.HeaderLen:]
	if p.Version == header.IPv4Version {
		m := header.ICMPv4(msg)
		m.SetChecksum(header.ICMPv4Checksum(m, 0))
	} else {
		ip := header.IPv6(b)
		m := header.ICMPv6(msg)
		m.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
			Header: m, Src: ip.SourceAddress(), Dst: ip.DestinationAddress(),
		}))
	}
	p.Src, p.Dst = outerSrc, outerDst
	return true
}
