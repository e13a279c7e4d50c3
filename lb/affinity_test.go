package lb

import (
	"net/netip"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newClock() *clock { return &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestAffinityKeepsClientForWindow(t *testing.T) {
	bs := equalBackends(3)
	s := mustNew(t, "rr", bs)
	clk := newClock()
	a := NewAffinity(time.Minute, 100, clk.now)
	first := a.Pick(clientFlow(1, 1000), s)
	for port := range uint16(5) {
		clk.advance(50 * time.Second) // each new flow restarts the window
		if b := a.Pick(clientFlow(1, 2000+port), s); b != first {
			t.Fatalf("flow %d within the window went to %s, not %s", port, b.Addr, first.Addr)
		}
	}
	if b := a.Pick(clientFlow(2, 1000), s); b == first {
		t.Fatal("a second client was not scheduled (rr would move on)")
	}
	clk.advance(time.Minute)
	if b := a.Pick(clientFlow(1, 3000), s); b == first {
		t.Fatal("the window passed but the client stayed")
	}
	if n := a.Len(); n != 1 {
		t.Fatalf("%d entries after expiry, want 1", n)
	}
}

func TestAffinityDropsIneligibleBackend(t *testing.T) {
	bs := equalBackends(2)
	s := mustNew(t, "rr", bs)
	a := NewAffinity(time.Hour, 100, newClock().now)
	first := a.Pick(clientFlow(1, 1), s)
	first.Weight.Store(0) // drained: expire_quiescent_template=1
	second := a.Pick(clientFlow(1, 2), s)
	if second == first {
		t.Fatal("client kept on a drained backend")
	}
	first.Weight.Store(1)
	if b := a.Pick(clientFlow(1, 3), s); b != second {
		t.Fatal("client did not stay on its new backend")
	}
	second.Healthy.Store(false)
	first.Healthy.Store(false)
	if b := a.Pick(clientFlow(1, 4), s); b != nil {
		t.Fatalf("no backend eligible, got %s", b.Addr)
	}
	if a.Len() != 0 {
		t.Fatal("nil pick was remembered")
	}
}

func TestAffinityBounded(t *testing.T) {
	bs := equalBackends(2)
	s := mustNew(t, "rr", bs)
	clk := newClock()
	a := NewAffinity(time.Minute, 2, clk.now)
	a.Pick(clientFlow(1, 1), s)
	clk.advance(30 * time.Second)
	a.Pick(clientFlow(2, 1), s)
	if b := a.Pick(clientFlow(3, 1), s); b == nil {
		t.Fatal("a full table stopped scheduling")
	}
	if a.Len() != 2 || a.Refused() != 1 {
		t.Fatalf("len %d refused %d, want 2 and 1", a.Len(), a.Refused())
	}
	clk.advance(30 * time.Second) // client 1 expires, oldest first
	a.Pick(clientFlow(3, 1), s)
	if a.Len() != 2 || a.Refused() != 1 {
		t.Fatalf("after expiry: len %d refused %d, want 2 and 1", a.Len(), a.Refused())
	}
}

func TestAffinityMappedClientIsSameClient(t *testing.T) {
	bs := equalBackends(4)
	s := mustNew(t, "rr", bs)
	a := NewAffinity(time.Minute, 10, newClock().now)
	v4 := netip.MustParseAddrPort("192.0.2.7:1")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), 2)
	if a.Pick(FlowKey{Client: v4}, s) != a.Pick(FlowKey{Client: mapped}, s) {
		t.Fatal("IPv4-mapped form of a client counted as another client")
	}
}
