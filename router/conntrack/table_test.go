package conntrack

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tungate/tungate/router/packet"
)

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    packet.Packet
		want Key
	}{
		{"tcp", packet.Packet{Src: inside, Dst: server, Proto: protoTCP, HasPorts: true, SrcPort: 40000, DstPort: 443},
			key(protoTCP, inside, 40000, server, 443)},
		{"udp6", packet.Packet{Src: inside6, Dst: server6, Proto: protoUDP, HasPorts: true, SrcPort: 5353, DstPort: 53},
			key(protoUDP, inside6, 5353, server6, 53)},
		{"echo uses the identifier as both ports", packet.Packet{Src: inside, Dst: server, Proto: protoICMP, HasPorts: true, SrcPort: 7, DstPort: 7},
			key(protoICMP, inside, 7, server, 7)},
		{"no transport header: ports 0", packet.Packet{Src: inside, Dst: server, Proto: protoTCP, NonFirstFragment: true},
			key(protoTCP, inside, 0, server, 0)},
		{"GRE", packet.Packet{Src: inside, Dst: server, Proto: 47}, key(47, inside, 0, server, 0)},
	} {
		if got := KeyOf(&tc.p); got != tc.want {
			t.Errorf("%s: KeyOf = %v, want %v", tc.name, got, tc.want)
		}
	}
	k := key(protoTCP, inside, 40000, server, 443)
	if got, want := k.Reverse(), key(protoTCP, server, 443, inside, 40000); got != want {
		t.Errorf("Reverse = %v, want %v", got, want)
	}
	if got, want := key(protoUDP, inside6, 53, server6, 5353).String(), "udp [2001:db8:1::10]:53 -> [2001:db8:2::7]:5353"; got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
}

// A flow gives back its keys as inserted: families, protocols and ports,
// IPv4-mapped IPv6 addresses kept apart from IPv4 ones.
func TestKeysRoundTrip(t *testing.T) {
	mapped := func(a netip.Addr) netip.Addr { return netip.AddrFrom16(a.As16()) }
	tab, _ := newTable(t, Config{})
	for _, keys := range [][2]Key{
		{key(protoTCP, inside, 40000, server, 443), key(protoTCP, server, 443, public, 61000)},
		{key(protoUDP, inside6, 1, server6, 65535), key(protoUDP, server6, 65535, inside6, 1)},
		{key(protoICMP, inside, 9, server, 9), key(protoICMP, server, 9, public, 9)},
		{key(protoICMP, mapped(inside), 9, mapped(server), 9), key(protoICMP, mapped(server), 9, mapped(public), 9)},
		{key(50, inside, 0, server, 0), key(50, server, 0, inside, 0)},
	} {
		f := mustInsert(t, tab, keys[0], keys[1], nil)
		if f.Orig() != keys[0] || f.Reply() != keys[1] {
			t.Errorf("inserted %v / %v, got back %v / %v", keys[0], keys[1], f.Orig(), f.Reply())
		}
		for d, k := range keys {
			if g, dir := tab.Lookup(k); g != f || dir != Dir(d) {
				t.Errorf("Lookup(%v) = %p %v, want %p %v", k, g, dir, f, Dir(d))
			}
		}
	}
}

func TestDefaults(t *testing.T) {
	got := Config{}.withDefaults()
	want := Config{
		Max:            262144,
		TCPEstablished: 2*time.Hour + 4*time.Minute,
		TCPOpening:     4 * time.Minute,
		TCPClosing:     4 * time.Minute,
		UDP:            5 * time.Minute,
		ICMP:           time.Minute,
		Other:          10 * time.Minute,
	}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
}

