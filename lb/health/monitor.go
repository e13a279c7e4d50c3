package health

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Defaults for zero Options fields: SPEC's [service.health] example.
const (
	DefaultInterval = 2 * time.Second
	DefaultTimeout  = 1 * time.Second
	DefaultRise     = 2
	DefaultFall     = 3
)

// Options tune a Monitor. Zero fields take the defaults.
type Options struct {
	// Interval between the starts of two probes. Probes never overlap: a
	// probe that runs past the next tick delays it, and the missed ticks
	// are dropped.
	Interval time.Duration
	// Timeout bounds one probe; a probe that has not succeeded by then
	// has failed.
	Timeout time.Duration
	// Rise consecutive successes bring a down backend up; Fall
	// consecutive failures take an up backend down.
	Rise, Fall int
	// StartDown makes the backend start down, to come up after Rise
	// successes (keepalived's alpha mode). By default it starts up and
	// keeps its flows until Fall probes fail, as keepalived does for a new
	// real server: a reload or a restart does not take healthy backends
	// out of service while they are probed again.
	StartDown bool
}

func (o *Options) fill() error {
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Rise == 0 {
		o.Rise = DefaultRise
	}
	if o.Fall == 0 {
		o.Fall = DefaultFall
	}
	switch {
	case o.Interval < 0:
		return fmt.Errorf("health: negative interval %v", o.Interval)
	case o.Timeout < 0:
		return fmt.Errorf("health: negative timeout %v", o.Timeout)
	case o.Rise < 0:
		return fmt.Errorf("health: negative rise %d", o.Rise)
	case o.Fall < 0:
		return fmt.Errorf("health: negative fall %d", o.Fall)
	}
	return nil
}

// Status is a snapshot of a Monitor.
type Status struct {
	// Healthy is the backend's current state.
	Healthy bool
	// Successes and Failures count the current run of consecutive probe
	// results; one of them is zero.
	Successes, Failures int
	// LastError is why the last probe failed; nil when it succeeded or
	// none has run yet.
	LastError error
	// LastCheck is when the last probe finished; zero before the first.
	LastCheck time.Time
	// Since is when Healthy last changed, or when the Monitor was made.
	Since time.Time
}

// Monitor probes one backend every interval and tracks its state with
// IPVS/keepalived semantics: up→down after Fall consecutive failures,
// down→up after Rise consecutive successes. Its methods are safe for
// concurrent use.
type Monitor struct {
	addr     netip.AddrPort
	check    Checker
	opts     Options
	onChange func(netip.AddrPort, bool)
	none     bool

	// Test hooks: ticks replaces the jittered ticker (each tick is one
	// probe, the first one included); probed runs after each probe.
	ticks  <-chan time.Time
	probed func()

	mu      sync.Mutex
	st      Status // guarded by mu
	started bool   // guarded by mu
	stopped bool   // guarded by mu
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewMonitor returns a stopped Monitor of the backend addr with check c.
// onChange, if not nil, is called with the backend's new state on every
// change of state, and only then: not for the initial state. It is called
// from the Monitor's goroutine, one call at a time, after Status shows the
// new state; it should return quickly (the next probe waits for it) and
// must not call Stop on its own Monitor.
//
// With a NoneCheck no probe is sent and the backend is always healthy,
// whatever StartDown says.
func NewMonitor(addr netip.AddrPort, c Checker, o Options, onChange func(addr netip.AddrPort, healthy bool)) (*Monitor, error) {
	if !addr.IsValid() {
		return nil, fmt.Errorf("health: invalid backend address %v", addr)
	}
	if c == nil {
		return nil, errors.New("health: nil checker")
	}
	if err := o.fill(); err != nil {
		return nil, err
	}
	none := false
	switch c.(type) {
	case NoneCheck, *NoneCheck:
		none = true
	}
	return &Monitor{
		addr:     addr,
		check:    c,
		opts:     o,
		onChange: onChange,
		none:     none,
		st:       Status{Healthy: none || !o.StartDown, Since: time.Now()},
		done:     make(chan struct{}),
	}, nil
}

// Addr is the backend's address.
func (m *Monitor) Addr() netip.AddrPort { return m.addr }

// Options are the Monitor's options with the defaults filled in.
func (m *Monitor) Options() Options { return m.opts }

// Healthy reports the backend's current state.
func (m *Monitor) Healthy() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st.Healthy
}

// Status returns a snapshot of the Monitor's state.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// Start starts probing until Stop is called or ctx ends. The first probe
// comes after a random delay below one interval, so that backends started
// together are not probed in lockstep; then one every interval. A second
// Start, or Start after Stop, does nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	go m.run(ctx)
}

// Stop stops probing and waits until the Monitor's goroutine has ended (a
// probe under way is abandoned, and its result ignored); after Stop
// returns, onChange is not called again. Stop may be called more than
// once, and without Start.
func (m *Monitor) Stop() {
	m.mu.Lock()
	if !m.stopped {
		m.stopped = true
		if m.started {
			m.cancel()
		} else {
			close(m.done)
		}
	}
	m.mu.Unlock()
	<-m.done
}

// Done is closed when the Monitor's goroutine has ended: after Stop, or
// once the context given to Start ends.
func (m *Monitor) Done() <-chan struct{} { return m.done }

func (m *Monitor) run(ctx context.Context) {
	defer close(m.done)
	defer m.cancel()
	if m.none {
		<-ctx.Done()
		return
	}
	ticks := m.ticks
	if ticks == nil {
		jitter := time.NewTimer(rand.N(m.opts.Interval))
		select {
		case <-ctx.Done():
			jitter.Stop()
			return
		case <-jitter.C:
		}
		t := time.NewTicker(m.opts.Interval)
		defer t.Stop()
		ticks = t.C
		m.probe(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticks:
			// select picks at random among ready cases: a tick that
			// raced Stop must not start a probe.
			if ctx.Err() != nil {
				return
			}
			m.probe(ctx)
		}
	}
}

// probe runs one check and records it.
func (m *Monitor) probe(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	err := m.check.Check(pctx, m.addr)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	if ctx.Err() != nil {
		// Stopped mid-probe: the result says nothing about the backend.
		return
	}
	if err != nil && timedOut {
		err = fmt.Errorf("no answer within %v: %w", m.opts.Timeout, err)
	}
	changed, healthy := m.record(err, time.Now())
	if changed && m.onChange != nil {
		m.onChange(m.addr, healthy)
	}
	if m.probed != nil {
		m.probed()
	}
}

// record adds one probe result and reports whether the state changed.
func (m *Monitor) record(err error, now time.Time) (changed, healthy bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := &m.st
	st.LastError = err
	st.LastCheck = now
	if err == nil {
		st.Successes++
		st.Failures = 0
		changed = !st.Healthy && st.Successes >= m.opts.Rise
	} else {
		st.Failures++
		st.Successes = 0
		changed = st.Healthy && st.Failures >= m.opts.Fall
	}
	if changed {
		st.Healthy = !st.Healthy
		st.Since = now
	}
	return changed, st.Healthy
}
