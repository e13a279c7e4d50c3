package neigh

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Start states for the transition table; each leaves no calls behind.
func incomplete(e *env) {
	e.c.Enqueue(1, hostIP4, pkt("p1"))
	e.rec.take()
}

func reachable(e *env) {
	incomplete(e)
	e.c.learn(1, hostIP4, news{mac: hostMAC, confirm: true})
	e.rec.take()
}

func stale(e *env) {
	e.c.learn(1, hostIP4, news{mac: hostMAC, create: true})
}

func delay(e *env) {
	stale(e)
	e.c.Resolve(1, hostIP4)
}

func probe(e *env) {
	delay(e)
	e.run(delayFirstProbe)
	e.rec.take()
}

func none(*env) {}

func learn(n news) func(*env) {
	return func(e *env) { e.c.learn(1, hostIP4, n) }
}

func run(d time.Duration) func(*env) {
	return func(e *env) { e.run(d) }
}

func resolve(e *env) { e.c.Resolve(1, hostIP4) }

// TestTransitions walks every NUD transition of RFC 4861 §7.3.3 and
// Appendix C on the fake clock, with the default Config.
func TestTransitions(t *testing.T) {
	tests := []struct {
		name  string
		from  func(*env)
		event func(*env)
		state State // 0: no entry
		mac   MAC
		calls []call
	}{
		{"incomplete retransmits", incomplete, run(2 * time.Second), Incomplete, MAC{},
			[]call{solicit(hostIP4, MAC{}), solicit(hostIP4, MAC{})}},
		{"incomplete fails after retries", incomplete, run(3 * time.Second), 0, MAC{},
			[]call{solicit(hostIP4, MAC{}), solicit(hostIP4, MAC{}), fail(hostIP4, pkt("p1"))}},
		{"incomplete solicited answer", incomplete, learn(news{mac: hostMAC, confirm: true}), Reachable, hostMAC,
			[]call{flush(hostMAC, pkt("p1"))}},
		{"incomplete unsolicited answer", incomplete, learn(news{mac: hostMAC, weak: true}), Stale, hostMAC,
			[]call{flush(hostMAC, pkt("p1"))}},
		{"incomplete NA without address", incomplete, learn(news{noMAC: true, confirm: true}), Incomplete, MAC{}, nil},
		{"reachable ages", reachable, run(DefaultReachable), Stale, hostMAC, nil},
		{"reachable not yet aged", reachable, run(DefaultReachable - 100*time.Millisecond), Reachable, hostMAC, nil},
		{"reachable override clear other MAC", reachable, learn(news{mac: otherMAC, weak: true}), Stale, hostMAC, nil},
		{"reachable override other MAC", reachable, learn(news{mac: otherMAC}), Stale, otherMAC, nil},
		{"reachable unsolicited same MAC", reachable, learn(news{mac: hostMAC}), Reachable, hostMAC, nil},
		{"reachable NA without address", reachable, learn(news{noMAC: true}), Reachable, hostMAC, nil},
		{"stale override clear other MAC", stale, learn(news{mac: otherMAC, weak: true, confirm: true}), Stale, hostMAC, nil},
		{"stale solicited", stale, learn(news{mac: hostMAC, confirm: true}), Reachable, hostMAC, nil},
		{"stale solicited other MAC", stale, learn(news{mac: otherMAC, confirm: true}), Reachable, otherMAC, nil},
		{"stale solicited without address", stale, learn(news{noMAC: true, confirm: true}), Reachable, hostMAC, nil},
		{"stale used", stale, resolve, Delay, hostMAC, nil},
		{"stale unused collected", stale, run(DefaultStale), 0, MAC{}, nil},
		{"delay probes", delay, run(delayFirstProbe), Probe, hostMAC, []call{solicit(hostIP4, hostMAC)}},
		{"delay confirmed", delay, learn(news{mac: hostMAC, confirm: true}), Reachable, hostMAC, nil},
		{"delay other MAC", delay, learn(news{mac: otherMAC}), Stale, otherMAC, nil},
		{"probe retries", probe, run(2 * time.Second), Probe, hostMAC,
			[]call{solicit(hostIP4, hostMAC), solicit(hostIP4, hostMAC)}},
		{"probe unanswered", probe, run(3 * time.Second), 0, MAC{},
			[]call{solicit(hostIP4, hostMAC), solicit(hostIP4, hostMAC)}},
		{"probe confirmed", probe, learn(news{mac: hostMAC, confirm: true}), Reachable, hostMAC, nil},
		{"no entry, advertisement", none, learn(news{mac: hostMAC, confirm: true}), 0, MAC{}, nil},
		{"no entry, request for us", none, learn(news{mac: hostMAC, create: true}), Stale, hostMAC, nil},
		{"no entry, NS without address", none, learn(news{noMAC: true, create: true}), 0, MAC{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			tt.from(e)
			tt.event(e)
			e.want(hostIP4, tt.state, tt.mac)
			e.wantCalls(tt.calls...)
		})
	}
}

