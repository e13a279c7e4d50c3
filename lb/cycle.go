package lb

import "sync/atomic"

// A cycle walks a fixed sequence of backends, taking the next eligible one:
// rr (each backend once, IPVS's ip_vs_rr) and wrr (weightedSequence). Like
// IPVS's wrr mark, the position moves to just after the backend picked, so
// a skipped backend loses its turns and the rest keep their order and
// ratios. The position is claimed with compare-and-swap: concurrent Picks
// take distinct turns, lock-free.
type cycle struct {
	backends []*Backend
	seq      []int32       // indices into backends
	next     atomic.Uint64 // position in seq to try first, < len(seq)
}

// newRoundRobin ignores weights except that 0 drains, as ip_vs_rr does.
func newRoundRobin(bs []*Backend) Scheduler {
	seq := make([]int32, len(bs))
	for i := range seq {
		seq[i] = int32(i)
	}
	return &cycle{backends: bs, seq: seq}
}

// newWeightedRoundRobin gives each backend turns in proportion to its
// weight at build time; one with weight 0 then gets none until a rebuild.
func newWeightedRoundRobin(bs []*Backend) Scheduler {
	return &cycle{backends: bs, seq: weightedSequence(weightsOf(bs))}
}

func (c *cycle) Pick(FlowKey) *Backend {
	n := uint64(len(c.seq))
	for {
		start := c.next.Load()
		p, b := c.scan(start)
		if b == nil {
			return nil
		}
		if p++; p == n {
			p = 0
		}
		if c.next.CompareAndSwap(start, p) {
			return b
		}
	}
}

// scan finds the first eligible backend at or after position start. When
// the first candidate is ineligible it checks that some backend is
// eligible at all before walking further, so a service whose backends are
// all down costs O(backends) per Pick rather than O(cycle).
func (c *cycle) scan(start uint64) (uint64, *Backend) {
	n := uint64(len(c.seq))
	p := start
	for k := uint64(0); k < n; k++ {
		if b := c.backends[c.seq[p]]; b.Eligible() {
			return p, b
		}
		if k == 0 && !anyEligible(c.backends) {
			return 0, nil
		}
		if p++; p == n {
			p = 0
		}
	}
	return 0, nil
}

func anyEligible(bs []*Backend) bool {
	for _, b := range bs {
		if b.Eligible() {
			return true
		}
	}
	return false
}
