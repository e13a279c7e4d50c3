package conntrack

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"strconv"

	"github.com/tungate/tungate/router/packet"
)

// Protocol numbers the tracker tells apart (IANA).
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
)

// Key is one direction of a flow as its packets carry it on the wire:
// addresses, transport protocol, and ports. An ICMP echo request or reply
// uses its identifier as both ports (RFC 5508 maps a query's identifier
// as NAPT maps a port); a protocol without ports has 0 in both. Both addresses are of the packet's family (an IPv4 address is a
// 4-byte netip.Addr; an IPv4-mapped IPv6 one is another address); zones
// are not part of a key.
type Key struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
}

// KeyOf is the key of a parsed packet: its direction of its flow.
func KeyOf(p *packet.Packet) Key {
	k := Key{Src: p.Src, Dst: p.Dst, Proto: p.Proto}
	if p.HasPorts {
		k.SrcPort, k.DstPort = p.SrcPort, p.DstPort
	}
	return k
}

// Reverse is the key of the opposite direction when nothing translates
// the packets: source and destination swapped.
func (k Key) Reverse() Key {
	return Key{Src: k.Dst, Dst: k.Src, SrcPort: k.DstPort, DstPort: k.SrcPort, Proto: k.Proto}
}

// String is the key as `tungate nat` and test failures show it, such as
// "tcp 192.0.2.1:40000 -> 198.51.100.7:443".
func (k Key) String() string {
	return fmt.Sprintf("%s %s -> %s", protoName(k.Proto), netip.AddrPortFrom(k.Src, k.SrcPort), netip.AddrPortFrom(k.Dst, k.DstPort))
}

func protoName(p uint8) string {
	switch p {
	case protoICMP:
		return "icmp"
	case protoTCP:
		return "tcp"
	case protoUDP:
		return "udp"
	case protoICMPv6:
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}

// u128 is an address as two big-endian words: IPv4 addresses in their
// IPv4-mapped form, with the family kept in the key's meta bits.
type u128 struct{ hi, lo uint64 }

func u128Of(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{0, 0xffff<<32 | uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr(is4 bool) netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	if is4 {
		return netip.AddrFrom4([4]byte(b[12:]))
	}
	return netip.AddrFrom16(b)
}

// ckey is a Key in the form the table stores and compares: 40 bytes
// instead of 56, no pointer (netip.Addr carries one for its zone).
type ckey struct {
	src, dst u128
	ports    uint32 // SrcPort<<16 | DstPort
	meta     uint32 // Proto | is4<<8, as in a flow's state word
}

// set makes c the compact form of k. (Filling it in place rather than
// returning one spares the lookup a copy that defeats store forwarding.)
func (c *ckey) set(k *Key) {
	c.src, c.dst = u128Of(k.Src), u128Of(k.Dst)
	c.ports = uint32(k.SrcPort)<<16 | uint32(k.DstPort)
	c.meta = uint32(k.Proto)
	if k.Src.Is4() {
		c.meta |= 1 << 8
	}
}

func (c *ckey) key() Key {
	is4 := c.meta&(1<<8) != 0
	return Key{
		Src:     c.src.addr(is4),
		Dst:     c.dst.addr(is4),
		SrcPort: uint16(c.ports >> 16),
		DstPort: uint16(c.ports),
		Proto:   uint8(c.meta),
	}
}

// hash mixes the key with the table's secrets, wyhash style: each step
// folds a 128-bit product. The secrets are random per table, so packets
// cannot be crafted to collide (hash flooding) without knowing them.
func (c *ckey) hash(s *[4]uint64) uint64 {
	h := mix(c.src.hi^s[0], c.src.lo^s[1])
	h = mix(h^c.dst.hi, c.dst.lo^s[2])
	return mix(h^(uint64(c.ports)<<32|uint64(c.meta)), s[3])
}

func mix(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}
