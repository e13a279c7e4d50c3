package xlate

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// The test network: an inside host behind the NAT's public address, a
// remote host, and a router between the NAT and the remote host that
// reports errors.
var (
	inside4  = netip.MustParseAddr("192.168.1.10")
	inside4b = netip.MustParseAddr("192.168.1.11")
	public4  = netip.MustParseAddr("203.0.113.1")
	remote4  = netip.MustParseAddr("198.51.100.20")
	hop4     = netip.MustParseAddr("192.0.2.1")
	inside6  = netip.MustParseAddr("fd00:1::10")
	inside6b = netip.MustParseAddr("fd00:1::11")
	public6  = netip.MustParseAddr("2001:db8:ff::1")
	remote6  = netip.MustParseAddr("2001:db8:2::20")
	hop6     = netip.MustParseAddr("2001:db8:3::1")
)

const (
	tcp   = protoTCP
	udp   = protoUDP
	icmp  = protoICMPv4
	icmp6 = protoICMPv6
	gre   = 47
)

func addr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

// tcpSeg is a TCP segment with a 20-byte header, its checksum not set.
func tcpSeg(sp, dp uint16, payload []byte) []byte {
	b := make([]byte, header.TCPMinimumSize+len(payload))
	header.TCP(b).Encode(&header.TCPFields{
		SrcPort: sp, DstPort: dp, SeqNum: 0x01020304, AckNum: 0x0a0b0c0d,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck | header.TCPFlagPsh, WindowSize: 64240,
	})
	copy(b[header.TCPMinimumSize:], payload)
	return b
}

// udpDgram is a UDP datagram, its checksum not set.
func udpDgram(sp, dp uint16, payload []byte) []byte {
	b := make([]byte, header.UDPMinimumSize+len(payload))
	header.UDP(b).Encode(&header.UDPFields{SrcPort: sp, DstPort: dp, Length: uint16(len(b))})
	copy(b[header.UDPMinimumSize:], payload)
	return b
}

// echo4 is an ICMPv4 echo request or reply, its checksum not set.
func echo4(typ header.ICMPv4Type, id uint16, payload []byte) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+len(payload))
	m := header.ICMPv4(b)
	m.SetType(typ)
	m.SetIdent(id)
	m.SetSequence(7)
	copy(b[header.ICMPv4MinimumSize:], payload)
	return b
}

// echo6 is an ICMPv6 echo request or reply, its checksum not set.
func echo6(typ header.ICMPv6Type, id uint16, payload []byte) []byte {
	b := make([]byte, header.ICMPv6EchoMinimumSize+len(payload))
	m := header.ICMPv6(b)
	m.SetType(typ)
	m.SetIdent(id)
	m.SetSequence(7)
	copy(b[header.ICMPv6EchoMinimumSize:], payload)
	return b
}

// icmpErr4 is an ICMPv4 error quoting quote, its checksum not set. word
// is the 32 bits after the checksum: zero, or the MTU, pointer, RFC 4884
// length.
func icmpErr4(typ header.ICMPv4Type, code header.ICMPv4Code, word [4]byte, quote []byte) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+len(quote))
	m := header.ICMPv4(b)
	m.SetType(typ)
	m.SetCode(code)
	m.SetIdent(uint16(word[0])<<8 | uint16(word[1]))
	m.SetSequence(uint16(word[2])<<8 | uint16(word[3]))
	copy(m.Payload(), quote)
	return b
}

// icmpErr6 is an ICMPv6 error quoting quote, its checksum not set.
func icmpErr6(typ header.ICMPv6Type, code header.ICMPv6Code, word uint32, quote []byte) []byte {
	b := make([]byte, header.ICMPv6ErrorHeaderSize+len(quote))
	m := header.ICMPv6(b)
	m.SetType(typ)
	m.SetCode(code)
	m.SetTypeSpecific(word)
	copy(m.Payload(), quote)
	return b
}

// ip4Opts shapes the IPv4 header of a test packet.
type ip4Opts struct {
	options header.IPv4OptionsSerializer
	flags   uint8
	offset  uint16 // bytes
}

// ip4 is an IPv4 packet carrying l4 with every checksum computed from
// scratch: the header's, and the transport's unless it is a fragment.
func ip4(src, dst netip.Addr, proto uint8, l4 []byte, o ip4Opts) []byte {
	hl := header.IPv4MinimumSize + int(o.options.Length())
	b := make([]byte, hl+len(l4))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), ID: 0x4242, Flags: o.flags, FragmentOffset: o.offset,
		TTL: 64, Protocol: proto, SrcAddr: addr(src), DstAddr: addr(dst), Options: o.options,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(b[hl:], l4)
	if o.offset == 0 && o.flags&header.IPv4FlagMoreFragments == 0 {
		seal(b[hl:], proto, ip.SourceAddress(), ip.DestinationAddress())
	}
	return b
}

