package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// C4 (RFC 6888 REQ-4): a host holds at most MaxPortsPerHost ports over all
// protocols, ports held back by ReuseDelay included; other hosts and new
// flows on existing mappings are not affected.
func TestPerHostQuota(t *testing.T) {
	r := masq()
	r.MaxPortsPerHost = 3
	tab, c := newTable(t, r)
	m := out(t, tab, udp, "192.168.46.10:1000", "203.0.113.1:53")
	out(t, tab, tcp, "192.168.46.10:1001", "203.0.113.1:443")
	out(t, tab, icmp, "192.168.46.10:1002", "203.0.113.1:0")
	if _, err := tab.Outbound(udp, ap("192.168.46.10:1003"), ap("203.0.113.1:53")); !errors.Is(err, ErrQuota) {
		t.Fatalf("fourth port: %v, want ErrQuota", err)
	}
	out(t, tab, udp, "192.168.46.10:1000", "203.0.113.2:53") // existing mapping
	out(t, tab, udp, "192.168.46.11:1003", "203.0.113.1:53") // another host
	// A freed port still counts while it is held back.
	tab.Release(m, ap("203.0.113.1:53"))
	tab.Release(m, ap("203.0.113.2:53"))
	if _, err := tab.Outbound(udp, ap("192.168.46.10:1003"), ap("203.0.113.1:53")); !errors.Is(err, ErrQuota) {
		t.Fatalf("while held: %v, want ErrQuota", err)
	}
	c.advance(DefaultReuseDelay)
	out(t, tab, udp, "192.168.46.10:1003", "203.0.113.1:53")
	if s := tab.Stats(); s.RefusedQuota != 2 || s.RefusedExhausted != 0 {
		t.Errorf("Stats() = %+v, want 2 quota refusals", s)
	}
	checkConsistent(t, tab)
}

// C8 (RFC 6888 REQ-8): a freed port goes to no other mapping for
// ReuseDelay; the mapping that had it may take it back at once.
func TestReuseDelay(t *testing.T) {
	for _, tc := range []struct {
		delay time.Duration
		free  time.Duration // when another host may have the port
	}{
		{0, 120 * time.Second},
		{30 * time.Second, 30 * time.Second},
		{-1, 0},
	} {
		t.Run(fmt.Sprint(tc.delay), func(t *testing.T) {
			r := masq()
			r.Ports, r.ReuseDelay = PortRange{5000, 5000}, tc.delay
			tab, c := newTable(t, r)
			s := ap("203.0.113.1:53")
			m := out(t, tab, udp, "192.168.46.10:5000", s.String())
			tab.Release(m, s)
			if tc.free > 0 {
				c.advance(tc.free - time.Second)
				if _, err := tab.Outbound(udp, ap("192.168.46.11:5000"), s); !errors.Is(err, ErrExhausted) {
					t.Fatalf("other host 1 s before the delay ends: %v, want ErrExhausted", err)
				}
				// The same endpoint takes its port back.
				back := out(t, tab, udp, "192.168.46.10:5000", s.String())
				if back.External() != m.External() {
					t.Fatalf("same endpoint came back to %v, had %v", back.External(), m.External())
				}
				tab.Release(back, s)
				// ... and holding it again restarts the delay.
				c.advance(tc.free - time.Second)
				if _, err := tab.Outbound(udp, ap("192.168.46.11:5000"), s); !errors.Is(err, ErrExhausted) {
					t.Fatalf("other host after a second hold: %v, want ErrExhausted", err)
				}
				c.advance(time.Second)
			}
			if got := out(t, tab, udp, "192.168.46.11:5000", s.String()).External(); got != ap("18.18.18.8:5000") {
				t.Errorf("after the delay the other host got %v", got)
			}
			checkConsistent(t, tab)
		})
	}
}

// Under endpoint-dependent mapping a held port is the mapping's, not the
// internal endpoint's: the same endpoint to another remote does not get it.
func TestReuseDelayPerMapping(t *testing.T) {
	r := masq()
	r.Mapping, r.Ports = AddressAndPortDependentMapping, PortRange{5000, 5001}
	tab, _ := newTable(t, r)
	s1, s2 := ap("203.0.113.1:53"), ap("203.0.113.2:53")
	m := out(t, tab, udp, "192.168.46.10:5000", s1.String())
	tab.Release(m, s1)
	if got := out(t, tab, udp, "192.168.46.10:5000", s2.String()).External().Port(); got != 5001 {
		t.Errorf("other remote got port %d, want 5001", got)
	}
	if got := out(t, tab, udp, "192.168.46.10:5000", s1.String()).External().Port(); got != 5000 {
		t.Errorf("same remote got port %d back, want 5000", got)
	}
}

// C11 (RFC 6888 REQ-11): a full pool refuses new mappings and leaves the
// existing ones alone.
func TestExhaustion(t *testing.T) {
	r := masq()
	r.Ports = PortRange{2000, 2063}
	tab, _ := newTable(t, r)
	s := ap("203.0.113.1:53")
	var all []*Mapping
	for i := range 64 {
		all = append(all, out(t, tab, udp, fmt.Sprintf("192.168.46.%d:%d", 10+i%100, 40000+i), s.String()))
	}
	for i := range 3 {
		if _, err := tab.Outbound(udp, ap(fmt.Sprintf("192.168.47.1:%d", 1000+i)), s); !errors.Is(err, ErrExhausted) {
			t.Fatalf("65th mapping: %v, want ErrExhausted", err)
		}
	}
	for _, m := range all {
		if got, ok := tab.Inbound(udp, m.External(), s); got != m || !ok {
			t.Fatalf("existing mapping %v disturbed", m.External())
		}
		if again := out(t, tab, udp, m.Internal().String(), "203.0.113.9:1"); again != m {
			t.Fatalf("new flow on existing mapping %v refused or moved", m.Internal())
		}
	}
	// Another protocol has ports of its own.
	out(t, tab, tcp, "192.168.47.1:1000", s.String())
	if st := tab.Stats(); st.RefusedExhausted != 3 || st.Mappings != 65 {
		t.Errorf("Stats() = %+v", st)
	}
	checkConsistent(t, tab)
}

// U12 (RFC 4787 REQ-11): U1 and U9 give the same answers with 90% of the
// pool taken by other hosts.
func TestDeterministicUnderLoad(t *testing.T) {
	for _, mc := range mappingCases {
		for _, fc := range filterCases {
			t.Run(mc.behavior.String()+"/"+fc.behavior.String(), func(t *testing.T) {
				r := masq()
				r.External = []netip.Addr{ip("18.18.18.8"), ip("18.18.18.9")}
				r.Ports = PortRange{1024, 2047}
				r.Mapping, r.Filtering = mc.behavior, fc.behavior
				tab, _ := newTable(t, r)
				fill := 2 * 1024 * 9 / 10
				for i := range fill {
					c := fmt.Sprintf("10.%d.%d.1:%d", i/256, i%256, 1024+i%1024)
					out(t, tab, udp, c, "198.51.100.1:9")
				}
				for _, a := range tab.Stats().Addresses {
					if a.Live < 850 {
						t.Fatalf("fill left %v with %d ports", a.Addr, a.Live)
					}
				}
				checkMapping(t, tab, mc, udp, "192.168.46.10:1500")
				checkFiltering(t, tab, fc, udp, "192.168.46.11:1500")
				checkConsistent(t, tab)
			})
		}
	}
}
