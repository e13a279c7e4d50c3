package lb

import (
	"slices"
	"testing"
)

func TestRoundRobinAlternatesExactly(t *testing.T) {
	bs := newBackends(1, 5, 1) // rr ignores weights
	s := mustNew(t, "rr", bs)
	if got, want := sequence(s, bs, 7), "0 1 2 0 1 2 0"; got != want {
		t.Fatalf("rr: %s, want %s", got, want)
	}
}

func TestRoundRobinSkipsIneligible(t *testing.T) {
	bs := newBackends(1, 1, 1)
	s := mustNew(t, "rr", bs)
	if got := sequence(s, bs, 1); got != "0" {
		t.Fatalf("first pick %s", got)
	}
	bs[1].Healthy.Store(false)
	if got, want := sequence(s, bs, 4), "2 0 2 0"; got != want {
		t.Fatalf("1 down: %s, want %s (a skipped backend loses its turn only)", got, want)
	}
	bs[1].Healthy.Store(true)
	bs[2].Weight.Store(0)
	if got, want := sequence(s, bs, 4), "1 0 1 0"; got != want {
		t.Fatalf("1 back, 2 drained: %s, want %s", got, want)
	}
	bs[0].Healthy.Store(false)
	bs[1].Healthy.Store(false)
	if got, want := sequence(s, bs, 2), "- -"; got != want {
		t.Fatalf("none eligible: %s, want %s", got, want)
	}
}

func TestWeightedRoundRobinCycle(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    string
	}{
		{[]int{1, 1}, "0 1 0 1"},
		{[]int{1, 2}, "1 0 1 1 0 1"},
		{[]int{2, 4}, "1 0 1 1 0 1"}, // divided by the gcd, as IPVS does
		{[]int{3, 1}, "0 0 1 0 0 0 1 0"},
		{[]int{5, 1, 1}, "0 0 0 1 2 0 0"},
		{[]int{1, 2, 3}, "2 1 0 2 1 2"},
		{[]int{1, 0, 1}, "0 2 0 2"},
		{[]int{0, 0}, "- -"},
	} {
		bs := newBackends(tc.weights...)
		s := mustNew(t, "wrr", bs)
		if got := sequence(s, bs, len(tc.want)/2+1); got != tc.want {
			t.Errorf("wrr %v: %s, want %s", tc.weights, got, tc.want)
		}
	}
}

func TestWeightedRoundRobinFollowsWeightsExactly(t *testing.T) {
	weights := []int{7, 1, 3, 12, 5}
	bs := newBackends(weights...)
	s := mustNew(t, "wrr", bs)
	cycle := 7 + 1 + 3 + 12 + 5
	for round := range 3 {
		if got := counts(s, bs, cycle); !slices.Equal(got, weights) {
			t.Fatalf("cycle %d: %v, want %v", round, got, weights)
		}
	}
}

func TestWeightedRoundRobinSkipKeepsRatios(t *testing.T) {
	bs := newBackends(1, 2, 3)
	s := mustNew(t, "wrr", bs)
	bs[0].Healthy.Store(false)
	if got, want := counts(s, bs, 500), []int{0, 200, 300}; !slices.Equal(got, want) {
		t.Fatalf("with 0 down: %v, want %v", got, want)
	}
}

func TestWeightedSequenceScalesHugeCycles(t *testing.T) {
	weights := []int{MaxWeight, 1, MaxWeight - 1, 40000, 3}
	seq := weightedSequence(weights)
	if len(seq) > maxCycle+len(weights) {
		t.Fatalf("cycle of %d, bound %d", len(seq), maxCycle)
	}
	got := make([]int, len(weights))
	for _, i := range seq {
		got[i]++
	}
	sum := 0
	for _, w := range weights {
		sum += w
	}
	for i, w := range weights {
		want := float64(w) / float64(sum) * float64(len(seq))
		if d := float64(got[i]) - want; d > 1.5 || d < -1.5 || got[i] == 0 {
			t.Errorf("backend %d: %d turns, want %.1f", i, got[i], want)
		}
	}
}