// TestFailTiming: Fail comes after Retries × RetryInterval, not before,
// with every packet that waited, and resolution failures are counted.
func TestFailTiming(t *testing.T) {
	e := newEnv(t, Config{Retries: 5, RetryInterval: 200 * time.Millisecond})
	e.c.Enqueue(1, hostIP4, pkt("p1"))
	e.run(500 * time.Millisecond)
	e.c.Enqueue(1, hostIP4, pkt("p2"))
	e.run(400 * time.Millisecond)
	e.want(hostIP4, Incomplete, MAC{})
	e.wantCalls(solicit(hostIP4, MAC{}), solicit(hostIP4, MAC{}), solicit(hostIP4, MAC{}),
		solicit(hostIP4, MAC{}), solicit(hostIP4, MAC{}))
	e.run(100 * time.Millisecond)
	e.want(hostIP4, 0, MAC{})
	e.wantCalls(fail(hostIP4, pkt("p1"), pkt("p2")))
	if s := e.c.Stats(); s.Failed != 1 || s.Entries != 0 {
		t.Fatalf("stats %+v, want 1 failed, 0 entries", s)
	}
	// The next packet starts over.
	e.c.Enqueue(1, hostIP4, pkt("p3"))
	e.wantCalls(solicit(hostIP4, MAC{}))
}

// TestQueue: the queue keeps the newest Config.Queue packets, copies
// them, counts what it pushed out, and flushes in order.
func TestQueue(t *testing.T) {
	e := newEnv(t, Config{Queue: 3})
	buf := make([]byte, 2)
	for i := range 5 {
		copy(buf, fmt.Sprintf("p%d", i))
		if !e.c.Enqueue(1, hostIP4, buf) {
			t.Fatalf("Enqueue %d refused", i)
		}
	}
	copy(buf, "xx") // the cache holds copies
	if got := e.c.Stats().QueueDrops; got != 2 {
		t.Fatalf("QueueDrops %d, want 2", got)
	}
	if ent, _ := e.entry(hostIP4); ent.Queued != 3 {
		t.Fatalf("Queued %d, want 3", ent.Queued)
	}
	e.wantCalls(solicit(hostIP4, MAC{}))
	e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, hostIP4, routerMAC, routerIP4), make([]byte, 64))
	e.wantCalls(flush(hostMAC, pkt("p2"), pkt("p3"), pkt("p4")))
	e.want(hostIP4, Reachable, hostMAC)
}

// TestEnqueueResolved: a packet enqueued after its neighbor resolved (a
// race with Resolve) goes straight out, and a STALE entry so used moves
// to DELAY as Resolve would have moved it.
func TestEnqueueResolved(t *testing.T) {
	e := newEnv(t, Config{})
	stale(e)
	if !e.c.Enqueue(1, hostIP4, pkt("late")) {
		t.Fatal("Enqueue refused")
	}
	e.wantCalls(flush(hostMAC, pkt("late")))
	e.want(hostIP4, Delay, hostMAC)
}

