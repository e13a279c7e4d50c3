package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// U2: with a two-address pool, every flow of one inside host leaves from
// one external address (paired pooling), and hosts spread over the pool.
func TestPairedPooling(t *testing.T) {
	for _, mb := range []MappingBehavior{EndpointIndependentMapping, AddressAndPortDependentMapping} {
		r := masq()
		r.External = []netip.Addr{ip("18.18.18.8"), ip("18.18.18.9")}
		r.Mapping = mb
		tab, _ := newTable(t, r)
		used := map[netip.Addr]int{}
		for h := range 16 {
			var first netip.Addr
			for i := range 40 {
				c := fmt.Sprintf("192.168.46.%d:%d", 10+h, 40000+i%4)
				s := fmt.Sprintf("203.0.113.%d:%d", 1+i%7, 1000+i)
				for _, proto := range []uint8{udp, tcp, icmp} {
					got := out(t, tab, proto, c, s).External().Addr()
					if !first.IsValid() {
						first = got
						used[got]++
					}
					if got != first {
						t.Fatalf("%v: host %d flow %d proto %d left from %v, earlier from %v", mb, h, i, proto, got, first)
					}
				}
			}
		}
		if len(used) != 2 {
			t.Errorf("%v: 16 hosts used external addresses %v, want both", mb, used)
		}
		checkConsistent(t, tab)
	}
}

// U3 (T7): no port overloading. Two clients with the same source port to
// the same server get different external ports, and each reply port leads
// to its own client.
func TestNoPortOverloading(t *testing.T) {
	for _, proto := range []uint8{udp, tcp} {
		tab, _ := newTable(t, masq())
		a := out(t, tab, proto, "192.168.46.10:40000", "203.0.113.1:80")
		b := out(t, tab, proto, "192.168.46.11:40000", "203.0.113.1:80")
		if a.External() != ap("18.18.18.8:40000") {
			t.Errorf("proto %d: first client got %v, want its port preserved", proto, a.External())
		}
		if b.External() == a.External() {
			t.Fatalf("proto %d: both clients on %v", proto, a.External())
		}
		for _, m := range []*Mapping{a, b} {
			if got, ok := tab.Inbound(proto, m.External(), ap("203.0.113.1:80")); got != m || !ok {
				t.Errorf("proto %d: reply to %v went to %v", proto, m.External(), got.Internal())
			}
		}
		checkConsistent(t, tab)
	}
}

// Port preservation takes the internal port when free and only then.
func TestPortPreservation(t *testing.T) {
	tab, _ := newTable(t, masq())
	if got := out(t, tab, udp, "192.168.46.10:5000", "203.0.113.1:80").External().Port(); got != 5000 {
		t.Errorf("preserving: got port %d, want 5000", got)
	}
	// The same port over another protocol is a different port.
	if got := out(t, tab, tcp, "192.168.46.11:5000", "203.0.113.1:80").External().Port(); got != 5000 {
		t.Errorf("tcp beside udp: got port %d, want 5000", got)
	}
	r := masq()
	r.PortPreservation = false
	tab, _ = newTable(t, r)
	same := 0
	for i := range 50 {
		p := uint16(20000 + i)
		if out(t, tab, udp, netip.AddrPortFrom(ip("192.168.46.10"), p).String(), "203.0.113.1:80").External().Port() == p {
			same++
		}
	}
	if same > 1 {
		t.Errorf("without preservation %d of 50 ports came out unchanged", same)
	}
}

