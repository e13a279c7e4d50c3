package link

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var (
	kernelMAC = tcpip.LinkAddress("\x0a\x00\x00\x00\x00\x01")
	routerMAC = tcpip.LinkAddress("\x0a\x00\x00\x00\x00\x02")
)

// superFrameSpec describes a TCP super-frame as the kernel hands it over
// with IFF_VNET_HDR: checksum partial, gso_size set.
type superFrameSpec struct {
	src, dst netip.AddrPort
	vlan     bool
	flags    header.TCPFlags
	mss      int
	payload  []byte
}

const testSeq = 0xfffff000 // wraps within the payload

// build returns the super-frame with its virtio-net header in front.
func (s superFrameSpec) build() []byte {
	ipLen := header.IPv4MinimumSize
	gso := uint8(vnetGSOTCPv4)
	if s.src.Addr().Is6() {
		ipLen, gso = header.IPv6MinimumSize, vnetGSOTCPv6
	}
	if s.flags&header.TCPFlagCwr != 0 {
		gso |= vnetGSOECN
	}
	l2 := EthernetHeaderLen
	if s.vlan {
		l2 += 4
	}
	tcpLen := header.TCPMinimumSize + 12 // with options, as Linux sends them
	b := make([]byte, vnetHdrLen+l2+ipLen+tcpLen+len(s.payload))
	frame := b[vnetHdrLen:]
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: kernelMAC, DstAddr: routerMAC, Type: header.IPv4ProtocolNumber})
	if s.vlan {
		// The tag goes between the MACs and the EtherType.
		copy(frame[16:], frame[12:14])
		binary.BigEndian.PutUint16(frame[12:], 0x8100)
		binary.BigEndian.PutUint16(frame[14:], 7)
	}
	if s.src.Addr().Is6() {
		binary.BigEndian.PutUint16(frame[l2-2:], uint16(header.IPv6ProtocolNumber))
	}
	srcA, dstA := tcpip.AddrFromSlice(s.src.Addr().AsSlice()), tcpip.AddrFromSlice(s.dst.Addr().AsSlice())
	ip := frame[l2:]
	if s.src.Addr().Is4() {
		header.IPv4(ip).Encode(&header.IPv4Fields{
			TotalLength: uint16(len(ip)), ID: 0xfffe, TTL: 64, Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr: srcA, DstAddr: dstA,
		})
		header.IPv4(ip).SetChecksum(^header.IPv4(ip).CalculateChecksum())
	} else {
		header.IPv6(ip).Encode(&header.IPv6Fields{
			PayloadLength: uint16(len(ip) - ipLen), TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: srcA, DstAddr: dstA,
		})
	}
	tcp := header.TCP(ip[ipLen:])
	tcp.Encode(&header.TCPFields{
		SrcPort: s.src.Port(), DstPort: s.dst.Port(), SeqNum: testSeq, AckNum: 1,
		DataOffset: uint8(tcpLen), Flags: s.flags, WindowSize: 512,
	})
	copy(tcp[tcpLen:], s.payload)
	// Partial checksum: the pseudo-header sum, not complemented.
	tcp.SetChecksum(header.PseudoHeaderChecksum(header.TCPProtocolNumber, srcA, dstA, uint16(len(tcp))))
	csumStart := l2 + ipLen
	binary.NativeEndian.PutUint16(b[4:], uint16(s.mss))
	binary.NativeEndian.PutUint16(b[6:], uint16(csumStart))
	binary.NativeEndian.PutUint16(b[8:], 16)
	b[0], b[1] = vnetNeedsCsum, gso
	binary.NativeEndian.PutUint16(b[2:], uint16(csumStart+tcpLen))
	return b
}

// tcpSegment is what checkSegment found in a frame.
type tcpSegment struct {
	seq     uint32
	flags   header.TCPFlags
	payload []byte
	ipID    uint16
}

