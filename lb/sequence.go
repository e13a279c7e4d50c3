package lb

// maxCycle bounds the length of a weighted sequence.
const maxCycle = 1 << 16

// weightsOf reads each backend's weight once; negative counts as 0.
func weightsOf(bs []*Backend) []int {
	ws := make([]int, len(bs))
	for i, b := range bs {
		ws[i] = max(0, int(b.Weight.Load()))
	}
	return ws
}

// weightedSequence returns one cycle of backend indices in which index i
// takes weights[i] turns (none for 0), smoothly interleaved. This is wrr's
// cycle and sh's table.
//
// Weights are first divided by their greatest common divisor, as IPVS's
// wrr does (ip_vs_wrr_gcd_weight), so weights 2 and 4 give a cycle of 3.
// If they still sum to more than maxCycle they are scaled down to fit, each
// positive weight keeping at least one turn; ratios then hold to within
// about len(weights)/maxCycle.
//
// Turn j (from 0) of index i falls at virtual time (j+½)/w_i of the cycle,
// and turns are taken in time order, ties to the lower index: stride
// scheduling (Waldspurger and Weihl, 1995), the Sainte-Laguë order. Like
// nginx's smooth weighted round-robin it spreads a heavy backend's turns
// through the cycle (weights 5,1,1: a a a b c a a), where IPVS's
// interleaved wrr takes them in a burst (a a a a a b c). A heap of each
// index's next turn builds the cycle of P turns in O(P log n).
func weightedSequence(weights []int) []int32 {
	g, sum := 0, 0
	for _, w := range weights {
		g = gcd(g, w)
		sum += w
	}
	if sum == 0 {
		return nil
	}
	ws := make([]int, len(weights))
	var h turns
	cycle := 0
	for i, w := range weights {
		ws[i] = w / g
		if sum/g > maxCycle && w > 0 {
			ws[i] = max(1, w*maxCycle/sum)
		}
		cycle += ws[i]
		if ws[i] > 0 {
			h = append(h, turn{at: 0.5 / float64(ws[i]), i: int32(i)})
		}
	}
	for k := len(h)/2 - 1; k >= 0; k-- {
		h.down(k)
	}
	seq := make([]int32, 0, cycle)
	for len(h) > 0 {
		t := &h[0]
		seq = append(seq, t.i)
		if t.j++; t.j < int32(ws[t.i]) {
			t.at = (float64(t.j) + 0.5) / float64(ws[t.i])
		} else {
			h[0] = h[len(h)-1]
			h = h[:len(h)-1]
		}
		h.down(0)
	}
	return seq
}

// A turn is index i's turn j, at virtual time at. Times are compared as
// float64: each is a correctly rounded quotient of small integers, so equal
// fractions give equal floats and unequal ones (apart by at least 1/2³⁴)
// stay apart.
type turn struct {
	at   float64
	i, j int32
}

// turns is a min-heap of turns by time, then index.
type turns []turn

func (h turns) less(a, b int) bool {
	return h[a].at < h[b].at || h[a].at == h[b].at && h[a].i < h[b].i
}

func (h turns) down(k int) {
	for {
		c := 2*k + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h.less(c+1, c) {
			c++
		}
		if !h.less(c, k) {
			return
		}
		h[k], h[c] = h[c], h[k]
		k = c
	}
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
