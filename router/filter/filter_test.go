package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// reference is the straightforward first match the matcher must agree
// with.
func reference(rules []Rule, p *Packet) int {
	for i, r := range rules {
		if matches(&r, p) {
			return i
		}
	}
	return -1
}

func matches(r *Rule, p *Packet) bool {
	anyOf := func(ps []netip.Prefix, a netip.Addr) bool {
		return ps == nil || slices.ContainsFunc(ps, func(pf netip.Prefix) bool { return pf.Contains(a) })
	}
	return (r.In == Any || r.In == p.In) && (r.Out == Any || r.Out == p.Out) &&
		anyOf(r.From, p.Src) && anyOf(r.To, p.Dst) &&
		(r.Proto == Any || r.Proto == int(p.Proto)) &&
		(r.DPorts == nil || p.HasPort && slices.ContainsFunc(r.DPorts, func(pr PortRange) bool { return pr.Lo <= p.DPort && p.DPort <= pr.Hi })) &&
		(r.States == 0 || r.States&p.State != 0)
}

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func anyRule() Rule { return Rule{In: Any, Out: Any, Proto: Any} }

// TestMatchEachKey: a table of packets against rules of one key each,
// and the home gateway's rule set.
func TestMatchEachKey(t *testing.T) {
	with := func(f func(*Rule)) Rule { r := anyRule(); f(&r); return r }
	rules := []Rule{
		with(func(r *Rule) { r.In = 1; r.States = New | Invalid }),                          // 0: drop new from the WAN
		with(func(r *Rule) { r.Out = 2 }),                                                   // 1
		with(func(r *Rule) { r.From = pfx("10.0.0.0/8", "fd00::/8") }),                      // 2
		with(func(r *Rule) { r.To = pfx("192.0.2.0/24") }),                                  // 3
		with(func(r *Rule) { r.Proto = 6; r.DPorts = []PortRange{{22, 22}, {8000, 8999}} }), // 4
		with(func(r *Rule) { r.Proto = 17 }),                                                // 5
		with(func(r *Rule) { r.States = Related }),                                          // 6
	}
	m := Compile(rules)
	base := Packet{In: 0, Out: 1, Src: netip.MustParseAddr("192.168.1.2"), Dst: netip.MustParseAddr("198.51.100.1"), Proto: 1, State: Established}
	for _, tt := range []struct {
		name string
		edit func(*Packet)
		want int
	}{
		{"nothing matches", func(p *Packet) {}, -1},
		{"new from in 1", func(p *Packet) { p.In, p.State = 1, New }, 0},
		{"invalid from in 1", func(p *Packet) { p.In, p.State = 1, Invalid }, 0},
		{"established from in 1", func(p *Packet) { p.In = 1 }, -1},
		{"out 2", func(p *Packet) { p.Out = 2 }, 1},
		{"from 10/8", func(p *Packet) { p.Src = netip.MustParseAddr("10.9.8.7") }, 2},
		{"from fd00::/8", func(p *Packet) { p.Src, p.Dst = netip.MustParseAddr("fd01::1"), netip.MustParseAddr("2001:db8::1") }, 2},
		{"an IPv4-mapped source is IPv6, not in 10/8", func(p *Packet) {
			p.Src, p.Dst = netip.MustParseAddr("::ffff:10.9.8.7"), netip.MustParseAddr("2001:db8::1")
		}, -1},
		{"to 192.0.2.0/24, last address", func(p *Packet) { p.Dst = netip.MustParseAddr("192.0.2.255") }, 3},
		{"to just past it", func(p *Packet) { p.Dst = netip.MustParseAddr("192.0.3.0") }, -1},
		{"tcp 22", func(p *Packet) { p.Proto, p.HasPort, p.DPort = 6, true, 22 }, 4},
		{"tcp 8999", func(p *Packet) { p.Proto, p.HasPort, p.DPort = 6, true, 8999 }, 4},
		{"tcp 9000", func(p *Packet) { p.Proto, p.HasPort, p.DPort = 6, true, 9000 }, -1},
		{"tcp without a port header", func(p *Packet) { p.Proto = 6 }, -1},
		{"udp", func(p *Packet) { p.Proto, p.HasPort, p.DPort = 17, true, 53 }, 5},
		{"related", func(p *Packet) { p.State = Related }, 6},
		{"first of several", func(p *Packet) { p.Out, p.Proto, p.HasPort, p.DPort = 2, 17, true, 53 }, 1},
	} {
		p := base
		tt.edit(&p)
		if got := m.Match(&p); got != tt.want || reference(rules, &p) != tt.want {
			t.Errorf("%s: Match = %d, reference %d, want %d", tt.name, got, reference(rules, &p), tt.want)
		}
	}
}