func TestEnqueueRejectsNonUnicast(t *testing.T) {
	e := newEnv(t, Config{})
	for _, ip := range []netip.Addr{{}, netip.MustParseAddr("224.0.0.1"), netip.MustParseAddr("ff02::1"), netip.IPv4Unspecified()} {
		if e.c.Enqueue(1, ip, pkt("x")) {
			t.Errorf("Enqueue(%v) taken", ip)
		}
	}
	e.wantCalls()
}

// TestStatic: a PERMANENT entry is used, never aged, and nothing heard
// changes it; it flushes what waited for it.
func TestStatic(t *testing.T) {
	e := newEnv(t, Config{})
	e.c.Enqueue(1, hostIP4, pkt("p1"))
	e.rec.take()
	e.c.AddStatic(1, hostIP4, hostMAC)
	e.wantCalls(flush(hostMAC, pkt("p1")))

	out := make([]byte, 128)
	e.c.HandleARP(lan, arpFrom(header.ARPReply, otherMAC, hostIP4, routerMAC, routerIP4), out)
	e.c.HandleARP(lan, arpFrom(header.ARPRequest, otherMAC, hostIP4, MAC{}, routerIP4), out)
	e.c.learn(1, hostIP4, news{mac: otherMAC, confirm: true})
	e.run(DefaultStale + DefaultReachable + time.Minute)
	e.want(hostIP4, Permanent, hostMAC)
	if mac, ok := e.c.Resolve(1, hostIP4); !ok || mac != hostMAC {
		t.Fatalf("Resolve = %v %v", mac, ok)
	}
	e.want(hostIP4, Permanent, hostMAC)
	e.wantCalls()

	if e.c.RemoveStatic(1, otherIP4) {
		t.Fatal("RemoveStatic of no entry")
	}
	stale(e)
	e.c.AddStatic(1, otherIP4, otherMAC)
	if !e.c.RemoveStatic(1, hostIP4) || e.c.Stats().Entries != 1 {
		t.Fatalf("RemoveStatic: %+v", e.c.Entries())
	}
}

func TestRemoveStaticLeavesDynamic(t *testing.T) {
	e := newEnv(t, Config{})
	stale(e)
	if e.c.RemoveStatic(1, hostIP4) {
		t.Fatal("RemoveStatic removed a dynamic entry")
	}
	e.want(hostIP4, Stale, hostMAC)
}

// TestMaxEntries: a full cache refuses new neighbors, counts them, and
// goes on serving the ones it has; room comes back when one goes.
func TestMaxEntries(t *testing.T) {
	e := newEnv(t, Config{MaxEntries: 2})
	a, b, c := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	e.c.learn(1, a, news{mac: hostMAC, create: true})
	e.c.Enqueue(1, b, pkt("b"))
	if e.c.Enqueue(1, c, pkt("c")) {
		t.Fatal("Enqueue into a full cache taken")
	}
	e.c.learn(1, c, news{mac: otherMAC, create: true})
	if s := e.c.Stats(); s.Refused != 2 || s.Entries != 2 {
		t.Fatalf("stats %+v, want 2 refused, 2 entries", s)
	}
	if _, ok := e.c.Resolve(1, a); !ok {
		t.Fatal("old entry lost")
	}
	if !e.c.Enqueue(1, b, pkt("b2")) {
		t.Fatal("existing INCOMPLETE entry refused a packet")
	}
	e.run(3 * time.Second) // b fails and goes
	if !e.c.Enqueue(1, c, pkt("c")) {
		t.Fatal("no room after an entry went")
	}
}

