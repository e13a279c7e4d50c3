package packet

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// v4 is an IPv4 packet with a 20-byte header and n bytes of UDP payload
// space, checksummed.
func v4(src, dst string, n int) []byte {
	b := make([]byte, header.IPv4MinimumSize+n)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.UDPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(netip.MustParseAddr(src).As4()), DstAddr: tcpip.AddrFrom4(netip.MustParseAddr(dst).As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

// v6 is an IPv6 packet whose payload is the given extension headers (each
// given whole) followed by n bytes of UDP.
func v6(src, dst string, first uint8, ext []byte, n int) []byte {
	b := make([]byte, header.IPv6MinimumSize+len(ext)+n)
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(ext) + n), TransportProtocol: tcpip.TransportProtocolNumber(first), HopLimit: 64,
		SrcAddr: tcpip.AddrFrom16(netip.MustParseAddr(src).As16()), DstAddr: tcpip.AddrFrom16(netip.MustParseAddr(dst).As16()),
	})
	copy(b[header.IPv6MinimumSize:], ext)
	return b
}

// reheader recomputes an IPv4 header checksum after a test changed it.
func reheader(b []byte) []byte {
	ip := header.IPv4(b)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

func TestParse(t *testing.T) {
	udp := uint8(header.UDPProtocolNumber)
	frag := func(offset uint16, more bool) []byte {
		f := make([]byte, header.IPv6FragmentExtHdrLength)
		f[0] = udp
		word := offset << 3
		if more {
			word |= 1
		}
		f[2], f[3] = byte(word>>8), byte(word)
		return f
	}
	hopByHop := []byte{uint8(header.IPv6FragmentExtHdrIdentifier), 0, 1, 4, 0, 0, 0, 0}
	tests := []struct {
		name   string
		pkt    []byte
		reason Reason
		check  func(t *testing.T, p *Packet)
	}{
		{name: "IPv4 UDP", pkt: v4("192.168.46.2", "198.18.0.1", 8), check: func(t *testing.T, p *Packet) {
			if p.Version != 4 || p.HeaderLen != 20 || p.Proto != udp || p.Src.String() != "192.168.46.2" || p.Dst.String() != "198.18.0.1" || p.Fragment {
				t.Errorf("view %+v", p)
			}
		}},
		{name: "IPv4 UDP ports", pkt: func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", header.UDPMinimumSize)
			header.UDP(b[20:]).Encode(&header.UDPFields{SrcPort: 4000, DstPort: 53, Length: header.UDPMinimumSize})
			return b
		}(), check: func(t *testing.T, p *Packet) {
			if !p.HasPorts || p.SrcPort != 4000 || p.DstPort != 53 {
				t.Errorf("ports %v %d %d", p.HasPorts, p.SrcPort, p.DstPort)
			}
		}},
		{name: "IPv4 TCP ports and flags", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", header.TCPMinimumSize)
			header.IPv4(b).Encode(&header.IPv4Fields{TotalLength: uint16(len(b)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
				SrcAddr: tcpip.AddrFrom4([4]byte{192, 168, 46, 2}), DstAddr: tcpip.AddrFrom4([4]byte{198, 18, 0, 1})})
			header.TCP(b[20:]).Encode(&header.TCPFields{SrcPort: 40000, DstPort: 80, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn})
			return b
		}()), check: func(t *testing.T, p *Packet) {
			if !p.HasPorts || p.SrcPort != 40000 || p.DstPort != 80 || p.TCPFlags != uint8(header.TCPFlagSyn) {
				t.Errorf("ports %v %d %d flags %#x", p.HasPorts, p.SrcPort, p.DstPort, p.TCPFlags)
			}
		}},
		{name: "IPv4 UDP header cut short is forwarded without ports", pkt: v4("192.168.46.2", "198.18.0.1", 4), check: func(t *testing.T, p *Packet) {
			if p.HasPorts {
				t.Error("ports read past the packet")
			}
		}},
		{name: "IPv6 echo identifier", pkt: func() []byte {
			b := v6("fd46::2", "fd18::1", uint8(header.ICMPv6ProtocolNumber), nil, header.ICMPv6EchoMinimumSize)
			m := header.ICMPv6(b[40:])
			m.SetType(header.ICMPv6EchoRequest)
			m.SetIdent(777)
			return b
		}(), check: func(t *testing.T, p *Packet) {
			if !p.HasPorts || p.SrcPort != 777 || p.ICMPType != uint8(header.ICMPv6EchoRequest) {
				t.Errorf("ports %v %d type %d", p.HasPorts, p.SrcPort, p.ICMPType)
			}
		}},
		{name: "IPv4 trailing bytes are trimmed", pkt: append(v4("192.168.46.2", "198.18.0.1", 8), 0, 0, 0, 0), check: func(t *testing.T, p *Packet) {
			if p.Len != 28 {
				t.Errorf("Len %d, want 28", p.Len)
			}
		}},
		{name: "IPv4 first fragment", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
			return b
		}()), check: func(t *testing.T, p *Packet) {
			if !p.Fragment || p.NonFirstFragment {
				t.Errorf("Fragment %v NonFirstFragment %v", p.Fragment, p.NonFirstFragment)
			}
		}},
		{name: "IPv4 later fragment", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetFlagsFragmentOffset(0, 1480)
			return b
		}()), check: func(t *testing.T, p *Packet) {
			if !p.Fragment || !p.NonFirstFragment {
				t.Errorf("Fragment %v NonFirstFragment %v", p.Fragment, p.NonFirstFragment)
			}
		}},
		{name: "empty", pkt: []byte{}, reason: ReasonTruncated},
		{name: "IPv4 shorter than a header", pkt: v4("192.168.46.2", "198.18.0.1", 8)[:19], reason: ReasonTruncated},
		{name: "version 5", pkt: func() []byte { b := v4("192.168.46.2", "198.18.0.1", 8); b[0] = 0x55; return b }(), reason: ReasonBadVersion},
		{name: "IHL 4", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetHeaderLength(16)
			return b
		}()), reason: ReasonBadHeaderLength},
		{name: "IHL past the packet", pkt: func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 0)
			header.IPv4(b).SetHeaderLength(24)
			return b
		}(), reason: ReasonBadHeaderLength},
		{name: "total length beyond the packet", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetTotalLength(2000)
			return b
		}()), reason: ReasonBadTotalLength},
		{name: "total length inside the header", pkt: reheader(func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetTotalLength(12)
			return b
		}()), reason: ReasonBadTotalLength},
		{name: "bad header checksum", pkt: func() []byte {
			b := v4("192.168.46.2", "198.18.0.1", 8)
			header.IPv4(b).SetChecksum(0x1234)
			return b
		}(), reason: ReasonBadChecksum},
		{name: "loopback source", pkt: v4("127.0.0.1", "198.18.0.1", 8), reason: ReasonBadAddress},
		{name: "zero-network source", pkt: v4("0.1.2.3", "198.18.0.1", 8), reason: ReasonBadAddress},
		{name: "class E source", pkt: v4("240.0.0.1", "198.18.0.1", 8), reason: ReasonBadAddress},
		{name: "multicast source", pkt: v4("224.0.0.1", "198.18.0.1", 8), reason: ReasonBadAddress},
		{name: "link-local destination", pkt: v4("192.168.46.2", "169.254.1.1", 8), reason: ReasonLinkScope},
		{name: "multicast destination", pkt: v4("192.168.46.2", "239.1.1.1", 8), reason: ReasonLinkScope},
		{name: "limited broadcast", pkt: v4("192.168.46.2", "255.255.255.255", 8), reason: ReasonLinkScope},
		{name: "IPv6 UDP", pkt: v6("fd46::2", "fd18::1", udp, nil, 8), check: func(t *testing.T, p *Packet) {
			if p.Version != 6 || p.HeaderLen != 40 || p.Proto != udp || p.Dst.String() != "fd18::1" {
				t.Errorf("view %+v", p)
			}
		}},
		{name: "IPv6 past hop-by-hop and fragment headers", pkt: v6("fd46::2", "fd18::1", uint8(header.IPv6HopByHopOptionsExtHdrIdentifier), append(hopByHop, frag(0, true)...), 8),
			check: func(t *testing.T, p *Packet) {
				if p.HeaderLen != 56 || p.Proto != udp || !p.Fragment || p.NonFirstFragment {
					t.Errorf("HeaderLen %d Proto %d Fragment %v NonFirst %v", p.HeaderLen, p.Proto, p.Fragment, p.NonFirstFragment)
				}
			}},
		{name: "IPv6 later fragment", pkt: v6("fd46::2", "fd18::1", uint8(header.IPv6FragmentExtHdrIdentifier), frag(185, false), 8),
			check: func(t *testing.T, p *Packet) {
				if !p.NonFirstFragment {
					t.Error("not seen as a later fragment")
				}
			}},
		{name: "IPv6 shorter than a header", pkt: v6("fd46::2", "fd18::1", udp, nil, 8)[:39], reason: ReasonTruncated},
		{name: "IPv6 payload length beyond the packet", pkt: v6("fd46::2", "fd18::1", udp, nil, 8)[:44], reason: ReasonBadTotalLength},
		{name: "IPv6 extension header past the packet", pkt: v6("fd46::2", "fd18::1", uint8(header.IPv6HopByHopOptionsExtHdrIdentifier), []byte{udp, 5}, 0), reason: ReasonTruncated},
		{name: "IPv6 multicast source", pkt: v6("ff02::1", "fd18::1", udp, nil, 8), reason: ReasonBadAddress},
		{name: "IPv6 link-local source", pkt: v6("fe80::1", "fd18::1", udp, nil, 8), reason: ReasonLinkScope},
		{name: "IPv6 router solicitation", pkt: v6("fe80::1", "ff02::2", uint8(header.ICMPv6ProtocolNumber), nil, 8), reason: ReasonLinkScope},
		{name: "IPv6 loopback destination", pkt: v6("fd46::2", "::1", udp, nil, 8), reason: ReasonBadAddress},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := make([]byte, 16+len(tc.pkt))
			copy(buf[16:], tc.pkt)
			p := &Packet{Buf: buf, Start: 16, Len: len(tc.pkt)}
			if got := p.Parse(); got != tc.reason {
				t.Fatalf("Parse = %v, want %v", got, tc.reason)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

func TestParseAllocatesNothing(t *testing.T) {
	pkt := v6("fd46::2", "fd18::1", uint8(header.UDPProtocolNumber), nil, 64)
	p := &Packet{}
	if n := testing.AllocsPerRun(100, func() {
		*p = Packet{Buf: pkt, Len: len(pkt)}
		p.Parse()
	}); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and what
// it accepts must have a view that fits the packet.
func FuzzParse(f *testing.F) {
	f.Add(v4("192.168.46.2", "198.18.0.1", 8))
	f.Add(v6("fd46::2", "fd18::1", uint8(header.IPv6HopByHopOptionsExtHdrIdentifier), []byte{17, 0, 1, 4, 0, 0, 0, 0}, 8))
	f.Add([]byte{0x45})
	f.Fuzz(func(t *testing.T, b []byte) {
		p := &Packet{Buf: b, Len: len(b)}
		if p.Parse() != ReasonNone {
			return
		}
		if p.Len > len(b) || p.HeaderLen > p.Len || p.HeaderLen < 20 || !p.Src.IsValid() || !p.Dst.IsValid() {
			t.Fatalf("accepted with a bad view: Len %d HeaderLen %d of %d bytes", p.Len, p.HeaderLen, len(b))
		}
	})
}
