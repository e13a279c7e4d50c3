package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/e2e/netns"
	"github.com/tungate/tungate/router"
)

// The demo's topology: a LAN host, a WAN server and two backends of a
// load-balanced service, each a network namespace holding the kernel side
// of one of tungate's TUN devices.
// 198.18.0.0/15 is the benchmarking range (RFC 2544), never routed on the
// Internet: it stands in for a public network and stays inside the
// namespaces.
const demoConfig = `
[router]
admin_socket = ""

[[interface]]
name = "%[1]s"
addresses = ["192.168.46.1/24", "fd46::1/64"]
netns = "%[3]s"
peer = ["192.168.46.2/24", "fd46::2/64"]

[[interface]]
name = "%[2]s"
addresses = ["198.18.0.8/24", "fd18::8/64"]
netns = "%[4]s"
peer = ["198.18.0.1/24", "fd18::1/64"]

[[interface]]
name = "%[5]s"
addresses = ["192.168.47.1/24"]
netns = "%[7]s"
peer = ["192.168.47.11/24"]

[[interface]]
name = "%[6]s"
addresses = ["192.168.48.1/24"]
netns = "%[8]s"
peer = ["192.168.48.12/24"]

# The LAN's IPv4 leaves masqueraded as 198.18.0.8 (a home gateway);
# IPv6 is routed as it is.
[[snat]]
out = "%[2]s"
from = ["192.168.46.0/24"]

# A web service on 198.18.0.100:80, balanced over the two backends.
[[service]]
name = "web"
vip = "198.18.0.100:80"
proto = "tcp"
scheduler = "rr"
forward = "nat"
  [service.health]
  check = "http"
  interval = "1s"
  [[service.backend]]
  address = "192.168.47.11:80"
  [[service.backend]]
  address = "192.168.48.12:80"

# A home gateway's filter: the WAN reaches the service, and opens nothing
# else inward; it hears at once that it may not.
[filter]
[[filter.rule]]
in = "%[2]s"
to = ["192.168.47.0/24", "192.168.48.0/24"]
proto = "tcp"
dport = "80"
action = "accept"
[[filter.rule]]
in = "%[2]s"
state = ["new", "invalid"]
action = "reject"
`

func cmdDemo(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageError{"demo takes no arguments"}
	}
	if os.Geteuid() != 0 {
		return errors.New("needs root: it creates network namespaces and TUN devices (try: sudo tungate demo)")
	}
	for _, tool := range []string{"ip", "ping", "traceroute"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s on PATH (Debian: apt-get install iproute2 iputils-ping traceroute)", tool)
		}
	}
	id := os.Getpid()
	lanNS, wanNS := fmt.Sprintf("tgdemo-lan-%d", id), fmt.Sprintf("tgdemo-wan-%d", id)
	backendNS := []string{fmt.Sprintf("tgdemo-b1-%d", id), fmt.Sprintf("tgdemo-b2-%d", id)}
	for _, ns := range append([]string{lanNS, wanNS}, backendNS...) {
		if err := netns.Add(ns); err != nil {
			return err
		}
		defer netns.Delete(ns)
	}
	cfg, err := config.Parse("demo.toml", fmt.Appendf(nil, demoConfig, fmt.Sprintf("tgd%dl", id), fmt.Sprintf("tgd%dw", id), lanNS, wanNS,
		fmt.Sprintf("tgd%db1", id), fmt.Sprintf("tgd%db2", id), backendNS[0], backendNS[1]))
	if err != nil {
		return err
	}
	r, err := router.New(cfg, router.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return err
	}
	defer r.Close()
	r.Start()

	ln, err := netns.Listen(wanNS, "tcp", "198.18.0.1:80")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "hello from the WAN server, %s\n", req.RemoteAddr)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	for i, ns := range backendNS {
		name := fmt.Sprintf("backend %d", i+1)
		ln, err := netns.Listen(ns, "tcp", "0.0.0.0:80")
		if err != nil {
			return err
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprintln(w, name)
		}), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}

	fmt.Fprintf(stdout, "tungate demo: LAN host (netns %s) 192.168.46.2 -- tungate -- WAN server (netns %s) 198.18.0.1\n", lanNS, wanNS)
	fmt.Fprintf(stdout, "              service 198.18.0.100:80 on tungate -- backends (netns %s, %s) 192.168.47.11, 192.168.48.12\n", backendNS[0], backendNS[1])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	steps := []struct {
		title string
		run   func() (string, error)
	}{
		{"ping 198.18.0.1 from the LAN host", inNetns(ctx, lanNS, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.1")},
		{"ping fd18::1 from the LAN host", inNetns(ctx, lanNS, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", "fd18::1")},
		{"ping the router's WAN address 198.18.0.8 from the LAN host", inNetns(ctx, lanNS, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.8")},
		{"HTTP GET http://198.18.0.1/ from the LAN host (the server sees tungate's 198.18.0.8)", func() (string, error) { return httpGet(ctx, lanNS, "http://198.18.0.1/") }},
		{"traceroute -n 198.18.0.1 from the LAN host (tungate is hop 1)", inNetns(ctx, lanNS, "traceroute", "-n", "-q", "1", "-w", "2", "198.18.0.1")},
		{"ping 192.168.46.2 (the LAN host) from the WAN server: the filter rejects it", func() (string, error) {
			out, err := inNetns(ctx, wanNS, "ping", "-c", "1", "-W", "2", "192.168.46.2")()
			if err == nil {
				return out, errors.New("the WAN reached the LAN host through the filter")
			}
			return out, nil
		}},
		{"4 x HTTP GET http://198.18.0.100/ (the service) from the WAN server: round robin over the backends", func() (string, error) {
			var out strings.Builder
			for range 4 {
				body, err := httpGet(ctx, wanNS, "http://198.18.0.100/")
				out.WriteString(body)
				if err != nil {
					return out.String(), err
				}
			}
			return out.String(), nil
		}},
	}
	var failed []string
	for _, s := range steps {
		fmt.Fprintf(stdout, "\n==> %s\n", s.title)
		out, err := s.run()
		fmt.Fprint(stdout, out)
		if err != nil {
			fmt.Fprintf(stdout, "FAILED: %v\n", err)
			failed = append(failed, s.title)
		}
	}
	fmt.Fprintln(stdout, "\n==> tungate routes")
	printRoutes(stdout, r.Routes())
	fmt.Fprintln(stdout, "\n==> tungate nat")
	printNAT(stdout, r.Conntrack())
	fmt.Fprintln(stdout, "\n==> tungate lb")
	printServices(stdout, r.Services(), false)
	fmt.Fprintln(stdout, "\n==> tungate stats")
	printStats(stdout, r.Stats())
	if len(failed) > 0 {
		return fmt.Errorf("%d step(s) failed: %s", len(failed), strings.Join(failed, "; "))
	}
	fmt.Fprintln(stdout, "\ndemo ok: namespaces and devices removed")
	return nil
}

// inNetns runs argv inside the named namespace and returns its output.
func inNetns(ctx context.Context, ns string, argv ...string) func() (string, error) {
	return func() (string, error) {
		out, err := netns.Command(ctx, ns, argv...).CombinedOutput()
		return string(out), err
	}
}

// httpGet fetches url with a connection made inside the named namespace.
func httpGet(ctx context.Context, ns, url string) (string, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return netns.Dial(ctx, ns, network, addr)
		},
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return fmt.Sprintf("%s\n%s", resp.Status, body), err
}