// randomRules makes n rules with keys drawn from small pools, so that
// packets drawn from the same pools hit them often.
func randomRules(rnd *rand.Rand, n int) []Rule {
	v4 := pfx("0.0.0.0/0", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "192.168.0.0/16", "192.168.46.0/24", "255.255.255.255/32")
	v6 := pfx("::/0", "fd00::/8", "fd46::/64", "fd46::1/128", "2001:db8::/32")
	pick := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for range rnd.IntN(3) {
			out = append(out, ps[rnd.IntN(len(ps))])
		}
		return out
	}
	var rules []Rule
	for range n {
		r := anyRule()
		if rnd.IntN(3) == 0 {
			r.In = rnd.IntN(4)
		}
		if rnd.IntN(3) == 0 {
			r.Out = rnd.IntN(4)
		}
		if rnd.IntN(2) == 0 {
			r.From = pick(append(slices.Clone(v4), v6...))
		}
		if rnd.IntN(2) == 0 {
			r.To = pick(append(slices.Clone(v4), v6...))
		}
		if rnd.IntN(2) == 0 {
			r.Proto = []int{1, 6, 17, 58}[rnd.IntN(4)]
		}
		if (r.Proto == 6 || r.Proto == 17) && rnd.IntN(2) == 0 {
			for range 1 + rnd.IntN(3) {
				lo := uint16(rnd.IntN(100))
				r.DPorts = append(r.DPorts, PortRange{lo, lo + uint16(rnd.IntN(10))})
			}
		}
		if rnd.IntN(2) == 0 {
			r.States = State(1 + rnd.IntN(15))
		}
		rules = append(rules, r)
	}
	return rules
}

func randomPacket(rnd *rand.Rand) Packet {
	addrs := []string{"10.1.2.3", "10.1.2.4", "10.2.0.1", "192.168.46.7", "172.16.0.1", "255.255.255.255", "0.0.0.0", "fd46::1", "fd46::2", "fd99::1", "2001:db8::5", "::1", "::ffff:10.1.2.3", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}
	p := Packet{
		In: rnd.IntN(5) - 1, Out: rnd.IntN(5) - 1,
		Src: netip.MustParseAddr(addrs[rnd.IntN(len(addrs))]), Dst: netip.MustParseAddr(addrs[rnd.IntN(len(addrs))]),
		Proto: []uint8{1, 6, 17, 58, 47}[rnd.IntN(5)], State: State(1 << rnd.IntN(4)),
	}
	if p.Proto == 6 || p.Proto == 17 {
		p.HasPort, p.DPort = true, uint16(rnd.IntN(120))
	}
	return p
}

// TestMatchAgreesWithReference: on random rule sets of many sizes and
// random packets, the compiled matcher and the plain first match agree on
// every packet.
func TestMatchAgreesWithReference(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 5, 63, 64, 65, 200, 1000, 5000} {
		rules := randomRules(rnd, n)
		m := Compile(rules)
		hits := 0
		for range 5000 {
			p := randomPacket(rnd)
			want := reference(rules, &p)
			if got := m.Match(&p); got != want {
				t.Fatalf("%d rules: packet %+v: Match = %d, reference %d (rule %+v)", n, p, got, want, rules[max(want, 0)])
			}
			if want >= 0 {
				hits++
			}
		}
		if n >= 64 && hits < 1000 {
			t.Errorf("%d rules: only %d of 5000 packets matched a rule; the test is too weak", n, hits)
		}
	}
}

func TestMatchAllocatesNothing(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	m := Compile(randomRules(rnd, 500))
	p := randomPacket(rnd)
	if a := testing.AllocsPerRun(100, func() { m.Match(&p) }); a != 0 {
		t.Errorf("Match allocates %.1f times", a)
	}
}

// BenchmarkMatch: the first match among n rules that the packet does not
// match until the last one (none, for "miss"): what a new flow costs.
func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		rules := make([]Rule, n)
		for i := range rules {
			r := anyRule()
			r.Proto, r.To = 6, pfx(fmt.Sprintf("10.%d.%d.0/24", i/256, i%256))
			r.DPorts = []PortRange{{uint16(1000 + i%5000), uint16(1000 + i%5000)}}
			rules[i] = r
		}
		m := Compile(rules)
		last := n - 1
		hit := Packet{In: 0, Out: 1, Src: netip.MustParseAddr("192.168.46.2"), Dst: netip.MustParseAddr(fmt.Sprintf("10.%d.%d.9", last/256, last%256)),
			Proto: 6, HasPort: true, DPort: uint16(1000 + last%5000), State: New}
		miss := hit
		miss.DPort = 999
		for _, c := range []struct {
			name string
			p    Packet
		}{{"last", hit}, {"miss", miss}} {
			b.Run(fmt.Sprintf("rules=%d/%s", n, c.name), func(b *testing.B) {
				if want := map[string]int{"last": last, "miss": -1}[c.name]; m.Match(&c.p) != want {
					b.Fatalf("Match = %d, want %d", m.Match(&c.p), want)
				}
				for b.Loop() {
					m.Match(&c.p)
				}
			})
		}
	}
}
