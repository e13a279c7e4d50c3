package nat

import (
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

const (
	udp  = 17
	tcp  = 6
	icmp = 1
)

// clock is a settable clock for tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// newTable makes a table on a fresh clock with seeded randomness.
func newTable(tb testing.TB, r Rule) (*Table, *clock) {
	tb.Helper()
	c := newClock()
	t, err := New(r, c.now, rand.NewPCG(1, 2))
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return t, c
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
func ip(s string) netip.Addr     { return netip.MustParseAddr(s) }

// masq is a masquerade rule on 18.18.18.8.
func masq() Rule { return Rule{External: []netip.Addr{ip("18.18.18.8")}, PortPreservation: true} }

// out is Outbound that fails the test on error.
func out(tb testing.TB, t *Table, proto uint8, internal, remote string) *Mapping {
	tb.Helper()
	m, err := t.Outbound(proto, ap(internal), ap(remote))
	if err != nil {
		tb.Fatalf("Outbound(%d, %s, %s): %v", proto, internal, remote, err)
	}
	return m
}

// checkConsistent checks the table's invariants: no two live mappings
// share an external endpoint (RFC 4787 REQ-3), the two indexes agree, and
// the port bookkeeping matches the mappings and holds.
func checkConsistent(tb testing.TB, t *Table) {
	tb.Helper()
	t.mu.RLock()
	defer t.mu.RUnlock()
	owner := map[extKey]*Mapping{}
	live := map[*portSet]int{}
	for k, m := range t.byKey {
		if m.key != k || m.removed || m.flows <= 0 {
			tb.Fatalf("mapping %v under key %v: removed=%v flows=%d", m.key, k, m.removed, m.flows)
		}
		ek := extKeyOf(k.proto, m.external)
		if other := owner[ek]; other != nil {
			tb.Fatalf("port overloading: %v and %v both on %v", other.key, m.key, m.external)
		}
		owner[ek] = m
		if t.byExt[ek] != m {
			tb.Fatalf("byExt[%v] is not the mapping %v", ek, m.key)
		}
		set := m.addr.portSet(k.proto)
		if !set.isTaken(m.external.Port()) {
			tb.Fatalf("port of %v not marked taken", m.key)
		}
		live[set]++
	}
	if len(t.byExt) != len(t.byKey) {
		tb.Fatalf("byExt has %d entries, byKey %d", len(t.byExt), len(t.byKey))
	}
	held := map[*portSet]int{}
	for k, e := range t.held.byKey {
		if _, ok := owner[extKeyOf(k.proto, netip.AddrPortFrom(e.addr.addr, e.port))]; ok {
			tb.Fatalf("held port %v:%d of %v is also live", e.addr.addr, e.port, k)
		}
		held[e.addr.portSet(k.proto)]++
	}
	for _, a := range append(append([]*extAddr{}, t.v4...), t.v6...) {
		for proto, set := range a.ports {
			taken := 0
			for _, w := range set.taken {
				taken += bits.OnesCount64(w)
			}
			if taken != set.live+set.held {
				tb.Fatalf("%v proto %d: %d ports marked, %d live + %d held", a.addr, proto, taken, set.live, set.held)
			}
			if set.live != live[set] || set.held != held[set] {
				tb.Fatalf("%v proto %d: live %d held %d, want %d %d", a.addr, proto, set.live, set.held, live[set], held[set])
			}
		}
	}
}
