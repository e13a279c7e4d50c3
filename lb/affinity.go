package lb

import (
	"net/netip"
	"sync"
	"time"
)

// Affinity keeps each client of one service on one backend for a window,
// the service's `persistence` (ipvsadm -p): IPVS's persistent templates,
// keyed by client address alone (netmask /32 and /128).
//
// A client's window restarts with each new flow it sends through Pick.
// Unlike an IPVS template, an entry does not outlive its window while one
// of the client's flows is still open; those flows keep their backend in
// conntrack anyway. An entry whose backend is no longer eligible is
// dropped and the client rescheduled, as IPVS does with
// expire_quiescent_template=1 (by default IPVS keeps sending persistent
// clients to a weight-0 server). Backends removed by a reload must be
// marked unhealthy so their entries go too.
//
// The table holds at most limit clients. When it is full of live entries, a
// new client is still scheduled but not remembered, and Refused counts it.
// Expired entries go lazily, oldest first, as Pick runs. Affinity is safe
// for concurrent use; Pick holds its lock while it schedules, so two
// concurrent first flows of one client get the same backend.
type Affinity struct {
	window time.Duration
	limit  int
	now    func() time.Time

	mu       sync.Mutex
	byClient map[netip.Addr]*affine
	oldest   *affine // expiry order: a refreshed entry moves to the newest end
	newest   *affine
	refused  uint64
}

type affine struct {
	client       netip.Addr
	backend      *Backend
	expires      time.Time
	older, newer *affine
}

// NewAffinity returns an empty table for the window holding at most limit
// clients. now is the clock, time.Now when nil.
func NewAffinity(window time.Duration, limit int, now func() time.Time) *Affinity {
	if now == nil {
		now = time.Now
	}
	return &Affinity{window: window, limit: limit, now: now, byClient: make(map[netip.Addr]*affine)}
}

// Pick returns the backend flow's client was given within the window if it
// is still eligible, else s.Pick(flow), remembered for the window. nil when
// s has no eligible backend.
func (a *Affinity) Pick(flow FlowKey, s Scheduler) *Backend {
	client := flow.Client.Addr().Unmap()
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.expire(now)
	e := a.byClient[client]
	if e != nil && !e.backend.Eligible() {
		a.remove(e)
		e = nil
	}
	if e == nil {
		b := s.Pick(flow)
		if b == nil {
			return nil
		}
		if len(a.byClient) >= a.limit {
			a.refused++
			return b
		}
		e = &affine{client: client, backend: b}
		a.byClient[client] = e
	} else {
		a.unlink(e)
	}
	e.expires = now.Add(a.window)
	a.pushNewest(e)
	return e.backend
}

// Len returns the number of clients remembered, expired ones included until
// the next Pick.
func (a *Affinity) Len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.byClient)
}

// Refused returns how many clients were scheduled but not remembered
// because the table was full.
func (a *Affinity) Refused() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.refused
}

// expire drops the entries whose window has passed. Every entry's expiry is
// its last use plus the one window, so the list is in expiry order.
func (a *Affinity) expire(now time.Time) {
	for a.oldest != nil && !now.Before(a.oldest.expires) {
		a.remove(a.oldest)
	}
}

func (a *Affinity) remove(e *affine) {
	a.unlink(e)
	delete(a.byClient, e.client)
}

func (a *Affinity) unlink(e *affine) {
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		a.oldest = e.newer
	}
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		a.newest = e.older
	}
	e.older, e.newer = nil, nil
}

func (a *Affinity) pushNewest(e *affine) {
	e.older = a.newest
	if a.newest != nil {
		a.newest.newer = e
	} else {
		a.oldest = e
	}
	a.newest = e
}
