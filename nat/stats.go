package nat

import (
	"cmp"
	"net/netip"
	"slices"
	"time"
)

// refused counts the new flows Outbound could not map, by cause.
type refused struct {
	quota, exhausted, noAddress uint64
}

// Stats is a snapshot of a Table's counters.
type Stats struct {
	Mappings int // live mappings
	Hosts    int // internal addresses holding ports
	Held     int // ports held back by ReuseDelay
	// Addresses has one entry per external address and protocol in use.
	Addresses []AddressStats
	// Refused counts new flows refused, by cause.
	RefusedQuota     uint64 // ErrQuota
	RefusedExhausted uint64 // ErrExhausted
	RefusedNoAddress uint64 // ErrNoAddress
}

// AddressStats is the port use of one external address for one protocol.
type AddressStats struct {
	Addr  netip.Addr
	Proto uint8
	Live  int // ports of live mappings
	Held  int // ports held back by ReuseDelay
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.held.expire(t.now(), t.unhold)
	s := Stats{
		Mappings:         len(t.byKey),
		Hosts:            len(t.hosts),
		Held:             t.held.len(),
		RefusedQuota:     t.refused.quota,
		RefusedExhausted: t.refused.exhausted,
		RefusedNoAddress: t.refused.noAddress,
	}
	for _, a := range slices.Concat(t.v4, t.v6) {
		for proto, set := range a.ports {
			if set.live+set.held > 0 {
				s.Addresses = append(s.Addresses, AddressStats{a.addr, proto, set.live, set.held})
			}
		}
	}
	slices.SortFunc(s.Addresses, func(a, b AddressStats) int {
		return cmp.Or(a.Addr.Compare(b.Addr), cmp.Compare(a.Proto, b.Proto))
	})
	return s
}

// MappingInfo describes one mapping for display (`tungate nat`).
type MappingInfo struct {
	Proto    uint8
	Internal netip.AddrPort
	External netip.AddrPort
	// Remote is the part of the remote the mapping is for: invalid under
	// endpoint-independent mapping, port 0 under address-dependent.
	Remote netip.AddrPort
	// Remotes is how many remotes the mapping remembers for filtering
	// (addresses under address-dependent filtering, endpoints under
	// address-and-port-dependent, none under endpoint-independent).
	Remotes int
	Flows   int           // conntrack flows using it
	Age     time.Duration // since it was made
}

// Mappings lists the live mappings, ordered by protocol, internal endpoint
// and remote.
func (t *Table) Mappings() []MappingInfo {
	now := t.now()
	t.mu.RLock()
	out := make([]MappingInfo, 0, len(t.byKey))
	for _, m := range t.byKey {
		out = append(out, MappingInfo{
			Proto:    m.proto,
			Internal: m.internal,
			External: m.external,
			Remote:   m.remote,
			Remotes:  m.remembered(),
			Flows:    m.flows,
			Age:      now.Sub(m.created),
		})
	}
	t.mu.RUnlock()
	slices.SortFunc(out, func(a, b MappingInfo) int {
		return cmp.Or(cmp.Compare(a.Proto, b.Proto), a.Internal.Compare(b.Internal), a.Remote.Compare(b.Remote))
	})
	return out
}
