package link

import (
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// udpPacket builds an IPv4 or IPv6 UDP packet with valid checksums.
func udpPacket(src, dst netip.AddrPort, payload []byte) []byte {
	s, d := tcpip.AddrFromSlice(src.Addr().AsSlice()), tcpip.AddrFromSlice(dst.Addr().AsSlice())
	udpLen := header.UDPMinimumSize + len(payload)
	var pkt, udp []byte
	if src.Addr().Is4() {
		pkt = make([]byte, header.IPv4MinimumSize+udpLen)
		ip := header.IPv4(pkt)
		ip.Encode(&header.IPv4Fields{
			TotalLength: uint16(len(pkt)),
			TTL:         64,
			Protocol:    uint8(header.UDPProtocolNumber),
			SrcAddr:     s,
			DstAddr:     d,
		})
		ip.SetChecksum(^ip.CalculateChecksum())
		udp = ip.Payload()
	} else {
		pkt = make([]byte, header.IPv6MinimumSize+udpLen)
		ip := header.IPv6(pkt)
		ip.Encode(&header.IPv6Fields{
			PayloadLength:     uint16(udpLen),
			TransportProtocol: header.UDPProtocolNumber,
			HopLimit:          64,
			SrcAddr:           s,
			DstAddr:           d,
		})
		udp = ip.Payload()
	}
	u := header.UDP(udp)
	u.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(udpLen)})
	copy(u.Payload(), payload)
	sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, s, d, uint16(udpLen))
	u.SetChecksum(^u.CalculateChecksum(checksum.Checksum(payload, sum)))
	return pkt
}

type datagram struct {
	src, dst netip.AddrPort
	payload  string
}

// parseUDP returns the UDP datagram in pkt if pkt is a valid IP packet
// carrying one with correct checksums (the kernel leaves them to the device
// with offload, so this also checks the GSO split).
func parseUDP(pkt []byte) (datagram, bool) {
	var src, dst tcpip.Address
	var payload []byte
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		ip := header.IPv4(pkt)
		if !ip.IsValid(len(pkt)) || !ip.IsChecksumValid() || ip.TransportProtocol() != header.UDPProtocolNumber {
			return datagram{}, false
		}
		src, dst, payload = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	case header.IPv6Version:
		ip := header.IPv6(pkt)
		// The datagrams of these tests carry no extension headers.
		if !ip.IsValid(len(pkt)) || ip.NextHeader() != uint8(header.UDPProtocolNumber) {
			return datagram{}, false
		}
		src, dst, payload = ip.SourceAddress(), ip.DestinationAddress(), ip.Payload()
	default:
		return datagram{}, false
	}
	u := header.UDP(payload)
	if len(u) < header.UDPMinimumSize || int(u.Length()) != len(u) ||
		!u.IsChecksumValid(src, dst, checksum.Checksum(u.Payload(), 0)) {
		return datagram{}, false
	}
	s, _ := netip.AddrFromSlice(src.AsSlice())
	d, _ := netip.AddrFromSlice(dst.AsSlice())
	return datagram{
		src:     netip.AddrPortFrom(s, u.SourcePort()),
		dst:     netip.AddrPortFrom(d, u.DestinationPort()),
		payload: string(u.Payload()),
	}, true
}

// readLoop reads q until it fails and sends a copy of every packet. The
// channel closes when Read returns an error, i.e. when the test closes q.
func readLoop(q *Queue) <-chan []byte {
	out := make(chan []byte, 1024)
	go func() {
		defer close(out)
		bufs, sizes := newBufs(q.BatchSize())
		for {
			n, err := q.Read(bufs, sizes, testHeadroom)
			if err != nil {
				return
			}
			for i := range n {
				out <- append([]byte(nil), bufs[i][testHeadroom:testHeadroom+sizes[i]]...)
			}
		}
	}()
	return out
}

// expectUDP waits for n datagrams to dst from pkts, skipping the kernel's
// own traffic on the link (IPv6 router solicitations, MLD reports).
func expectUDP(t *testing.T, pkts <-chan []byte, dst netip.AddrPort, n int) []datagram {
	t.Helper()
	var got []datagram
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case pkt, ok := <-pkts:
			if !ok {
				t.Fatalf("device closed after %d of %d datagrams to %s", len(got), n, dst)
			}
			if d, ok := parseUDP(pkt); ok && d.dst == dst {
				got = append(got, d)
			}
		case <-timeout:
			t.Fatalf("got %d of %d datagrams to %s", len(got), n, dst)
		}
	}
	return got
}

func TestUDPPacketRoundTrip(t *testing.T) {
	for _, tc := range []struct{ src, dst string }{
		{"10.201.250.7:7777", "10.201.1.2:9"},
		{"[fd20:201:250::7]:7777", "[fd20:201:1::2]:9"},
	} {
		src, dst := netip.MustParseAddrPort(tc.src), netip.MustParseAddrPort(tc.dst)
		got, ok := parseUDP(udpPacket(src, dst, []byte("hello")))
		if want := (datagram{src, dst, "hello"}); !ok || got != want {
			t.Errorf("parseUDP(udpPacket(%s → %s)) = %+v, %v; want %+v", src, dst, got, ok, want)
		}
	}
}
