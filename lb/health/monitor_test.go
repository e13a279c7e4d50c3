package health

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// change is one onChange call.
type change struct {
	addr    netip.AddrPort
	healthy bool
}

// recorder collects onChange calls.
type recorder struct {
	mu      sync.Mutex
	changes []change
	ch      chan change
}

func newRecorder() *recorder { return &recorder{ch: make(chan change, 100)} }

func (r *recorder) onChange(addr netip.AddrPort, healthy bool) {
	r.mu.Lock()
	r.changes = append(r.changes, change{addr, healthy})
	r.mu.Unlock()
	r.ch <- change{addr, healthy}
}

func (r *recorder) all() []change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]change(nil), r.changes...)
}

// stepper drives a Monitor one probe at a time.
type stepper struct {
	t      *testing.T
	m      *Monitor
	ticks  chan time.Time
	probed chan struct{}
}

func newStepper(t *testing.T, addr netip.AddrPort, c Checker, o Options, onChange func(netip.AddrPort, bool)) *stepper {
	t.Helper()
	m, err := NewMonitor(addr, c, o, onChange)
	if err != nil {
		t.Fatal(err)
	}
	s := &stepper{t: t, m: m, ticks: make(chan time.Time), probed: make(chan struct{})}
	m.ticks = s.ticks
	m.probed = func() { s.probed <- struct{}{} }
	m.Start(context.Background())
	t.Cleanup(m.Stop)
	return s
}

// step runs one probe and returns the state after it.
func (s *stepper) step() Status {
	s.t.Helper()
	s.ticks <- time.Now()
	select {
	case <-s.probed:
	case <-time.After(5 * time.Second):
		s.t.Fatal("probe did not finish within 5s")
	}
	return s.m.Status()
}

// TestMonitorTCP walks a TCP-checked backend on the gVisor pair through
// up, down after fall, and up again after rise, one probe at a time.
func TestMonitorTCP(t *testing.T) {
	router, backend := pair(t)
	c, err := NewChecker(KindTCP, NewStackDialer(router.NetStack()), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{backendV4, backendV6} {
		t.Run(a.String(), func(t *testing.T) {
			ap := netip.AddrPortFrom(a, 8000)
			rec := newRecorder()
			s := newStepper(t, ap, c, Options{Interval: time.Hour, Timeout: time.Second, Rise: 2, Fall: 3}, rec.onChange)

			if st := s.m.Status(); !st.Healthy || !st.LastCheck.IsZero() || st.LastError != nil {
				t.Fatalf("initial status %+v, want up and unprobed", st)
			}
			l := listen(t, backend, ap)
			accepted := acceptAndClose(l)
			for range 3 {
				if st := s.step(); !st.Healthy || st.LastError != nil {
					t.Fatalf("listening: %+v", st)
				}
			}
			if st := s.m.Status(); st.Successes != 3 || st.Failures != 0 || st.LastCheck.IsZero() {
				t.Fatalf("after 3 successes: %+v", st)
			}
			l.Close()
			<-accepted

			for i := 1; i <= 3; i++ {
				st := s.step()
				if st.Failures != i || st.Successes != 0 || st.LastError == nil {
					t.Fatalf("failure %d: %+v", i, st)
				}
				if st.Healthy != (i < 3) {
					t.Fatalf("after %d failures of fall 3: healthy %v", i, st.Healthy)
				}
			}
			if got := rec.all(); len(got) != 1 || got[0] != (change{ap, false}) {
				t.Fatalf("changes %v, want one down", got)
			}
			down := s.m.Status().Since
			// More failures change nothing.
			if st := s.step(); st.Healthy || st.Failures != 4 || st.Since != down {
				t.Fatalf("fourth failure: %+v", st)
			}

			l = listen(t, backend, ap)
			accepted = acceptAndClose(l)
			defer func() { l.Close(); <-accepted }()
			if st := s.step(); st.Healthy || st.Successes != 1 || st.LastError != nil {
				t.Fatalf("first success of rise 2: %+v", st)
			}
			if st := s.step(); !st.Healthy || !st.Since.After(down) {
				t.Fatalf("second success of rise 2: %+v", st)
			}
			// A single failure in a run of successes resets the count
			// but, below fall, changes nothing.
			s.step()
			if got, want := rec.all(), []change{{ap, false}, {ap, true}}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
				t.Fatalf("changes %v, want %v", got, want)
			}
		})
	}
}

