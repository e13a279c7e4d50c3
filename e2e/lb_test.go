package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/e2e/netns"
	"github.com/tungate/tungate/router/admin"
)

// End-to-end tests of the load balancer: a client on the WAN side reaches
// the service 198.18.0.100:80 (on wan0's link), and two backends on an
// Ethernet segment behind lan0 (a TAP interface) answer with their names,
// for each LVS forwarding method.

const lbVIP = "198.18.0.100"

// lbConfigTOML is the router of the load-balancer tests: the service with
// method forward over the backends' addresses, and health as given.
func lbConfigTOML(forward, scheduler string, health string, backends ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `
[router]
admin_socket = ""

[[interface]]
name = "lan0"
kind = "tap"
addresses = ["192.168.46.1/24"]

[[interface]]
name = "wan0"
addresses = ["198.18.0.8/24"]

[[service]]
name = "web"
vip = "%s:80"
proto = "tcp"
scheduler = %q
forward = %q
  [service.health]
  %s
`, lbVIP, scheduler, forward, health)
	for _, addr := range backends {
		fmt.Fprintf(&b, "  [[service.backend]]\n  address = %q\n", addr)
	}
	return b.String()
}

// lbBackend is a backend host with an HTTP server that answers its name
// on / and, on /slow, its name and then 64 KiB every 100 ms, 30 times.
type lbBackend struct {
	*Host
	name string
	addr string // where the server listens
	srv  *http.Server
}

func (b *lbBackend) serve(t *testing.T) {
	t.Helper()
	ln, err := netns.Listen(b.Netns, "tcp4", b.addr)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, b.name) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, b.name)
		chunk := make([]byte, 64<<10)
		for range 30 {
			w.Write(chunk)
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	b.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
}

// lbTopology builds the client, the router and the two backends, and
// prepares the backends for forward: the VIP on their loopback for dr
// and tunnel, ARP kept off it for dr, a userspace IP-in-IP endpoint for
// tunnel. Backends listen on port (the VIP's, 80, for dr and tunnel).
func lbTopology(t *testing.T, forward, health string, port int) (*Router, *Host, []*lbBackend) {
	topo := New(t)
	addrs := []string{fmt.Sprintf("192.168.46.11:%d", port), fmt.Sprintf("192.168.46.12:%d", port)}
	r := topo.Router(lbConfigTOML(forward, "rr", health, addrs...))
	client := topo.Host("client", r.Interface("wan0"), "198.18.0.1/24")
	seg := topo.Segment("seg", r.Interface("lan0"))
	var backends []*lbBackend
	for i, name := range []string{"b1", "b2"} {
		b := &lbBackend{Host: seg.Host(name, nil, fmt.Sprintf("192.168.46.%d/24", 11+i)), name: name, addr: fmt.Sprintf("0.0.0.0:%d", port)}
		if forward != config.ForwardNAT {
			b.Run(t, "ip", "addr", "add", lbVIP+"/32", "dev", "lo")
		}
		switch forward {
		case config.ForwardDR:
			// The LVS-DR recipe: the backend must not answer ARP for the
			// VIP it holds, nor announce it.
			b.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
		case config.ForwardTunnel:
			b.DecapsulateIPIP(t)
		}
		b.serve(t)
		backends = append(backends, b)
	}
	return r, client, backends
}

// curlVIP asks the VIP n times, each a new connection, and counts the
// names that answered.
func curlVIP(t *testing.T, client *Host, n int) map[string]int {
	t.Helper()
	seen := map[string]int{}
	for range n {
		out := client.Run(t, "curl", "-sS", "--max-time", "5", "http://"+lbVIP+"/")
		seen[strings.TrimSpace(out)]++
	}
	return seen
}

// TestLBSpreads: for each forwarding method, six connections to the VIP
// are spread three and three over the two backends (rr), and `tungate
// lb` counts them against each backend.
func TestLBSpreads(t *testing.T) {
	for _, tc := range []struct {
		forward string
		port    int
	}{{config.ForwardNAT, 8080}, {config.ForwardDR, 80}, {config.ForwardTunnel, 80}} {
		t.Run(tc.forward, func(t *testing.T) {
			t.Parallel()
			r, client, _ := lbTopology(t, tc.forward, `check = "tcp"`, tc.port)
			if got := curlVIP(t, client, 6); got["b1"] != 3 || got["b2"] != 3 {
				t.Errorf("6 connections went %v, want 3 to each backend", got)
			}
			out, err := exec.Command(tungateBin, "lb", "--socket", r.AdminSocket(t)).CombinedOutput()
			if err != nil {
				t.Fatalf("tungate lb: %v\n%s", err, out)
			}
			t.Logf("tungate lb:\n%s", out)
			svc := r.Services()[0]
			for _, b := range svc.Backends {
				if b.Conns != 3 || b.InPkts == 0 || b.Health != "up" {
					t.Errorf("backend %s: %+v; want 3 connections, packets in, up", b.Address, b)
				}
			}
			method := map[string]string{"nat": "Masq", "dr": "Route", "tunnel": "Tunnel"}[tc.forward]
			if !strings.Contains(string(out), "192.168.46.11:") || !strings.Contains(string(out), method) {
				t.Errorf("tungate lb does not show the backend with method %s:\n%s", method, out)
			}
		})
	}
}