// U4: port range preservation (RFC 4787 REQ-3a), when the preserved port
// is taken or preservation is off.
func TestPortRangeClass(t *testing.T) {
	for _, tc := range []struct {
		ports    PortRange
		internal uint16
		lo, hi   uint16
	}{
		{PortRange{1, 65535}, 500, 1, 1023},
		{PortRange{1, 65535}, 40000, 1024, 65535},
		{PortRange{1, 65535}, 1023, 1, 1023},
		{PortRange{1, 65535}, 1024, 1024, 65535},
		// The configured range leaves no room for the class: use it all.
		{PortRange{1024, 65535}, 500, 1024, 65535},
		{PortRange{100, 900}, 40000, 100, 900},
		// Partly: stay inside both.
		{PortRange{600, 2000}, 500, 600, 1023},
		{PortRange{600, 2000}, 3000, 1024, 2000},
	} {
		for _, preserve := range []bool{true, false} {
			r := masq()
			r.Ports, r.PortPreservation = tc.ports, preserve
			tab, _ := newTable(t, r)
			for i := range 30 {
				// A first client holds the port so that the second
				// cannot keep it.
				c1 := fmt.Sprintf("192.168.46.10:%d", tc.internal)
				c2 := fmt.Sprintf("192.168.46.%d:%d", 11+i, tc.internal)
				s := fmt.Sprintf("203.0.113.1:%d", 1000+i)
				out(t, tab, udp, c1, s)
				got := out(t, tab, udp, c2, s).External().Port()
				if got < tc.lo || got > tc.hi {
					t.Fatalf("ports %v, preserve %v: source %d mapped to %d, want %d-%d", tc.ports, preserve, tc.internal, got, tc.lo, tc.hi)
				}
			}
		}
	}
}

// U5: with Parity on, a port that cannot be preserved keeps its parity;
// off (the default, RFC 7857 §8) both parities come out.
func TestPortParity(t *testing.T) {
	for _, parity := range []bool{true, false} {
		r := masq()
		r.Parity = parity
		tab, _ := newTable(t, r)
		seen := [2]int{}
		for i := range 40 {
			for _, p := range []uint16{40000, 40001} {
				// Host .10 holds 40000 and 40001; the others collide.
				out(t, tab, udp, fmt.Sprintf("192.168.46.10:%d", p), "203.0.113.1:5004")
				c := fmt.Sprintf("192.168.46.%d:%d", 11+i, p)
				got := out(t, tab, udp, c, "203.0.113.1:5004").External().Port()
				if got == p {
					t.Fatalf("%s kept its taken port %d", c, p)
				}
				if parity && got&1 != p&1 {
					t.Fatalf("parity on: %d mapped to %d", p, got)
				}
				seen[(got^p)&1]++
			}
		}
		if !parity && (seen[0] == 0 || seen[1] == 0) {
			t.Errorf("parity off: parity kept %d times, changed %d times; want both", seen[0], seen[1])
		}
	}
}

// RFC 4787 REQ-4 with a range that has one port of each parity.
func TestPortParityNarrowRange(t *testing.T) {
	r := masq()
	r.Ports, r.Parity, r.PortPreservation = PortRange{2000, 2001}, true, false
	tab, _ := newTable(t, r)
	if got := out(t, tab, udp, "192.168.46.10:40000", "203.0.113.1:1").External().Port(); got != 2000 {
		t.Errorf("even source got %d, want 2000", got)
	}
	if _, err := tab.Outbound(udp, ap("192.168.46.11:40002"), ap("203.0.113.1:1")); !errors.Is(err, ErrExhausted) {
		t.Errorf("second even source: %v, want ErrExhausted (2001 is odd)", err)
	}
	if got := out(t, tab, udp, "192.168.46.12:40001", "203.0.113.1:1").External().Port(); got != 2001 {
		t.Errorf("odd source got %d, want 2001", got)
	}
}

// I1 (RFC 5508 REQ-1a): an ICMP echo identifier maps the same whatever
// the host pinged, even when the rule's mapping is endpoint-dependent, and
// the reply finds it whatever its "port".
func TestICMPIdentifier(t *testing.T) {
	for _, mc := range mappingCases {
		r := masq()
		r.Mapping, r.Filtering = mc.behavior, AddressAndPortDependentFiltering
		tab, _ := newTable(t, r)
		m1 := out(t, tab, icmp, "192.168.46.10:4711", "203.0.113.1:0")
		m2 := out(t, tab, icmp, "192.168.46.10:4711", "203.0.113.2:9")
		if m1 != m2 {
			t.Errorf("%v: echo id to S1 -> %v, to S2 -> %v", mc.behavior, m1.External(), m2.External())
		}
		if m1.External().Port() != 4711 || m1.Proto() != icmp || m1.Internal() != ap("192.168.46.10:4711") {
			t.Errorf("%v: mapping %v -> %v proto %d", mc.behavior, m1.Internal(), m1.External(), m1.Proto())
		}
		if got, ok := tab.Inbound(icmp, m1.External(), ap("203.0.113.2:4711")); got != m1 || !ok {
			t.Errorf("%v: echo reply from S2 = %p, %v", mc.behavior, got, ok)
		}
		if _, ok := tab.Inbound(icmp, m1.External(), ap("203.0.113.3:0")); ok {
			t.Errorf("%v: echo reply from a host never pinged admitted under APDF", mc.behavior)
		}
		// An identifier has no privileged range: 7 is outside 1024-65535
		// and maps anywhere in it.
		if got := out(t, tab, icmp, "192.168.46.10:7", "203.0.113.1:0").External().Port(); got < 1024 {
			t.Errorf("%v: id 7 mapped to %d", mc.behavior, got)
		}
	}
}

