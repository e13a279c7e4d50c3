package nat

import "net/netip"

// extAddr is one address of the external pool.
type extAddr struct {
	addr  netip.Addr
	ports map[uint8]*portSet // by protocol, made on first use
}

func (a *extAddr) portSet(proto uint8) *portSet {
	s := a.ports[proto]
	if s == nil {
		s = new(portSet)
		a.ports[proto] = s
	}
	return s
}

// host is what a Table knows of one internal address (a "subscriber" in
// RFC 6888): the external address all its mappings use, and how many
// external ports it holds, live or held back by ReuseDelay. It exists
// while it holds any.
type host struct {
	ext   *extAddr
	ports int
}

// pairFirst is where the search for a new host's external address starts
// in a pool of n: a hash of the internal address, so that the choice is
// spread over the pool and the same on every run.
//
// RFC 4787 REQ-2: "It is RECOMMENDED that a NAT have an "IP address
// pooling" behavior of "Paired"." RFC 6888 REQ-2: "A CGN MUST have a
// default "IP address pooling" behavior of "Paired"". The pairing is kept
// while the host holds any port (host above); when the address it starts
// at has no port left in the range a flow needs, the next address is
// tried, which is still paired since the host has no other mapping.
func pairFirst(internal [16]byte, n int) int {
	h := uint32(2166136261) // 32-bit FNV-1a
	for _, b := range internal {
		h = (h ^ uint32(b)) * 16777619
	}
	return int(h % uint32(n))
}
