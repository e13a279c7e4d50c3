package icmperr

import (
	"bytes"
	"fmt"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

var (
	hostA4  = netip.MustParseAddr("192.0.2.10")
	hostB4  = netip.MustParseAddr("198.51.100.20")
	router4 = netip.MustParseAddr("203.0.113.1")
	hostA6  = netip.MustParseAddr("2001:db8:1::10")
	hostB6  = netip.MustParseAddr("2001:db8:2::20")
	router6 = netip.MustParseAddr("2001:db8::1")
)

// headroom is what a device keeps before the packet; Build must leave it.
const headroom = 14

func addr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

// ipv4Opts configures the IPv4 header a test packet gets.
type ipv4Opts struct {
	options header.IPv4OptionsSerializer
	flags   uint8
	offset  uint16 // bytes
	ttl     uint8
}

// v4 is an IPv4 packet from src to dst carrying l4.
func v4(src, dst netip.Addr, proto tcpip.TransportProtocolNumber, l4 []byte, o ipv4Opts) []byte {
	hl := header.IPv4MinimumSize + int(o.options.Length())
	b := make([]byte, hl+len(l4))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength:    uint16(len(b)),
		ID:             0x1234,
		Flags:          o.flags,
		FragmentOffset: o.offset,
		TTL:            max(o.ttl, 1),
		Protocol:       uint8(proto),
		SrcAddr:        addr(src),
		DstAddr:        addr(dst),
		Options:        o.options,
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(b[hl:], l4)
	return b
}

// v6 is an IPv6 packet from src to dst carrying l4, behind a fragment
// header when frag is not nil.
func v6(src, dst netip.Addr, proto tcpip.TransportProtocolNumber, l4 []byte, frag *header.IPv6SerializableFragmentExtHdr) []byte {
	var ext header.IPv6ExtHdrSerializer
	if frag != nil {
		ext = header.IPv6ExtHdrSerializer{frag}
	}
	hl := header.IPv6MinimumSize + ext.Length()
	b := make([]byte, hl+len(l4))
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(b) - header.IPv6MinimumSize),
		TransportProtocol: proto,
		HopLimit:          1,
		SrcAddr:           addr(src),
		DstAddr:           addr(dst),
		ExtensionHeaders:  ext,
	})
	copy(b[hl:], l4)
	return b
}

// udp is a UDP header and n bytes of patterned payload.
func udp(n int) []byte {
	b := make([]byte, header.UDPMinimumSize+n)
	header.UDP(b).Encode(&header.UDPFields{SrcPort: 40000, DstPort: 53, Length: uint16(len(b)), Checksum: 0xbeef})
	for i := range n {
		b[header.UDPMinimumSize+i] = byte(i)
	}
	return b
}

func tcp() []byte {
	b := make([]byte, header.TCPMinimumSize)
	header.TCP(b).Encode(&header.TCPFields{
		SrcPort: 40000, DstPort: 443, SeqNum: 7, DataOffset: header.TCPMinimumSize,
		Flags: header.TCPFlagSyn, WindowSize: 65535, Checksum: 0xcafe,
	})
	return b
}

func icmp4(t header.ICMPv4Type, code header.ICMPv4Code) []byte {
	b := make([]byte, header.ICMPv4MinimumSize+8)
	h := header.ICMPv4(b)
	h.SetType(t)
	h.SetCode(code)
	h.SetChecksum(header.ICMPv4Checksum(h, checksum.Checksum(h.Payload(), 0)))
	return b
}

func icmp6(t header.ICMPv6Type) []byte {
	b := make([]byte, header.ICMPv6MinimumSize+8)
	h := header.ICMPv6(b)
	h.SetType(t)
	return b
}

// packetOf places b in a buffer after headroom, with room for the error
// when spare is true (otherwise the buffer ends with the packet), and
// fills the parsed view as validate would.
func packetOf(b []byte, spare bool) (*packet.Packet, error) {
	capacity := headroom + len(b)
	if spare {
		capacity = headroom + max(len(b), header.IPv6MinimumMTU)
	}
	p := &packet.Packet{Buf: make([]byte, headroom+len(b), capacity), Start: headroom, Len: len(b), In: 2, Out: packet.NoInterface}
	copy(p.Data(), b)
	return p, view(p)
}