// fakeCheck answers from a switch the test flips.
type fakeCheck struct {
	fail  atomic.Bool
	calls atomic.Int64
}

func (f *fakeCheck) Check(ctx context.Context, _ netip.AddrPort) error {
	f.calls.Add(1)
	if f.fail.Load() {
		return errors.New("fake failure")
	}
	return nil
}

func TestMonitorFlapping(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.1:80")
	f := &fakeCheck{}
	rec := newRecorder()
	s := newStepper(t, ap, f, Options{Rise: 2, Fall: 2}, rec.onChange)
	// up: fail, ok, fail, ok never reaches fall 2.
	for _, fail := range []bool{true, false, true, false, true, true, false, true, false, false, false} {
		f.fail.Store(fail)
		s.step()
	}
	want := []change{{ap, false}, {ap, true}}
	if got := rec.all(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("changes %v, want %v", got, want)
	}
}

func TestMonitorStartDown(t *testing.T) {
	router, backend := pair(t)
	ap := netip.AddrPortFrom(backendV4, 80)
	serveHTTP(t, listen(t, backend, ap), &httpBackend{})
	c, err := NewChecker(KindHTTP, NewStackDialer(router.NetStack()), "/status/200")
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	s := newStepper(t, ap, c, Options{Rise: 3, StartDown: true}, rec.onChange)
	if s.m.Healthy() {
		t.Fatal("StartDown monitor starts up")
	}
	for i := 1; i <= 3; i++ {
		if st := s.step(); st.Healthy != (i == 3) {
			t.Fatalf("after %d successes of rise 3: %+v", i, st)
		}
	}
	if got := rec.all(); len(got) != 1 || got[0] != (change{ap, true}) {
		t.Fatalf("changes %v, want one up", got)
	}
}

// TestMonitorHTTP runs monitors on real timers: a backend answering 200
// stays up, one answering 500 goes down after fall, one that never
// answers goes down after fall timeouts, all within the bound interval ×
// fall (plus the start jitter and slack).
func TestMonitorHTTP(t *testing.T) {
	router, backend := pair(t)
	d := NewStackDialer(router.NetStack())
	b := &httpBackend{}
	ap := netip.AddrPortFrom(backendV4, 80)
	serveHTTP(t, listen(t, backend, ap), b)
	// A generous timeout where the backend answers, so that a loaded
	// machine does not fail the test, and a short one where it does not.
	o := Options{Interval: 20 * time.Millisecond, Rise: 2, Fall: 2}
	for _, tc := range []struct {
		path    string
		healthy bool
	}{
		{"/status/200", true},
		{"/status/302", true},
		{"/status/500", false},
		{"/slow", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := newRecorder()
			o.Timeout = time.Second
			if tc.path == "/slow" {
				o.Timeout = 15 * time.Millisecond
			}
			m, err := NewMonitor(ap, mustHTTP(t, d, tc.path), o, rec.onChange)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			m.Start(context.Background())
			defer m.Stop()
			if !tc.healthy {
				select {
				case c := <-rec.ch:
					if c != (change{ap, false}) {
						t.Fatalf("change %v, want down", c)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("not down within 5s: %+v", m.Status())
				}
				t.Logf("down after %v: %v", time.Since(start), m.Status().LastError)
				if err := m.Status().LastError; err == nil {
					t.Fatal("down without an error")
				} else if tc.path == "/slow" && !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("error %v, want a timeout", err)
				}
				return
			}
			deadline := time.Now().Add(5 * time.Second)
			for m.Status().Successes < 4 {
				if time.Now().After(deadline) {
					t.Fatalf("no 4 successes within 5s: %+v", m.Status())
				}
				time.Sleep(5 * time.Millisecond)
			}
			if got := rec.all(); len(got) != 0 {
				t.Fatalf("changes %v for a healthy backend", got)
			}
		})
	}
}

