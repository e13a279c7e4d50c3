package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/link"
	"github.com/tungate/tungate/router/neigh"
)

// l2Config is a TAP interface on a bridged LAN (with router
// advertisements, short neighbor timers and a small queue), a TUN
// interface to a WAN host, a route via a next hop that does not exist,
// and a static neighbor.
const l2Config = `
[router]
admin_socket = ""

[arp]
reachable = "2s"
retry_interval = "200ms"
retries = 3
queue = 4

[[interface]]
name = "lan0"
kind = "tap"
addresses = ["192.168.46.1/24", "fd46::1/64"]
router_advertisements = true

[[interface]]
name = "wan0"
addresses = ["198.18.0.8/24", "fd18::8/64"]

[[route]]
to = "203.0.113.0/24"
via = "192.168.46.99"

[[neighbor]]
ip = "192.168.46.3"
mac = "02:00:00:00:00:0b"
dev = "lan0"
`

// waitFor polls cond every 100 ms for at most d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
	}
}

// neighbor is the router's entry for ip, if any.
func neighbor(r *Router, ip string) (router.NeighborInfo, bool) {
	for _, n := range r.Neighbors() {
		if n.IP.String() == ip {
			return n, true
		}
	}
	return router.NeighborInfo{}, false
}

func TestEthernetSegment(t *testing.T) {
	topo := New(t)
	r := topo.Router(l2Config)
	seg := topo.Segment("seg", r.Interface("lan0"))
	a := seg.Host("a", nil, "192.168.46.2/24", "fd46::2/64")
	b := seg.Host("b", net.HardwareAddr{2, 0, 0, 0, 0, 0x0b}, "192.168.46.3/24")
	d := seg.Host("d", nil, "192.168.46.4/24")
	c := topo.Host("c", r.Interface("wan0"), "198.18.0.1/24", "fd18::1/64")
	routerMAC := neigh.MAC(link.MACFor("lan0")).String()

	t.Run("ping across in IPv4 and IPv6", func(t *testing.T) {
		for _, dst := range []string{"198.18.0.1", "fd18::1"} {
			a.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", dst)
		}
		c.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.46.2")
		c.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "fd46::2")
	})

	t.Run("hosts resolve the router's MAC", func(t *testing.T) {
		for _, ip := range []string{"192.168.46.1", "fd46::1"} {
			if out := a.Run(t, "ip", "neigh", "show", ip); !strings.Contains(out, routerMAC) {
				t.Errorf("host a's neighbor entry for %s lacks the router's MAC %s:\n%s", ip, routerMAC, out)
			}
		}
	})

	t.Run("the router's cache: both hosts REACHABLE with their real MACs, then STALE", func(t *testing.T) {
		hosts := map[string]*Host{"192.168.46.2": a, "192.168.46.4": d}
		macs := map[string]string{}
		for ip, h := range hosts {
			macs[ip] = strings.TrimSpace(h.Run(t, "cat", "/sys/class/net/eth0/address"))
			h.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")
			// Learned from the host's own request, the entry starts STALE;
			// used, it is probed (RFC 4861 §7.3.3) and the answer makes it
			// REACHABLE.
			c.Run(t, "ping", "-c", "1", "-W", "2", ip)
		}
		waitFor(t, 15*time.Second, "both hosts never REACHABLE", func() bool {
			x, okx := neighbor(r, "192.168.46.2")
			y, oky := neighbor(r, "192.168.46.4")
			return okx && oky && x.State == neigh.Reachable && y.State == neigh.Reachable
		})
		// As a user sees it: tungate arp --json.
		out, err := exec.Command(tungateBin, "arp", "--json", "--socket", r.AdminSocket(t)).CombinedOutput()
		var entries []router.NeighborInfo
		if err != nil || json.Unmarshal(out, &entries) != nil {
			t.Fatalf("tungate arp --json (%v):\n%s", err, out)
		}
		for ip, mac := range macs {
			i := slices.IndexFunc(entries, func(n router.NeighborInfo) bool { return n.IP.String() == ip })
			if i < 0 {
				t.Errorf("tungate arp --json lacks %s:\n%s", ip, out)
				continue
			}
			if n := entries[i]; n.MAC.String() != mac || n.Iface != "lan0" || n.State != neigh.Reachable {
				t.Errorf("tungate arp: %+v, want %s REACHABLE on lan0", n, mac)
			}
		}
		waitFor(t, 10*time.Second, "192.168.46.2 never went STALE after reachable = 2s", func() bool {
			n, ok := neighbor(r, "192.168.46.2")
			return ok && n.State == neigh.Stale
		})
	})

	t.Run("a static neighbor is PERMANENT and needs no ARP", func(t *testing.T) {
		n, ok := neighbor(r, "192.168.46.3")
		if !ok || n.State != neigh.Permanent || n.MAC.String() != "02:00:00:00:00:0b" {
			t.Fatalf("static entry %+v", n)
		}
		arp := Capture(t, seg.Netns, "lan0", "arp")
		c.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "192.168.46.3")
		// A control: an address the router must ask for.
		c.Try("ping", "-c", "1", "-W", "1", "192.168.46.77")
		seen := arp.Stop()
		if !strings.Contains(seen, "who-has 192.168.46.77") {
			t.Fatalf("the capture missed the router's ARP request for 192.168.46.77:\n%s", seen)
		}
		if strings.Contains(seen, "who-has 192.168.46.3") {
			t.Errorf("the router asked for the static neighbor 192.168.46.3:\n%s", seen)
		}
		b.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")
	})

	t.Run("an absent next hop: Host Unreachable, queue drops, others go on", func(t *testing.T) {
		before := r.Stats().Neighbors
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		flood := c.Command(ctx, "ping", "-c", "10", "-i", "0.01", "-W", "3", "203.0.113.1")
		flood.Start()
		c.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "192.168.46.2")
		flood.Wait()
		out, err := c.Try("ping", "-c", "1", "-W", "3", "203.0.113.1")
		if err == nil || !strings.Contains(out, "From 198.18.0.8") || !strings.Contains(out, "Destination Host Unreachable") {
			t.Errorf("want Destination Host Unreachable from 198.18.0.8 (%v):\n%s", err, out)
		}
		after := r.Stats().Neighbors
		if after.QueueDrops <= before.QueueDrops || after.Failed <= before.Failed {
			t.Errorf("queue drops %d → %d, failed %d → %d: want both to grow", before.QueueDrops, after.QueueDrops, before.Failed, after.Failed)
		}
	})

	t.Run("SLAAC from the router's advertisements", func(t *testing.T) {
		s := seg.Host("s", nil)
		var addr string
		waitFor(t, 20*time.Second, "host s never configured a fd46::/64 address", func() bool {
			out, _ := s.Try("ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "global")
			addr = out
			return strings.Contains(out, "fd46:") && !strings.Contains(out, "tentative")
		})
		t.Logf("SLAAC: %s", strings.TrimSpace(addr))
		s.Run(t, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", "fd18::1")
	})
}
