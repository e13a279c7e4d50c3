package route

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
)

// randAddr returns a random address of the given bit length (32 or 128).
func randAddr(rng *rand.Rand, bitLen int) netip.Addr {
	var b [16]byte
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	if bitLen == 32 {
		return netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrFrom16(b)
}

// randAddrIn returns a random address inside p.
func randAddrIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	host := randAddr(rng, p.Addr().BitLen()).AsSlice()
	net := p.Addr().AsSlice()
	for i := range net {
		keep := min(max(p.Bits()-8*i, 0), 8) // network bits in this byte
		mask := byte(0xff << (8 - keep))
		net[i] = net[i]&mask | host[i]&^mask
	}
	a, _ := netip.AddrFromSlice(net)
	return a
}

// refLookup is the specification Lookup is tested against: a linear scan
// for the longest matching prefix, then the lowest metric.
func refLookup(routes []Route, dst netip.Addr) *Route {
	var best *Route
	for i := range routes {
		r := &routes[i]
		if !r.To.Contains(dst) {
			continue
		}
		if best == nil || r.To.Bits() > best.To.Bits() ||
			r.To.Bits() == best.To.Bits() && r.Metric < best.Metric {
			best = r
		}
	}
	return best
}

// randRoutes returns n distinct random routes of both families. Plain
// random prefixes rarely nest, so half of them are carved out of an earlier
// route and some repeat an earlier prefix with another metric: that is
// what exercises falling back to a shorter match and the metric tie-break.
func randRoutes(rng *rand.Rand, n int) []Route {
	type key struct {
		to     netip.Prefix
		metric uint32
	}
	seen := make(map[key]bool, n)
	routes := make([]Route, 0, n)
	for len(routes) < n {
		var to netip.Prefix
		switch x := rng.IntN(10); {
		case x < 5 && len(routes) > 0:
			outer := routes[rng.IntN(len(routes))].To
			bits := outer.Bits() + rng.IntN(outer.Addr().BitLen()-outer.Bits()+1)
			to = netip.PrefixFrom(randAddrIn(rng, outer), bits).Masked()
		case x < 6 && len(routes) > 0:
			to = routes[rng.IntN(len(routes))].To
		default:
			bitLen := 32
			if rng.IntN(2) == 0 {
				bitLen = 128
			}
			to = netip.PrefixFrom(randAddr(rng, bitLen), rng.IntN(bitLen+1)).Masked()
		}
		r := Route{To: to, Dev: len(routes), Metric: rng.Uint32N(4), Proto: Static}
		if k := (key{r.To, r.Metric}); !seen[k] {
			seen[k] = true
			routes = append(routes, r)
		}
	}
	return routes
}

// TestLookupMatchesReference compares Lookup with refLookup on random
// tables and random destinations, both inside routes (to hit deep and
// nested prefixes) and anywhere (to hit misses and short prefixes), with
// both widths of the IPv4 direct array.
func TestLookupMatchesReference(t *testing.T) {
	const nRoutes, nLookups = 4000, 20000
	defer func(n int) { bigTable = n }(bigTable)
	for _, big := range []int{bigTable, 1} {
		bigTable = big
		for seed := range uint64(3) {
			rng := rand.New(rand.NewPCG(seed, 0))
			routes := randRoutes(rng, nRoutes)
			tab, err := New(routes)
			if err != nil {
				t.Fatal(err)
			}
			for range nLookups {
				var dst netip.Addr
				if rng.IntN(2) == 0 {
					dst = randAddrIn(rng, routes[rng.IntN(len(routes))].To)
				} else {
					dst = randAddr(rng, []int{32, 128}[rng.IntN(2)])
				}
				got, want := tab.Lookup(dst), refLookup(routes, dst)
				switch {
				case got == nil && want == nil:
				case got == nil || want == nil || got.Route != *want:
					t.Fatalf("bigTable %d, seed %d: Lookup(%v) = %+v, want %+v", big, seed, dst, got, want)
				}
			}
		}
	}
}