// view fills p's parsed view from its bytes with gVisor's header package,
// trimming p.Len to the length the header claims. It knows the IPv6
// fragment header and no other extension header, which is all these tests
// need.
func view(p *packet.Packet) error {
	b := p.Data()
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		if !ip.IsValid(len(b)) {
			return fmt.Errorf("invalid IPv4 header")
		}
		p.Len = int(ip.TotalLength())
		p.Version, p.HeaderLen, p.Proto = header.IPv4Version, int(ip.HeaderLength()), ip.Protocol()
		p.Src = netip.AddrFrom4([4]byte(ip.SourceAddressSlice()))
		p.Dst = netip.AddrFrom4([4]byte(ip.DestinationAddressSlice()))
		p.NonFirstFragment = ip.FragmentOffset() != 0
		p.Fragment = p.NonFirstFragment || ip.More()
	case header.IPv6Version:
		ip := header.IPv6(b)
		if !ip.IsValid(len(b)) {
			return fmt.Errorf("invalid IPv6 header")
		}
		p.Len = header.IPv6MinimumSize + int(ip.PayloadLength())
		p.Version, p.HeaderLen, p.Proto = header.IPv6Version, header.IPv6MinimumSize, ip.NextHeader()
		p.Src = netip.AddrFrom16([16]byte(ip.SourceAddressSlice()))
		p.Dst = netip.AddrFrom16([16]byte(ip.DestinationAddressSlice()))
		p.Fragment, p.NonFirstFragment = false, false
		if p.Proto == header.IPv6FragmentHeader {
			f := header.IPv6Fragment(p.Data()[header.IPv6MinimumSize:])
			if !f.IsValid() {
				return fmt.Errorf("short IPv6 fragment header")
			}
			p.HeaderLen += header.IPv6FragmentHeaderSize
			p.Proto = f.NextHeader()
			p.Fragment, p.NonFirstFragment = true, f.FragmentOffset() != 0
		}
	default:
		return fmt.Errorf("not IP")
	}
	return nil
}

// want is what an error built from a packet must look like.
type want struct {
	src, dst netip.Addr
	typ      uint8
	code     uint8
	mtu      uint32 // the second word of the ICMP header
}

