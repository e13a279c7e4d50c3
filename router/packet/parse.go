package packet

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// maxExtensionHeaders bounds the IPv6 extension header walk so a crafted
// chain cannot make parsing expensive.
const maxExtensionHeaders = 8

// Parse checks the IP header once and fills in the parsed view. It returns
// ReasonNone for a packet the router may handle, or the reason to drop it.
// The packet is trimmed to the length its header claims (link padding).
//
// RFC 1812 §5.2.2: a router must check the version, the header length, the
// total length against the received length, and the header checksum
// before it uses any other field.
func (p *Packet) Parse() Reason {
	b := p.Data()
	if len(b) == 0 {
		return ReasonTruncated
	}
	switch header.IPVersion(b) {
	case header.IPv4Version:
		return p.parseIPv4(header.IPv4(b))
	case header.IPv6Version:
		return p.parseIPv6(header.IPv6(b))
	}
	return ReasonBadVersion
}

func (p *Packet) parseIPv4(h header.IPv4) Reason {
	if len(h) < header.IPv4MinimumSize {
		return ReasonTruncated
	}
	hlen := int(h.HeaderLength())
	if hlen < header.IPv4MinimumSize || hlen > len(h) {
		return ReasonBadHeaderLength
	}
	tlen := int(h.TotalLength())
	if tlen < hlen || tlen > len(h) {
		return ReasonBadTotalLength
	}
	h = h[:tlen]
	if !h.IsChecksumValid() {
		return ReasonBadChecksum
	}
	p.Len = tlen
	p.Version = 4
	p.HeaderLen = hlen
	p.Proto = h.Protocol()
	p.Src = netip.AddrFrom4([4]byte(h.SourceAddressSlice()))
	p.Dst = netip.AddrFrom4([4]byte(h.DestinationAddressSlice()))
	p.NonFirstFragment = h.FragmentOffset() != 0
	p.Fragment = p.NonFirstFragment || h.More()
	p.FragID = uint32(h.ID())
	p.parseTransport(h[hlen:])
	return checkAddresses(p.Src, p.Dst)
}

func (p *Packet) parseIPv6(h header.IPv6) Reason {
	if len(h) < header.IPv6MinimumSize {
		return ReasonTruncated
	}
	// A zero payload length means a jumbogram (RFC 2675), which no link
	// of ours can carry.
	plen := int(h.PayloadLength())
	if plen == 0 && h.NextHeader() != uint8(header.IPv6NoNextHeaderIdentifier) || header.IPv6MinimumSize+plen > len(h) {
		return ReasonBadTotalLength
	}
	h = h[:header.IPv6MinimumSize+plen]
	p.Len = len(h)
	p.Version = 6
	p.Src = netip.AddrFrom16([16]byte(h.SourceAddressSlice()))
	p.Dst = netip.AddrFrom16([16]byte(h.DestinationAddressSlice()))
	p.Fragment, p.NonFirstFragment, p.FragID = false, false, 0
	if r := p.walkExtensionHeaders(h); r != ReasonNone {
		return r
	}
	p.parseTransport(h[p.HeaderLen:])
	return checkAddresses(p.Src, p.Dst)
}

