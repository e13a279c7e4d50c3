package lb

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// owners is the address owning each slot of a maglev table over bs.
func owners(bs []*Backend, m int) []netip.AddrPort {
	t := newMaglev(bs, m).(*maglev)
	out := make([]netip.AddrPort, len(t.slots))
	for i, s := range t.slots {
		out[i] = t.backends[s].Addr
	}
	return out
}

func TestMaglevTableIsFull(t *testing.T) {
	for _, n := range []int{1, 2, 7, 100} {
		tab := newMaglev(equalBackends(n), 251).(*maglev)
		if len(tab.slots) != 251 {
			t.Fatalf("n=%d: %d slots", n, len(tab.slots))
		}
		for i, s := range tab.slots {
			if s < 0 || int(s) >= n {
				t.Fatalf("n=%d: slot %d holds %d", n, i, s)
			}
		}
	}
	if tab := newMaglev(nil, 251).(*maglev); tab.Pick(clientFlow(1, 1)) != nil {
		t.Fatal("empty maglev picked a backend")
	}
}

func TestMaglevSameSetSameTable(t *testing.T) {
	bs := equalBackends(50)
	want := owners(bs, MaglevTableSize)
	// Other Backend values, in another order: another tungate's config.
	other := equalBackends(50)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(other), func(i, j int) { other[i], other[j] = other[j], other[i] })
	if got := owners(other, MaglevTableSize); !slices.Equal(got, want) {
		t.Fatal("the same backends in another order give another table")
	}
	// And the flows agree.
	a, b := mustNew(t, "maglev", bs), mustNew(t, "maglev", other)
	for c := range 1000 {
		f := clientFlow(c, uint16(c*7))
		if a.Pick(f).Addr != b.Pick(f).Addr {
			t.Fatalf("flow %v: the two tables disagree", f)
		}
	}
}

// TestMaglevTablePinned pins the table of a fixed set. Two tungates agree
// only if they run the same algorithm and hashes; a change here moves
// flows between versions and must be deliberate.
func TestMaglevTablePinned(t *testing.T) {
	bs := newBackends(1, 2, 3)
	bs = append(bs, NewBackend(netip.MustParseAddrPort("[2001:db8::1]:8080"), 1))
	tab := newMaglev(bs, MaglevTableSize).(*maglev)
	h := fnv.New64a()
	for _, s := range tab.slots {
		fmt.Fprintf(h, "%s,", tab.backends[s].Addr)
	}
	const want uint64 = 0xffe5a5a8c9cc03d4
	if got := h.Sum64(); got != want {
		t.Fatalf("table fingerprint %#x, pinned %#x", got, want)
	}
	f := FlowKey{Client: netip.MustParseAddrPort("192.0.2.1:40000"), Proto: 6}
	if got, want := tab.Pick(f).Addr.String(), "[2001:db8::1]:8080"; got != want {
		t.Fatalf("flow %v goes to %s, pinned %s", f, got, want)
	}
}

func TestMaglevEqualShares(t *testing.T) {
	// Each round gives every backend one slot, so shares differ by at most one.
	for _, n := range []int{3, 10, 100, 1000} {
		bs := equalBackends(n)
		got := slotCounts(bs, MaglevTableSize)
		lo, hi := slices.Min(got), slices.Max(got)
		if lo < MaglevTableSize/n || hi > MaglevTableSize/n+1 {
			t.Errorf("n=%d: shares %d..%d, want %d or %d", n, lo, hi, MaglevTableSize/n, MaglevTableSize/n+1)
		}
	}
}

