package lb

import (
	"cmp"
	"slices"
)

// MaglevTableSize is maglev's lookup table size M, a prime as Maglev
// requires (§3.4). The paper asks for M > 100·N with N backends; a larger
// M also moves fewer slots when the set changes.
const MaglevTableSize = 65537

// maglev is Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, §3.4): a flow's client
// address, port and protocol select one of M slots, and the slots are
// shared among the backends so that each gets an equal share (or one in
// proportion to its weight), and a change of the set moves few slots
// besides those of the backends that come or go.
//
// The table holds only the backends eligible at build time, ordered by
// address so that it depends on the set alone, not on the config order:
// two tungates with the same backends build the same table. A backend
// that fails or drains is left out by the next build, which moves its
// slots and only a few others (the paper's promise is near-minimal
// disruption; maglev_test.go measures it). Until then slotTable.lookup
// rehashes its flows.
type maglev struct{ slotTable }

func newMaglev(bs []*Backend, m int) Scheduler {
	type entry struct {
		b      *Backend
		name   string
		weight int
	}
	var live []entry
	for _, b := range bs {
		if w := int(b.Weight.Load()); w > 0 && b.Healthy.Load() {
			live = append(live, entry{b, b.Addr.String(), w})
		}
	}
	slices.SortFunc(live, func(x, y entry) int { return cmp.Compare(x.name, y.name) })
	t := &maglev{slotTable{backends: make([]*Backend, len(live))}}
	names := make([]string, len(live))
	weights := make([]int, len(live))
	for i, e := range live {
		t.backends[i], names[i], weights[i] = e.b, e.name, e.weight
	}
	t.slots = maglevTable(names, weights, m)
	return t
}

func (t *maglev) Pick(flow FlowKey) *Backend {
	return t.lookup(hashFlow(flow))
}

// maglevTable fills m slots (m prime, m ≥ len(names)) with indices into
// names. It is the paper's Pseudocode 1, Populate: backend i prefers the
// slots offset_i, offset_i+skip_i, offset_i+2·skip_i, … (mod m), with
// offset and skip from two hashes of its name; the backends take turns,
// each claiming its most preferred free slot, until the table is full. A
// prime m and 0 < skip < m make each preference list a permutation of all
// slots, and keeping each backend's place in its list (next) makes the
// whole fill O(m log m).
//
// Weights change how often a backend takes its turn, as the paper
// suggests: in round r a backend of weight w takes one only if
// r·w ≥ credit, and each turn adds the largest weight to its credit, so
// the heaviest backend turns every round and one of half its weight every
// other round (Envoy's and Cilium's scheme). With equal weights every
// backend turns every round: the unweighted algorithm.
func maglevTable(names []string, weights []int, m int) []int32 {
	if len(names) == 0 {
		return nil
	}
	type pref struct {
		next, skip int
		weight     int64
		credit     int64
	}
	prefs := make([]pref, len(names))
	var maxWeight int64
	for i, name := range names {
		h := hashName(name)
		prefs[i] = pref{
			next:   int(mix64(h^seedOffset) % uint64(m)),
			skip:   int(mix64(h^seedSkip)%uint64(m-1)) + 1,
			weight: int64(weights[i]),
		}
		maxWeight = max(maxWeight, int64(weights[i]))
	}
	// Probes test a bitmap of taken slots (8 KiB for the default M, so it
	// stays in the L1 cache) and each slot is written once.
	taken := make([]uint64, (m+63)/64)
	slots := make([]int32, m)
	filled := 0
	for round := int64(1); ; round++ {
		for i := range prefs {
			p := &prefs[i]
			if round*p.weight < p.credit {
				continue
			}
			p.credit += maxWeight
			c := p.next
			for taken[c>>6]&(1<<(c&63)) != 0 {
				c = advance(c, p.skip, m)
			}
			taken[c>>6] |= 1 << (c & 63)
			slots[c] = int32(i)
			p.next = advance(c, p.skip, m)
			if filled++; filled == m {
				return slots
			}
		}
	}
}

// advance returns (c + skip) mod m for c, skip < m, without a branch: the
// wrap is taken at random, so a branch would be mispredicted often.
func advance(c, skip, m int) int {
	c += skip - m
	return c + (c>>63)&m
}
