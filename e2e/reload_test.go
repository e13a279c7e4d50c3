package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// reloadConfig is the daemon of TestReloadUnderTraffic: masquerade out of
// the WAN, a service on 198.18.0.100:5202 balanced to iperf3 servers on
// the LAN host, and extra (routes, a second backend) appended.
func reloadConfig(topo *Topology, lan, wan, metrics string, backends []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
[[snat]]
out = %q
from = ["192.168.46.0/24"]

[[service]]
name = "iperf"
vip = "198.18.0.100:5202"
proto = "tcp"
scheduler = "rr"
  [service.health]
  check = "none"
`, topo.Name("w"))
	for _, be := range backends {
		fmt.Fprintf(&b, "  [[service.backend]]\n  address = %q\n", be)
	}
	cfg := daemonConfig(topo, lan, wan, b.String()+extra)
	// metrics_listen belongs to [router], which daemonConfig opens with.
	return strings.Replace(cfg, `admin_socket = "SOCKET"`, fmt.Sprintf("admin_socket = \"SOCKET\"\nmetrics_listen = %q", metrics), 1)
}

// iperfJSON is what TestReloadUnderTraffic reads of iperf3 -J.
type iperfJSON struct {
	End struct {
		SumSent struct {
			Bytes       float64 `json:"bytes"`
			Retransmits int     `json:"retransmits"`
		} `json:"sum_sent"`
	} `json:"end"`
	Error string `json:"error"`
}

// TestReloadUnderTraffic: 20 reloads in a row (routes changing, a backend
// added, one invalid file) while a TCP transfer runs through masquerade,
// another through the load balancer, and a UDP flow through masquerade:
// both transfers end well with few retransmissions, the UDP flow keeps its
// external port, the invalid file is refused with its line, a route a
// reload removes stops at once, and /metrics shows the traffic.
func TestReloadUnderTraffic(t *testing.T) {
	topo := New(t)
	lanNS, wanNS := topo.Netns("lan"), topo.Netns("wan")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	one := []string{"192.168.46.2:5202"}
	two := []string{"192.168.46.2:5202", "192.168.46.2:5203"}
	route := "\n[[route]]\nto = \"203.0.113.0/24\"\nvia = \"198.18.0.1\"\n"
	d := startDaemon(t, reloadConfig(topo, lanNS, wanNS, metricsAddr, one, route))
	lan, wan := &Host{Netns: lanNS}, &Host{Netns: wanNS}
	wan.Run(t, "ip", "addr", "add", "203.0.113.1/32", "dev", "lo")

	wan.Start(t, "iperf3", "-s", "-B", "198.18.0.1", "-p", "5201")
	lan.Start(t, "iperf3", "-s", "-p", "5202")
	lan.Start(t, "iperf3", "-s", "-p", "5203")
	waitListening(t, wan, 5201)
	waitListening(t, lan, 5202)
	waitListening(t, lan, 5203)

	// The UDP flow: the LAN host asks a WAN mirror every 50 ms which
	// external endpoint it sees.
	udpMirror(t, wanNS, "198.18.0.1:3478")
	c := udpListen(t, lanNS, "192.168.46.2:40000")
	var mu sync.Mutex
	seen := map[netip.AddrPort]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if ext, err := udpAsk(c, netip.MustParseAddrPort("198.18.0.1:3478")); err == nil {
				mu.Lock()
				seen[ext]++
				mu.Unlock()
			}
		}
	})

	type result struct {
		name string
		out  string
		err  error
	}
	results := make(chan result, 2)
	for _, run := range []struct {
		name string
		h    *Host
		argv []string
	}{
		{"masquerade", lan, []string{"iperf3", "-J", "-c", "198.18.0.1", "-p", "5201", "-t", "12", "--connect-timeout", "3000"}},
		{"load balancer", wan, []string{"iperf3", "-J", "-c", "198.18.0.100", "-p", "5202", "-t", "12", "--connect-timeout", "3000"}},
	} {
		go func() {
			out, err := run.h.Try(run.argv...)
			results <- result{run.name, out, err}
		}()
	}

	time.Sleep(time.Second) // the transfers are under way
	for i := range 20 {
		backends := one
		if i >= 10 {
			backends = two // the 11th reload adds a backend
		}
		extra := ""
		if i%2 == 1 && i != 19 {
			extra = route // the route comes and goes; the last reload drops it
		}
		cfg := reloadConfig(topo, lanNS, wanNS, metricsAddr, backends, extra)
		if i == 15 {
			cfg += "\n[[route]]\nto = \"bogus\"\n"
		}
		d.writeConfig(t, cfg)
		out, err := d.tungate("reload")
		switch {
		case i == 15 && (err == nil || !strings.Contains(out, "tungate.toml:")):
			t.Errorf("reload %d of an invalid file: want it refused with file:line, got (%v) %s", i, err, out)
		case i != 15 && err != nil:
			t.Fatalf("reload %d: %v\n%s", i, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}

	// The route the last reload removed is no longer used.
	if out, err := lan.Try("ping", "-c", "1", "-W", "2", "203.0.113.1"); err == nil || !strings.Contains(out, "Net Unreachable") {
		t.Errorf("after the reload that removed the route, ping 203.0.113.1 (%v):\n%s", err, out)
	}
	for range 2 {
		r := <-results
		var res iperfJSON
		if err := json.Unmarshal([]byte(r.out), &res); err != nil || r.err != nil || res.Error != "" {
			t.Errorf("iperf3 through the %s: %v %s\n%s", r.name, r.err, res.Error, r.out)
			continue
		}
		t.Logf("iperf3 through the %s: %.0f MB, %d retransmissions", r.name, res.End.SumSent.Bytes/1e6, res.End.SumSent.Retransmits)
		// Loss under load costs some; a storm (a flow thrown off by a
		// reload) costs thousands.
		if res.End.SumSent.Retransmits > 500 {
			t.Errorf("iperf3 through the %s retransmitted %d segments across the reloads", r.name, res.End.SumSent.Retransmits)
		}
	}
	close(stop)
	wg.Wait()
	mu.Lock()
	if len(seen) != 1 {
		t.Errorf("the UDP flow was seen from %v; want one external endpoint across all reloads", seen)
	}
	mu.Unlock()

	families := scrapeMetrics(t, "http://"+metricsAddr+"/metrics")
	lb := metricValues(families, "tungate_lb_backend_connections_total")
	if lb[`backend="192.168.46.2:5202",service="iperf"`] < 1 {
		t.Errorf("tungate_lb_backend_connections_total: %v", lb)
	}
	if v := metricValues(families, "tungate_conntrack_entries")[""]; v < 2 {
		t.Errorf("tungate_conntrack_entries = %v, want the flows", v)
	}
}