// Flows hold mappings: a mapping lives while any flow references it.
func TestMappingLifetime(t *testing.T) {
	tab, c := newTable(t, masq())
	s1, s2 := ap("203.0.113.1:80"), ap("203.0.113.2:80")
	m := out(t, tab, udp, "192.168.46.10:40000", s1.String())
	if m2 := out(t, tab, udp, "192.168.46.10:40000", s2.String()); m2 != m {
		t.Fatal("second flow got another mapping")
	}
	c.advance(time.Minute)
	if got := tab.Mappings(); len(got) != 1 || got[0].Flows != 2 || got[0].Age != time.Minute {
		t.Fatalf("Mappings() = %+v", got)
	}
	tab.Release(m, s1)
	if got, _ := tab.Inbound(udp, m.External(), s2); got != m {
		t.Fatal("mapping gone with one flow left")
	}
	// An inbound flow admitted by EIF holds it too.
	s3 := ap("203.0.113.3:53")
	got, ok := tab.Inbound(udp, m.External(), s3)
	if got != m || !ok || !tab.Acquire(m, s3) {
		t.Fatal("inbound flow not admitted")
	}
	tab.Release(m, s2)
	tab.Release(m, s3)
	if got, ok := tab.Inbound(udp, m.External(), s1); got != nil || ok {
		t.Fatalf("mapping still found after its last flow: %p, %v", got, ok)
	}
	if tab.Acquire(m, s1) {
		t.Error("Acquire on a removed mapping succeeded")
	}
	tab.Release(m, s1) // ignored
	if s := tab.Stats(); s.Mappings != 0 || s.Held != 1 || s.Hosts != 1 {
		t.Errorf("Stats() = %+v", s)
	}
	checkConsistent(t, tab)
}

// A mapping remembers remotes whose flows ended, up to MaxIdleRemotes of
// them, least recently used forgotten first; remotes with live flows are
// never forgotten.
func TestRemotesRemembered(t *testing.T) {
	for _, tc := range []struct {
		maxIdle int
		want    []bool // S1..S4 admitted after their flows ended
	}{
		{0, []bool{true, true, true, true}}, // default 16
		{2, []bool{false, false, true, true}},
		{-1, []bool{false, false, false, false}},
	} {
		r := masq()
		r.Filtering, r.MaxIdleRemotes = AddressAndPortDependentFiltering, tc.maxIdle
		tab, _ := newTable(t, r)
		keep := ap("198.51.100.1:1")
		m := out(t, tab, udp, "192.168.46.10:40000", keep.String())
		for i := range 4 {
			s := ap(fmt.Sprintf("203.0.113.%d:80", i+1))
			out(t, tab, udp, "192.168.46.10:40000", s.String())
			tab.Release(m, s)
		}
		for i, want := range tc.want {
			s := ap(fmt.Sprintf("203.0.113.%d:80", i+1))
			if _, ok := tab.Inbound(udp, m.External(), s); ok != want {
				t.Errorf("MaxIdleRemotes %d: S%d admitted = %v, want %v", tc.maxIdle, i+1, ok, want)
			}
		}
		if _, ok := tab.Inbound(udp, m.External(), keep); !ok {
			t.Errorf("MaxIdleRemotes %d: remote with a live flow not admitted", tc.maxIdle)
		}
	}
}

