package e2e

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// natConfig is a home gateway: the LAN 192.168.46.0/24 masqueraded out of
// wan0 with the given [[snat]] settings.
func natConfig(snat string) string {
	return `
[router]
admin_socket = ""

[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24"]

[[interface]]
name = "wan0"
addresses = ["198.18.0.8/24"]

[[snat]]
out = "wan0"
from = ["192.168.46.0/24"]
` + snat
}

// stunServer is a WAN host with the two addresses RFC 3489's tests need,
// running stund on both.
func stunServer(t *testing.T, topo *Topology, r *Router) *Host {
	w := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24", "198.18.0.2/24")
	w.Start(t, "stund", "-h", "198.18.0.1", "-a", "198.18.0.2")
	time.Sleep(200 * time.Millisecond) // stund has no readiness signal; its test is bounded below anyway
	return w
}

// stun runs the classic STUN client from a host and returns its
// "Primary:" line and its exit code (stund's client.cxx codes).
func stun(t *testing.T, h *Host, args ...string) (string, int) {
	t.Helper()
	out, err := h.Try(append([]string{"stun", "198.18.0.1"}, args...)...)
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatalf("stun: %v\n%s", err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "Primary: ") {
			return strings.TrimPrefix(line, "Primary: "), code
		}
	}
	t.Fatalf("no Primary line from stun:\n%s", out)
	return "", 0
}

func TestSTUNClassifiesEachBehaviour(t *testing.T) {
	tests := []struct {
		mapping, filtering string
		want               string // Primary line, up to the port part
		code               int    // stund's base code for the type
	}{
		{"endpoint-independent", "endpoint-independent", "Independent Mapping, Independent Filter", 0x02},
		{"endpoint-independent", "address-dependent", "Independent Mapping, Address Dependent Filter", 0x04},
		{"endpoint-independent", "address-and-port-dependent", "Independent Mapping, Port Dependent Filter", 0x06},
		{"address-dependent", "endpoint-independent", "Dependent Mapping", 0x08},
		{"address-dependent", "address-dependent", "Dependent Mapping", 0x08},
		{"address-dependent", "address-and-port-dependent", "Dependent Mapping", 0x08},
		{"address-and-port-dependent", "endpoint-independent", "Dependent Mapping", 0x08},
		{"address-and-port-dependent", "address-dependent", "Dependent Mapping", 0x08},
		{"address-and-port-dependent", "address-and-port-dependent", "Dependent Mapping", 0x08},
	}
	for _, tc := range tests {
		t.Run(tc.mapping+"/"+tc.filtering, func(t *testing.T) {
			t.Parallel()
			topo := New(t)
			r := topo.Router(natConfig(fmt.Sprintf("mapping = %q\nfiltering = %q\n", tc.mapping, tc.filtering)))
			lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
			stunServer(t, topo, r)
			primary, code := stun(t, lan, "-p", "40000")
			if !strings.HasPrefix(primary, tc.want) {
				t.Errorf("stun says %q, want %q", primary, tc.want)
			}
			if code&0x0e != tc.code {
				t.Errorf("stun's code %#x, want type %#x", code, tc.code)
			}
		})
	}
}

func TestSTUNPortPreservationAndHairpin(t *testing.T) {
	tests := []struct {
		snat             string
		preserves, hairp bool
	}{
		{"port_preservation = true\nhairpin = true\n", true, true},
		{"port_preservation = false\nhairpin = true\n", false, true},
		{"port_preservation = true\nhairpin = false\n", true, false},
	}
	for _, tc := range tests {
		t.Run(strings.ReplaceAll(strings.TrimSpace(tc.snat), "\n", ","), func(t *testing.T) {
			t.Parallel()
			topo := New(t)
			r := topo.Router(natConfig(tc.snat))
			lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
			stunServer(t, topo, r)
			primary, code := stun(t, lan, "-p", "40000")
			if got := strings.Contains(primary, "preserves ports"); got != tc.preserves || (code&0x01 != 0) != tc.preserves {
				t.Errorf("stun says %q (code %#x); preserves ports: want %v", primary, code, tc.preserves)
			}
			if got := strings.Contains(primary, "will hairpin"); got != tc.hairp || (code&0x10 == 0) != tc.hairp {
				t.Errorf("stun says %q (code %#x); hairpin: want %v", primary, code, tc.hairp)
			}
		})
	}
}
