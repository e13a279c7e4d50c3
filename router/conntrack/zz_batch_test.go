package conntrack

import (
	"math/rand/v2"
	"testing"
)

func (t *Table) zzLookupBatch(keys []Key, hs []uint64, cks []ckey, cs []uint64, flows []*Flow, dirs []Dir) {
	for i := range keys {
		cks[i] = compact(keys[i])
		h := cks[i].hash(&t.seed)
		hs[i] = h
		ix := t.shards[shardOf(h)].idx.Load()
		cs[i] = ix.groups[h&ix.mask].ctrl.Load()
	}
	for i := range keys {
		h := hs[i]
		ix := t.shards[shardOf(h)].idx.Load()
		grp := &ix.groups[h&ix.mask]
		flows[i] = nil
		if m := matchTag(cs[i], tagOf(h)); m != 0 {
			f := grp.slots[slotOf(m)].Load()
			if f != nil {
				flows[i] = f
				cs[i] = f.word.Load()
			}
		}
	}
	if zzPhase3 {
		for i := range keys {
			flows[i], dirs[i] = t.Lookup(keys[i])
		}
	}
}

var zzPhase3 = true

func BenchmarkZZBatch(b *testing.B) {
	const n = 1 << 20
	tab, _ := newTable(b, Config{Max: n})
	keys := fill(b, tab, n)
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	const B = 64
	hs := make([]uint64, B)
	cks := make([]ckey, B)
	cs := make([]uint64, B)
	flows := make([]*Flow, B)
	dirs := make([]Dir, B)
	i := 0
	zzPhase3 = b.N >= 0 && !testing.Short()
	for b.Loop() {
		tab.zzLookupBatch(keys[i:i+B], hs, cks, cs, flows, dirs)

		i += B
		if i+B > len(keys) {
			i = 0
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*B), "ns/key")
}

func BenchmarkZZPhase1(b *testing.B) {
	const n = 1 << 20
	tab, _ := newTable(b, Config{Max: n})
	keys := fill(b, tab, n)
	rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	hs := make([]uint64, len(keys))
	for i := range keys {
		ck := compact(keys[i])
		hs[i] = ck.hash(&tab.seed)
	}
	b.Run("ctrl-only", func(b *testing.B) {
		var s uint64
		i := 0
		for b.Loop() {
			h := hs[i]
			ix := tab.shards[shardOf(h)].idx.Load()
			s += ix.groups[h&ix.mask].ctrl.Load()
			if i++; i == len(hs) {
				i = 0
			}
		}
		_ = s
	})
	b.Run("compact-hash-ctrl", func(b *testing.B) {
		var s uint64
		i := 0
		for b.Loop() {
			ck := compact(keys[i])
			h := ck.hash(&tab.seed)
			ix := tab.shards[shardOf(h)].idx.Load()
			s += ix.groups[h&ix.mask].ctrl.Load()
			if i++; i == len(hs) {
				i = 0
			}
		}
		_ = s
	})
}

func BenchmarkZZCompactSeq(b *testing.B) {
	const n = 1 << 20
	keys := make([]Key, 2*n)
	for i := range n {
		keys[2*i], keys[2*i+1] = nthKey(i), nthReply(i)
	}
	tab, _ := newTable(b, Config{})
	for _, sh := range []bool{false, true} {
		if sh {
			rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		}
		b.Run("compact-hash", func(b *testing.B) {
			var s uint64
			i := 0
			for b.Loop() {
				ck := compact(keys[i])
				s += ck.hash(&tab.seed)
				if i++; i == len(keys) {
					i = 0
				}
			}
			_ = s
		})
	}
}