// Each family takes external addresses of its own.
func TestFamilies(t *testing.T) {
	r := masq()
	tab, _ := newTable(t, r)
	if _, err := tab.Outbound(udp, ap("[fd46::10]:40000"), ap("[2001:db8::1]:53")); !errors.Is(err, ErrNoAddress) {
		t.Errorf("IPv6 with an IPv4 pool: %v, want ErrNoAddress", err)
	}
	if s := tab.Stats(); s.RefusedNoAddress != 1 {
		t.Errorf("RefusedNoAddress = %d", s.RefusedNoAddress)
	}
	r.External = append(r.External, ip("2001:db8:46::1"))
	tab, _ = newTable(t, r)
	if got := out(t, tab, udp, "[fd46::10]:40000", "[2001:db8::1]:53").External(); got != ap("[2001:db8:46::1]:40000") {
		t.Errorf("IPv6 mapped to %v", got)
	}
	if got := out(t, tab, udp, "192.168.46.10:40000", "203.0.113.1:53").External(); got != ap("18.18.18.8:40000") {
		t.Errorf("IPv4 mapped to %v", got)
	}
}

func TestRuleErrors(t *testing.T) {
	for _, tc := range []struct {
		rule Rule
		want string
	}{
		{Rule{}, "no external address"},
		{Rule{External: []netip.Addr{{}}}, "external address invalid IP is not usable"},
		{Rule{External: []netip.Addr{ip("0.0.0.0")}}, "not usable"},
		{Rule{External: []netip.Addr{ip("18.18.18.8"), ip("18.18.18.8")}}, "listed twice"},
		{Rule{External: []netip.Addr{ip("18.18.18.8")}, Ports: PortRange{0, 100}}, "port range 0-100"},
		{Rule{External: []netip.Addr{ip("18.18.18.8")}, Ports: PortRange{2000, 1000}}, "port range 2000-1000"},
		{Rule{External: []netip.Addr{ip("18.18.18.8")}, MaxPortsPerHost: -1}, "negative"},
	} {
		if _, err := New(tc.rule, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) error = %v, want %q", tc.rule, err, tc.want)
		}
	}
	if _, err := New(masq(), nil, nil); err != nil {
		t.Errorf("New(masq) = %v", err)
	}
}

func TestMappingsAndStats(t *testing.T) {
	r := masq()
	r.Mapping, r.Filtering = AddressDependentMapping, AddressDependentFiltering
	tab, c := newTable(t, r)
	out(t, tab, tcp, "192.168.46.10:40000", "203.0.113.1:443")
	c.advance(time.Second)
	out(t, tab, udp, "192.168.46.10:40000", "203.0.113.1:53")
	out(t, tab, udp, "192.168.46.10:40000", "203.0.113.1:54")
	got := tab.Mappings()
	want := []MappingInfo{
		{Proto: tcp, Internal: ap("192.168.46.10:40000"), External: ap("18.18.18.8:40000"), Remote: ap("203.0.113.1:0"), Remotes: 1, Flows: 1, Age: time.Second},
		{Proto: udp, Internal: ap("192.168.46.10:40000"), External: ap("18.18.18.8:40000"), Remote: ap("203.0.113.1:0"), Remotes: 1, Flows: 2},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Mappings() =\n%v\nwant\n%v", got, want)
	}
	s := tab.Stats()
	if s.Mappings != 2 || s.Hosts != 1 || len(s.Addresses) != 2 ||
		s.Addresses[0] != (AddressStats{ip("18.18.18.8"), tcp, 1, 0}) ||
		s.Addresses[1] != (AddressStats{ip("18.18.18.8"), udp, 1, 0}) {
		t.Errorf("Stats() = %+v", s)
	}
}

// Readers and writers at once (run with -race): one goroutine per device
// reader, as the pipeline does.
func TestConcurrent(t *testing.T) {
	r := masq()
	r.Filtering = AddressDependentFiltering
	tab, err := New(r, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			s := netip.AddrPortFrom(ip("203.0.113.1"), uint16(1000+g))
			for i := range 2000 {
				c := netip.AddrPortFrom(ip(fmt.Sprintf("192.168.46.%d", g+1)), uint16(40000+i%50))
				m, err := tab.Outbound(udp, c, s)
				if err != nil {
					t.Error(err)
					return
				}
				if got, ok := tab.Inbound(udp, m.External(), s); got != m || !ok {
					t.Errorf("Inbound(%v) = %p, %v; want %p", m.External(), got, ok, m)
					return
				}
				if i%3 == 0 {
					tab.Stats()
					tab.Mappings()
				}
				tab.Release(m, s)
			}
		}()
	}
	for range 4 {
		<-done
	}
	checkConsistent(t, tab)
}
