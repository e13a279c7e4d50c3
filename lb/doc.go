// Package lb chooses the backend of each new flow of an LVS-style virtual
// service. It sees no packets: the connection tracker calls it once per
// new flow and keeps the answer in the flow's entry, so later packets never
// come here.
//
// # The way of a new flow
//
//	new flow to a VIP, no conntrack entry:
//	    Affinity.Pick(flow, s)      if persistence is on: the client's
//	                                backend within the window, else s.Pick
//	    Scheduler.Pick(flow)        otherwise: one eligible *Backend, or nil
//	                                (no backend: drop the flow)
//	    b.Active.Add(1)             when the conntrack entry is committed
//	flow ends (timeout, RST, reload):
//	    b.Active.Add(-1)            once, on the entry's release
//
// # Backends and their owners
//
// A Backend carries its address and three atomics, each with one writer:
// Weight (config and the weight API; 0 drains), Healthy (the health
// checker) and Active (the connection tracker, as above). A backend is
// eligible for new flows when it is healthy with a positive weight;
// existing flows are not this package's business.
//
// # Schedulers
//
// New builds a scheduler by name for one backend set; see Scheduler for
// when to build another. The six follow IPVS where IPVS has them:
//
//	rr      each eligible backend in turn (ip_vs_rr)
//	wrr     turns in proportion to weight, smoothly interleaved (weightedSequence)
//	lc      fewest Active (ip_vs_lc)
//	wlc     least Active/Weight (ip_vs_wlc)
//	sh      hash of the client address, stable per client (ip_vs_sh, sh-fallback)
//	maglev  Maglev consistent hashing of the client address, port and
//	        protocol (Eisenbud et al., NSDI 2016), the same on every tungate
//
// Pick is safe for concurrent use from any number of goroutines, takes no
// lock and allocates nothing. rr and wrr share one atomic position;
// lc and wlc read the counters of every backend (O(backends)); sh and
// maglev index a table built by New.
package lb
