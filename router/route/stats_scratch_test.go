package route

import (
	"fmt"
	"testing"
)

func TestScratchStats(t *testing.T) {
	for _, s := range benchSizes {
		routes, _ := benchRoutes(s.n, s.bitLen, s.randBits)
		tab, _ := New(routes)
		for _, tr := range []*trie{&tab.v4, &tab.v6} {
			if len(tr.nodes) == 0 {
				continue
			}
			t.Logf("%s: nodes %d (%.1f MB) leaves %d (%.1f MB) direct %d KB", s.name, len(tr.nodes), float64(len(tr.nodes)*24)/1e6, len(tr.leaves), float64(len(tr.leaves)*4)/1e6, len(tr.direct)*4/1024)
		}
	}
}

func BenchmarkScratch(b *testing.B) {
	for _, s := range benchSizes {
		routes, dsts := benchRoutes(s.n, s.bitLen, s.randBits)
		for _, d := range []uint{16, 18, 20, 22, 24} {
			directBitsFor = func(int) uint { return d }
			tab, _ := New(routes)
			b.Run(fmt.Sprintf("%s/d%d", s.name, d), func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					tab.Lookup(dsts[i&(len(dsts)-1)])
				}
			})
		}
	}
}