// TestMonitorTCPRealTime takes a backend's listener away and back with a
// 20 ms interval and watches the monitor follow.
func TestMonitorTCPRealTime(t *testing.T) {
	router, backend := pair(t)
	ap := netip.AddrPortFrom(backendV6, 7000)
	c, err := NewChecker(KindTCP, NewStackDialer(router.NetStack()), "")
	if err != nil {
		t.Fatal(err)
	}
	l := listen(t, backend, ap)
	accepted := acceptAndClose(l)
	rec := newRecorder()
	m, err := NewMonitor(ap, c, Options{Interval: 20 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 3}, rec.onChange)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	defer m.Stop()
	wait := func(want bool) {
		t.Helper()
		start := time.Now()
		select {
		case c := <-rec.ch:
			if c != (change{ap, want}) {
				t.Fatalf("change %v, want healthy %v", c, want)
			}
			t.Logf("healthy=%v after %v", want, time.Since(start))
		case <-time.After(5 * time.Second):
			t.Fatalf("no change to healthy=%v within 5s: %+v", want, m.Status())
		}
	}
	time.Sleep(100 * time.Millisecond)
	if st := m.Status(); !st.Healthy || st.Successes == 0 {
		t.Fatalf("listening: %+v", st)
	}
	l.Close()
	<-accepted
	wait(false)
	l = listen(t, backend, ap)
	accepted = acceptAndClose(l)
	wait(true)
	m.Stop()
	l.Close()
	<-accepted
	if got := rec.all(); len(got) != 2 {
		t.Fatalf("changes %v, want exactly down then up", got)
	}
}

// blockCheck blocks until its context ends.
type blockCheck struct{ started chan struct{} }

func (b blockCheck) Check(ctx context.Context, _ netip.AddrPort) error {
	close(b.started)
	<-ctx.Done()
	return ctx.Err()
}

