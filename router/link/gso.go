package link

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// vnetHdrLen is the size of struct virtio_net_hdr, which a TAP opened with
// IFF_VNET_HDR puts in front of every frame, both ways.
const vnetHdrLen = 10

// From include/uapi/linux/virtio_net.h.
const (
	vnetNeedsCsum = 1    // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSONone   = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4  = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6  = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOECN    = 0x80 // VIRTIO_NET_HDR_GSO_ECN: the super-frame carries CWR
)

// tapOffloads are the offloads a TAP with IFF_VNET_HDR announces to the
// kernel: its side of the link then hands over TCP super-frames of up to
// 64 KiB with the checksum left to us, instead of segmenting and
// checksumming them itself. UDP segmentation (USO) is not asked for: no
// measurement called for its extra code.
const tapOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_TSO_ECN

// vnetHdr is a parsed virtio_net_hdr. Its fields are in the host's byte
// order: the kernel's "legacy" virtio layout, which a TAP uses unless told
// otherwise with TUNSETVNETLE/BE.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	gsoSize    uint16 // payload bytes per segment (the MSS)
	csumStart  uint16 // where checksumming starts, from the frame's start
	csumOffset uint16 // where the result goes, from csumStart
}

func parseVnetHdr(b []byte) vnetHdr {
	return vnetHdr{
		flags:   b[0],
		gsoType: b[1],
		// b[2:4] is hdr_len, a hint that the code below does not trust.
		gsoSize:    binary.NativeEndian.Uint16(b[4:]),
		csumStart:  binary.NativeEndian.Uint16(b[6:]),
		csumOffset: binary.NativeEndian.Uint16(b[8:]),
	}
}

// completeChecksum finishes a checksum the kernel left partial
// (CHECKSUM_PARTIAL): the field at csumStart+csumOffset holds the sum of
// the pseudo-header, and the sum from csumStart to the end of the frame,
// that field included, is the transport checksum. It reports false when
// the offsets lie outside the frame.
func completeChecksum(h vnetHdr, frame []byte) bool {
	start, field := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
	if start < EthernetHeaderLen || field+2 > len(frame) {
		return false
	}
	sum := ^checksum.Checksum(frame[start:], 0)
	if sum == 0 && h.csumOffset == udpChecksumOffset {
		// In UDP a zero checksum means "none"; a computed zero is sent as
		// all ones (RFC 768), as the kernel's skb_checksum_help does.
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(frame[field:], sum)
	return true
}

// udpChecksumOffset is where UDP's checksum sits in its header; TCP's is
// at 16, so the offset tells the two apart.
const udpChecksumOffset = 6

// superFrame is a TCP GSO super-frame: one Ethernet frame whose TCP payload
// is to be cut into segments of mss bytes, each with its own headers.
type superFrame struct {
	frame    []byte // the whole super-frame, from its Ethernet header
	ipStart  int    // offset of the IP header (14, or more behind VLAN tags)
	tcpStart int    // offset of the TCP header
	hdrLen   int    // offset of the payload: every header, copied into each segment
	mss      int
	v4       bool
	segs     int // how many segments the payload makes

	// The fields each segment changes, as the super-frame has them.
	id    uint16 // IPv4 ID
	seq   uint32
	flags header.TCPFlags
}

// parseSuperFrame checks a super-frame the kernel handed over with a TCPv4
// or TCPv6 GSO type and locates its headers. It trusts no length from the
// virtio header without checking it against the frame. IPv6 extension
// headers and IPv4 options the kernel could put there are refused or
// handled: the TCP header must directly follow a fixed IPv6 header, while
// IPv4 options are copied into every segment as the kernel would.
func parseSuperFrame(h vnetHdr, frame []byte) (superFrame, bool) {
	s := superFrame{frame: frame, ipStart: EthernetHeaderLen, tcpStart: int(h.csumStart), mss: int(h.gsoSize)}
	// 802.1Q and 802.1ad tags sit between the MACs and the EtherType.
	for s.ipStart+4 <= len(frame) && isVLAN(binary.BigEndian.Uint16(frame[s.ipStart-2:])) {
		s.ipStart += 4
	}
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSOTCPv4:
		s.v4 = true
		ip := header.IPv4(frame[s.ipStart:])
		if len(ip) < header.IPv4MinimumSize || ip.TransportProtocol() != header.TCPProtocolNumber ||
			s.ipStart+int(ip.HeaderLength()) != s.tcpStart {
			return superFrame{}, false
		}
	case vnetGSOTCPv6:
		ip := header.IPv6(frame[s.ipStart:])
		if len(ip) < header.IPv6MinimumSize || ip.NextHeader() != uint8(header.TCPProtocolNumber) ||
			s.ipStart+header.IPv6MinimumSize != s.tcpStart {
			return superFrame{}, false
		}
	default:
		return superFrame{}, false
	}
	if h.flags&vnetNeedsCsum == 0 || s.tcpStart+header.TCPMinimumSize > len(frame) || s.mss == 0 {
		return superFrame{}, false
	}
	tcp := header.TCP(frame[s.tcpStart:])
	s.hdrLen = s.tcpStart + int(tcp.DataOffset())
	if s.hdrLen < s.tcpStart+header.TCPMinimumSize || s.hdrLen >= len(frame) {
		return superFrame{}, false
	}
	s.segs = (len(frame) - s.hdrLen + s.mss - 1) / s.mss
	if s.v4 {
		s.id = header.IPv4(frame[s.ipStart:]).ID()
	}
	s.seq, s.flags = tcp.SequenceNumber(), tcp.Flags()
	return s, true
}

