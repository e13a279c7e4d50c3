package icmperr

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(1700000000, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// take calls Allow n times and returns how many were allowed.
func take(l *Limiter, n int) int {
	ok := 0
	for range n {
		if l.Allow() {
			ok++
		}
	}
	return ok
}

func TestLimiter(t *testing.T) {
	var c fakeClock
	l := NewLimiter(10, 5, c.now) // a token every 100ms, 5 at most
	steps := []struct {
		advance time.Duration
		tries   int
		want    int
	}{
		{0, 20, 5},                       // the full burst, then nothing
		{50 * time.Millisecond, 3, 0},    // half a token is not one
		{50 * time.Millisecond, 3, 1},    // now it is
		{250 * time.Millisecond, 5, 2},   // two and a half tokens: two
		{50 * time.Millisecond, 5, 1},    // the half left over counts
		{10 * time.Second, 50, 5},        // a long idle refills to burst only
		{100 * time.Millisecond, 1, 1},   // steady rate: one per interval
		{100 * time.Millisecond, 1, 1},   //
		{time.Second, 10, 5},             //
		{-time.Second, 5, 0},             // a clock going back gives nothing
		{1100 * time.Millisecond, 10, 1}, // and owes nothing
	}
	sent, suppressed := 0, 0
	for i, s := range steps {
		c.advance(s.advance)
		if got := take(l, s.tries); got != s.want {
			t.Errorf("step %d: %d of %d allowed, want %d", i, got, s.tries, s.want)
		}
		sent += s.want
		suppressed += s.tries - s.want
	}
	if l.Sent() != uint64(sent) || l.Suppressed() != uint64(suppressed) {
		t.Errorf("counters: sent %d suppressed %d, want %d and %d", l.Sent(), l.Suppressed(), sent, suppressed)
	}
}

func TestLimiterSlowRate(t *testing.T) {
	var c fakeClock
	l := NewLimiter(0.5, 0, c.now) // one every two seconds; burst below one is one
	if take(l, 3) != 1 {
		t.Fatal("want one at first")
	}
	c.advance(1999 * time.Millisecond)
	if l.Allow() {
		t.Fatal("allowed before two seconds")
	}
	c.advance(time.Millisecond)
	if !l.Allow() {
		t.Fatal("not allowed after two seconds")
	}
}

func TestLimiterUnlimited(t *testing.T) {
	l := NewLimiter(0, 1, nil)
	if take(l, 1000) != 1000 || l.Sent() != 1000 || l.Suppressed() != 0 {
		t.Errorf("rate 0: sent %d suppressed %d, want all sent", l.Sent(), l.Suppressed())
	}
}

func TestLimiterRealClock(t *testing.T) {
	l := NewLimiter(1, 2, nil)
	if got := take(l, 10); got != 2 {
		t.Errorf("%d allowed at once, want the burst of 2", got)
	}
}

// TestLimiterConcurrent hammers one limiter from many goroutines on a
// stopped clock: exactly the burst gets through, and every call is
// counted once.
func TestLimiterConcurrent(t *testing.T) {
	var c fakeClock
	const goroutines, calls, burst = 16, 1000, 100
	l := NewLimiter(1000, burst, c.now)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() { allowed.Add(int64(take(l, calls))) })
	}
	wg.Wait()
	if allowed.Load() != burst || l.Sent() != burst || l.Suppressed() != goroutines*calls-burst {
		t.Errorf("allowed %d, sent %d, suppressed %d; want %d, %d, %d",
			allowed.Load(), l.Sent(), l.Suppressed(), burst, burst, goroutines*calls-burst)
	}
}

func TestLimiterAllocs(t *testing.T) {
	var c fakeClock
	l := NewLimiter(1e6, 10, c.now)
	if allocs := testing.AllocsPerRun(1000, func() {
		c.advance(time.Microsecond)
		l.Allow()
	}); allocs != 0 {
		t.Errorf("Allow allocates %v times", allocs)
	}
}

func BenchmarkLimiterParallel(b *testing.B) {
	l := NewLimiter(1e9, 1000, nil)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow()
		}
	})
}