// checkError parses p with gVisor's header package and reports how it
// differs from an error built from orig as w describes.
func checkError(p *packet.Packet, orig []byte, w want) error {
	if p.Start != headroom {
		return fmt.Errorf("Start = %d, want %d", p.Start, headroom)
	}
	if p.Origin != packet.Local || p.In != packet.NoInterface || p.Fragment || p.NonFirstFragment {
		return fmt.Errorf("view: Origin %v In %d Fragment %v NonFirst %v", p.Origin, p.In, p.Fragment, p.NonFirstFragment)
	}
	if p.Src != w.src || p.Dst != w.dst {
		return fmt.Errorf("view: %v -> %v, want %v -> %v", p.Src, p.Dst, w.src, w.dst)
	}
	b := p.Data()
	var embedded []byte
	var limit int
	switch header.IPVersion(b) {
	case header.IPv4Version:
		ip := header.IPv4(b)
		switch {
		case !ip.IsValid(len(b)) || int(ip.TotalLength()) != len(b):
			return fmt.Errorf("bad IPv4 header or length %d", len(b))
		case !ip.IsChecksumValid():
			return fmt.Errorf("bad IPv4 header checksum")
		case ip.HeaderLength() != header.IPv4MinimumSize || ip.Protocol() != uint8(header.ICMPv4ProtocolNumber) || ip.TTL() != hopLimit:
			return fmt.Errorf("IPv4 header: hl %d proto %d ttl %d", ip.HeaderLength(), ip.Protocol(), ip.TTL())
		case ip.Flags() != 0 || ip.FragmentOffset() != 0:
			return fmt.Errorf("IPv4 error is fragmented: flags %d offset %d", ip.Flags(), ip.FragmentOffset())
		case p.Version != 4 || p.HeaderLen != header.IPv4MinimumSize || p.Proto != uint8(header.ICMPv4ProtocolNumber):
			return fmt.Errorf("view: version %d hl %d proto %d", p.Version, p.HeaderLen, p.Proto)
		}
		if got := netip.AddrFrom4([4]byte(ip.SourceAddressSlice())); got != w.src {
			return fmt.Errorf("IPv4 src %v, want %v", got, w.src)
		}
		if got := netip.AddrFrom4([4]byte(ip.DestinationAddressSlice())); got != w.dst {
			return fmt.Errorf("IPv4 dst %v, want %v", got, w.dst)
		}
		icmp := header.ICMPv4(ip.Payload())
		if checksum.Checksum(icmp, 0) != 0xffff {
			return fmt.Errorf("bad ICMP checksum")
		}
		if uint8(icmp.Type()) != w.typ || uint8(icmp.Code()) != w.code {
			return fmt.Errorf("ICMP %d/%d, want %d/%d", icmp.Type(), icmp.Code(), w.typ, w.code)
		}
		if second := uint32(icmp.Ident())<<16 | uint32(icmp.MTU()); second != w.mtu {
			return fmt.Errorf("ICMP second word %#x, want %#x", second, w.mtu)
		}
		embedded, limit = icmp.Payload(), maxV4
	case header.IPv6Version:
		ip := header.IPv6(b)
		switch {
		case !ip.IsValid(len(b)) || header.IPv6MinimumSize+int(ip.PayloadLength()) != len(b):
			return fmt.Errorf("bad IPv6 header or length %d", len(b))
		case ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) || ip.HopLimit() != hopLimit:
			return fmt.Errorf("IPv6 header: next %d hop limit %d", ip.NextHeader(), ip.HopLimit())
		case p.Version != 6 || p.HeaderLen != header.IPv6MinimumSize || p.Proto != uint8(header.ICMPv6ProtocolNumber):
			return fmt.Errorf("view: version %d hl %d proto %d", p.Version, p.HeaderLen, p.Proto)
		}
		if got := netip.AddrFrom16([16]byte(ip.SourceAddressSlice())); got != w.src {
			return fmt.Errorf("IPv6 src %v, want %v", got, w.src)
		}
		if got := netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())); got != w.dst {
			return fmt.Errorf("IPv6 dst %v, want %v", got, w.dst)
		}
		icmp := header.ICMPv6(ip.Payload())
		sum := header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
			Header:      icmp[:header.ICMPv6ErrorHeaderSize],
			Src:         ip.SourceAddress(),
			Dst:         ip.DestinationAddress(),
			PayloadCsum: checksum.Checksum(icmp.Payload(), 0),
			PayloadLen:  len(icmp.Payload()),
		})
		if sum != icmp.Checksum() {
			return fmt.Errorf("bad ICMPv6 checksum %#x, want %#x", icmp.Checksum(), sum)
		}
		if uint8(icmp.Type()) != w.typ || uint8(icmp.Code()) != w.code {
			return fmt.Errorf("ICMPv6 %d/%d, want %d/%d", icmp.Type(), icmp.Code(), w.typ, w.code)
		}
		if icmp.TypeSpecific() != w.mtu {
			return fmt.Errorf("ICMPv6 second word %#x, want %#x", icmp.TypeSpecific(), w.mtu)
		}
		embedded, limit = icmp.Payload(), maxV6
	default:
		return fmt.Errorf("result is not IP")
	}
	if len(b) > limit {
		return fmt.Errorf("error is %d bytes, limit %d", len(b), limit)
	}
	wantEmbedded := orig[:min(len(orig), limit-(len(b)-len(embedded)))]
	if !bytes.Equal(embedded, wantEmbedded) {
		return fmt.Errorf("embedded original differs: %d bytes, want the first %d of %d", len(embedded), len(wantEmbedded), len(orig))
	}
	return nil
}
