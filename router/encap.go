package router

import (
	"net/netip"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// Packets the router itself writes for the load balancer: the IP-in-IP
// header of a tunnel service, and the reset that ends a flow whose backend
// is gone. Both are built in place, in the packet's own buffer.

// ipipHeader is the outer header of IP-in-IP, an IPv4 header without
// options.
const ipipHeader = header.IPv4MinimumSize

// outerTTL is the outer header's TTL: RFC 2003 §3.1 leaves it to the
// encapsulator ("the default TTL for the encapsulator's IP host").
const outerTTL = 64

// protoIPIP is IP in IP's protocol number (RFC 2003 §3: "the Protocol
// field in the outer IP header is set to 4").
const protoIPIP = 4

// outerID numbers the outer headers the router makes.
var outerID atomic.Uint32

// encapsulate wraps p, an IPv4 packet, in an IPv4 header from the router's
// address on p.Out to p.TunnelTo (RFC 2003 §3), and re-parses p as the
// outer packet, for the ttl stage and output. A packet with DF set that
// would not fit the egress link after the 20 more bytes is answered with
// Fragmentation Needed for the MTU that leaves room for them, about the
// inner packet as its sender sent it (RFC 2003 §4: the encapsulator
// relays the tunnel's MTU to the sender). The inner TTL stays: the packet
// was addressed to the VIP, one of the router's own addresses, which sends
// it on rather than forwards it (as IPVS does), and RFC 2003 §3.1
// decrements it only when tunneling is part of forwarding.
func (r *Router) encapsulate(s *snapshot, p *packet.Packet) packet.Verdict {
	to := p.TunnelTo
	inner := header.IPv4(p.Data())
	mtu := s.ifaces[p.Out].mtu
	df := inner.Flags()&header.IPv4FlagDontFragment != 0
	if df && p.Len+ipipHeader > mtu {
		return r.answer(s, p, icmperr.FragNeeded, uint32(mtu-ipipHeader), packet.ReasonTooBig)
	}
	from := s.ifaces[p.Out].v4
	if !from.IsValid() || p.Start+p.Len+ipipHeader > cap(p.Buf) || p.Len+ipipHeader > 0xffff {
		return packet.Drop(packet.ReasonNATUnsupported)
	}
	// RFC 2003 §3.1: "Don't Fragment flag: Copied from the inner IP
	// header", so the tunnel takes part in Path MTU Discovery.
	var flags uint8
	if df {
		flags = header.IPv4FlagDontFragment
	}
	tos, _ := inner.TOS()
	// The outer header goes where the packet starts, which is where the
	// devices write from; the packet moves up to make room.
	p.Buf = p.Buf[:cap(p.Buf)]
	copy(p.Buf[p.Start+ipipHeader:], p.Data())
	p.Len += ipipHeader
	outer := header.IPv4(p.Data())
	outer.Encode(&header.IPv4Fields{
		TOS:         tos,
		TotalLength: uint16(p.Len),
		ID:          uint16(outerID.Add(1)),
		Flags:       flags,
		TTL:         outerTTL,
		Protocol:    protoIPIP,
		SrcAddr:     tcpip.AddrFrom4(from.As4()),
		DstAddr:     tcpip.AddrFrom4(to.As4()),
	})
	outer.SetChecksum(^outer.CalculateChecksum())
	p.TunnelTo = netip.Addr{}
	if reason := p.Parse(); reason != packet.ReasonNone {
		return packet.Drop(reason)
	}
	return packet.Continue
}

// tcpReset turns p, a TCP segment in direction d of a flow that is to end,
// into the reset its sender gets (RFC 9293 §3.5.2: "If the incoming
// segment has the ACK bit set, the reset takes its sequence number from
// the ACK field of the segment; otherwise, the reset has sequence number
// zero and the ACK field is set to the sum of the sequence number and
// segment length of the incoming segment"). It comes from where p was
// going, as the client knows it: the flow's key in direction d, reversed.
// It reports false, leaving p alone, when p is not a whole TCP segment.
func tcpReset(p *packet.Packet, arrived conntrack.Key) bool {
	if p.Proto != uint8(header.TCPProtocolNumber) || !p.HasPorts || p.Fragment {
		return false
	}
	seg := header.TCP(p.Data()[p.HeaderLen:])
	if len(seg) < header.TCPMinimumSize || int(seg.DataOffset()) > len(seg) {
		return false
	}
	if seg.Flags()&header.TCPFlagRst != 0 {
		return false // never a reset for a reset
	}
	segLen := uint32(len(seg) - int(seg.DataOffset()))
	if seg.Flags()&header.TCPFlagSyn != 0 {
		segLen++
	}
	if seg.Flags()&header.TCPFlagFin != 0 {
		segLen++
	}
	fields := header.TCPFields{
		SrcPort: arrived.DstPort, DstPort: arrived.SrcPort,
		DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagRst,
	}
	if seg.Flags()&header.TCPFlagAck != 0 {
		fields.SeqNum = seg.AckNumber()
	} else {
		fields.Flags |= header.TCPFlagAck
		fields.AckNum = seg.SequenceNumber() + segLen
	}
	src, dst := arrived.Dst, arrived.Src
	b := p.Data()[:p.HeaderLen+header.TCPMinimumSize]
	if p.Version == header.IPv4Version {
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: header.IPv4MinimumSize + header.TCPMinimumSize, TTL: outerTTL, Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4()),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		p.HeaderLen = header.IPv4MinimumSize
	} else {
		ip := header.IPv6(b)
		ip.Encode(&header.IPv6Fields{
			PayloadLength: header.TCPMinimumSize, TransportProtocol: header.TCPProtocolNumber, HopLimit: outerTTL,
			SrcAddr: tcpip.AddrFrom16(src.As16()), DstAddr: tcpip.AddrFrom16(dst.As16()),
		})
		p.HeaderLen = header.IPv6MinimumSize
	}
	p.Len = p.HeaderLen + header.TCPMinimumSize
	tcp := header.TCP(p.Data()[p.HeaderLen:])
	tcp.Encode(&fields)
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, tcpAddr(src), tcpAddr(dst), header.TCPMinimumSize)
	tcp.SetChecksum(^tcp.CalculateChecksum(checksum.Combine(xsum, 0)))
	p.Src, p.Dst, p.SrcPort, p.DstPort = src, dst, fields.SrcPort, fields.DstPort
	p.TCPFlags = uint8(fields.Flags)
	p.Origin, p.In = packet.Local, packet.NoInterface
	return true
}

func tcpAddr(a netip.Addr) tcpip.Address {
	if a.Is4() {
		return tcpip.AddrFrom4(a.As4())
	}
	return tcpip.AddrFrom16(a.As16())
}
