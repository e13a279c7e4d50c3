// Package filter is the rule matcher of tungate's filter stage: an
// ordered list of rules, first match wins, compiled once per config into
// per-field bit sets so that finding the first rule a packet matches does
// not walk the rules.
//
// Each field (ingress and egress interface, source and destination
// address, protocol, destination port, conntrack state) maps a packet's
// value to the set of rules whose key for that field admits it: a table
// for interfaces, protocols and states, and for addresses and ports the
// elementary intervals their prefixes and ranges cut the value space into,
// found by binary search. The first rule the packet matches is the lowest
// bit set in all seven sets (Lakshman and Stiliadis, "High-speed
// policy-based packet forwarding using efficient multi-dimensional range
// matching", SIGCOMM 1998). Every set keeps a summary bit per 64-rule word
// that is not empty, so the search ANDs summaries first and looks only at
// words that every field has bits in: a packet costs a few summary words
// and the words of its candidates, not a pass over the rules.
package filter

import (
	"math/bits"
	"net/netip"
	"slices"
)

// State is a packet's conntrack state as the filter sees it.
type State uint8

// The states; a rule's States is a set of them (0: any).
const (
	New State = 1 << iota
	Established
	Related
	Invalid
)

// Any is the wildcard for Rule's interface and protocol keys.
const Any = -1

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// Rule is what a rule matches; every key left at its zero (nil, Any,
// States 0) matches anything.
type Rule struct {
	In, Out  int // interface indexes, or Any
	From, To []netip.Prefix
	Proto    int         // IP protocol number, or Any
	DPorts   []PortRange // only TCP and UDP packets have a port to match
	States   State
}

// Packet is what the filter reads of a packet.
type Packet struct {
	In, Out  int
	Src, Dst netip.Addr
	Proto    uint8
	HasPort  bool // a TCP or UDP packet whose header holds DPort
	DPort    uint16
	State    State
}

// Matcher finds the first rule a packet matches. It is immutable and safe
// for concurrent use.
type Matcher struct {
	n                      int
	in, out                ifaceField
	src4, dst4, src6, dst6 addrField
	proto                  [256]*bitset
	ports                  portField
	noPort                 *bitset // rules without DPorts: those a portless packet may match
	states                 [16]*bitset
}

// Compile builds the matcher of rules.
func Compile(rules []Rule) *Matcher {
	m := &Matcher{n: len(rules)}
	m.in = compileIface(rules, func(r *Rule) int { return r.In })
	m.out = compileIface(rules, func(r *Rule) int { return r.Out })
	m.src4 = compileAddrs(rules, true, func(r *Rule) []netip.Prefix { return r.From })
	m.dst4 = compileAddrs(rules, true, func(r *Rule) []netip.Prefix { return r.To })
	m.src6 = compileAddrs(rules, false, func(r *Rule) []netip.Prefix { return r.From })
	m.dst6 = compileAddrs(rules, false, func(r *Rule) []netip.Prefix { return r.To })
	for p := range m.proto {
		m.proto[p] = setOf(rules, func(r *Rule) bool { return r.Proto == Any || r.Proto == p })
	}
	m.ports = compilePorts(rules)
	m.noPort = setOf(rules, func(r *Rule) bool { return r.DPorts == nil })
	for s := range m.states {
		m.states[s] = setOf(rules, func(r *Rule) bool { return r.States == 0 || r.States&State(s) != 0 })
	}
	return m
}

// Match returns the index of the first rule p matches, or -1.
func (m *Matcher) Match(p *Packet) int {
	// An address is matched in its own family: an IPv4-mapped IPv6
	// address is IPv6, as nftables' ip6 saddr sees it.
	src, dst := &m.src6, &m.dst6
	if p.Src.Is4() {
		src = &m.src4
	}
	if p.Dst.Is4() {
		dst = &m.dst4
	}
	port := m.noPort
	if p.HasPort {
		port = m.ports.lookup(p.DPort)
	}
	sets := [...]*bitset{
		m.in.lookup(p.In), m.out.lookup(p.Out), src.lookup(p.Src), dst.lookup(p.Dst),
		m.proto[p.Proto], port, m.states[p.State&15],
	}
	for si := range sets[0].sum {
		s := ^uint64(0)
		for _, b := range sets {
			s &= b.sum[si]
		}
		for ; s != 0; s &= s - 1 {
			w := si*64 + bits.TrailingZeros64(s)
			x := ^uint64(0)
			for _, b := range sets {
				x &= b.words[w]
			}
			if x != 0 {
				return w*64 + bits.TrailingZeros64(x)
			}
		}
	}
	return -1
}

// bitset is a set of rule indexes with its summary: bit w of sum is set
// when words[w] is not empty.
type bitset struct {
	words, sum []uint64
}

func newBitset(n int) *bitset {
	w := (n + 63) / 64
	return &bitset{words: make([]uint64, w), sum: make([]uint64, (w+63)/64)}
}

func (b *bitset) add(i int) {
	b.words[i/64] |= 1 << (i % 64)
	b.sum[i/64/64] |= 1 << (i / 64 % 64)
}

