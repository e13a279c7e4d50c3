package e2e

import (
	"fmt"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// End-to-end tests of the filter stage in its two shapes: a home gateway
// that lets the LAN out and keeps the WAN from opening connections in,
// and a container router that keeps tenants apart.

// gatewayTOML is a masquerading home gateway whose filter drops (or
// rejects) what the WAN starts, after the rules in before.
func gatewayTOML(action, before string) string {
	return natConfig(`
[[forward]]
in = "wan0"
proto = "tcp"
listen = "198.18.0.8:8080"
to = "192.168.46.2:8080"

[filter]
policy = "accept"
` + before + `
[[filter.rule]]
in = "wan0"
state = ["new", "invalid"]
action = "` + action + `"
`)
}

func TestFilterHomeGateway(t *testing.T) {
	for _, action := range []string{"drop", "reject"} {
		t.Run(action, func(t *testing.T) {
			t.Parallel()
			topo := New(t)
			r := topo.Router(gatewayTOML(action, `
[[filter.rule]]
in = "wan0"
to = ["192.168.46.2/32"]
proto = "tcp"
dport = "8080"
action = "accept"
`))
			lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
			wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")
			hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") })
			serveHTTP(t, wan.Netns, "198.18.0.1:80", hello)
			serveHTTP(t, lan.Netns, "192.168.46.2:8080", hello)
			serveHTTP(t, lan.Netns, "192.168.46.2:22", hello)

			// The LAN goes out over TCP, UDP and ping.
			lan.Run(t, "curl", "-sS", "--max-time", "5", "http://198.18.0.1/")
			udpMirror(t, wan.Netns, "198.18.0.1:3478")
			if _, err := udpAsk(udpListen(t, lan.Netns, "192.168.46.2:40000"), netip.MustParseAddrPort("198.18.0.1:3478")); err != nil {
				t.Errorf("UDP from the LAN: %v", err)
			}
			lan.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")

			// The WAN cannot open a connection to a LAN address.
			start := time.Now()
			out, err := wan.Try("curl", "-sS", "--max-time", "2", "http://192.168.46.2:22/")
			code := -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			switch action {
			case "drop": // curl: 28, timed out
				if code != 28 {
					t.Errorf("a dropped connection: curl exit %d, want 28 (timeout):\n%s", code, out)
				}
			case "reject": // curl: 7, refused at once
				if code != 7 || time.Since(start) > time.Second {
					t.Errorf("a rejected connection: curl exit %d after %v, want 7 (refused) at once:\n%s", code, time.Since(start), out)
				}
			}
			// The port forward stays open through the accept rule before.
			if out := wan.Run(t, "curl", "-sS", "--max-time", "5", "http://198.18.0.8:8080/"); !strings.Contains(out, "hello") {
				t.Errorf("port forward: %q", out)
			}
			st := r.Stats().Filter
			if len(st) != 3 || st[1].Packets == 0 || st[2].Packets == 0 {
				t.Errorf("filter counters %+v: want both rules to have matched", st)
			}
		})
	}
}

// TestFilterTenants: two tenants behind one router may each reach the
// uplink, and not each other.
func TestFilterTenants(t *testing.T) {
	t.Parallel()
	topo := New(t)
	r := topo.Router(`
[router]
admin_socket = ""

[[interface]]
name = "t1"
addresses = ["10.0.1.1/24"]

[[interface]]
name = "t2"
addresses = ["10.0.2.1/24"]

[[interface]]
name = "up"
addresses = ["198.18.0.8/24"]

[filter]
policy = "accept"
[[filter.rule]]
in = "t1"
out = "t2"
action = "drop"
[[filter.rule]]
in = "t2"
out = "t1"
action = "drop"
`)
	a := topo.Host("a", r.Interface("t1"), "10.0.1.2/24")
	b := topo.Host("b", r.Interface("t2"), "10.0.2.2/24")
	topo.Host("up", r.Interface("up"), "198.18.0.1/24")
	for _, h := range []*Host{a, b} {
		h.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")
	}
	if out, err := a.Try("ping", "-c", "1", "-W", "1", "10.0.2.2"); err == nil {
		t.Errorf("tenant a reached tenant b:\n%s", out)
	}
	if out, err := b.Try("ping", "-c", "1", "-W", "1", "10.0.1.2"); err == nil {
		t.Errorf("tenant b reached tenant a:\n%s", out)
	}
	if drops := r.Stats().Drops["filtered"]; drops != 2 {
		t.Errorf("filtered drops %d, want the 2 pings", drops)
	}
}
