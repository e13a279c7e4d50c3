package nat

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchTable is a table on addrs external addresses with n live mappings
// from distinct hosts, each to one remote, under
// address-and-port-dependent filtering.
func benchTable(tb testing.TB, addrs, n int, preserve bool) (*Table, []*Mapping) {
	r := masq()
	r.Filtering, r.PortPreservation, r.ReuseDelay = AddressAndPortDependentFiltering, preserve, -1
	for i := range addrs - 1 {
		r.External = append(r.External, netip.AddrFrom4([4]byte{18, 18, 19, byte(i)}))
	}
	tab, _ := newTable(tb, r)
	ms := make([]*Mapping, n)
	for i := range ms {
		m, err := tab.Outbound(udp, benchInternal(i), ap("203.0.113.1:443"))
		if err != nil {
			tb.Fatal(err)
		}
		ms[i] = m
	}
	return tab, ms
}

func benchInternal(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 40000)
}

// BenchmarkOutboundNew is the cost of a new mapping (each from a new host,
// the worst case): with the port preserved, chosen at random, chosen at
// random on an address whose ports are 90% taken, and with a million live
// mappings over 17 addresses.
func BenchmarkOutboundNew(b *testing.B) {
	for _, tc := range []struct {
		name        string
		preserve    bool
		addrs, fill int
	}{
		{"preserved", true, 16, 0},
		{"random", false, 16, 0},
		{"random-90%-full", false, 1, 64512 * 9 / 10},
		{"random-1M-mappings", false, 17, 1 << 20},
	} {
		b.Run(tc.name, func(b *testing.B) {
			tab, _ := benchTable(b, tc.addrs, tc.fill, tc.preserve)
			const batch = 4096
			ms := make([]*Mapping, batch)
			remote := ap("198.51.100.1:443")
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				n := min(batch, b.N-i)
				for j := range n {
					m, err := tab.Outbound(udp, benchInternal(1<<22+j), remote)
					if err != nil {
						b.Fatal(err)
					}
					ms[j] = m
				}
				b.StopTimer()
				for _, m := range ms[:n] {
					tab.Release(m, remote)
				}
				b.StartTimer()
			}
		})
	}
}

// BenchmarkOutboundExisting is a new flow on a live mapping.
func BenchmarkOutboundExisting(b *testing.B) {
	tab, ms := benchTable(b, 1, 10000, true)
	internal, remote := ms[5000].Internal(), ap("203.0.113.1:443")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Outbound(udp, internal, remote); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInbound is the lookup for an inbound packet without a flow.
func BenchmarkInbound(b *testing.B) {
	for _, n := range []int{1000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			tab, ms := benchTable(b, 2, n, true)
			external, remote := ms[n/2].External(), ap("203.0.113.1:443")
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := tab.Inbound(udp, external, remote); !ok {
					b.Fatal("not admitted")
				}
			}
		})
	}
}

// BenchmarkInboundParallel is Inbound from every CPU at once.
func BenchmarkInboundParallel(b *testing.B) {
	tab, ms := benchTable(b, 1, 10000, true)
	remote := ap("203.0.113.1:443")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := tab.Inbound(udp, ms[i%len(ms)].External(), remote); !ok {
				b.Error("not admitted")
				return
			}
			i++
		}
	})
}

// Inbound and a new flow on a live mapping allocate nothing.
func TestNoAllocs(t *testing.T) {
	tab, ms := benchTable(t, 1, 100, true)
	m, remote := ms[50], ap("203.0.113.1:443")
	if n := testing.AllocsPerRun(1000, func() { tab.Inbound(udp, m.External(), remote) }); n != 0 {
		t.Errorf("Inbound: %v allocations", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := tab.Outbound(udp, m.Internal(), remote); err != nil {
			t.Fatal(err)
		}
		tab.Release(m, remote)
	}); n != 0 {
		t.Errorf("Outbound and Release on a live mapping: %v allocations", n)
	}
}
