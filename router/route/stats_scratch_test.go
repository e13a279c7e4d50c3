package route

import (
	"runtime"
	"syscall"
	"testing"

	"github.com/gaissmai/bart"
)

func TestScratchStats(t *testing.T) {
	for _, s := range benchSizes {
		routes, _ := benchRoutes(s.n, s.bitLen, s.randBits)
		tab, _ := New(routes)
		tr := &tab.v4
		t.Logf("%s: nodes %d (%.1f MB) leaves %d (%.1f MB) direct %d KB", s.name, len(tr.nodes), float64(len(tr.nodes)*24)/1e6, len(tr.leaves), float64(len(tr.leaves)*4)/1e6, len(tr.direct)*4/1024)
	}
}

func threadCPU() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func cpuBench(b *testing.B, f func(i int)) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var c0 int64
	n := 0
	for i := 0; b.Loop(); i++ {
		if i == 0 {
			c0 = threadCPU()
		}
		f(i)
		n++
	}
	b.ReportMetric(float64(threadCPU()-c0)/float64(n), "cpu-ns/op")
}

func BenchmarkScratch(b *testing.B) {
	for _, s := range benchSizes {
		routes, dsts := benchRoutes(s.n, s.bitLen, s.randBits)
		var bt bart.Table[*Route]
		var bf bart.Fast[*Route]
		for i := range routes {
			bt.Insert(routes[i].To, &routes[i])
			bf.Insert(routes[i].To, &routes[i])
		}
		tab, _ := New(routes)
		for r := 0; r < 2; r++ {
			b.Run(s.name+"/bart", func(b *testing.B) {
				cpuBench(b, func(i int) { bt.Lookup(dsts[i&(len(dsts)-1)]) })
			})
			b.Run(s.name+"/bartfast", func(b *testing.B) {
				cpuBench(b, func(i int) { bf.Lookup(dsts[i&(len(dsts)-1)]) })
			})
			b.Run(s.name+"/own", func(b *testing.B) {
				cpuBench(b, func(i int) { tab.Lookup(dsts[i&(len(dsts)-1)]) })
			})
		}
	}
}