// Each protocol's flow lives exactly its idle timeout after its last
// packet, whichever direction that went in.
func TestTimers(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proto   uint8
		timeout time.Duration
	}{
		{"udp (RFC 4787 REQ-5c)", protoUDP, 5 * time.Minute},
		{"icmp (RFC 5508 REQ-2)", protoICMP, time.Minute},
		{"icmpv6", protoICMPv6, time.Minute},
		{"gre", 47, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, clk := newTable(t, Config{})
			o := newOwner()
			orig, reply := natKeys(tc.proto, 1000)
			f := mustInsert(t, tab, orig, reply, o)
			tab.Seen(f, Original, pkt(orig, 0))

			// RFC 4787 REQ-6: outbound packets refresh; 6a: inbound may.
			for _, k := range []Key{orig, reply, orig} {
				clk.advance(tc.timeout - time.Second)
				g, d := tab.Lookup(k)
				if g != f {
					t.Fatalf("flow gone %v after its last packet", tc.timeout-time.Second)
				}
				tab.Seen(g, d, pkt(k, 0))
			}
			if s := f.State(); s != Assured {
				t.Errorf("state after a reply: %v, want ASSURED", s)
			}
			clk.advance(tc.timeout - time.Second)
			if n := reapAll(tab); n != 0 {
				t.Fatalf("Expire removed %d live flows", n)
			}
			clk.advance(time.Second)
			if g, _ := tab.Lookup(orig); g != nil {
				t.Fatalf("flow found %v after its last packet", tc.timeout)
			}
			if o.count(f) != 0 {
				t.Fatal("owner told before the flow was reaped")
			}
			if n := reapAll(tab); n != 1 {
				t.Fatalf("Expire removed %d flows, want 1", n)
			}
			if o.count(f) != 1 || tab.Len() != 0 || tab.Stats().Expired != 1 {
				t.Fatalf("after expiry: released %d times, Len %d, %+v", o.count(f), tab.Len(), tab.Stats())
			}
		})
	}
}

func TestUnrepliedState(t *testing.T) {
	tab, _ := newTable(t, Config{})
	orig, reply := natKeys(protoUDP, 1000)
	f := mustInsert(t, tab, orig, reply, nil)
	tab.Seen(f, Original, pkt(orig, 0))
	if s := f.State(); s != Unreplied || s.String() != "UNREPLIED" {
		t.Errorf("state %v, want UNREPLIED", s)
	}
}

// Max bounds the table; a full table refuses new flows and never evicts
// a live one (RFC 6888 REQ-11), but reclaims expired ones.
func TestMax(t *testing.T) {
	tab, clk := newTable(t, Config{Max: 3, UDP: time.Minute})
	o := newOwner()
	var flows []*Flow
	for i := range 3 {
		f := mustInsert(t, tab, nthKey(i), nthKey(i).Reverse(), o)
		tab.Seen(f, Original, pkt(nthKey(i), 0))
		flows = append(flows, f)
		clk.advance(time.Second)
	}
	for range 2 {
		if _, err := tab.Insert(nthKey(9), nthKey(9).Reverse(), o); !errors.Is(err, ErrFull) {
			t.Fatalf("Insert into a full table: %v, want ErrFull", err)
		}
	}
	if s := tab.Stats(); s.Entries != 3 || s.Inserted != 3 || s.RefusedFull != 2 {
		t.Fatalf("stats %+v", s)
	}
	for i, f := range flows {
		if g, _ := tab.Lookup(nthKey(i)); g != f {
			t.Fatalf("flow %d evicted", i)
		}
	}
	// Deleting one makes room for one.
	tab.Delete(flows[1])
	mustInsert(t, tab, nthKey(10), nthKey(10).Reverse(), o)
	if _, err := tab.Insert(nthKey(11), nthKey(11).Reverse(), o); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert: %v, want ErrFull", err)
	}
	// Once flow 0 has expired, Insert reclaims its room without waiting
	// for Expire; its owner hears of it from the next Expire.
	clk.advance(time.Minute - 2*time.Second)
	f := mustInsert(t, tab, nthKey(11), nthKey(11).Reverse(), o)
	if o.count(flows[0]) != 0 {
		t.Fatal("Insert called an owner")
	}
	tab.Expire(0)
	if o.count(flows[0]) != 1 || o.count(flows[2]) != 0 || o.count(f) != 0 {
		t.Fatalf("released: %d %d %d", o.count(flows[0]), o.count(flows[2]), o.count(f))
	}
	if s := tab.Stats(); s.Entries != 3 || s.Inserted != 5 || s.RefusedFull != 3 || s.Expired != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// Two flows never share a key.
func TestExists(t *testing.T) {
	tab, clk := newTable(t, Config{})
	o := newOwner()
	orig, reply := natKeys(protoTCP, 40000)
	f := mustInsert(t, tab, orig, reply, o)
	other := key(protoTCP, inside, 40001, server, 443)
	for _, tc := range []struct {
		name        string
		orig, reply Key
	}{
		{"same original", orig, key(protoTCP, server, 443, public, 1)},
		{"same reply", other, reply},
		{"original is the reply of another", reply, reply.Reverse()},
		{"reply is the original of another", other, orig},
		{"both keys equal", other, other},
	} {
		if _, err := tab.Insert(tc.orig, tc.reply, o); !errors.Is(err, ErrExists) {
			t.Errorf("%s: %v, want ErrExists", tc.name, err)
		}
	}
	if tab.Len() != 1 {
		t.Fatalf("Len %d after refused inserts", tab.Len())
	}
	// A key held by an expired flow is free: Insert reclaims it.
	clk.advance(DefaultTCPOpening)
	g := mustInsert(t, tab, orig, key(protoTCP, server, 443, public, 1), o)
	if h, d := tab.Lookup(orig); h != g || d != Original {
		t.Fatal("new flow not found by the reclaimed key")
	}
	if h, _ := tab.Lookup(reply); h != nil {
		t.Fatal("expired flow found")
	}
	if tab.Len() != 1 {
		t.Fatalf("Len %d", tab.Len())
	}
	tab.Expire(0)
	if o.count(f) != 1 {
		t.Fatalf("expired flow released %d times", o.count(f))
	}
}

