package route

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	pfx  = netip.MustParsePrefix
	addr = netip.MustParseAddr
)

func static(to, via string, dev int, metric uint32) Route {
	r := Route{To: pfx(to), Dev: dev, Metric: metric, Proto: Static}
	if via != "" {
		r.Via = addr(via)
	}
	return r
}

func connected(to string, dev int) Route {
	return Route{To: pfx(to), Dev: dev, Proto: Connected}
}

func TestLookup(t *testing.T) {
	tab, err := New([]Route{
		static("0.0.0.0/0", "192.0.2.1", 1, 0),
		connected("192.0.2.0/24", 1),
		static("10.0.0.0/8", "192.0.2.2", 1, 10),
		static("10.0.0.0/8", "192.0.2.3", 1, 5), // lower metric wins
		static("10.0.0.0/8", "192.0.2.4", 1, 20),
		static("10.1.0.0/16", "192.0.2.5", 1, 100), // longer prefix beats lower metric
		static("10.1.2.3/32", "", 3, 0),            // host route, on-link
		connected("198.51.100.0/24", 2),
		static("::/0", "fe80::1", 4, 0),
		connected("2001:db8::/64", 5),
		static("2001:db8:1::/48", "2001:db8::2", 5, 1),
		static("2001:db8:1::1/128", "", 6, 0),
		static("::ffff:0:0/96", "2001:db8::64", 5, 0), // IPv4-mapped is IPv6
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		dst     string
		wantTo  string // "" = no route
		wantHop string
		wantDev int
	}{
		{"8.8.8.8", "0.0.0.0/0", "192.0.2.1", 1},
		{"192.0.2.77", "192.0.2.0/24", "192.0.2.77", 1},
		{"192.0.2.0", "192.0.2.0/24", "192.0.2.0", 1},
		{"10.200.0.1", "10.0.0.0/8", "192.0.2.3", 1},
		{"10.1.255.255", "10.1.0.0/16", "192.0.2.5", 1},
		{"10.1.2.3", "10.1.2.3/32", "10.1.2.3", 3},
		{"10.1.2.4", "10.1.0.0/16", "192.0.2.5", 1},
		{"198.51.100.9", "198.51.100.0/24", "198.51.100.9", 2},
		{"2001:db8::9", "2001:db8::/64", "2001:db8::9", 5},
		{"2001:db8:0:1::9", "::/0", "fe80::1", 4},
		{"2001:db8:1:ffff::", "2001:db8:1::/48", "2001:db8::2", 5},
		{"2001:db8:1::1", "2001:db8:1::1/128", "2001:db8:1::1", 6},
		{"2001:db8:1::2", "2001:db8:1::/48", "2001:db8::2", 5},
		{"::ffff:10.1.2.3", "::ffff:0:0/96", "2001:db8::64", 5},
		{"fe80::1%eth0", "::/0", "fe80::1", 4}, // the zone does not matter
	}
	for _, tt := range tests {
		dst := addr(tt.dst)
		e := tab.Lookup(dst)
		if e == nil {
			t.Errorf("Lookup(%v) = nil, want %v", dst, tt.wantTo)
			continue
		}
		if e.To != pfx(tt.wantTo) {
			t.Errorf("Lookup(%v).To = %v, want %v", dst, e.To, tt.wantTo)
		}
		hop := e.Via // what the route stage sends to
		if !hop.IsValid() {
			hop = dst.WithZone("")
		}
		if hop != addr(tt.wantHop) {
			t.Errorf("Lookup(%v): next hop %v, want %v", dst, hop, tt.wantHop)
		}
		if e.Dev != tt.wantDev {
			t.Errorf("Lookup(%v).Dev = %v, want %v", dst, e.Dev, tt.wantDev)
		}
	}
}

// TestFamilies checks that a default route of one family never answers for
// the other, and that an empty Table answers nothing.
func TestFamilies(t *testing.T) {
	v4only, err := New([]Route{static("0.0.0.0/0", "192.0.2.1", 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	v6only, err := New([]Route{static("::/0", "fe80::1", 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		tab  *Table
		dst  netip.Addr
		want bool
	}{
		{"v4 table, v4 dst", v4only, addr("1.2.3.4"), true},
		{"v4 table, v6 dst", v4only, addr("2001:db8::1"), false},
		{"v4 table, v4-mapped dst", v4only, addr("::ffff:1.2.3.4"), false},
		{"v4 table, unmapped dst", v4only, addr("::ffff:1.2.3.4").Unmap(), true},
		{"v6 table, v6 dst", v6only, addr("2001:db8::1"), true},
		{"v6 table, v4 dst", v6only, addr("1.2.3.4"), false},
		{"v6 table, v4-mapped dst", v6only, addr("::ffff:1.2.3.4"), true},
		{"v4 table, invalid dst", v4only, netip.Addr{}, false},
		{"v6 table, invalid dst", v6only, netip.Addr{}, false},
		{"empty table", empty, addr("1.2.3.4"), false},
	}
	for _, tt := range tests {
		if got := tt.tab.Lookup(tt.dst) != nil; got != tt.want {
			t.Errorf("%s: Lookup(%v) found = %v, want %v", tt.name, tt.dst, got, tt.want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		routes  []Route
		wantErr string
	}{
		{"duplicate", []Route{
			static("10.0.0.0/8", "192.0.2.1", 1, 5),
			static("10.0.0.0/8", "192.0.2.2", 2, 5),
		}, "duplicate route 10.0.0.0/8 metric 5"},
		{"duplicate connected and static", []Route{
			connected("192.0.2.0/24", 1),
			static("192.0.2.0/24", "", 1, 0),
		}, "duplicate route 192.0.2.0/24 metric 0"},
		{"duplicate v6 host", []Route{
			static("2001:db8::1/128", "", 1, 7),
			static("2001:db8::/64", "", 1, 7),
			static("2001:db8::1/128", "", 2, 7),
		}, "duplicate route 2001:db8::1/128 metric 7"},
		{"invalid prefix", []Route{{Proto: Static}}, "route 0: invalid prefix"},
		{"host bits", []Route{
			connected("192.0.2.0/24", 1),
			connected("192.0.2.1/24", 1),
		}, "route 1: prefix 192.0.2.1/24 has host bits set"},
		{"no proto", []Route{{To: pfx("10.0.0.0/8")}}, "route 0 (10.0.0.0/8): unknown proto 0"},
	}
	for _, tt := range tests {
		_, err := New(tt.routes)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: New() error = %v, want %q", tt.name, err, tt.wantErr)
		}
	}
}

func TestNewUnmapsV4Gateway(t *testing.T) {
	tab, err := New([]Route{static("0.0.0.0/0", "::ffff:192.0.2.1", 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	if got := tab.Lookup(addr("8.8.8.8")).Via; got != addr("192.0.2.1") {
		t.Errorf("Via = %v, want 192.0.2.1", got)
	}
}

func TestRoutesOrderAndUse(t *testing.T) {
	in := []Route{
		static("::/0", "fe80::1", 4, 0),
		static("0.0.0.0/0", "192.0.2.1", 1, 0),
		static("2001:db8::/32", "fe80::2", 4, 0),
		static("10.0.0.0/8", "192.0.2.2", 1, 20),
		connected("192.0.2.0/24", 1),
		static("10.0.0.0/8", "192.0.2.3", 1, 10),
		static("10.1.2.3/32", "", 2, 0),
		static("9.0.0.0/8", "192.0.2.4", 1, 0),
		static("2001:db8::1/128", "", 5, 0),
	}
	want := []string{
		"10.1.2.3/32 0",
		"192.0.2.0/24 0",
		"9.0.0.0/8 0",
		"10.0.0.0/8 10",
		"10.0.0.0/8 20",
		"0.0.0.0/0 0",
		"2001:db8::1/128 0",
		"2001:db8::/32 0",
		"::/0 0",
	}
	tab, err := New(in)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for e := range tab.Routes() {
		got = append(got, fmt.Sprintf("%v %d", e.To, e.Metric))
	}
	if !slices.Equal(got, want) {
		t.Errorf("Routes() order:\n got %q\nwant %q", got, want)
	}

	// The entry Lookup returns is the one Routes shows, so counting
	// through one is visible through the other; shadowed routes stay at 0.
	for range 3 {
		tab.Lookup(addr("10.9.9.9")).Use.Add(1)
	}
	for e := range tab.Routes() {
		want := uint64(0)
		if e.To == pfx("10.0.0.0/8") && e.Metric == 10 {
			want = 3
		}
		if got := e.Use.Load(); got != want {
			t.Errorf("%v metric %d: Use = %d, want %d", e.To, e.Metric, got, want)
		}
	}
}

func TestRoutesStopsEarly(t *testing.T) {
	tab, err := New([]Route{connected("192.0.2.0/24", 1), connected("198.51.100.0/24", 2)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for range tab.Routes() {
		n++
		break
	}
	if n != 1 {
		t.Errorf("Routes yielded %d routes after break, want 1", n)
	}
}

func TestProtoString(t *testing.T) {
	for p, want := range map[Proto]string{Connected: "kernel", Static: "static", 0: "Proto(0)", 9: "Proto(9)"} {
		if got := p.String(); got != want {
			t.Errorf("Proto(%d).String() = %q, want %q", uint8(p), got, want)
		}
	}
}