func isVLAN(etherType uint16) bool { return etherType == 0x8100 || etherType == 0x88a8 }

// segment writes segment i of s, a complete frame from its Ethernet header
// on, into dst and returns its length. The headers are the super-frame's
// with what the kernel's own TCP segmentation changes: the IPv4 total
// length, ID (one more per segment) and header checksum, the IPv6 payload
// length, the TCP sequence number, FIN and PSH only on the last segment,
// CWR only on the first, and a full TCP checksum. dst may be s.frame itself
// for i = 0 once every other segment has been written: the copies are then
// in place, and the fields that change were saved by parseSuperFrame.
func (s *superFrame) segment(i int, dst []byte) int {
	payload := s.frame[s.hdrLen:]
	from := i * s.mss
	to := min(from+s.mss, len(payload))
	n := copy(dst, s.frame[:s.hdrLen])
	n += copy(dst[n:], payload[from:to])
	seg := dst[:n]

	ip := seg[s.ipStart:]
	var addrs []byte
	if s.v4 {
		h := header.IPv4(ip)
		h.SetTotalLength(uint16(len(ip)))
		h.SetID(s.id + uint16(i))
		h.SetChecksum(0)
		h.SetChecksum(^h.CalculateChecksum())
		addrs = ip[12:20] // source and destination, as the pseudo-header has them
	} else {
		header.IPv6(ip).SetPayloadLength(uint16(len(ip) - header.IPv6MinimumSize))
		addrs = ip[8:40]
	}

	tcp := header.TCP(seg[s.tcpStart:])
	tcp.SetSequenceNumber(s.seq + uint32(from))
	flags := s.flags
	if i > 0 {
		flags &^= header.TCPFlagCwr
	}
	if i < s.segs-1 {
		flags &^= header.TCPFlagFin | header.TCPFlagPsh
	}
	tcp.SetFlags(uint8(flags))
	tcp.SetChecksum(0)
	sum := checksum.Checksum(addrs, 0)
	sum = checksum.Combine(sum, uint16(header.TCPProtocolNumber))
	sum = checksum.Combine(sum, uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, sum))
	return n
}
