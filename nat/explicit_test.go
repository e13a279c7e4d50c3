package nat

import (
	"errors"
	"testing"
	"time"
)

// TestExplicitMapping: a mapping asked for by PCP or NAT-PMP takes the
// suggested port, admits anyone under the strictest filtering, serves the
// endpoint's outbound flows, and lives its lifetime, then as long as a flow
// holds it.
func TestExplicitMapping(t *testing.T) {
	rule := masq()
	rule.Filtering = AddressAndPortDependentFiltering
	tab, clk := newTable(t, rule)

	m, err := tab.Explicit(udp, ap("192.168.46.2:5000"), 6000, false, time.Minute)
	if err != nil || m.External() != ap("18.18.18.8:6000") {
		t.Fatalf("Explicit = %v, %v; want 18.18.18.8:6000", m, err)
	}
	if got, ok := tab.Inbound(udp, ap("18.18.18.8:6000"), ap("203.0.113.9:7")); got != m || !ok {
		t.Errorf("Inbound from a stranger = %v, %v; want the mapping, admitted", got, ok)
	}
	if got := out(t, tab, udp, "192.168.46.2:5000", "203.0.113.1:53"); got != m {
		t.Errorf("outbound flow got %v, want the explicit mapping", got.External())
	}
	tab.Release(m, ap("203.0.113.1:53"))

	// Renewal extends the lifetime and keeps the port, even when the new
	// request suggests another one.
	clk.advance(50 * time.Second)
	if again, err := tab.Explicit(udp, ap("192.168.46.2:5000"), 7000, false, time.Minute); again != m || err != nil {
		t.Fatalf("renewal = %v, %v; want the same mapping", again, err)
	}
	if lt := tab.Lifetime(m); lt != time.Minute {
		t.Errorf("Lifetime after renewal = %v, want 1m", lt)
	}
	clk.advance(59 * time.Second)
	tab.ExpireExplicit()
	if got, _ := tab.Inbound(udp, ap("18.18.18.8:6000"), ap("203.0.113.9:7")); got != m {
		t.Fatal("mapping gone before its lifetime")
	}
	// A flow holds it past its lifetime; filtering applies again then.
	if !tab.Acquire(m, ap("203.0.113.9:7")) {
		t.Fatal("Acquire refused")
	}
	clk.advance(time.Second)
	tab.ExpireExplicit()
	if got, ok := tab.Inbound(udp, ap("18.18.18.8:6000"), ap("203.0.113.10:7")); got != m || ok {
		t.Errorf("after its lifetime, with a flow: Inbound from another stranger = %v, %v; want the mapping, filtered", got, ok)
	}
	tab.Release(m, ap("203.0.113.9:7"))
	if got, _ := tab.Inbound(udp, ap("18.18.18.8:6000"), ap("203.0.113.9:7")); got != nil {
		t.Errorf("mapping outlived its lifetime and its last flow")
	}
	checkConsistent(t, tab)
}

func TestExplicitSuggestedPort(t *testing.T) {
	tab, _ := newTable(t, masq())
	out(t, tab, tcp, "192.168.46.3:8080", "203.0.113.1:80") // takes 8080

	// Taken: another port, or with exact, an error that leaves no trace.
	m, err := tab.Explicit(tcp, ap("192.168.46.2:80"), 8080, false, time.Minute)
	if err != nil || m.External().Port() == 8080 {
		t.Errorf("Explicit with a taken suggestion = %v, %v; want another port", m, err)
	}
	before := tab.Stats()
	if _, err := tab.Explicit(tcp, ap("192.168.46.4:80"), 8080, true, time.Minute); !errors.Is(err, ErrPortTaken) {
		t.Errorf("exact Explicit with a taken suggestion: err = %v, want ErrPortTaken", err)
	}
	if after := tab.Stats(); after.Mappings != before.Mappings || after.Held != before.Held || after.Hosts != before.Hosts {
		t.Errorf("refused exact request changed the table: %+v -> %+v", before, after)
	}
	// No suggestion: the internal port, as port preservation says.
	if m, err := tab.Explicit(tcp, ap("192.168.46.5:9000"), 0, true, time.Minute); err != nil || m.External().Port() != 9000 {
		t.Errorf("Explicit without a suggestion = %v, %v; want port 9000", m, err)
	}
	checkConsistent(t, tab)
}

func TestUnmap(t *testing.T) {
	tab, _ := newTable(t, masq())
	for _, in := range []string{"192.168.46.2:5000", "192.168.46.2:5001", "192.168.46.3:5000"} {
		if _, err := tab.Explicit(udp, ap(in), 0, false, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if n := tab.Unmap(udp, ap("192.168.46.2:5001")); n != 1 {
		t.Errorf("Unmap of one endpoint ended %d", n)
	}
	if n := tab.Unmap(tcp, ap("192.168.46.2:0")); n != 0 {
		t.Errorf("Unmap of another protocol ended %d", n)
	}
	if n := tab.Unmap(udp, ap("192.168.46.2:0")); n != 1 {
		t.Errorf("Unmap of an address ended %d, want the one left", n)
	}
	if s := tab.Stats(); s.Mappings != 1 || s.Held != 2 {
		t.Errorf("after Unmap: %d mappings, %d ports held back; want 1 and 2 (RFC 6888 REQ-8)", s.Mappings, s.Held)
	}
	checkConsistent(t, tab)
}

func TestExplicitQuota(t *testing.T) {
	rule := masq()
	rule.MaxPortsPerHost = 1
	tab, _ := newTable(t, rule)
	if _, err := tab.Explicit(udp, ap("192.168.46.2:5000"), 0, false, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := tab.Explicit(udp, ap("192.168.46.2:5001"), 0, false, time.Hour); !errors.Is(err, ErrQuota) {
		t.Errorf("second mapping past the quota: err = %v, want ErrQuota", err)
	}
}

// TestExplicitRefusalKeepsTheHold: an exact request the endpoint's held
// port cannot meet leaves that port on hold for it (RFC 6888 REQ-8).
func TestExplicitRefusalKeepsTheHold(t *testing.T) {
	tab, _ := newTable(t, masq())
	m := out(t, tab, udp, "192.168.46.2:5000", "203.0.113.1:53")
	tab.Release(m, ap("203.0.113.1:53")) // port 5000 held for the endpoint
	if _, err := tab.Explicit(udp, ap("192.168.46.2:5000"), 6000, true, time.Minute); !errors.Is(err, ErrPortTaken) {
		t.Fatalf("exact Explicit for 6000 over a held 5000: err = %v, want ErrPortTaken", err)
	}
	if s := tab.Stats(); s.Held != 1 || s.Mappings != 0 {
		t.Errorf("after the refusal: %d held, %d mappings; want the port still held", s.Held, s.Mappings)
	}
	if other := out(t, tab, udp, "192.168.46.3:5000", "203.0.113.1:53"); other.External().Port() == 5000 {
		t.Error("another host got the held port")
	}
	checkConsistent(t, tab)
}
