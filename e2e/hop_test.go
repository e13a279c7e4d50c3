package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tungate/tungate/e2e/netns"
)

// hopConfig is a router between a LAN (192.168.46.0/24, fd46::/64) and a
// WAN (198.18.0.0/24, fd18::/64, MTU 1400). 198.18.0.0/15 is the RFC 2544
// benchmarking range: it stands in for a public network and never leaves
// the test's namespaces.
const hopConfig = `
[router]
admin_socket = ""

[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24", "fd46::1/64"]

[[interface]]
name = "wan0"
addresses = ["198.18.0.8/24", "fd18::8/64"]
mtu = 1400
`

// hop is a LAN host and a WAN server on either side of one router.
type hop struct {
	topo     *Topology
	r        *Router
	lan, wan *Host
}

func newHop(t *testing.T) *hop {
	topo := New(t)
	r := topo.Router(hopConfig)
	return &hop{
		topo: topo,
		r:    r,
		lan:  topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24", "fd46::2/64"),
		wan:  topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24", "fd18::1/64"),
	}
}

func TestPingThroughTheHop(t *testing.T) {
	h := newHop(t)
	for _, dst := range []string{"198.18.0.1", "fd18::1", "198.18.0.8", "fd18::8"} {
		t.Run(dst, func(t *testing.T) {
			out := h.lan.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", dst)
			if !strings.Contains(out, " 0% packet loss") {
				t.Errorf("ping %s:\n%s", dst, out)
			}
		})
	}
	t.Run("TTL is decremented", func(t *testing.T) {
		// Linux answers echo with TTL 64; one hop leaves 63.
		out := h.lan.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")
		if !strings.Contains(out, "ttl=63") {
			t.Errorf("want ttl=63 in:\n%s", out)
		}
	})
}

func TestTracerouteShowsTheRouter(t *testing.T) {
	h := newHop(t)
	for _, tc := range []struct{ flag, dst, hop string }{{"-4", "198.18.0.1", "192.168.46.1"}, {"-6", "fd18::1", "fd46::1"}} {
		out := h.lan.Run(t, "traceroute", tc.flag, "-n", "-q", "1", "-w", "2", "-m", "5", tc.dst)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(strings.TrimSpace(lines[1]), "1  "+tc.hop+" ") ||
			!strings.HasPrefix(strings.TrimSpace(lines[2]), "2  "+tc.dst+" ") {
			t.Errorf("traceroute %s: want hop 1 %s and hop 2 %s:\n%s", tc.dst, tc.hop, tc.dst, out)
		}
	}
}

func TestNoRouteIsNetUnreachable(t *testing.T) {
	h := newHop(t)
	out, err := h.lan.Try("ping", "-c", "1", "-W", "2", "100.64.0.1")
	if err == nil || !strings.Contains(out, "From 192.168.46.1") || !strings.Contains(out, "Destination Net Unreachable") {
		t.Errorf("want Destination Net Unreachable from 192.168.46.1, got (%v):\n%s", err, out)
	}
	out, err = h.lan.Try("ping", "-6", "-c", "1", "-W", "2", "3fff::1")
	if err == nil || !strings.Contains(out, "From fd46::1") || !strings.Contains(out, "No route") {
		t.Errorf("want ICMPv6 no route from fd46::1, got (%v):\n%s", err, out)
	}
}

func TestPathMTUDiscovery(t *testing.T) {
	h := newHop(t)
	// The WAN server's own link says 1500; only tungate knows its WAN
	// link takes 1400, so the hosts must learn it from ICMP.
	h.wan.Run(t, "ip", "link", "set", "dev", "wan0", "mtu", "1500")

	out, err := h.lan.Try("ping", "-M", "do", "-s", "1472", "-c", "1", "-W", "2", "198.18.0.1")
	if err == nil || !strings.Contains(out, "From 192.168.46.1") || !strings.Contains(out, "Frag needed and DF set (mtu = 1400)") {
		t.Errorf("want Frag needed (mtu = 1400) from the router, got (%v):\n%s", err, out)
	}
	h.lan.Run(t, "ping", "-M", "do", "-s", "1372", "-c", "1", "-W", "2", "198.18.0.1")

	// A TCP upload of 2 MB: full-size segments from the LAN host meet the
	// 1400-byte link and are answered with Fragmentation Needed until the
	// host lowers its segment size.
	h.lan.Run(t, "ip", "route", "flush", "cache")
	received := make(chan int64, 1)
	url := serveHTTP(t, h.wan.Netns, "198.18.0.1:8080", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		received <- n
		fmt.Fprintln(w, "ok")
	}))
	h.lan.Run(t, "sh", "-c", "head -c 2000000 /dev/zero | curl -sS --max-time 20 -T - "+url)
	if n := <-received; n != 2000000 {
		t.Errorf("server received %d bytes, want 2000000", n)
	}
	if out := h.lan.Run(t, "ip", "route", "get", "198.18.0.1"); !strings.Contains(out, "mtu 1400") {
		t.Errorf("the LAN host did not learn the path MTU:\n%s", out)
	}
}

func TestCurlAndIperf(t *testing.T) {
	h := newHop(t)
	url := serveHTTP(t, h.wan.Netns, "198.18.0.1:8080", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "hello %s\n", req.RemoteAddr)
	}))
	if out := h.lan.Run(t, "curl", "-sS", "--max-time", "10", url); !strings.HasPrefix(out, "hello 192.168.46.2:") {
		t.Errorf("curl: %q", out)
	}
	h.wan.Start(t, "iperf3", "-s", "-B", "198.18.0.1")
	waitListening(t, h.wan, 5201)
	out := h.lan.Run(t, "iperf3", "-c", "198.18.0.1", "-t", "3", "--connect-timeout", "3000")
	t.Logf("iperf3 through tungate: %.2f Gbit/s", iperfRate(t, out)/1e9)
}

// serveHTTP serves h on addr inside the namespace until the test ends and
// returns its URL.
func serveHTTP(t *testing.T, ns, addr string, h http.Handler) string {
	t.Helper()
	ln, err := netns.Listen(ns, "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + addr + "/"
}