// checkSegment validates one frame (Ethernet header on) as the kernel
// would receive it: lengths, IPv4 header checksum, TCP checksum.
func checkSegment(frame []byte, vlan bool) (tcpSegment, error) {
	l2 := EthernetHeaderLen
	if vlan {
		l2 += 4
	}
	ip := frame[l2:]
	var srcA, dstA tcpip.Address
	var tcp header.TCP
	var id uint16
	switch header.IPVersion(ip) {
	case header.IPv4Version:
		h := header.IPv4(ip)
		if !h.IsValid(len(ip)) || int(h.TotalLength()) != len(ip) || !h.IsChecksumValid() {
			return tcpSegment{}, fmt.Errorf("bad IPv4 header % x", ip[:20])
		}
		srcA, dstA, tcp, id = h.SourceAddress(), h.DestinationAddress(), header.TCP(h.Payload()), h.ID()
	case header.IPv6Version:
		h := header.IPv6(ip)
		if !h.IsValid(len(ip)) || int(h.PayloadLength())+header.IPv6MinimumSize != len(ip) {
			return tcpSegment{}, fmt.Errorf("bad IPv6 header % x", ip[:40])
		}
		srcA, dstA, tcp = h.SourceAddress(), h.DestinationAddress(), header.TCP(h.Payload())
	default:
		return tcpSegment{}, fmt.Errorf("not IP: % x", ip[:1])
	}
	payload := tcp[tcp.DataOffset():]
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, srcA, dstA, uint16(len(tcp)))
	if !tcp.IsChecksumValid(srcA, dstA, checksum.Checksum(payload, 0), uint16(len(payload))) {
		return tcpSegment{}, fmt.Errorf("bad TCP checksum %#04x (pseudo %#04x)", tcp.Checksum(), sum)
	}
	return tcpSegment{seq: tcp.SequenceNumber(), flags: tcp.Flags(), payload: payload, ipID: id}, nil
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// TestTAPSegments feeds super-frames to a TAP's read path and checks the
// segments as the kernel's TCP receiver would, with and without enough
// buffers for all of them.
func TestTAPSegments(t *testing.T) {
	v4 := [2]netip.AddrPort{netip.MustParseAddrPort("10.201.46.2:40000"), netip.MustParseAddrPort("10.201.250.7:5001")}
	v6 := [2]netip.AddrPort{netip.MustParseAddrPort("[fd20:201:46::2]:40000"), netip.MustParseAddrPort("[fd20:201:250::7]:5001")}
	for _, tc := range []struct {
		name  string
		ends  [2]netip.AddrPort
		vlan  bool
		flags header.TCPFlags
		size  int
		mss   int
		nbufs int
	}{
		{"v4", v4, false, header.TCPFlagAck | header.TCPFlagPsh, 10000, 1448, 16},
		{"v6", v6, false, header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin, 10000, 1428, 16},
		{"v4 uneven last", v4, false, header.TCPFlagAck, 3001, 1000, 4},
		{"v4 ecn", v4, false, header.TCPFlagAck | header.TCPFlagCwr | header.TCPFlagPsh, 4000, 1000, 8},
		{"v6 vlan", v6, true, header.TCPFlagAck, 5000, 1200, 8},
		{"v4 64KiB", v4, false, header.TCPFlagAck, 65535 - 52, 1448, 128},
		{"v4 carried over 3 reads", v4, false, header.TCPFlagAck | header.TCPFlagPsh, 10000, 1000, 4},
		{"v6 one buffer", v6, false, header.TCPFlagAck, 3000, 1428, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := superFrameSpec{src: tc.ends[0], dst: tc.ends[1], vlan: tc.vlan, flags: tc.flags, mss: tc.mss, payload: pattern(tc.size)}
			raw := spec.build()
			segs := readSegments(t, raw, tc.nbufs)
			want := (tc.size + tc.mss - 1) / tc.mss
			if len(segs) != want {
				t.Fatalf("%d segments, want %d", len(segs), want)
			}
			var got []byte
			for i, f := range segs {
				s, err := checkSegment(f, tc.vlan)
				if err != nil {
					t.Fatalf("segment %d: %v", i, err)
				}
				if s.seq != testSeq+uint32(len(got)) {
					t.Errorf("segment %d: seq %#x, want %#x", i, s.seq, testSeq+uint32(len(got)))
				}
				if len(s.payload) > tc.mss {
					t.Errorf("segment %d: %d bytes of payload, mss %d", i, len(s.payload), tc.mss)
				}
				wantFlags := tc.flags
				if i > 0 {
					wantFlags &^= header.TCPFlagCwr
				}
				if i < len(segs)-1 {
					wantFlags &^= header.TCPFlagFin | header.TCPFlagPsh
				}
				if s.flags != wantFlags {
					t.Errorf("segment %d: flags %v, want %v", i, s.flags, wantFlags)
				}
				if tc.ends[0].Addr().Is4() && s.ipID != 0xfffe+uint16(i) {
					t.Errorf("segment %d: IPv4 ID %#x, want %#x", i, s.ipID, 0xfffe+uint16(i))
				}
				if !bytes.Equal(f[:12], raw[vnetHdrLen:vnetHdrLen+12]) {
					t.Errorf("segment %d: MACs % x", i, f[:12])
				}
				got = append(got, s.payload...)
			}
			if !bytes.Equal(got, spec.payload) {
				t.Error("the segments' payloads do not make up the super-frame's")
			}
		})
	}
}