// parseTransport fills in the transport view from the bytes after the IP
// headers, when they hold the header (a first fragment may not). A short
// transport header is not an error here: the router forwards what it
// cannot read, and stages that need ports look at HasPorts.
func (p *Packet) parseTransport(b []byte) {
	p.HasPorts, p.SrcPort, p.DstPort, p.TCPFlags, p.ICMPType = false, 0, 0, 0, 0
	if p.NonFirstFragment {
		return
	}
	switch p.Proto {
	case uint8(header.TCPProtocolNumber):
		if len(b) >= header.TCPMinimumSize {
			t := header.TCP(b)
			p.HasPorts, p.SrcPort, p.DstPort, p.TCPFlags = true, t.SourcePort(), t.DestinationPort(), uint8(t.Flags())
		}
	case uint8(header.UDPProtocolNumber):
		if len(b) >= header.UDPMinimumSize {
			u := header.UDP(b)
			p.HasPorts, p.SrcPort, p.DstPort = true, u.SourcePort(), u.DestinationPort()
		}
	case uint8(header.ICMPv4ProtocolNumber):
		if len(b) >= header.ICMPv4MinimumSize {
			m := header.ICMPv4(b)
			p.ICMPType = uint8(m.Type())
			if t := m.Type(); t == header.ICMPv4Echo || t == header.ICMPv4EchoReply {
				p.HasPorts, p.SrcPort, p.DstPort = true, m.Ident(), m.Ident()
			}
		}
	case uint8(header.ICMPv6ProtocolNumber):
		if len(b) >= header.ICMPv6MinimumSize {
			m := header.ICMPv6(b)
			p.ICMPType = uint8(m.Type())
			if t := m.Type(); t == header.ICMPv6EchoRequest || t == header.ICMPv6EchoReply {
				p.HasPorts, p.SrcPort, p.DstPort = true, m.Ident(), m.Ident()
			}
		}
	}
}

// walkExtensionHeaders finds the transport protocol and where its header
// starts, noting a fragment header on the way (RFC 8200 §4).
func (p *Packet) walkExtensionHeaders(h header.IPv6) Reason {
	next, off := h.NextHeader(), header.IPv6MinimumSize
	for range maxExtensionHeaders {
		var size int
		switch header.IPv6ExtensionHeaderIdentifier(next) {
		case header.IPv6HopByHopOptionsExtHdrIdentifier, header.IPv6RoutingExtHdrIdentifier, header.IPv6DestinationOptionsExtHdrIdentifier:
			if off+2 > len(h) {
				return ReasonTruncated
			}
			size = (int(h[off+1]) + 1) * 8
		case header.IPv6AuthenticationExtHdrIdentifier:
			if off+2 > len(h) {
				return ReasonTruncated
			}
			size = (int(h[off+1]) + 2) * 4
		case header.IPv6FragmentExtHdrIdentifier:
			f := header.IPv6Fragment(h[off:])
			if !f.IsValid() {
				return ReasonTruncated
			}
			size = header.IPv6FragmentExtHdrLength
			p.Fragment = true
			p.NonFirstFragment = f.FragmentOffset() != 0
			p.FragID = f.ID()
		default:
			p.Proto, p.HeaderLen = next, off
			return ReasonNone
		}
		if off+size > len(h) {
			return ReasonTruncated
		}
		next, off = h[off], off+size
	}
	return ReasonBadHeaderLength
}

// checkAddresses refuses link-scoped packets, which a router does not
// forward (hosts send many, e.g. IGMP reports from 0.0.0.0), and those it
// must neither forward nor answer.
func checkAddresses(src, dst netip.Addr) Reason {
	switch {
	case linkScoped(src, dst):
		return ReasonLinkScope
	case martian(src, dst):
		return ReasonBadAddress
	}
	return ReasonNone
}

// martian reports addresses that are never valid on the wire.
//
// RFC 1812 §5.3.7: a router SHOULD NOT forward a packet whose source is
// 0/8, 127/8, a multicast or a class E address, nor one addressed to 0/8
// or 127/8.
func martian(src, dst netip.Addr) bool {
	switch {
	case src.IsLoopback(), src.IsMulticast(), dst.IsLoopback(), dst.IsUnspecified():
		return true
	case src.Is4():
		a, d := src.As4(), dst.As4()
		return a[0] == 0 || a[0] >= 240 || d[0] == 0
	}
	return false
}

// linkScoped reports traffic that belongs to one link: RFC 3927 §7 and
// RFC 4291 §2.5.6 keep link-local addresses on their link, and tungate
// routes unicast only (multicast and broadcast stay on their link too).
// Hosts send such packets on their own (IPv6 router solicitations, MLD).
func linkScoped(src, dst netip.Addr) bool {
	return src.IsLinkLocalUnicast() || dst.IsLinkLocalUnicast() || dst.IsMulticast() ||
		dst == netip.AddrFrom4([4]byte{255, 255, 255, 255})
}
