package lb

import (
	"encoding/binary"
	"hash/fnv"
	"net/netip"
)

// The hashes are fixed functions with fixed seeds, the same on every
// machine and in every run (no hash/maphash): two tungates behind one ECMP
// router must send a flow to the same backend, which is the point of
// Maglev hashing (Maglev §3.4). Changing any of this moves flows between
// tungate versions.
const (
	seedFlow   = 0x6c62272e07bb0142
	seedSource = 0x9e3779b97f4a7c15
	seedOffset = 0xd6e8feb86659fd93
	seedSkip   = 0xa0761d6478bd642f
	seedRehash = 0xe7037ed1a0b428db
)

// mix64 is the finalizer of SplitMix64 (Stafford's variant 13): a
// bijection on 64 bits in which every input bit affects every output bit.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashAddr hashes an address in its 16-byte form (IPv4 as IPv4-mapped),
// without its zone.
func hashAddr(a netip.Addr, seed uint64) uint64 {
	b := a.As16()
	hi := binary.BigEndian.Uint64(b[:8])
	lo := binary.BigEndian.Uint64(b[8:])
	return mix64(mix64(hi^seed) ^ lo)
}

// hashFlow hashes the client address, port and protocol of a flow.
func hashFlow(f FlowKey) uint64 {
	return mix64(hashAddr(f.Client.Addr(), seedFlow) ^ (uint64(f.Client.Port())<<8 | uint64(f.Proto)))
}

// hashName is 64-bit FNV-1a, for a backend's name: its address in
// netip.AddrPort's canonical text form.
func hashName(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}
