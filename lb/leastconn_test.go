package lb

import (
	"slices"
	"testing"
)

// assign picks n times and, like the connection tracker, counts each flow
// as active on its backend; it returns the choices.
func assign(s Scheduler, bs []*Backend, n int) []int {
	var got []int
	for range n {
		b := s.Pick(clientFlow(1, 1000))
		if b != nil {
			b.Active.Add(1)
		}
		got = append(got, indexOf(bs, b))
	}
	return got
}

func TestLeastConnByLiveCounts(t *testing.T) {
	bs := newBackends(1, 1, 1)
	s := mustNew(t, "lc", bs)
	bs[0].Active.Store(3)
	bs[1].Active.Store(1)
	bs[2].Active.Store(2)
	if got, want := assign(s, bs, 6), []int{1, 1, 2, 0, 1, 2}; !slices.Equal(got, want) {
		t.Fatalf("lc from 3,1,2 active: %v, want %v (fewest first, ties to the first)", got, want)
	}
	bs[0].Active.Store(0) // flows of 0 ended
	if got, want := assign(s, bs, 1), []int{0}; !slices.Equal(got, want) {
		t.Fatalf("after releases: %v, want %v", got, want)
	}
}

func TestLeastConnIgnoresWeights(t *testing.T) {
	bs := newBackends(1, 9)
	s := mustNew(t, "lc", bs)
	if got, want := assign(s, bs, 4), []int{0, 1, 0, 1}; !slices.Equal(got, want) {
		t.Fatalf("lc: %v, want %v", got, want)
	}
}

func TestWeightedLeastConnByActivePerWeight(t *testing.T) {
	bs := newBackends(1, 3)
	s := mustNew(t, "wlc", bs)
	// 0/1 vs 0/3 tie → 0; 1/1 vs 0/3 → 1; 1/1 vs 1/3 → 1; 1/1 vs 2/3 → 1;
	// 1/1 vs 3/3 tie → 0; ...
	if got, want := assign(s, bs, 8), []int{0, 1, 1, 1, 0, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("wlc 1:3: %v, want %v", got, want)
	}
	bs[1].Weight.Store(1) // read live: no rebuild needed
	bs[0].Active.Store(10)
	bs[1].Active.Store(6)
	if got, want := assign(s, bs, 5), []int{1, 1, 1, 1, 0}; !slices.Equal(got, want) {
		t.Fatalf("wlc after weight 1:1: %v, want %v", got, want)
	}
}

func TestWeightedLeastConnKeepsProportion(t *testing.T) {
	bs := newBackends(2, 3, 5)
	s := mustNew(t, "wlc", bs)
	assign(s, bs, 1000)
	for i, want := range []int64{200, 300, 500} {
		if got := bs[i].Active.Load(); got != want {
			t.Errorf("backend %d: %d active, want %d", i, got, want)
		}
	}
}
