package router

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// udp4 is an IPv4 UDP packet built with gVisor's header package.
type udp4 struct {
	src, dst   string
	ttl        uint8
	payload    int
	dontFrag   bool
	sport, dpt uint16
	data       []byte // the payload, when given; else payload counting bytes
}

func (u udp4) bytes() []byte {
	if u.data != nil {
		u.payload = len(u.data)
	}
	src, dst := netip.MustParseAddr(u.src), netip.MustParseAddr(u.dst)
	total := header.IPv4MinimumSize + header.UDPMinimumSize + u.payload
	b := make([]byte, total)
	ip := header.IPv4(b)
	var flags uint8
	if u.dontFrag {
		flags = header.IPv4FlagDontFragment
	}
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(total), TTL: u.ttl, Protocol: uint8(header.UDPProtocolNumber), Flags: flags, ID: 7,
		SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	udp := header.UDP(ip.Payload())
	udp.Encode(&header.UDPFields{SrcPort: u.sport, DstPort: u.dpt, Length: uint16(header.UDPMinimumSize + u.payload)})
	for i := range u.payload {
		udp.Payload()[i] = byte(i)
	}
	if u.data != nil {
		copy(udp.Payload(), u.data)
	}
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), udp.Length())
	udp.SetChecksum(^udp.CalculateChecksum(checksum.Checksum(udp.Payload(), xsum)))
	return b
}

// udp6 is an IPv6 UDP packet.
type udp6 struct {
	src, dst string
	hops     uint8
	payload  int
}

func (u udp6) bytes() []byte {
	src, dst := netip.MustParseAddr(u.src), netip.MustParseAddr(u.dst)
	plen := header.UDPMinimumSize + u.payload
	b := make([]byte, header.IPv6MinimumSize+plen)
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength: uint16(plen), TransportProtocol: header.UDPProtocolNumber, HopLimit: u.hops,
		SrcAddr: tcpip.AddrFrom16(src.As16()), DstAddr: tcpip.AddrFrom16(dst.As16()),
	})
	udp := header.UDP(ip.Payload())
	udp.Encode(&header.UDPFields{SrcPort: 1000, DstPort: 2000, Length: uint16(plen)})
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), udp.Length())
	udp.SetChecksum(^udp.CalculateChecksum(checksum.Checksum(udp.Payload(), xsum)))
	return b
}

// echo4 is an ICMPv4 echo request.
func echo4(src, dst string, ttl uint8) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	total := header.IPv4MinimumSize + header.ICMPv4MinimumSize + 8
	b := make([]byte, total)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(total), TTL: ttl, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(s.As4()), DstAddr: tcpip.AddrFrom4(d.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	icmp := header.ICMPv4(ip.Payload())
	icmp.SetType(header.ICMPv4Echo)
	icmp.SetIdent(42)
	icmp.SetSequence(1)
	icmp.SetChecksum(header.ICMPv4Checksum(icmp, 0))
	return b
}

// syn4 is an IPv4 TCP SYN.
func syn4(src string, sport uint16, dst string, dport uint16) []byte {
	return tcp4(src, sport, dst, dport, header.TCPFlagSyn, 1, 0)
}

// tcp4 is an IPv4 TCP segment without payload.
func tcp4(src string, sport uint16, dst string, dport uint16, flags header.TCPFlags, seq, ack uint32) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	total := header.IPv4MinimumSize + header.TCPMinimumSize
	b := make([]byte, total)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(total), TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(s.As4()), DstAddr: tcpip.AddrFrom4(d.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(ip.Payload())
	tcp.Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, SeqNum: seq, AckNum: ack, DataOffset: header.TCPMinimumSize, Flags: flags, WindowSize: 65535})
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(tcp)))
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	return b
}
