package conntrack

import "testing"

func TestZZProbeStats(t *testing.T) {
	const n = 1 << 20
	tab, _ := newTable(t, Config{Max: n})
	keys := fill(t, tab, n)
	groups, cands := 0, 0
	for _, k := range keys {
		ck := compact(k)
		h := ck.hash(&tab.seed)
		ix := tab.shards[shardOf(h)].idx.Load()
		g := h & ix.mask
		for i := uint64(1); ; i++ {
			groups++
			c := ix.groups[g].ctrl.Load()
			found := false
			for m := matchTag(c, tagOf(h)); m != 0; m &= m - 1 {
				cands++
				f := ix.groups[g].slots[slotOf(m)].Load()
				if f != nil && f.matches(dirOf(c, slotOf(m)), f.word.Load(), &ck) {
					found = true
					break
				}
			}
			if found {
				break
			}
			g = (g + i) & ix.mask
		}
	}
	t.Logf("groups/lookup %.3f candidates/lookup %.3f", float64(groups)/float64(len(keys)), float64(cands)/float64(len(keys)))
	min, max := 1<<30, 0
	for i := range tab.shards {
		l := tab.shards[i].live
		min = Min(min, l)
		max = Max(max, l)
	}
	t.Logf("shard live min %d max %d", min, max)
}

func Min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
func Max(a, b int) int {
	if a > b {
		return a
	}
	return b
}