// setOf is the set of the rules for which in says true.
func setOf(rules []Rule, in func(*Rule) bool) *bitset {
	b := newBitset(len(rules))
	for i := range rules {
		if in(&rules[i]) {
			b.add(i)
		}
	}
	return b
}

// ifaceField maps an interface index to its rules.
type ifaceField struct {
	byIndex []*bitset
	any     *bitset // rules for any interface: those of an index no rule names
}

func compileIface(rules []Rule, key func(*Rule) int) ifaceField {
	f := ifaceField{any: setOf(rules, func(r *Rule) bool { return key(r) == Any })}
	for i := range rules {
		if k := key(&rules[i]); k != Any && k >= len(f.byIndex) {
			f.byIndex = append(f.byIndex, make([]*bitset, k+1-len(f.byIndex))...)
		}
	}
	for k := range f.byIndex {
		f.byIndex[k] = setOf(rules, func(r *Rule) bool { return key(r) == Any || key(r) == k })
	}
	return f
}

func (f *ifaceField) lookup(i int) *bitset {
	if i >= 0 && i < len(f.byIndex) {
		return f.byIndex[i]
	}
	return f.any
}

// intervals cut a value space at starts: value v falls in interval k, the
// last whose start is at most v, and sets[k] are the rules admitting the
// values of interval k. starts[0] is the space's lowest value.
type intervals[T any] struct {
	starts []T
	sets   []*bitset
}

func (iv *intervals[T]) lookup(v T, cmp func(a, b T) int) *bitset {
	k, found := slices.BinarySearchFunc(iv.starts, v, cmp)
	if !found {
		k--
	}
	return iv.sets[k]
}

// cover builds the sets of intervals: each interval's set is base (the
// rules that admit any value) with the rules whose ranges cover it, found
// by walking each range's intervals, so compiling costs what the ranges
// cover rather than intervals × rules. Intervals no range covers share
// base.
func cover[T any](starts []T, base *bitset, ranges func(yield func(rule int, first, last T)), cmp func(a, b T) int) []*bitset {
	sets := make([]*bitset, len(starts))
	for k := range sets {
		sets[k] = base
	}
	ranges(func(rule int, first, last T) {
		k, _ := slices.BinarySearchFunc(starts, first, cmp)
		for ; k < len(starts) && cmp(starts[k], last) <= 0; k++ {
			if sets[k] == base {
				sets[k] = base.clone()
			}
			sets[k].add(rule)
		}
	})
	return sets
}

func (b *bitset) clone() *bitset {
	return &bitset{words: slices.Clone(b.words), sum: slices.Clone(b.sum)}
}

// portField is the destination port intervals.
type portField struct{ intervals[uint16] }

func compilePorts(rules []Rule) portField {
	starts := []uint16{0}
	for _, r := range rules {
		for _, pr := range r.DPorts {
			starts = append(starts, pr.Lo)
			if pr.Hi < 65535 {
				starts = append(starts, pr.Hi+1)
			}
		}
	}
	slices.Sort(starts)
	starts = slices.Compact(starts)
	cmp := func(a, b uint16) int { return int(a) - int(b) }
	ranges := func(yield func(int, uint16, uint16)) {
		for i, r := range rules {
			for _, pr := range r.DPorts {
				yield(i, pr.Lo, pr.Hi)
			}
		}
	}
	// The rules without DPorts admit every port; Match takes them alone
	// (noPort) for a packet without one.
	base := setOf(rules, func(r *Rule) bool { return r.DPorts == nil })
	return portField{intervals[uint16]{starts: starts, sets: cover(starts, base, ranges, cmp)}}
}

func (f *portField) lookup(port uint16) *bitset {
	return f.intervals.lookup(port, func(a, b uint16) int { return int(a) - int(b) })
}

// addrField is one family's address intervals for one field. Rules whose
// key lists no prefix of the family match no address of it, unless the
// key is absent (nil: any address).
type addrField struct{ intervals[netip.Addr] }

func compileAddrs(rules []Rule, is4 bool, key func(*Rule) []netip.Prefix) addrField {
	lowest := netip.IPv6Unspecified()
	if is4 {
		lowest = netip.IPv4Unspecified()
	}
	starts := []netip.Addr{lowest}
	ranges := func(yield func(int, netip.Addr, netip.Addr)) {
		for i := range rules {
			for _, p := range key(&rules[i]) {
				if p.Addr().Is4() == is4 {
					yield(i, p.Masked().Addr(), lastOf(p))
				}
			}
		}
	}
	ranges(func(_ int, first, last netip.Addr) {
		starts = append(starts, first)
		if next := last.Next(); next.IsValid() {
			starts = append(starts, next)
		}
	})
	slices.SortFunc(starts, netip.Addr.Compare)
	starts = slices.Compact(starts)
	base := setOf(rules, func(r *Rule) bool { return key(r) == nil })
	return addrField{intervals[netip.Addr]{starts: starts, sets: cover(starts, base, ranges, netip.Addr.Compare)}}
}

func (f *addrField) lookup(a netip.Addr) *bitset {
	return f.intervals.lookup(a, netip.Addr.Compare)
}

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As16()
	bitsIn := p.Bits()
	if p.Addr().Is4() {
		bitsIn += 96
	}
	for i := bitsIn; i < 128; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	last := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		return last.Unmap()
	}
	return last
}
