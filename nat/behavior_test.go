package nat

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestBehaviorNames(t *testing.T) {
	want := []string{"address-and-port-dependent", "address-dependent", "endpoint-independent"}
	if got := MappingBehaviorNames(); !slices.Equal(got, want) {
		t.Errorf("MappingBehaviorNames() = %q, want %q", got, want)
	}
	if got := FilteringBehaviorNames(); !slices.Equal(got, want) {
		t.Errorf("FilteringBehaviorNames() = %q, want %q", got, want)
	}
	for _, name := range want {
		m, err := MappingBehaviorByName(name)
		if err != nil || m.String() != name {
			t.Errorf("MappingBehaviorByName(%q) = %v, %v", name, m, err)
		}
		f, err := FilteringBehaviorByName(name)
		if err != nil || f.String() != name {
			t.Errorf("FilteringBehaviorByName(%q) = %v, %v", name, f, err)
		}
	}
	_, err := MappingBehaviorByName("full-cone")
	if err == nil || !strings.Contains(err.Error(), `unknown mapping behaviour "full-cone"; the behaviours are address-and-port-dependent, address-dependent, endpoint-independent`) {
		t.Errorf("MappingBehaviorByName(full-cone) error = %v", err)
	}
	if _, err := FilteringBehaviorByName(""); err == nil {
		t.Error("FilteringBehaviorByName(\"\") gave no error")
	}
}

// mappingCase is RFC-CHECKLIST U1 (T1 for TCP) and its endpoint-dependent
// variants: from C:x to S1:a, S1:b and S2:a, which of the three external
// endpoints are the same.
type mappingCase struct {
	behavior MappingBehavior
	// S1:a vs S1:b, S1:a vs S2:a, S1:b vs S2:a
	sameAB, sameAS2, sameBS2 bool
}

var mappingCases = []mappingCase{
	{EndpointIndependentMapping, true, true, true},
	{AddressDependentMapping, true, false, false},
	{AddressAndPortDependentMapping, false, false, false},
}

// checkMapping runs one mapping case on t for client c (C:x).
func checkMapping(t *testing.T, tab *Table, tc mappingCase, proto uint8, c string) {
	t.Helper()
	s1a := out(t, tab, proto, c, "203.0.113.1:3478").External()
	s1b := out(t, tab, proto, c, "203.0.113.1:3479").External()
	s2a := out(t, tab, proto, c, "203.0.113.2:3478").External()
	if s1a == s1b != tc.sameAB || s1a == s2a != tc.sameAS2 || s1b == s2a != tc.sameBS2 {
		t.Errorf("%v proto %d: S1:a -> %v, S1:b -> %v, S2:a -> %v; want same %v, %v, %v",
			tc.behavior, proto, s1a, s1b, s2a, tc.sameAB, tc.sameAS2, tc.sameBS2)
	}
	if s1a.Addr() != s2a.Addr() {
		t.Errorf("%v proto %d: external addresses %v and %v differ", tc.behavior, proto, s1a.Addr(), s2a.Addr())
	}
}

func TestMappingBehavior(t *testing.T) {
	for _, tc := range mappingCases {
		t.Run(tc.behavior.String(), func(t *testing.T) {
			for _, proto := range []uint8{udp, tcp} {
				r := masq()
				r.Mapping = tc.behavior
				tab, _ := newTable(t, r)
				checkMapping(t, tab, tc, proto, "192.168.46.10:40000")
				checkConsistent(t, tab)
			}
		})
	}
}

// filterCase is RFC-CHECKLIST U9 (T3 for TCP): after C:x sent to S1:a
// only, whether S1:a (contacted), S1:b (address contacted) and S2:a (never
// contacted) may reach the mapping.
type filterCase struct {
	behavior                  FilteringBehavior
	fromS1a, fromS1b, fromS2a bool
}

var filterCases = []filterCase{
	{EndpointIndependentFiltering, true, true, true},
	{AddressDependentFiltering, true, true, false},
	{AddressAndPortDependentFiltering, true, false, false},
}

func checkFiltering(t *testing.T, tab *Table, tc filterCase, proto uint8, c string) {
	t.Helper()
	m := out(t, tab, proto, c, "203.0.113.1:3478")
	for _, in := range []struct {
		remote string
		want   bool
	}{
		{"203.0.113.1:3478", tc.fromS1a},
		{"203.0.113.1:3479", tc.fromS1b},
		{"203.0.113.2:3478", tc.fromS2a},
	} {
		got, ok := tab.Inbound(proto, m.External(), ap(in.remote))
		if got != m || ok != in.want {
			t.Errorf("%v proto %d: Inbound(%v from %s) = %p, %v; want %p, %v", tc.behavior, proto, m.External(), in.remote, got, ok, m, in.want)
		}
	}
	// A port outside the range belongs to no mapping.
	other := netip.AddrPortFrom(m.External().Addr(), 9)
	if got, ok := tab.Inbound(proto, other, ap("203.0.113.1:3478")); got != nil || ok {
		t.Errorf("%v: Inbound to unmapped %v = %p, %v", tc.behavior, other, got, ok)
	}
}

func TestFilteringBehavior(t *testing.T) {
	for _, tc := range filterCases {
		t.Run(tc.behavior.String(), func(t *testing.T) {
			for _, proto := range []uint8{udp, tcp} {
				r := masq()
				r.Filtering = tc.behavior
				tab, _ := newTable(t, r)
				checkFiltering(t, tab, tc, proto, "192.168.46.10:40000")
			}
		})
	}
}

// TestBehaviorsIndependent: every mapping × filtering pair behaves as its
// two halves say (the nine configurations stun tells apart).
func TestBehaviorsIndependent(t *testing.T) {
	for _, mc := range mappingCases {
		for _, fc := range filterCases {
			t.Run(mc.behavior.String()+"/"+fc.behavior.String(), func(t *testing.T) {
				r := masq()
				r.Mapping, r.Filtering = mc.behavior, fc.behavior
				tab, _ := newTable(t, r)
				checkMapping(t, tab, mc, udp, "192.168.46.10:40000")
				checkFiltering(t, tab, fc, udp, "192.168.46.11:40000")
			})
		}
	}
}
