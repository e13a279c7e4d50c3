package local

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Packet builders and checks for the tests, all through gVisor's header
// and checksum packages.

// headroom is the offset tests read at, as the router does for devices
// that need room in front of the packet.
const headroom = 16

func addr(a netip.Addr) tcpip.Address { return tcpip.AddrFromSlice(a.AsSlice()) }

// ipPacket wraps the transport segment l4 in an IPv4 or IPv6 header (by the
// family of src) from src to dst.
func ipPacket(src, dst netip.Addr, ttl uint8, proto tcpip.TransportProtocolNumber, l4 []byte) []byte {
	if src.Is4() {
		b := make([]byte, header.IPv4MinimumSize+len(l4))
		ip := header.IPv4(b)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)),
			ID:          1,
			TTL:         ttl,
			Protocol:    uint8(proto),
			SrcAddr:     addr(src),
			DstAddr:     addr(dst),
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		copy(ip.Payload(), l4)
		return b
	}
	b := make([]byte, header.IPv6MinimumSize+len(l4))
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(len(l4)),
		TransportProtocol: proto,
		HopLimit:          ttl,
		SrcAddr:           addr(src),
		DstAddr:           addr(dst),
	})
	copy(ip.Payload(), l4)
	return b
}

// echoRequest is an ICMP (v4 or v6, by the family of src) echo request.
func echoRequest(src, dst netip.Addr, ttl uint8, id, seq uint16, payload []byte) []byte {
	if src.Is4() {
		icmp := header.ICMPv4(make([]byte, header.ICMPv4MinimumSize+len(payload)))
		icmp.SetType(header.ICMPv4Echo)
		icmp.SetIdent(id)
		icmp.SetSequence(seq)
		copy(icmp.Payload(), payload)
		icmp.SetChecksum(header.ICMPv4Checksum(icmp[:header.ICMPv4MinimumSize], checksum.Checksum(payload, 0)))
		return ipPacket(src, dst, ttl, header.ICMPv4ProtocolNumber, icmp)
	}
	icmp := header.ICMPv6(make([]byte, header.ICMPv6EchoMinimumSize+len(payload)))
	icmp.SetType(header.ICMPv6EchoRequest)
	icmp.SetIdent(id)
	icmp.SetSequence(seq)
	copy(icmp.Payload(), payload)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header:      icmp[:header.ICMPv6EchoMinimumSize],
		Src:         addr(src),
		Dst:         addr(dst),
		PayloadCsum: checksum.Checksum(payload, 0),
		PayloadLen:  len(payload),
	}))
	return ipPacket(src, dst, ttl, header.ICMPv6ProtocolNumber, icmp)
}

func udpPacket(src, dst netip.Addr, ttl uint8, sport, dport uint16, payload []byte) []byte {
	u := header.UDP(make([]byte, header.UDPMinimumSize+len(payload)))
	u.Encode(&header.UDPFields{SrcPort: sport, DstPort: dport, Length: uint16(len(u))})
	copy(u.Payload(), payload)
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, addr(src), addr(dst), uint16(len(u)))
	u.SetChecksum(^u.CalculateChecksum(checksum.Checksum(payload, xsum)))
	return ipPacket(src, dst, ttl, header.UDPProtocolNumber, u)
}

func tcpSYN(src, dst netip.Addr, sport, dport uint16, seq uint32) []byte {
	tcp := header.TCP(make([]byte, header.TCPMinimumSize))
	tcp.Encode(&header.TCPFields{
		SrcPort:    sport,
		DstPort:    dport,
		SeqNum:     seq,
		DataOffset: header.TCPMinimumSize,
		Flags:      header.TCPFlagSyn,
		WindowSize: 65535,
	})
	xsum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, addr(src), addr(dst), uint16(len(tcp)))
	tcp.SetChecksum(^tcp.CalculateChecksum(xsum))
	return ipPacket(src, dst, 64, header.TCPProtocolNumber, tcp)
}

// parseIP checks that b is one valid IP packet with valid checksums (IPv4
// header and transport) and returns its header.
func parseIP(t *testing.T, b []byte) header.Network {
	t.Helper()
	var ip header.Network
	switch header.IPVersion(b) {
	case header.IPv4Version:
		h := header.IPv4(b)
		if !h.IsValid(len(b)) || int(h.TotalLength()) != len(b) {
			t.Fatalf("invalid IPv4 packet % x", b)
		}
		if !h.IsChecksumValid() {
			t.Fatalf("bad IPv4 header checksum in % x", b)
		}
		ip = h
	case header.IPv6Version:
		h := header.IPv6(b)
		if !h.IsValid(len(b)) || header.IPv6MinimumSize+int(h.PayloadLength()) != len(b) {
			t.Fatalf("invalid IPv6 packet % x", b)
		}
		ip = h
	default:
		t.Fatalf("not an IP packet: % x", b)
	}
	// Every transport checksum covers the whole segment and, except for
	// ICMPv4, the pseudo-header; a valid one sums to all ones.
	l4 := ip.Payload()
	xsum := checksum.Checksum(l4, 0)
	if p := ip.TransportProtocol(); p != header.ICMPv4ProtocolNumber {
		xsum = checksum.Combine(xsum, header.PseudoHeaderChecksum(p, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(l4))))
	}
	if xsum != 0xffff {
		t.Fatalf("bad transport checksum (sum %#04x) in % x", xsum, b)
	}
	return ip
}

// checkAddrs checks that ip goes from src to dst.
func checkAddrs(t *testing.T, ip header.Network, src, dst netip.Addr) {
	t.Helper()
	if ip.SourceAddress() != addr(src) || ip.DestinationAddress() != addr(dst) {
		t.Fatalf("packet %v -> %v, want %v -> %v", ip.SourceAddress(), ip.DestinationAddress(), src, dst)
	}
}

// collect reads everything s sends until s is closed.
func collect(s *Stack) <-chan []byte {
	ch := make(chan []byte, 256)
	go func() {
		defer close(ch)
		bufs := make([][]byte, s.BatchSize())
		for i := range bufs {
			bufs[i] = make([]byte, headroom+DefaultMTU)
		}
		sizes := make([]int, len(bufs))
		for {
			n, err := s.Read(bufs, sizes, headroom)
			for i := range n {
				ch <- bytes.Clone(bufs[i][headroom : headroom+sizes[i]])
			}
			if err != nil {
				return
			}
		}
	}()
	return ch
}

// next returns the next packet from ch, failing after a bounded wait.
func next(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case b, ok := <-ch:
		if !ok {
			t.Fatal("stack closed while waiting for a packet")
		}
		return b
	case <-time.After(2 * time.Second):
		t.Fatal("no packet from the stack within 2s")
		return nil
	}
}

// quiet fails if anything arrives on ch within d.
func quiet(t *testing.T, ch <-chan []byte, d time.Duration) {
	t.Helper()
	select {
	case b := <-ch:
		t.Fatalf("stack sent an unexpected packet: % x", b)
	case <-time.After(d):
	}
}
