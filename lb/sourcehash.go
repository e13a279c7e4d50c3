package lb

// sourceHash is IPVS's sh with its sh-fallback flag: the client address
// alone (not the port: IPVS's default, without sh-port) selects a slot, so
// every flow of one client goes to one backend while the set and weights
// stay the same. Health changes do not move anyone: an unhealthy backend's
// clients are rehashed (slotTable.lookup) and come back when it recovers.
//
// IPVS fills 256 buckets in list order, weight buckets per server
// (ip_vs_sh_reassign), so weights beyond the table are lost; here the
// slots are wrr's weightedSequence, exact for any number of backends. As in
// IPVS, a new table (a changed set or weight) moves most clients.
type sourceHash struct{ slotTable }

func newSourceHash(bs []*Backend) Scheduler {
	return &sourceHash{slotTable{backends: bs, slots: weightedSequence(weightsOf(bs))}}
}

func (s *sourceHash) Pick(flow FlowKey) *Backend {
	return s.lookup(hashAddr(flow.Client.Addr(), seedSource))
}