// readSegments runs raw (virtio-net header and frame) through the TAP read
// path as if read(2) had put it in bufs[0], with nbufs buffers per Read,
// and returns the frames of every Read until the super-frame is consumed.
func readSegments(t *testing.T, raw []byte, nbufs int) [][]byte {
	t.Helper()
	tp := &TAP{vnet: true}
	var frames [][]byte
	bufs, sizes := newBufs(nbufs)
	collect := func(n int) {
		for i := range n {
			frames = append(frames, bytes.Clone(bufs[i][testHeadroom-EthernetHeaderLen:testHeadroom+sizes[i]]))
		}
	}
	b := bufs[0][testHeadroom-EthernetHeaderLen-vnetHdrLen:]
	n := tp.takeVnet(bufs, sizes, testHeadroom, 0, b[:copy(b, raw)])
	collect(n)
	for reads := 1; tp.carried < tp.carry.segs; reads++ {
		if reads > len(raw) {
			t.Fatal("the carried super-frame never runs out")
		}
		collect(tp.takeCarried(bufs, sizes, testHeadroom))
	}
	if d := tp.Drops(); d != (ReadDrops{}) {
		t.Errorf("drops %+v", d)
	}
	return frames
}

// TestTAPSuperFrameRejects checks that frames the segmentation cannot trust
// are dropped and counted, not returned or cut at random.
func TestTAPSuperFrameRejects(t *testing.T) {
	spec := superFrameSpec{
		src: netip.MustParseAddrPort("10.201.46.2:40000"), dst: netip.MustParseAddrPort("10.201.250.7:5001"),
		flags: header.TCPFlagAck, mss: 1000, payload: pattern(3000),
	}
	for _, tc := range []struct {
		name  string
		spoil func(b []byte) []byte
	}{
		{"UDP GSO type", func(b []byte) []byte { b[1] = 5; return b }},
		{"csum_start not at TCP", func(b []byte) []byte { binary.NativeEndian.PutUint16(b[6:], 30); return b }},
		{"csum_start beyond the frame", func(b []byte) []byte { binary.NativeEndian.PutUint16(b[6:], 60000); return b }},
		{"no NEEDS_CSUM", func(b []byte) []byte { b[0] = 0; return b }},
		{"gso_size 0", func(b []byte) []byte { binary.NativeEndian.PutUint16(b[4:], 0); return b }},
		{"not TCP", func(b []byte) []byte { b[vnetHdrLen+EthernetHeaderLen+9] = 17; return b }},
		{"IPv6 type on IPv4", func(b []byte) []byte { b[1] = vnetGSOTCPv6; return b }},
		{"headers only", func(b []byte) []byte { return b[:vnetHdrLen+EthernetHeaderLen+20+32] }},
		{"cut in the TCP header", func(b []byte) []byte { return b[:vnetHdrLen+EthernetHeaderLen+20+10] }},
		{"partial checksum outside", func(b []byte) []byte {
			b[1] = vnetGSONone
			binary.NativeEndian.PutUint16(b[8:], 6000)
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp := &TAP{vnet: true}
			bufs, sizes := newBufs(8)
			raw := tc.spoil(spec.build())
			b := bufs[0][testHeadroom-EthernetHeaderLen-vnetHdrLen:]
			if n := tp.takeVnet(bufs, sizes, testHeadroom, 0, b[:copy(b, raw)]); n != 0 {
				t.Errorf("returned %d frames", n)
			}
			if d := tp.Drops(); d != (ReadDrops{Malformed: 1}) {
				t.Errorf("drops %+v, want one malformed", d)
			}
		})
	}
}

// TestCompleteChecksum finishes partial UDP and TCP checksums, including
// the UDP sum that comes out zero and must be sent as 0xffff.
func TestCompleteChecksum(t *testing.T) {
	src, dst := netip.MustParseAddrPort("10.201.46.2:4000"), netip.MustParseAddrPort("10.201.46.9:5000")
	for _, payload := range [][]byte{[]byte("partial"), nil} {
		pkt := udpPacket(src, dst, payload)
		udp := header.UDP(pkt[header.IPv4MinimumSize:])
		if payload == nil {
			// Choose the ports so that the full sum is 0xffff: the
			// complement, the checksum, is then 0.
			udp.SetChecksum(0)
			udp.SetSourcePort(0)
			sum := header.PseudoHeaderChecksum(header.UDPProtocolNumber,
				tcpip.AddrFromSlice(src.Addr().AsSlice()), tcpip.AddrFromSlice(dst.Addr().AsSlice()), uint16(len(udp)))
			udp.SetSourcePort(^checksum.Checksum(udp, sum))
		}
		want := udp.Checksum()
		if payload == nil {
			want = 0xffff
		}
		frame := make([]byte, EthernetHeaderLen+len(pkt))
		copy(frame[EthernetHeaderLen:], pkt)
		start := EthernetHeaderLen + header.IPv4MinimumSize
		u := header.UDP(frame[start:])
		u.SetChecksum(header.PseudoHeaderChecksum(header.UDPProtocolNumber,
			tcpip.AddrFromSlice(src.Addr().AsSlice()), tcpip.AddrFromSlice(dst.Addr().AsSlice()), uint16(len(u))))
		h := vnetHdr{flags: vnetNeedsCsum, csumStart: uint16(start), csumOffset: udpChecksumOffset}
		if !completeChecksum(h, frame) || u.Checksum() != want {
			t.Errorf("payload %q: checksum %#04x, want %#04x", payload, u.Checksum(), want)
		}
	}
}