// backendHealth is what the router says of a backend's health.
func backendHealth(r *Router, addr string) string {
	for _, b := range r.Services()[0].Backends {
		if b.Address.String() == addr {
			return b.Health
		}
	}
	return "absent"
}

// waitHealth waits, at most limit, for the backend's health to become
// want, and returns how long it took.
func waitHealth(t *testing.T, r *Router, addr, want string, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for backendHealth(r, addr) != want {
		if time.Since(start) > limit {
			t.Fatalf("backend %s still %s after %v, want %s", addr, backendHealth(r, addr), limit, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// TestLBHealth: a backend whose server stops is marked down within
// interval × fall and gets no new connection; once it serves again it is
// up after rise probes and gets its share again.
func TestLBHealth(t *testing.T) {
	t.Parallel()
	const health = `check = "http"
  path = "/"
  interval = "200ms"
  timeout = "150ms"
  rise = 2
  fall = 3`
	// The checks start by a reload once the backends exist: probes of
	// hosts not made yet would fail and take them down.
	r, client, backends := lbTopology(t, config.ForwardNAT, `check = "none"`, 8080)
	cfg, err := config.Parse("health.toml", []byte(lbConfigTOML(config.ForwardNAT, "rr", health, "192.168.46.11:8080", "192.168.46.12:8080")))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	b1 := backends[0]
	if got := curlVIP(t, client, 2); got["b1"] != 1 || got["b2"] != 1 {
		t.Fatalf("before any failure, 2 connections went %v", got)
	}

	b1.srv.Close()
	took := waitHealth(t, r, "192.168.46.11:8080", "down", 5*time.Second)
	t.Logf("down after %v (interval 200ms x fall 3)", took)
	if took > 600*time.Millisecond+time.Second {
		t.Errorf("down after %v, want about interval x fall = 600ms", took)
	}
	if got := curlVIP(t, client, 4); got["b2"] != 4 {
		t.Errorf("with b1 down, 4 connections went %v, want all to b2", got)
	}

	b1.serve(t)
	took = waitHealth(t, r, "192.168.46.11:8080", "up", 5*time.Second)
	t.Logf("up again after %v (rise 2)", took)
	if got := curlVIP(t, client, 4); got["b1"] != 2 || got["b2"] != 2 {
		t.Errorf("with b1 up again, 4 connections went %v, want 2 and 2", got)
	}
}

// slowGet opens a connection from the client to the VIP, asks for /slow
// and returns the connection, the reader after the status line and
// headers, and the name of the backend that answers.
func slowGet(t *testing.T, client *Host) (net.Conn, *bufio.Reader, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := netns.Dial(ctx, client.Netns, "tcp4", lbVIP+":80")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(c, "GET /slow HTTP/1.1\r\nHost: %s\r\n\r\n", lbVIP)
	rd := bufio.NewReader(c)
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		t.Fatal(err)
	}
	body := bufio.NewReader(resp.Body)
	name, err := body.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return c, body, strings.TrimSpace(name)
}

// TestLBDrain: weight 0, set through the admin API, takes a backend out
// of new connections while its long transfer runs to completion.
func TestLBDrain(t *testing.T) {
	t.Parallel()
	r, client, _ := lbTopology(t, config.ForwardNAT, `check = "none"`, 8080)
	_, body, name := slowGet(t, client)
	addr := map[string]string{"b1": "192.168.46.11:8080", "b2": "192.168.46.12:8080"}[name]
	api := admin.NewClient(r.AdminSocket(t))
	if err := api.Post("/services/web/backends/"+addr+"/weight", admin.Weight{Weight: 0}, nil); err != nil {
		t.Fatal(err)
	}
	if err := api.Post("/services/web/backends/192.168.46.99:8080/weight", admin.Weight{Weight: 0}, nil); err == nil ||
		!strings.Contains(err.Error(), "no backend 192.168.46.99:8080") {
		t.Errorf("weight of a backend that does not exist: %v", err)
	}
	if got := curlVIP(t, client, 4); got[name] != 0 {
		t.Errorf("after draining %s, 4 connections went %v", name, got)
	}
	n, err := io.Copy(io.Discard, body)
	if err != nil || n != 30*64<<10 {
		t.Errorf("the drained backend's transfer ended after %d bytes: %v", n, err)
	}
}

// TestLBBackendRemovedByReload: when a reload removes a backend, its open
// connection sees a reset at its next packet instead of hanging.
func TestLBBackendRemovedByReload(t *testing.T) {
	t.Parallel()
	r, client, _ := lbTopology(t, config.ForwardNAT, `check = "none"`, 8080)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := netns.Dial(ctx, client.Netns, "tcp4", lbVIP+":80")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(c)
	ask := func() (string, error) {
		if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", lbVIP); err != nil {
			return "", err
		}
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), err
	}
	name, err := ask()
	if err != nil {
		t.Fatal(err)
	}
	keep := map[string]string{"b1": "192.168.46.12:8080", "b2": "192.168.46.11:8080"}[name]
	cfg, err := config.Parse("reload.toml", []byte(lbConfigTOML(config.ForwardNAT, "rr", `check = "none"`, keep)))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = ask()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("after %s was removed, the next request on its connection got %v, want a reset", name, err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the reset took %v", took)
	}
	if n := r.Stats().Drops["lb_backend_gone"]; n == 0 {
		t.Error("lb_backend_gone not counted")
	}
	if got := curlVIP(t, client, 2); got[name] != 0 {
		t.Errorf("new connections after the reload went %v", got)
	}
}
