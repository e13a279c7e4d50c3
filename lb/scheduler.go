package lb

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// A Scheduler picks the backend of each new flow of one service.
//
// Pick returns nil when no backend is eligible. It reads Weight and Healthy
// as it looks and never returns a backend it saw ineligible. It is safe for
// concurrent use and allocates nothing.
//
// A Scheduler is built by New for one backend set and the weights of that
// moment. rr, lc and wlc read everything live; wrr, sh and maglev fix their
// proportions at New, and maglev also leaves out the backends that were
// ineligible then (Maglev §3.4: the lookup table is regenerated when the
// set changes). So: build a new Scheduler and swap it in whenever the set or
// a weight changes, and for maglev also on every health transition;
// rebuilding on every change is always right. A stale Scheduler stays
// correct, only less even: a backend that became eligible waits for the
// rebuild.
type Scheduler interface {
	Pick(flow FlowKey) *Backend
}

// maxBackends bounds a service's backends; maglev needs fewer backends
// than table slots.
const maxBackends = 1 << 16

var schedulers = map[string]func([]*Backend) Scheduler{
	"rr":     newRoundRobin,
	"wrr":    newWeightedRoundRobin,
	"lc":     newLeastConn,
	"wlc":    newWeightedLeastConn,
	"sh":     newSourceHash,
	"maglev": func(bs []*Backend) Scheduler { return newMaglev(bs, MaglevTableSize) },
}

// ErrUnknownScheduler is returned by New for a name not in Names.
var ErrUnknownScheduler = errors.New("lb: unknown scheduler")

// Names returns the scheduler names New accepts, sorted.
func Names() []string {
	names := make([]string, 0, len(schedulers))
	for name := range schedulers {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// New builds the scheduler called name over backends, reading their
// weights (and, for maglev, health) now. backends may be empty; addresses
// must be distinct and weights in [0, MaxWeight]. The slice is copied; the
// Backends are shared, so their counters carry over to the next Scheduler.
func New(name string, backends []*Backend) (Scheduler, error) {
	mk, ok := schedulers[name]
	if !ok {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownScheduler, name, strings.Join(Names(), ", "))
	}
	if len(backends) > maxBackends {
		return nil, fmt.Errorf("lb: %d backends, at most %d", len(backends), maxBackends)
	}
	seen := make(map[string]bool, len(backends))
	for i, b := range backends {
		if b == nil {
			return nil, fmt.Errorf("lb: backend %d is nil", i)
		}
		if w := b.Weight.Load(); w < 0 || w > MaxWeight {
			return nil, fmt.Errorf("lb: backend %s: weight %d out of range [0, %d]", b.Addr, w, MaxWeight)
		}
		key := b.Addr.String()
		if seen[key] {
			return nil, fmt.Errorf("lb: backend %s listed twice", key)
		}
		seen[key] = true
	}
	return mk(slices.Clone(backends)), nil
}
