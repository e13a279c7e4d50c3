package lb

// leastConn is IPVS's lc: the eligible backend with the fewest Active
// flows, the first in list order on a tie. IPVS ranks by
// active*256+inactive (ip_vs_dest_conn_overhead); Active here counts every
// live flow alike.
type leastConn struct{ backends []*Backend }

func newLeastConn(bs []*Backend) Scheduler { return &leastConn{bs} }

func (l *leastConn) Pick(FlowKey) *Backend {
	var best *Backend
	var bestActive int64
	for _, b := range l.backends {
		if !b.Eligible() {
			continue
		}
		if a := b.Active.Load(); best == nil || a < bestActive {
			best, bestActive = b, a
		}
	}
	return best
}

// weightedLeastConn is IPVS's wlc: the eligible backend with the least
// Active/Weight, compared without division as ip_vs_wlc_schedule does
// (a₁·w₂ < a₂·w₁), the first in list order on a tie. Weights are read
// live, so a weight change needs no rebuild.
type weightedLeastConn struct{ backends []*Backend }

func newWeightedLeastConn(bs []*Backend) Scheduler { return &weightedLeastConn{bs} }

func (l *weightedLeastConn) Pick(FlowKey) *Backend {
	var best *Backend
	var bestActive, bestWeight int64
	for _, b := range l.backends {
		w := int64(b.Weight.Load())
		if w <= 0 || !b.Healthy.Load() {
			continue
		}
		if a := b.Active.Load(); best == nil || a*bestWeight < bestActive*w {
			best, bestActive, bestWeight = b, a, w
		}
	}
	return best
}