func TestMaglevWeightsWithinOnePercent(t *testing.T) {
	for _, weights := range [][]int{
		{1, 2},
		{1, 2, 3, 4},
		{2, 13, 111, 10}, // Cilium's case
		{100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
	} {
		bs := newBackends(weights...)
		got := slotCounts(bs, MaglevTableSize)
		sum := 0
		for _, w := range weights {
			sum += w
		}
		for i, w := range weights {
			want := float64(MaglevTableSize) * float64(w) / float64(sum)
			if math.Abs(float64(got[i])-want) > 0.01*want {
				t.Errorf("weights %v: backend %d has %d slots, want %.0f ± 1%%", weights, i, got[i], want)
			}
		}
	}
}

func slotCounts(bs []*Backend, m int) []int {
	tab := newMaglev(bs, m).(*maglev)
	got := make([]int, len(bs))
	for _, s := range tab.slots {
		got[indexOf(bs, tab.backends[s])]++
	}
	return got
}

// TestMaglevRemovalDisruption removes one backend of N and counts the slots
// that change owner although their owner stayed: Maglev's promise is that
// these are few, not none (§3.4).
func TestMaglevRemovalDisruption(t *testing.T) {
	const bound = 1.0 // % of M; measured worst: 0.42 (N=10), 0.59 (N=100, 1000)
	for _, n := range []int{10, 100, 1000} {
		bs := equalBackends(n)
		before := owners(bs, MaglevTableSize)
		worst, total := 0.0, 0.0
		const trials = 5
		for k := range trials {
			gone := bs[k*n/trials]
			rest := slices.DeleteFunc(slices.Clone(bs), func(b *Backend) bool { return b == gone })
			after := owners(rest, MaglevTableSize)
			own, extra := 0, 0
			for i := range before {
				switch {
				case before[i] == gone.Addr:
					own++
				case after[i] != before[i]:
					extra++
				}
			}
			pct := 100 * float64(extra) / MaglevTableSize
			worst = max(worst, pct)
			total += pct
			if own == 0 {
				t.Fatalf("n=%d: removed backend had no slots", n)
			}
		}
		t.Logf("N=%d, M=%d: removing one backend moves its own %.2f%% of slots and %.3f%% others on average (worst %.3f%%)",
			n, MaglevTableSize, 100/float64(n), total/trials, worst)
		if worst > bound {
			t.Errorf("N=%d: %.3f%% of slots of remaining backends moved, bound %.1f%%", n, worst, bound)
		}
	}
}

// TestMaglevStaleTableSkipsIneligible: before the rebuild, flows of a
// failed backend are rehashed and nobody else moves; after it, the table
// leaves the backend out.
func TestMaglevStaleTableSkipsIneligible(t *testing.T) {
	bs := equalBackends(5)
	s := mustNew(t, "maglev", bs)
	before := make([]*Backend, 5000)
	for c := range before {
		before[c] = s.Pick(clientFlow(c, 9))
	}
	bs[3].Healthy.Store(false)
	for c := range before {
		b := s.Pick(clientFlow(c, 9))
		if b == bs[3] || (before[c] != bs[3] && b != before[c]) {
			t.Fatalf("flow %d: %v before, %v with 3 down", c, indexOf(bs, before[c]), indexOf(bs, b))
		}
	}
	rebuilt := mustNew(t, "maglev", bs).(*maglev)
	if slices.Contains(rebuilt.backends, bs[3]) {
		t.Fatal("rebuilt table still holds the unhealthy backend")
	}
	bs[1].Weight.Store(0)
	if slices.Contains(mustNew(t, "maglev", bs).(*maglev).backends, bs[1]) {
		t.Fatal("rebuilt table holds the drained backend")
	}
}

func TestMaglevFlowsFollowSlots(t *testing.T) {
	bs := newBackends(1, 3)
	s := mustNew(t, "maglev", bs)
	got := counts(s, bs, 40000)
	if f := float64(got[1]) / 40000; math.Abs(f-0.75) > 0.01 {
		t.Errorf("weight 3 of 4 took %.3f of flows", f)
	}
	// One client, many ports: a 5-tuple hash spreads them.
	seen := make(map[*Backend]bool)
	for port := range uint16(64) {
		seen[s.Pick(clientFlow(1, port))] = true
	}
	if len(seen) != 2 {
		t.Error("64 ports of one client all went to one backend")
	}
}