func TestLookupAllocs(t *testing.T) {
	tab, err := New(randRoutes(rand.New(rand.NewPCG(1, 1)), 1000))
	if err != nil {
		t.Fatal(err)
	}
	for _, dst := range []string{"10.1.2.3", "255.255.255.255", "2001:db8::1", "fe80::1%eth0", "::ffff:1.2.3.4"} {
		dst := addr(dst)
		if n := testing.AllocsPerRun(1000, func() { tab.Lookup(dst) }); n != 0 {
			t.Errorf("Lookup(%v): %v allocs, want 0", dst, n)
		}
	}
}

// dfzBits returns a random IPv4 prefix length shaped like the Internet's
// default-free zone (about 58% /24, most of the rest /16../23), plus 3.7%
// longer prefixes, which a FIB with host routes has and the DFZ has not.
func dfzBits(rng *rand.Rand) int {
	// per mille of prefixes of each length from /8 to /32
	weights := [...]int{
		1, 0, 0, 0, 1, 0, 0, 1, // /8../15
		14, 8, 13, 25, 40, 45, 130, 105, 580, // /16../24
		8, 6, 5, 4, 4, 4, 1, 5, // /25../32
	}
	x := rng.IntN(1000)
	for i, w := range weights {
		if x < w {
			return 8 + i
		}
		x -= w
	}
	panic("weights do not sum to 1000")
}

// uniformBits returns a function that returns random prefix lengths
// uniform in [lo, hi].
func uniformBits(lo, hi int) func(*rand.Rand) int {
	return func(rng *rand.Rand) int { return lo + rng.IntN(hi-lo+1) }
}

// benchRoutes returns n distinct random prefixes of one family with
// lengths from randBits, and 1<<20 lookup addresses, each inside a random
// one of them. Destinations inside routes walk the trie to the routes'
// depth; uniformly random ones would mostly stop near the root. 1<<20 of
// them spread the walks over the whole table, so the benchmark pays the
// cache misses a large table really costs.
func benchRoutes(n, bitLen int, randBits func(*rand.Rand) int) ([]Route, []netip.Addr) {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(bitLen)))
	seen := make(map[netip.Prefix]bool, n)
	routes := make([]Route, 0, n)
	for len(routes) < n {
		to := netip.PrefixFrom(randAddr(rng, bitLen), randBits(rng)).Masked()
		if !seen[to] {
			seen[to] = true
			routes = append(routes, Route{To: to, Dev: len(routes), Proto: Static})
		}
	}
	dsts := make([]netip.Addr, 1<<20)
	for i := range dsts {
		dsts[i] = randAddrIn(rng, routes[rng.IntN(n)].To)
	}
	return routes, dsts
}

var benchSizes = []struct {
	name     string
	n        int
	bitLen   int
	randBits func(*rand.Rand) int
}{
	{"v4/1k", 1_000, 32, dfzBits},
	{"v4/100k", 100_000, 32, dfzBits},
	{"v4/1M", 1_000_000, 32, dfzBits},
	{"v4/1M-uniform", 1_000_000, 32, uniformBits(8, 32)},
	{"v6/100k", 100_000, 128, uniformBits(16, 64)},
}

func BenchmarkLookup(b *testing.B) {
	for _, s := range benchSizes {
		b.Run(s.name, func(b *testing.B) {
			routes, dsts := benchRoutes(s.n, s.bitLen, s.randBits)
			tab, err := New(routes)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			misses := 0
			for i := 0; b.Loop(); i++ {
				if tab.Lookup(dsts[i&(len(dsts)-1)]) == nil {
					misses++
				}
			}
			if misses != 0 {
				b.Fatalf("%d lookups found no route", misses)
			}
		})
	}
}

// BenchmarkNew reports the time to build the 1M-route IPv4 table, what
// New allocates (B/op), and the heap the table keeps (MiB-kept).
func BenchmarkNew(b *testing.B) {
	s := benchSizes[2]
	routes, _ := benchRoutes(s.n, s.bitLen, s.randBits)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(routes); err != nil {
			b.Fatal(err)
		}
	}

	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	tab, _ := New(routes)
	b.ReportMetric(float64(heap()-before)/(1<<20), "MiB-kept")
	runtime.KeepAlive(tab)
	runtime.KeepAlive(routes) // or its 69 MiB, freed, would be subtracted
}
