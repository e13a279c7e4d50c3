package lb

import (
	"math"
	"net/netip"
	"testing"
)

func TestSourceHashStablePerClient(t *testing.T) {
	bs := newBackends(1, 1, 1, 1)
	s := mustNew(t, "sh", bs)
	rebuilt := mustNew(t, "sh", bs)
	for c := range 200 {
		first := s.Pick(clientFlow(c, 1))
		for port := range uint16(20) {
			f := clientFlow(c, 1000+port)
			f.Proto = 17 - uint8(port%2)*11 // udp and tcp alike
			if b := s.Pick(f); b != first {
				t.Fatalf("client %d: port %d went to %s, first flow to %s", c, 1000+port, b.Addr, first.Addr)
			}
		}
		if b := rebuilt.Pick(clientFlow(c, 1)); b != first {
			t.Fatalf("client %d: rebuilt table sends it to %s, not %s", c, b.Addr, first.Addr)
		}
	}
}

func TestSourceHashSpreadsByWeight(t *testing.T) {
	bs := newBackends(1, 1, 2)
	s := mustNew(t, "sh", bs)
	const clients = 20000
	got := counts(s, bs, clients)
	for i, share := range []float64{0.25, 0.25, 0.5} {
		if f := float64(got[i]) / clients; math.Abs(f-share) > 0.02 {
			t.Errorf("backend %d: %.3f of clients, want %.2f", i, f, share)
		}
	}
	t.Logf("20000 clients over weights 1,1,2: %v", got)
}

func TestSourceHashFailureMovesOnlyThatBackendsClients(t *testing.T) {
	bs := equalBackends(4)
	s := mustNew(t, "sh", bs)
	const clients = 4000
	before := make([]*Backend, clients)
	for c := range clients {
		before[c] = s.Pick(clientFlow(c, 1))
	}
	bs[2].Healthy.Store(false)
	moved := make(map[*Backend]int)
	for c := range clients {
		b := s.Pick(clientFlow(c, 1))
		switch {
		case b == bs[2]:
			t.Fatalf("client %d sent to the unhealthy backend", c)
		case before[c] != bs[2] && b != before[c]:
			t.Fatalf("client %d of a healthy backend moved", c)
		case before[c] == bs[2]:
			moved[b]++
		}
	}
	for _, i := range []int{0, 1, 3} {
		if moved[bs[i]] < 200 {
			t.Errorf("backend %d took %d of the failed backend's clients; want them spread: %v", i, moved[bs[i]], moved)
		}
	}
	bs[2].Healthy.Store(true)
	for c := range clients {
		if b := s.Pick(clientFlow(c, 1)); b != before[c] {
			t.Fatalf("client %d did not come back after recovery", c)
		}
	}
}

func TestSourceHashIPv6AndMappedClients(t *testing.T) {
	bs := equalBackends(8)
	s := mustNew(t, "sh", bs)
	seen := make(map[*Backend]bool)
	for i := range 256 {
		a := netip.AddrFrom16([16]byte{0: 0x20, 1: 0x01, 2: 0x0d, 3: 0xb8, 15: byte(i)})
		seen[s.Pick(FlowKey{Client: netip.AddrPortFrom(a, 443), Proto: 6})] = true
	}
	if len(seen) != len(bs) {
		t.Errorf("256 IPv6 clients reached %d of %d backends", len(seen), len(bs))
	}
	v4 := netip.MustParseAddrPort("192.0.2.7:1")
	mapped := netip.AddrPortFrom(netip.AddrFrom16(v4.Addr().As16()), 1)
	if s.Pick(FlowKey{Client: v4}) != s.Pick(FlowKey{Client: mapped}) {
		t.Error("IPv4 client and its IPv4-mapped form hash apart")
	}
}
