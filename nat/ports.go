package nat

import (
	"math/bits"
	"math/rand/v2"
)

// portSet records which ports of one external address and protocol are
// taken, by a live mapping or held back by ReuseDelay: one bit a port.
type portSet struct {
	taken      [65536 / 64]uint64
	live, held int
}

func (s *portSet) isTaken(p uint16) bool { return s.taken[p>>6]&(1<<(p&63)) != 0 }
func (s *portSet) take(p uint16)         { s.taken[p>>6] |= 1 << (p & 63) }
func (s *portSet) free(p uint16)         { s.taken[p>>6] &^= 1 << (p & 63) }

// span is the ports one choice may take: lo..hi, all of them or only those
// of one parity.
type span struct {
	lo, hi uint16
	parity int // -1: any; 0: even; 1: odd
}

func (sp span) contains(p uint16) bool {
	return sp.lo <= p && p <= sp.hi && (sp.parity < 0 || int(p&1) == sp.parity)
}

// spanFor is where an external port for internal port p may come from.
func spanFor(r *Rule, icmp bool, p uint16) span {
	sp := span{r.Ports.Lo, r.Ports.Hi, -1}
	if icmp {
		// An ICMP identifier is no port: it has no privileged range and
		// no RTP/RTCP pairing, so RFC 4787 REQ-3a and REQ-4 do not apply.
		return sp
	}
	// RFC 4787 REQ-3a: "If the host's source port was in the range
	// 0-1023, it is RECOMMENDED the NAT's source port be in the same
	// range. If the host's source port was in the range 1024-65535, it is
	// RECOMMENDED that the NAT's source port be in that range." Kept
	// whenever the configured range reaches into the class; when the
	// class has no free port the flow is refused rather than moved to the
	// other class, so the behaviour does not change under load (REQ-11).
	switch {
	case p < 1024 && sp.lo < 1024:
		sp.hi = min(sp.hi, 1023)
	case p >= 1024 && sp.hi >= 1024:
		sp.lo = max(sp.lo, 1024)
	}
	if r.Parity {
		// RFC 4787 REQ-4: "It is RECOMMENDED that a NAT have a "Port
		// parity preservation" behavior of "Yes"." Optional since RFC
		// 7857 §8; see Rule.Parity.
		sp.parity = int(p & 1)
	}
	return sp
}

// pick chooses a free port of sp at random, or reports that none is free.
// It is RFC 6056 §3.3.1 Algorithm 1, "Simple Port Randomization": start at
// a random candidate and take the first free one from there, wrapping
// around; the bitmap makes the walk 64 ports a step. RFC 7857 §9 (X9) asks
// for RFC 6056 randomization wherever a port cannot be preserved, and RFC
// 6888 REQ-15 for ports that are hard to guess.
func (s *portSet) pick(sp span, rnd rand.Source) (uint16, bool) {
	lo, step := int(sp.lo), 1
	if sp.parity >= 0 {
		step = 2
		if lo&1 != sp.parity {
			lo++
		}
	}
	hi := int(sp.hi)
	if lo > hi {
		return 0, false
	}
	n := uint64((hi-lo)/step + 1)
	start := lo + int(rnd.Uint64()%n)*step
	mask := ^uint64(0)
	switch sp.parity {
	case 0:
		mask = 0x5555555555555555
	case 1:
		mask = 0xaaaaaaaaaaaaaaaa
	}
	if p, ok := s.firstFree(start, hi, mask); ok {
		return p, true
	}
	return s.firstFree(lo, start-1, mask)
}

// firstFree is the lowest port in from..to whose bit is clear and set in
// mask (the same 64-bit pattern for every word).
func (s *portSet) firstFree(from, to int, mask uint64) (uint16, bool) {
	if from > to {
		return 0, false
	}
	for w := from >> 6; w <= to>>6; w++ {
		free := ^s.taken[w] & mask
		if w == from>>6 {
			free &= ^uint64(0) << (from & 63)
		}
		if w == to>>6 {
			free &= ^uint64(0) >> (63 - to&63)
		}
		if free != 0 {
			return uint16(w<<6 + bits.TrailingZeros64(free)), true
		}
	}
	return 0, false
}
