package lb

import (
	"net/netip"
	"sync/atomic"
)

// MaxWeight is the largest backend weight, ipvsadm's bound.
const MaxWeight = 65535

// A Backend is one real server of a service. Addr never changes; the other
// fields are live state that schedulers read on every Pick and that their
// owners write with atomic operations:
//
//   - Weight: the config load and `POST /services/{name}/backends/{addr}/weight`.
//     0 drains the backend: it gets no new flows and keeps the ones it has.
//     Build a new scheduler with New after a change (see Scheduler).
//   - Healthy: the health checker, on each rise/fall transition. An
//     unhealthy backend gets no new flows.
//   - Active: the connection tracker. Add(1) when a new flow is committed to
//     this backend, Add(-1) when that flow is released (timeout, RST,
//     reload), exactly once each. lc and wlc read it. It counts every live
//     flow, which is IPVS's ActiveConn plus InActConn.
//
// The zero Backend has weight 0 and is unhealthy, so it gets no flows.
type Backend struct {
	Addr    netip.AddrPort
	Weight  atomic.Int32
	Healthy atomic.Bool
	Active  atomic.Int64
}

// NewBackend returns a healthy backend with the given weight. Backends
// start healthy, as keepalived's real servers do until a check fails.
func NewBackend(addr netip.AddrPort, weight int) *Backend {
	b := &Backend{Addr: addr}
	b.Weight.Store(int32(weight))
	b.Healthy.Store(true)
	return b
}

// Eligible reports whether b may take a new flow: healthy with a positive
// weight (IPVS's is_unavailable, with health in place of the overload flag).
func (b *Backend) Eligible() bool {
	return b.Weight.Load() > 0 && b.Healthy.Load()
}

// A FlowKey is what a scheduler sees of a new flow: the client's address
// and port and the IP protocol number. The virtual service (VIP, port,
// protocol) is implied by the scheduler it is given to.
type FlowKey struct {
	Client netip.AddrPort
	Proto  uint8
}
