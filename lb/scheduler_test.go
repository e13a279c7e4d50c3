package lb

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
)

func TestNames(t *testing.T) {
	if got, want := Names(), []string{"lc", "maglev", "rr", "sh", "wlc", "wrr"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
}

func TestNewRefuses(t *testing.T) {
	dup := newBackends(1, 1)
	dup[1].Addr = dup[0].Addr
	heavy := newBackends(MaxWeight + 1)
	negative := newBackends(-1)
	for _, tc := range []struct {
		what string
		name string
		bs   []*Backend
	}{
		{"unknown name", "random", nil},
		{"duplicate address", "rr", dup},
		{"weight above MaxWeight", "wrr", heavy},
		{"negative weight", "wlc", negative},
		{"nil backend", "lc", []*Backend{nil}},
	} {
		if _, err := New(tc.name, tc.bs); err == nil {
			t.Errorf("%s: no error", tc.what)
		} else {
			t.Logf("%s: %v", tc.what, err)
		}
	}
	if _, err := New("random", nil); !errors.Is(err, ErrUnknownScheduler) {
		t.Errorf("unknown name: %v, want ErrUnknownScheduler", err)
	}
}

// TestIneligibleSkippedByAll: unhealthy and weight-0 backends get no flows
// from any scheduler, whether they were so at build time or became so
// after it, and with none eligible Pick returns nil.
func TestIneligibleSkippedByAll(t *testing.T) {
	for _, name := range Names() {
		for _, after := range []bool{false, true} {
			bs := newBackends(1, 1, 1, 1)
			down := func() {
				bs[0].Healthy.Store(false)
				bs[2].Weight.Store(0)
			}
			if !after {
				down()
			}
			s := mustNew(t, name, bs)
			if after {
				down()
			}
			got := counts(s, bs, 1000)
			if got[0] != 0 || got[2] != 0 || got[1]+got[3] != 1000 {
				t.Errorf("%s (down %s build): picks %v", name, map[bool]string{false: "before", true: "after"}[after], got)
			}
			bs[1].Healthy.Store(false)
			bs[3].Weight.Store(0)
			if b := s.Pick(clientFlow(1, 1)); b != nil {
				t.Errorf("%s: none eligible, picked %s", name, b.Addr)
			}
		}
		if b := mustNew(t, name, nil).Pick(clientFlow(1, 1)); b != nil {
			t.Errorf("%s: no backends, picked %s", name, b.Addr)
		}
	}
}

// TestConcurrentPick runs Picks from several goroutines while health and
// counters change (run with -race). rr's turns are claimed atomically, so
// the picks stay exactly even.
func TestConcurrentPick(t *testing.T) {
	const goroutines, picks = 8, 3000
	for _, name := range Names() {
		bs := equalBackends(3)
		flappy := NewBackend(netip.MustParseAddrPort("10.47.9.9:80"), 1)
		all := append(slices.Clone(bs), flappy)
		s := mustNew(t, name, all)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		go func() {
			for up := false; ; up = !up {
				select {
				case <-stop:
					return
				default:
					flappy.Healthy.Store(up)
				}
			}
		}()
		got := make([][]int, goroutines)
		for g := range goroutines {
			wg.Go(func() {
				got[g] = make([]int, 4)
				for i := range picks {
					b := s.Pick(clientFlow(g*picks+i, uint16(i)))
					if b == nil {
						t.Errorf("%s: nil with backends up", name)
						return
					}
					b.Active.Add(1)
					got[g][indexOf(all, b)]++
					b.Active.Add(-1)
				}
			})
		}
		wg.Wait()
		close(stop)
		if name == "rr" {
			flappy.Healthy.Store(false)
			s := mustNew(t, name, bs)
			var wg sync.WaitGroup
			for range goroutines {
				wg.Go(func() {
					for range picks {
						s.Pick(FlowKey{}).Active.Add(1)
					}
				})
			}
			wg.Wait()
			for i, b := range bs {
				if n := b.Active.Load(); n != goroutines*picks/3 {
					t.Errorf("rr: backend %d took %d of %d concurrent picks", i, n, goroutines*picks)
				}
			}
		}
	}
}

func TestPickAllocatesNothing(t *testing.T) {
	for _, name := range Names() {
		bs := equalBackends(10)
		s := mustNew(t, name, bs)
		bs[4].Healthy.Store(false) // exercise the skip and rehash paths too
		i := 0
		if n := testing.AllocsPerRun(1000, func() {
			s.Pick(clientFlow(i, uint16(i)))
			i++
		}); n != 0 {
			t.Errorf("%s: %.1f allocations per Pick", name, n)
		}
	}
}