// Released runs exactly once per flow, however it goes.
func TestReleasedOnce(t *testing.T) {
	tab, clk := newTable(t, Config{UDP: time.Minute})
	o := newOwner()
	var flows []*Flow
	for i := range 30 {
		flows = append(flows, mustInsert(t, tab, nthKey(i), nthKey(i).Reverse(), o))
	}
	// Delete ten, twice.
	for _, f := range flows[:10] {
		if !tab.Delete(f) {
			t.Fatal("Delete of a live flow reported false")
		}
		if tab.Delete(f) {
			t.Fatal("second Delete reported true")
		}
	}
	// Ten expire: keep the last ten alive.
	clk.advance(30 * time.Second)
	for i, f := range flows[20:] {
		tab.Seen(f, Original, pkt(nthKey(20+i), 0))
	}
	clk.advance(30 * time.Second)
	reapAll(tab)
	if tab.Len() != 10 {
		t.Fatalf("Len %d after expiry, want 10", tab.Len())
	}
	for _, f := range flows[:20] {
		if tab.Delete(f) {
			t.Fatal("Delete of a removed flow reported true")
		}
	}
	// Flush the rest.
	if n := tab.Flush(); n != 10 {
		t.Fatalf("Flush removed %d, want 10", n)
	}
	if n := tab.Flush(); n != 0 {
		t.Fatalf("second Flush removed %d", n)
	}
	for i, f := range flows {
		if n := o.count(f); n != 1 {
			t.Errorf("flow %d released %d times", i, n)
		}
	}
	if tab.Len() != 0 {
		t.Errorf("Len %d after Flush", tab.Len())
	}
	// Seen on a removed flow changes nothing.
	tab.Seen(flows[0], Original, pkt(nthKey(0), 0))
	if g, _ := tab.Lookup(nthKey(0)); g != nil {
		t.Error("removed flow found")
	}
}

func TestFlowsAndInfo(t *testing.T) {
	tab, clk := newTable(t, Config{})
	orig, reply := natKeys(protoTCP, 40000)
	f := mustInsert(t, tab, orig, reply, nil)
	tab.Seen(f, Original, pkt(orig, syn))
	clk.advance(time.Second)
	tab.Seen(f, Reply, pkt(reply, synack))
	tab.Seen(f, Original, pkt(orig, ack))
	u := mustInsert(t, tab, nthKey(1), nthKey(1).Reverse(), nil)
	gone := mustInsert(t, tab, nthKey(2), nthKey(2).Reverse(), nil)
	tab.Delete(gone)
	clk.advance(time.Minute)

	seen := map[*Flow]int{}
	for g := range tab.Flows() {
		seen[g]++
	}
	if len(seen) != 2 || seen[f] != 1 || seen[u] != 1 {
		t.Fatalf("Flows yielded %v", seen)
	}
	want := Info{
		Orig: orig, Reply: reply, State: Established,
		Idle: time.Minute, Expires: DefaultTCPEstablished - time.Minute,
		Packets: [2]uint64{2, 1}, Bytes: [2]uint64{120, 60},
	}
	if got := tab.Info(f); got != want {
		t.Errorf("Info\n got %+v\nwant %+v", got, want)
	}
	for range tab.Flows() {
		break // stopping early is allowed
	}
}

