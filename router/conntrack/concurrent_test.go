package conntrack

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// Packets, new flows, deletions, expiry and flushes at once, on a table
// kept full, under the race detector in CI. Every lookup must find a
// flow that holds the key it was asked for, and in the end every flow
// that went in must have been released exactly once.
func TestConcurrent(t *testing.T) {
	const (
		keys = 3000
		max  = 1000
	)
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	tab, clk := newTable(t, Config{Max: max, UDP: 5 * time.Second, TCPOpening: 3 * time.Second})
	o := newOwner()
	var (
		mu       sync.Mutex
		inserted []*Flow
		wg       sync.WaitGroup
		failed   = make(chan string, 1)
	)
	fail := func(msg string) {
		select {
		case failed <- msg:
		default:
		}
	}
	keyOf := func(i int, d Dir) Key {
		if d == Reply {
			return nthReply(i)
		}
		return nthKey(i)
	}
	run := func(fn func(r *rand.Rand)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for range rounds {
				fn(r)
			}
		}()
	}
	for range 2 { // new flows
		run(func(r *rand.Rand) {
			clk.advance(time.Millisecond)
			i := r.IntN(keys)
			f, err := tab.Insert(nthKey(i), nthReply(i), o)
			switch {
			case err == nil:
				mu.Lock()
				inserted = append(inserted, f)
				mu.Unlock()
				tab.Seen(f, Original, pkt(nthKey(i), 0))
			case !errors.Is(err, ErrExists) && !errors.Is(err, ErrFull):
				fail(err.Error())
			}
		})
	}
	for range 2 { // packets
		run(func(r *rand.Rand) {
			i, d := r.IntN(keys), Dir(r.IntN(2))
			k := keyOf(i, d)
			f, got := tab.Lookup(k)
			if f == nil {
				return
			}
			if got != d || (d == Original && f.Orig() != k) || (d == Reply && f.Reply() != k) {
				fail("lookup of " + k.String() + " found " + f.Orig().String())
			}
			tab.Seen(f, d, pkt(k, 0))
			if r.IntN(4) == 0 {
				f.Cache[d].Store(&k)
			}
		})
	}
	run(func(r *rand.Rand) { // deletions
		if f, _ := tab.Lookup(nthKey(r.IntN(keys))); f != nil {
			tab.Delete(f)
		}
	})
	run(func(r *rand.Rand) { // the clock and the reaper
		clk.advance(time.Duration(r.IntN(20)) * time.Millisecond)
		tab.Expire(4)
		if r.IntN(2000) == 0 {
			tab.Flush()
		}
		for f := range tab.Flows() {
			_ = tab.Info(f)
			break
		}
	})
	wg.Wait()
	select {
	case msg := <-failed:
		t.Fatal(msg)
	default:
	}

	// No two flows share a key, and each is found by both of its keys.
	seen := map[Key]*Flow{}
	for f := range tab.Flows() {
		for d, k := range []Key{f.Orig(), f.Reply()} {
			if g := seen[k]; g != nil {
				t.Fatalf("two flows hold %v", k)
			}
			seen[k] = f
			if g, got := tab.Lookup(k); g != f || got != Dir(d) {
				t.Fatalf("Lookup(%v) = %p %v, want %p %v", k, g, got, f, Dir(d))
			}
		}
	}
	if tab.Len() > max {
		t.Fatalf("Len %d above Max %d", tab.Len(), max)
	}

	tab.Flush()
	flows, calls := o.total()
	if flows != len(inserted) || calls != len(inserted) {
		t.Fatalf("%d flows inserted, %d released in %d calls", len(inserted), flows, calls)
	}
	if tab.Len() != 0 {
		t.Fatalf("Len %d after Flush", tab.Len())
	}
	for i := range tab.shards {
		if s := &tab.shards[i]; s.live != 0 || s.used != 0 {
			t.Fatalf("shard %d: live %d, used %d after Flush", i, s.live, s.used)
		}
	}
	st := tab.Stats()
	t.Logf("%d inserted, %d refused full, %d expired", st.Inserted, st.RefusedFull, st.Expired)
	if st.Inserted != uint64(len(inserted)) {
		t.Fatalf("Stats.Inserted %d, want %d", st.Inserted, len(inserted))
	}
}
