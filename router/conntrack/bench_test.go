package conntrack

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"
)

// fill inserts n flows, each with a reply key other than its original's
// reverse (as a NAT makes them), and returns their keys, original and
// reply alternately.
func fill(tb testing.TB, tab *Table, n int) []Key {
	keys := make([]Key, 0, 2*n)
	for i := range n {
		f := mustInsert(tb, tab, nthKey(i), nthReply(i), nil)
		tab.Seen(f, Original, pkt(nthKey(i), 0))
		keys = append(keys, nthKey(i), nthReply(i))
	}
	return keys
}

// bytesPerFlow measures the heap a table of n flows takes, per flow,
// index included.
func bytesPerFlow(tb testing.TB, n int) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, _ := newTable(tb, Config{Max: n})
	for i := range n {
		mustInsert(tb, tab, nthKey(i), nthReply(i), nil)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tab)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// The flow table's memory goal: at most 200 bytes a flow, both index
// entries included, at a million flows.
func TestMemoryPerFlow(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("inserts a million flows; the race detector's memory is not ours")
	}
	if s := unsafe.Sizeof(Flow{}); s != 160 {
		t.Errorf("Flow is %d bytes, want 160 (a size class)", s)
	}
	b := bytesPerFlow(t, 1<<20)
	t.Logf("%.1f bytes per flow at 1M flows", b)
	if b > 200 {
		t.Errorf("%.1f bytes per flow, want at most 200", b)
	}
}

func BenchmarkMemoryPerFlow(b *testing.B) {
	for _, n := range []int{1000, 1 << 20} {
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			var per float64
			for b.Loop() {
				per = bytesPerFlow(b, n)
			}
			b.ReportMetric(per, "B/flow")
		})
	}
}

// Lookup of random keys, original and reply alike. With a million flows
// the table (about 200 MB) is far larger than any cache, so uniform keys
// measure two memory accesses, the index group and the flow; "hot" looks
// up a thousand of the million, as traffic where a few flows carry most
// packets does.
func BenchmarkLookup(b *testing.B) {
	for _, n := range []int{1000, 1 << 20} {
		tab, _ := newTable(b, Config{Max: n})
		keys := fill(b, tab, n)
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		lookup := func(b *testing.B, keys []Key) {
			i := 0
			for b.Loop() {
				if f, _ := tab.Lookup(keys[i]); f == nil {
					b.Fatal("miss")
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		}
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) { lookup(b, keys) })
		if n > 1000 {
			b.Run(fmt.Sprintf("flows=%d/hot", n), func(b *testing.B) { lookup(b, keys[:1000]) })
		}
		b.Run(fmt.Sprintf("flows=%d/miss", n), func(b *testing.B) {
			miss := key(protoUDP, inside, 1, server, 1)
			for b.Loop() {
				if f, _ := tab.Lookup(miss); f != nil {
					b.Fatal("hit")
				}
			}
		})
		b.Run(fmt.Sprintf("flows=%d/parallel", n), func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(len(keys))
				for pb.Next() {
					if f, _ := tab.Lookup(keys[i]); f == nil {
						b.Fatal("miss")
					}
					if i++; i == len(keys) {
						i = 0
					}
				}
			})
		})
	}
}

// A packet's work in the table: find its flow, account it.
func BenchmarkLookupSeen(b *testing.B) {
	tab, _ := newTable(b, Config{})
	keys := fill(b, tab, 1000)
	p := pkt(keys[0], ack)
	i := 0
	for b.Loop() {
		f, d := tab.Lookup(keys[i])
		tab.Seen(f, d, p)
		if i++; i == len(keys) {
			i = 0
		}
	}
}

func BenchmarkSeen(b *testing.B) {
	tab, _ := newTable(b, Config{})
	orig, reply := natKeys(protoTCP, 40000)
	f := mustInsert(b, tab, orig, reply, nil)
	p := pkt(orig, ack)
	for b.Loop() {
		tab.Seen(f, Original, p)
	}
}

// Insert and Delete at a steady 100k flows: the new-flow path.
func BenchmarkInsertDelete(b *testing.B) {
	const n = 100000
	tab, _ := newTable(b, Config{Max: n})
	keys := make([]Key, 2*n)
	replies := make([]Key, 2*n)
	for i := range keys {
		keys[i] = nthKey(i)
		replies[i] = nthReply(i)
	}
	flows := make([]*Flow, 2*n)
	for i := range n {
		flows[i] = mustInsert(b, tab, keys[i], replies[i], nil)
	}
	i := 0
	for b.Loop() {
		j := (i + n) % len(keys)
		tab.Delete(flows[i])
		var err error
		if flows[j], err = tab.Insert(keys[j], replies[j], nil); err != nil {
			b.Fatal(err)
		}
		if i++; i == len(keys) {
			i = 0
		}
	}
}