// The index grows and shrinks with the flows, and every key stays
// findable through rebuilds, tombstones and all.
func TestGrowShrink(t *testing.T) {
	const n = 50000
	tab, _ := newTable(t, Config{Max: n})
	flows := make([]*Flow, n)
	for i := range n {
		flows[i] = mustInsert(t, tab, nthKey(i), nthKey(i).Reverse(), nil)
	}
	groups := func() (g int) {
		for i := range tab.shards {
			g += len(tab.shards[i].idx.Load().groups)
		}
		return g
	}
	if g := groups(); g*groupSlots < 2*n {
		t.Fatalf("%d groups for %d keys", g, 2*n)
	}
	check := func(from int) {
		t.Helper()
		for i := from; i < n; i++ {
			if g, d := tab.Lookup(nthKey(i)); g != flows[i] || d != Original {
				t.Fatalf("flow %d not found by its original key", i)
			}
			if g, d := tab.Lookup(nthKey(i).Reverse()); g != flows[i] || d != Reply {
				t.Fatalf("flow %d not found by its reply key", i)
			}
		}
	}
	check(0)
	// Delete and insert again to churn tombstones.
	for i := range n / 2 {
		tab.Delete(flows[i])
		flows[i] = mustInsert(t, tab, nthKey(i), nthKey(i).Reverse(), nil)
	}
	check(0)
	for i := range n - 10 {
		tab.Delete(flows[i])
	}
	check(n - 10)
	if g := groups(); g > 2*nShards*minGroups {
		t.Errorf("%d groups left for 10 flows, want at most %d", g, 2*nShards*minGroups)
	}
	for i := range tab.shards {
		s := &tab.shards[i]
		if s.live < 0 || s.used < s.live {
			t.Fatalf("shard %d: live %d used %d", i, s.live, s.used)
		}
	}
}

// Lookup and Seen, the per-packet calls, allocate nothing.
func TestNoAllocs(t *testing.T) {
	tab, _ := newTable(t, Config{})
	orig, reply := natKeys(protoTCP, 40000)
	f := mustInsert(t, tab, orig, reply, nil)
	p := pkt(orig, ack)
	miss := key(protoTCP, inside, 1, server, 1)
	if n := testing.AllocsPerRun(1000, func() {
		g, d := tab.Lookup(orig)
		if g != f {
			t.Fatal("flow not found")
		}
		tab.Seen(g, d, p)
		if g, _ := tab.Lookup(miss); g != nil {
			t.Fatal("found a flow for a key never inserted")
		}
	}); n != 0 {
		t.Errorf("Lookup+Seen: %v allocations", n)
	}
}

// Expire removes at most its budget per call, and calls every interval
// pass over the whole table in the number of calls its doc promises.
func TestExpireSweep(t *testing.T) {
	const n = 20000
	tab, clk := newTable(t, Config{Max: n, UDP: time.Minute})
	o := newOwner()
	flows := make([]*Flow, n)
	for i := range n {
		flows[i] = mustInsert(t, tab, nthKey(i), nthReply(i), o)
	}
	clk.advance(time.Minute / 2)
	for i, f := range flows {
		if i%100 != 0 { // one in a hundred will expire
			tab.Seen(f, Reply, pkt(nthReply(i), 0))
		}
	}
	clk.advance(time.Minute / 2)
	if got := tab.Expire(10); got > 10 {
		t.Fatalf("Expire(10) removed %d", got)
	}
	groups := 0
	for i := range tab.shards {
		groups = max(groups, len(tab.shards[i].idx.Load().groups))
	}
	const budget = 10
	calls := (groups*nShards + expireGroups*budget - 1) / (expireGroups * budget)
	for range calls {
		if got := tab.Expire(budget); got > budget {
			t.Fatalf("Expire(%d) removed %d", budget, got)
		}
	}
	if tab.Len() != n-n/100 {
		t.Fatalf("%d calls of Expire(%d) left %d flows, want %d", calls, budget, tab.Len(), n-n/100)
	}
	for i, f := range flows {
		if want := btoi(i%100 == 0); o.count(f) != want {
			t.Fatalf("flow %d released %d times, want %d", i, o.count(f), want)
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Original.String(), "original"},
		{Reply.String(), "reply"},
		{SynRecv.String(), "SYN_RECV"},
		{Closed.String(), "CLOSE"},
		{State(42).String(), "State(42)"},
		{key(protoTCP, inside, 1, server, 2).String(), "tcp 192.168.1.10:1 -> 198.51.100.7:2"},
		{key(protoICMP, inside, 7, server, 7).String(), "icmp 192.168.1.10:7 -> 198.51.100.7:7"},
		{key(protoICMPv6, inside6, 7, server6, 7).String(), "icmpv6 [2001:db8:1::10]:7 -> [2001:db8:2::7]:7"},
		{key(47, inside, 0, server, 0).String(), "47 192.168.1.10:0 -> 198.51.100.7:0"},
	} {
		if tc.got != tc.want {
			t.Errorf("%q, want %q", tc.got, tc.want)
		}
	}
}