func TestEntries(t *testing.T) {
	e := newEnv(t, Config{})
	e.c.AddStatic(2, hostIP4, hostMAC)
	e.c.AddStatic(1, hostIP6, hostMAC)
	e.c.AddStatic(1, otherIP4, otherMAC)
	e.c.Enqueue(1, hostIP4, pkt("x"))
	var got []string
	for _, x := range e.c.Entries() {
		got = append(got, fmt.Sprintf("%d %v %v %v %d", x.Iface, x.IP, x.MAC, x.State, x.Queued))
	}
	want := []string{
		"1 192.168.46.2 00:00:00:00:00:00 INCOMPLETE 1",
		"1 192.168.46.3 00:50:56:11:22:33 PERMANENT 0",
		"1 fd46::2 00:50:56:f4:6c:f2 PERMANENT 0",
		"2 192.168.46.2 00:50:56:f4:6c:f2 PERMANENT 0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("Entries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if ent, _ := e.entry(otherIP4); !ent.Updated.Equal(e.clk.now()) {
		t.Fatalf("Updated %v, want %v", ent.Updated, e.clk.now())
	}
}

// TestJSON: `tungate arp --json` reads like the table, and reads back.
func TestJSON(t *testing.T) {
	in := Entry{Iface: 1, IP: hostIP4, MAC: hostMAC, State: Reachable}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"mac":"00:50:56:f4:6c:f2","state":"REACHABLE"`)) {
		t.Fatalf("JSON %s", b)
	}
	var out Entry
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v, %v", out, err)
	}
	for _, bad := range []string{`{"state":"FAILED"}`, `{"mac":"00:11"}`, `{"mac":"zz"}`} {
		if json.Unmarshal([]byte(bad), &out) == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

func TestStateString(t *testing.T) {
	want := map[State]string{
		Incomplete: "INCOMPLETE", Reachable: "REACHABLE", Stale: "STALE", Delay: "DELAY",
		Probe: "PROBE", Permanent: "PERMANENT", 0: "State(0)", 42: "State(42)",
	}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d: %q, want %q", uint8(s), s.String(), w)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	got := Config{Retries: -1}.withDefaults()
	want := Config{
		Reachable: DefaultReachable, Stale: DefaultStale, RetryInterval: DefaultRetryInterval,
		Retries: DefaultRetries, Queue: DefaultQueue, MaxEntries: DefaultMaxEntries,
	}
	if got != want {
		t.Fatalf("%+v, want %+v", got, want)
	}
}

// TestConcurrent runs readers against writers; run it with -race.
func TestConcurrent(t *testing.T) {
	e := newEnv(t, Config{MaxEntries: 64})
	ips := make([]netip.Addr, 32)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{192, 168, 46, byte(10 + i)})
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ip := ips[i%len(ips)]
				if _, ok := e.c.Resolve(1, ip); !ok {
					e.c.Enqueue(1, ip, pkt("x"))
				}
			}
		})
	}
	wg.Go(func() {
		out := make([]byte, 64)
		for i := range 2000 {
			ip := ips[i%len(ips)]
			e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, ip, routerMAC, routerIP4), out)
			e.clk.advance(50 * time.Millisecond)
			e.c.Tick()
			e.c.Entries()
			e.c.Stats()
		}
		close(stop)
	})
	wg.Wait()
	if n := e.c.Stats().Entries; n != len(e.c.Entries()) {
		t.Fatalf("Stats.Entries %d, table holds %d", n, len(e.c.Entries()))
	}
}

// TestResolveAllocs pins the hot path at zero allocations.
func TestResolveAllocs(t *testing.T) {
	e := newEnv(t, Config{})
	reachable(e)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, ok := e.c.Resolve(1, hostIP4); !ok {
			t.Fatal("not resolved")
		}
	})
	if allocs != 0 {
		t.Fatalf("Resolve allocates %v times", allocs)
	}
}

func benchCache(b *testing.B) (*Cache, []netip.Addr) {
	e := newEnv(nil, Config{})
	ips := make([]netip.Addr, 1024)
	for i := range ips {
		ips[i] = netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)})
		e.c.learn(1, ips[i], news{mac: hostMAC, create: true})
		e.c.learn(1, ips[i], news{mac: hostMAC, confirm: true})
	}
	return e.c, ips
}

func BenchmarkResolve(b *testing.B) {
	c, ips := benchCache(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Resolve(1, ips[i&1023])
	}
}

func BenchmarkResolveParallel(b *testing.B) {
	c, ips := benchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			c.Resolve(1, ips[i&1023])
		}
	})
}

// BenchmarkResolveHot is the usual busiest case: every reader resolves
// the same next hop, the default gateway.
func BenchmarkResolveHot(b *testing.B) {
	c, ips := benchCache(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Resolve(1, ips[0])
		}
	})
}