// ip6 is an IPv6 packet carrying l4 behind ext, with its transport
// checksum computed from scratch unless it is a fragment.
func ip6(src, dst netip.Addr, proto uint8, l4 []byte, ext header.IPv6ExtHdrSerializer) []byte {
	hl := header.IPv6MinimumSize + ext.Length()
	b := make([]byte, hl+len(l4))
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(b) - header.IPv6MinimumSize), TransportProtocol: tcpip.TransportProtocolNumber(proto),
		HopLimit: 64, SrcAddr: addr(src), DstAddr: addr(dst), ExtensionHeaders: ext,
	})
	copy(b[hl:], l4)
	fragment := false
	for _, h := range ext {
		if _, ok := h.(*header.IPv6SerializableFragmentExtHdr); ok {
			fragment = true
		}
	}
	if !fragment {
		seal(b[hl:], proto, ip.SourceAddress(), ip.DestinationAddress())
	}
	return b
}

// ipOf builds a packet of the family of src.
func ipOf(src, dst netip.Addr, proto uint8, l4 []byte) []byte {
	if src.Is4() {
		return ip4(src, dst, proto, l4, ip4Opts{})
	}
	return ip6(src, dst, proto, l4, nil)
}

// seal computes the checksum of the whole transport message l4 from
// scratch, as its sender would: with the pseudo-header for TCP, UDP and
// ICMPv6, without for ICMPv4; a computed UDP checksum of zero is sent as
// all ones (RFC 768). Other protocols, and headers too short to hold
// their checksum, are left alone.
func seal(l4 []byte, proto uint8, src, dst tcpip.Address) {
	if need := map[uint8]int{tcp: header.TCPMinimumSize, udp: header.UDPMinimumSize, icmp: header.ICMPv4MinimumSize, icmp6: header.ICMPv6MinimumSize}[proto]; len(l4) < need {
		return
	}
	pseudo := func() uint16 {
		return ^checksum.Combine(
			header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(proto), src, dst, uint16(len(l4))),
			checksum.Checksum(l4, 0))
	}
	switch proto {
	case tcp:
		t := header.TCP(l4)
		t.SetChecksum(0)
		t.SetChecksum(pseudo())
	case udp:
		u := header.UDP(l4)
		u.SetChecksum(0)
		xsum := pseudo()
		if xsum == 0 {
			xsum = 0xffff
		}
		u.SetChecksum(xsum)
	case icmp6:
		m := header.ICMPv6(l4)
		m.SetChecksum(0)
		m.SetChecksum(pseudo())
	case icmp:
		m := header.ICMPv4(l4)
		m.SetChecksum(header.ICMPv4Checksum(m, 0))
	}
}

// zeroUDP clears the UDP checksum of a whole IPv4 or IPv6 packet with no
// extension headers or options: "no checksum" (RFC 768).
func zeroUDP(b []byte) []byte {
	hl := header.IPv6MinimumSize
	if header.IPVersion(b) == header.IPv4Version {
		hl = int(header.IPv4(b).HeaderLength())
	}
	header.UDP(b[hl:]).SetChecksum(0)
	return b
}

// parse is b as a parsed packet, behind some headroom.
func parse(t testing.TB, b []byte) *packet.Packet {
	t.Helper()
	const headroom = 14
	buf := make([]byte, headroom+len(b))
	copy(buf[headroom:], b)
	p := &packet.Packet{Buf: buf, Start: headroom, Len: len(b)}
	if r := p.Parse(); r != packet.ReasonNone {
		t.Fatalf("test packet does not parse: %v", r)
	}
	return p
}

// ap is an address and port.
func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// diff describes where got and want differ, or is "" when they do not.
func diff(got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	if len(got) != len(want) {
		return fmt.Sprintf("length %d, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at byte %d: %#02x, want %#02x\n got  %x\n want %x", i, got[i], want[i], got, want)
		}
	}
	return ""
}

// transportValid reports whether the whole transport message of the
// unfragmented packet p verifies by a sum from scratch, counting a UDP
// checksum of zero as valid: none sent (RFC 768; for IPv6 only tunnels
// may, RFC 6935).
func transportValid(p *packet.Packet) bool {
	b := p.Data()
	l4 := b[p.HeaderLen:]
	var src, dst tcpip.Address
	if p.Version == header.IPv4Version {
		ip := header.IPv4(b)
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	} else {
		ip := header.IPv6(b)
		src, dst = ip.SourceAddress(), ip.DestinationAddress()
	}
	switch p.Proto {
	case udp:
		if len(l4) >= header.UDPMinimumSize && header.UDP(l4).Checksum() == 0 {
			return true
		}
		fallthrough
	case tcp, icmp6:
		return checksum.Combine(header.PseudoHeaderChecksum(tcpip.TransportProtocolNumber(p.Proto), src, dst, uint16(len(l4))), checksum.Checksum(l4, 0)) == 0xffff
	case icmp:
		return checksum.Checksum(l4, 0) == 0xffff
	}
	return true
}