func TestMonitorStop(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.1:80")

	t.Run("mid-probe", func(t *testing.T) {
		b := blockCheck{make(chan struct{})}
		var called atomic.Bool
		m, err := NewMonitor(ap, b, Options{Interval: time.Millisecond, Timeout: time.Hour, Fall: 1}, func(netip.AddrPort, bool) { called.Store(true) })
		if err != nil {
			t.Fatal(err)
		}
		m.Start(context.Background())
		<-b.started
		stopped := make(chan struct{})
		go func() { m.Stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			t.Fatal("Stop did not return within 5s")
		}
		select {
		case <-m.Done():
		default:
			t.Fatal("Done open after Stop")
		}
		// The abandoned probe is not a failure.
		if st := m.Status(); called.Load() || !st.Healthy || st.Failures != 0 || st.LastError != nil {
			t.Fatalf("after Stop mid-probe: called %v, %+v", called.Load(), st)
		}
		m.Stop() // twice is fine
		m.Start(context.Background())
		select {
		case <-m.Done():
		default:
			t.Fatal("Start after Stop reopened Done")
		}
	})

	t.Run("context", func(t *testing.T) {
		f := &fakeCheck{}
		m, err := NewMonitor(ap, f, Options{Interval: time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		m.Start(ctx)
		m.Start(ctx) // a second Start does nothing
		for f.calls.Load() < 3 {
			time.Sleep(time.Millisecond)
		}
		cancel()
		select {
		case <-m.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("cancelling the context did not end the monitor")
		}
		n := f.calls.Load()
		time.Sleep(10 * time.Millisecond)
		if f.calls.Load() != n {
			t.Fatal("probes after the context ended")
		}
		m.Stop()
	})

	t.Run("unstarted", func(t *testing.T) {
		m, err := NewMonitor(ap, &fakeCheck{}, Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Stop()
		<-m.Done()
	})

	t.Run("goroutines", func(t *testing.T) {
		before := runtime.NumGoroutine()
		f := &fakeCheck{}
		var ms []*Monitor
		for i := range 100 {
			c := Checker(f)
			if i%10 == 0 {
				c = NoneCheck{}
			}
			m, err := NewMonitor(netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 80), c, Options{Interval: 2 * time.Millisecond, Timeout: time.Second}, nil)
			if err != nil {
				t.Fatal(err)
			}
			m.Start(context.Background())
			t.Cleanup(m.Stop)
			ms = append(ms, m)
		}
		for f.calls.Load() < 200 {
			time.Sleep(time.Millisecond)
		}
		for _, m := range ms {
			m.Stop()
			// Stop waits for the goroutine.
			select {
			case <-m.Done():
			default:
				t.Fatalf("%v: Done open after Stop returned", m.Addr())
			}
		}
		// And nothing else was left behind. The runtime counts its
		// finalizer goroutine while it runs finalizers (of other tests'
		// sockets), so allow the count a moment to settle.
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines after Stop, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(time.Millisecond)
		}
	})
}

func TestMonitorNone(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.1:80")
	rec := newRecorder()
	m, err := NewMonitor(ap, NoneCheck{}, Options{Interval: time.Millisecond, StartDown: true}, rec.onChange)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	time.Sleep(10 * time.Millisecond)
	m.Stop()
	if st := m.Status(); !st.Healthy || !st.LastCheck.IsZero() || len(rec.all()) != 0 {
		t.Fatalf("none check: %+v, changes %v", st, rec.all())
	}
}

// TestMonitorJitter starts monitors together and checks that their first
// probes are spread over the interval, not made at once.
func TestMonitorJitter(t *testing.T) {
	const n, interval = 20, 200 * time.Millisecond
	var mu sync.Mutex
	var first []time.Duration
	start := time.Now()
	var ms []*Monitor
	for i := range n {
		var once sync.Once
		c := checkFunc(func(context.Context, netip.AddrPort) error {
			once.Do(func() {
				mu.Lock()
				first = append(first, time.Since(start))
				mu.Unlock()
			})
			return nil
		})
		m, err := NewMonitor(netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), 80), c, Options{Interval: interval}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m.Start(context.Background())
		ms = append(ms, m)
	}
	time.Sleep(interval + 200*time.Millisecond)
	for _, m := range ms {
		m.Stop()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(first) != n {
		t.Fatalf("%d of %d monitors probed within one interval", len(first), n)
	}
	lo, hi := first[0], first[0]
	for _, d := range first {
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < interval/4 {
		t.Fatalf("first probes within %v of each other, want them spread over the %v interval", hi-lo, interval)
	}
}

type checkFunc func(context.Context, netip.AddrPort) error

func (f checkFunc) Check(ctx context.Context, ap netip.AddrPort) error { return f(ctx, ap) }

func TestNewMonitor(t *testing.T) {
	ap := netip.MustParseAddrPort("192.0.2.1:80")
	m, err := NewMonitor(ap, NoneCheck{}, Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Interval: DefaultInterval, Timeout: DefaultTimeout, Rise: DefaultRise, Fall: DefaultFall}
	if m.Options() != want || m.Addr() != ap {
		t.Fatalf("options %+v addr %v, want %+v %v", m.Options(), m.Addr(), want, ap)
	}
	for _, tc := range []struct {
		ap netip.AddrPort
		c  Checker
		o  Options
	}{
		{netip.AddrPort{}, NoneCheck{}, Options{}},
		{ap, nil, Options{}},
		{ap, NoneCheck{}, Options{Interval: -1}},
		{ap, NoneCheck{}, Options{Timeout: -1}},
		{ap, NoneCheck{}, Options{Rise: -1}},
		{ap, NoneCheck{}, Options{Fall: -1}},
	} {
		if _, err := NewMonitor(tc.ap, tc.c, tc.o, nil); err == nil {
			t.Errorf("NewMonitor(%v, %v, %+v) succeeded", tc.ap, tc.c, tc.o)
		}
	}
}

// httpBackend must satisfy http.Handler for serveHTTP.
var _ http.Handler = (*httpBackend)(nil)
