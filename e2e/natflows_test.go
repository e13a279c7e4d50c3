package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tungate/tungate/e2e/netns"
)

// End-to-end tests of tungate's NAT with real traffic: masquerade, the
// RFC 4787 mapping behaviours told apart, hairpinning, port forwards,
// ICMP errors translated from a hop beyond, and a full conntrack table.
// RFC-CHECKLIST.md names the requirements (U1, U10, T8, I4, I8, C11).

// The addresses the tests use: tungate's WAN address, and the WAN hosts.
var (
	natWAN = netip.MustParseAddr("198.18.0.8")
	natS1  = netip.MustParseAddr("198.18.0.1")
	natS2  = netip.MustParseAddr("198.18.0.2")
)

// natSegmentConfig is natConfig with the LAN on a TAP interface, so that
// several LAN hosts can share it through a Segment, and extra appended
// after the [[snat]] keys (which may end the table and start others).
func natSegmentConfig(snat string) string {
	return strings.Replace(natConfig(snat), `name = "lan0"`, "name = \"lan0\"\nkind = \"tap\"", 1)
}

// TestNATFlowsMasqueradeTCP: a LAN host's TCP connections leave with the
// router's WAN address (the server never sees 192.168.46.x), and a bulk
// transfer runs through the translation.
func TestNATFlowsMasqueradeTCP(t *testing.T) {
	t.Parallel()
	topo := New(t)
	r := topo.Router(natConfig(""))
	lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
	wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")

	url := serveHTTP(t, wan.Netns, "198.18.0.1:8080", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "seen %s\n", req.RemoteAddr)
	}))
	out := lan.Run(t, "curl", "-sS", "--max-time", "10", "-w", "local %{local_ip}:%{local_port}\n", url)
	m := regexp.MustCompile(`^seen (\S+)\nlocal (\S+)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("curl output %q", out)
	}
	seen, err1 := netip.ParseAddrPort(m[1])
	local, err2 := netip.ParseAddrPort(m[2])
	if err1 != nil || err2 != nil {
		t.Fatalf("curl output %q", out)
	}
	if seen.Addr() != natWAN {
		t.Errorf("the WAN server saw the connection from %s, want the router's WAN address %s (curl was at %s)", seen, natWAN, local)
	}
	// port_preservation is on by default and nothing else holds the port.
	if seen.Port() != local.Port() {
		t.Errorf("the WAN server saw port %d, curl used %d: the port was not preserved", seen.Port(), local.Port())
	}

	wan.Start(t, "iperf3", "-s", "-B", "198.18.0.1")
	waitListening(t, wan, 5201)
	out = lan.Run(t, "iperf3", "-c", "198.18.0.1", "-t", "3", "--connect-timeout", "3000")
	rate := iperfRate(t, out)
	if rate <= 0 {
		t.Errorf("iperf3 through masquerade moved nothing:\n%s", out)
	}
	t.Logf("iperf3 TCP LAN->WAN through masquerade: %.0f Mbit/s", rate/1e6)
}

// TestNATFlowsMappingBehaviours tells the three RFC 4787 mapping
// behaviours apart, which stun cannot (it calls both endpoint-dependent
// ones "Dependent Mapping"): one LAN socket sends to S1:a, S1:b and S2:a,
// and each server reports the external ip:port it saw (U1).
func TestNATFlowsMappingBehaviours(t *testing.T) {
	tests := []struct {
		mapping string
		// whether S1:b and S2:a saw the port S1:a saw
		sameS1b, sameS2a bool
	}{
		{"endpoint-independent", true, true},
		{"address-dependent", true, false},
		{"address-and-port-dependent", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.mapping, func(t *testing.T) {
			t.Parallel()
			topo := New(t)
			r := topo.Router(natConfig(fmt.Sprintf("mapping = %q\n", tc.mapping)))
			lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
			wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24", "198.18.0.2/24")
			s1a, s1b, s2a := netip.AddrPortFrom(natS1, 3478), netip.AddrPortFrom(natS1, 3479), netip.AddrPortFrom(natS2, 3478)
			for _, s := range []netip.AddrPort{s1a, s1b, s2a} {
				udpMirror(t, wan.Netns, s.String())
			}
			c := udpListen(t, lan.Netns, "192.168.46.2:40000")
			seen := map[netip.AddrPort]netip.AddrPort{}
			for _, s := range []netip.AddrPort{s1a, s1b, s2a} {
				ext, err := udpAsk(c, s)
				if err != nil {
					t.Fatalf("from 192.168.46.2:40000 to %s: %v", s, err)
				}
				if ext.Addr() != natWAN {
					t.Errorf("%s saw %s, want the router's address %s", s, ext, natWAN)
				}
				seen[s] = ext
			}
			t.Logf("external ports: S1:a %d, S1:b %d, S2:a %d", seen[s1a].Port(), seen[s1b].Port(), seen[s2a].Port())
			if got := seen[s1b] == seen[s1a]; got != tc.sameS1b {
				t.Errorf("S1:a saw %s, S1:b saw %s: same mapping %v, want %v", seen[s1a], seen[s1b], got, tc.sameS1b)
			}
			if got := seen[s2a] == seen[s1a]; got != tc.sameS2a {
				t.Errorf("S1:a saw %s, S2:a saw %s: same mapping %v, want %v", seen[s1a], seen[s2a], got, tc.sameS2a)
			}
			if !tc.sameS1b && !tc.sameS2a && seen[s1b] == seen[s2a] {
				t.Errorf("S1:b and S2:a both saw %s; address-and-port-dependent mapping must give each its own", seen[s1b])
			}
			// The first mapping could keep the inside port: it does.
			if seen[s1a].Port() != 40000 {
				t.Errorf("the first mapping is %s, want port 40000 preserved", seen[s1a])
			}
		})
	}
}

// TestNATFlowsHairpin: LAN host B reaches LAN host A through A's external
// endpoint, and A sees B's external endpoint, over UDP (RFC 4787 REQ-9,
// U10) and TCP (RFC 5382 REQ-8, T8). With hairpin = false B's packets
// never reach A.
func TestNATFlowsHairpin(t *testing.T) {
	for _, hairpin := range []bool{true, false} {
		t.Run(fmt.Sprintf("hairpin=%v", hairpin), func(t *testing.T) {
			t.Parallel()
			topo := New(t)
			r := topo.Router(natSegmentConfig(fmt.Sprintf("hairpin = %v\n", hairpin)))
			seg := topo.Segment("seg", r.Interface("lan0"))
			a := seg.Host("a", nil, "192.168.46.2/24")
			b := seg.Host("b", nil, "192.168.46.3/24")
			wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")
			udpMirror(t, wan.Netns, "198.18.0.1:3478")
			tcpMirror(t, wan.Netns, "198.18.0.1:3478")
			mirror := netip.AddrPortFrom(natS1, 3478)

			t.Run("udp", func(t *testing.T) {
				ca := udpListen(t, a.Netns, "192.168.46.2:41000")
				cb := udpListen(t, b.Netns, "192.168.46.3:42000")
				extA, err := udpAsk(ca, mirror)
				if err != nil {
					t.Fatalf("A's mapping: %v", err)
				}
				extB, err := udpAsk(cb, mirror)
				if err != nil {
					t.Fatalf("B's mapping: %v", err)
				}
				if extA.Addr() != natWAN || extB.Addr() != natWAN {
					t.Fatalf("external endpoints A %s, B %s: want them on %s", extA, extB, natWAN)
				}
				nfBefore := drops(r, "nat_filtered")
				var msg string
				var from netip.AddrPort
				for try := 0; try < 3; try++ {
					if _, err := cb.WriteToUDPAddrPort([]byte("hello A"), extA); err != nil {
						t.Fatal(err)
					}
					if msg, from, err = udpRecv(ca, time.Second); err == nil {
						break
					}
				}
				if !hairpin {
					if err == nil {
						t.Fatalf("hairpin = false, yet A got %q from %s", msg, from)
					}
					if n := drops(r, "nat_filtered") - nfBefore; n < 3 {
						t.Errorf("hairpin = false: %d nat_filtered drops for B's 3 datagrams, want 3", n)
					}
					return
				}
				if err != nil {
					t.Fatalf("B (%s) sent to A's external %s 3 times; A got nothing: %v", extB, extA, err)
				}
				if msg != "hello A" || from != extB {
					t.Fatalf("A got %q from %s, want %q from B's external endpoint %s", msg, from, "hello A", extB)
				}
				// And A's answer to what it saw reaches B from A's external endpoint.
				if _, err := ca.WriteToUDPAddrPort([]byte("hello B"), from); err != nil {
					t.Fatal(err)
				}
				msg, from, err = udpRecv(cb, 2*time.Second)
				if err != nil || msg != "hello B" || from != extA {
					t.Fatalf("B got %q from %s (%v), want %q from A's external endpoint %s", msg, from, err, "hello B", extA)
				}
			})

			t.Run("tcp", func(t *testing.T) {
				// A goes out from port 43000, which opens its mapping, and
				// listens on the same port (as TCP hole punching does).
				extA := tcpAsk(t, a.Netns, "192.168.46.2:43000", mirror.String())
				ln := tcpListenOn(t, a.Netns, "192.168.46.2:43000")
				extB := tcpAsk(t, b.Netns, "192.168.46.3:44000", mirror.String())
				if extA.Addr() != natWAN || extB.Addr() != natWAN {
					t.Fatalf("external endpoints A %s, B %s: want them on %s", extA, extB, natWAN)
				}
				accepted := make(chan net.Conn, 1)
				go func() {
					ln.SetDeadline(time.Now().Add(5 * time.Second))
					c, err := ln.Accept()
					if err != nil {
						close(accepted)
						return
					}
					fmt.Fprintln(c, "hello B")
					accepted <- c
				}()
				cb, err := tcpDialFrom(t, b.Netns, "192.168.46.3:44000", extA.String(), 3*time.Second)
				if err != nil {
					ln.SetDeadline(time.Now().Add(200 * time.Millisecond)) // whatever was coming has come
				}
				c, ok := <-accepted
				if ok {
					defer c.Close()
				}
				if !hairpin {
					if err == nil || ok {
						t.Fatalf("hairpin = false, yet B connected to A's external %s (dial error %v, A accepted %v)", extA, err, ok)
					}
					return
				}
				if err != nil {
					t.Fatalf("B connecting from %s to A's external %s: %v", extB, extA, err)
				}
				if !ok {
					t.Fatalf("B connected to %s but A's listener accepted nothing", extA)
				}
				if got := c.RemoteAddr().(*net.TCPAddr).AddrPort(); netip.AddrPortFrom(got.Addr().Unmap(), got.Port()) != extB {
					t.Errorf("A sees the hairpinned connection from %s, want B's external endpoint %s", got, extB)
				}
				if got := cb.RemoteAddr().String(); got != extA.String() {
					t.Errorf("B's connection is to %s, want %s", got, extA)
				}
				cb.SetReadDeadline(time.Now().Add(3 * time.Second))
				buf := make([]byte, 64)
				n, err := cb.Read(buf)
				if err != nil || string(buf[:n]) != "hello B\n" {
					t.Errorf("B read %q (%v) from A, want %q", buf[:n], err, "hello B\n")
				}
			})
		})
	}
}

// TestNATFlowsPortForward: a [[forward]] brings a WAN host to a LAN web
// server, which sees the WAN host's own address; a LAN host reaches the
// same server through the public address (hairpin), and the server sees
// the router's external address, so its answers go back through it.
func TestNATFlowsPortForward(t *testing.T) {
	t.Parallel()
	topo := New(t)
	r := topo.Router(natSegmentConfig(`
[[forward]]
in = "wan0"
proto = "tcp"
listen = "198.18.0.8:8080"
to = "192.168.46.10:80"
`))
	seg := topo.Segment("seg", r.Interface("lan0"))
	srv := seg.Host("srv", nil, "192.168.46.10/24")
	client := seg.Host("cli", nil, "192.168.46.2/24")
	wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")
	serveHTTP(t, srv.Netns, "192.168.46.10:80", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fmt.Fprintf(w, "seen %s\n", req.RemoteAddr)
	}))
	const url = "http://198.18.0.8:8080/"

	// The server has sent nothing yet: the router must resolve its
	// address (ARP) while the first SYN of the forwarded flow waits.
	t.Run("from the WAN, first packet waits for ARP", func(t *testing.T) {
		out, err := wan.Try("curl", "-sS", "--max-time", "5", url)
		if err != nil || !strings.HasPrefix(out, "seen 198.18.0.1:") {
			t.Errorf("curl %s from the WAN host, the LAN server not yet in the router's ARP cache: want the server to see 198.18.0.1, got (%v) %q\n"+
				"router drops: %v", url, err, out, r.Stats().Drops)
		}
	})
	t.Run("from the WAN", func(t *testing.T) {
		srv.Run(t, "ping", "-c", "1", "-W", "2", "192.168.46.1") // the router knows the server's MAC now
		out, err := wan.Try("curl", "-sS", "--max-time", "5", url)
		if err != nil || !strings.HasPrefix(out, "seen 198.18.0.1:") {
			t.Errorf("curl %s from the WAN host: want the LAN server to see 198.18.0.1, got (%v) %q\n"+
				"router drops: %v", url, err, out, r.Stats().Drops)
		}
	})
	t.Run("from the LAN through the public address", func(t *testing.T) {
		out, err := client.Try("curl", "-sS", "--max-time", "5", url)
		if err != nil || !strings.HasPrefix(out, "seen 198.18.0.8:") {
			t.Errorf("curl %s from LAN host 192.168.46.2: want the LAN server to see the router's 198.18.0.8 (hairpin), got (%v) %q\n"+
				"router drops: %v", url, err, out, r.Stats().Drops)
		}
	})
}

// TestNATFlowsTracerouteBeyond: traceroute from the LAN through tungate
// and a kernel router to a far host. The kernel router's Time Exceeded
// goes to tungate's WAN address and must come back to the LAN host with
// the quoted packet as the host sent it (RFC 5508 REQ-4, I4), or
// traceroute cannot match it to its probe.
func TestNATFlowsTracerouteBeyond(t *testing.T) {
	t.Parallel()
	topo := New(t)
	r := topo.Router(natConfig(`
[[route]]
to = "203.0.113.0/24"
via = "198.18.0.1"
`))
	lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
	krouter := topo.Host("krouter", r.Interface("wan0"), "198.18.0.1/24")
	far := &Host{Netns: topo.Netns("far")}
	krouter.Run(t, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	// The kernel's ICMP rate limits are per namespace; these two are the
	// test's own, and their errors are what it looks at.
	krouter.Run(t, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	far.Run(t, "sysctl", "-qw", "net.ipv4.icmp_ratelimit=0")
	krouter.Run(t, "ip", "link", "add", "far0", "type", "veth", "peer", "name", "eth0", "netns", far.Netns)
	krouter.Run(t, "ip", "addr", "add", "203.0.113.1/24", "dev", "far0")
	krouter.Run(t, "ip", "link", "set", "far0", "up")
	far.Run(t, "ip", "addr", "add", "203.0.113.2/24", "dev", "eth0")
	far.Run(t, "ip", "link", "set", "eth0", "up")
	far.Run(t, "ip", "route", "add", "default", "via", "203.0.113.1")
	// A control, not through tungate: the kernel router reaches the far host.
	krouter.Run(t, "ping", "-c", "1", "-W", "2", "203.0.113.2")

	for _, method := range []struct{ name, flag string }{{"udp", ""}, {"icmp", "-I"}} {
		t.Run(method.name, func(t *testing.T) {
			// -w 3,0,0: wait up to 3 s for each probe, not just a multiple
			// of a nearer hop's round trip, which a loaded machine exceeds.
			argv := []string{"traceroute", "-n", "-q", "1", "-w", "3,0,0", "-m", "5"}
			if method.flag != "" {
				argv = append(argv, method.flag)
			}
			out := lan.Run(t, append(argv, "203.0.113.2")...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			want := []string{"192.168.46.1", "198.18.0.1", "203.0.113.2"}
			ok := len(lines) == 1+len(want)
			for i := 0; ok && i < len(want); i++ {
				ok = strings.HasPrefix(strings.TrimSpace(lines[1+i]), strconv.Itoa(i+1)+"  "+want[i]+" ")
			}
			if !ok {
				t.Errorf("traceroute %s: want hops 1 %s (tungate), 2 %s (the kernel router, its Time Exceeded translated back), 3 %s:\n%s",
					method.flag, want[0], want[1], want[2], out)
			}
		})
	}
}

// TestNATFlowsConntrackFull: with [conntrack] max = 64, a flood of new
// flows from the LAN fills the table; the flows beyond it are refused,
// counted, and answered with ICMP Destination Unreachable code 13 (RFC
// 5508 REQ-8, I8), while a TCP transfer that was running before the flood
// goes on to the end: live entries are never evicted (RFC 6888 REQ-11).
func TestNATFlowsConntrackFull(t *testing.T) {
	t.Parallel()
	const ctMax, flood = 64, 200
	topo := New(t)
	r := topo.Router(natConfig(fmt.Sprintf("\n[conntrack]\nmax = %d\n", ctMax)))
	lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
	wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")
	wan.Start(t, "iperf3", "-s", "-B", "198.18.0.1")
	waitListening(t, wan, 5201)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	iperf := lan.Command(ctx, "iperf3", "-c", "198.18.0.1", "-t", "5", "-i", "1", "--forceflush", "--connect-timeout", "3000")
	var iperfOut syncBuffer
	iperf.Stdout, iperf.Stderr = &iperfOut, &iperfOut
	if err := iperf.Start(); err != nil {
		t.Fatal(err)
	}
	iperfDone := make(chan error, 1)
	go func() { iperfDone <- iperf.Wait() }()
	// The transfer is under way once the first interval is reported.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(iperfOut.String(), "0.00-1.0"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("iperf3 never reported its first second:\n%s", iperfOut.String())
		}
	}

	capture := Capture(t, lan.Netns, "lan0", "icmp")
	before := drops(r, "conntrack_full")
	c := udpListen(t, lan.Netns, "192.168.46.2:45000")
	for i := range flood {
		if _, err := c.WriteToUDPAddrPort([]byte("flood"), netip.AddrPortFrom(natS1, uint16(20000+i))); err != nil {
			t.Fatal(err)
		}
	}
	// Counters are added once per batch; give the last batch a moment.
	for deadline := time.Now().Add(2 * time.Second); drops(r, "conntrack_full")-before < flood-ctMax && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	refused := drops(r, "conntrack_full") - before
	t.Logf("%d flows refused of %d sent with max = %d", refused, flood, ctMax)

	// The table is full: a new ICMP echo flow is refused with 3/13.
	time.Sleep(100 * time.Millisecond) // let the ICMP rate limiter refill after the flood
	out, _ := lan.Try("ping", "-c", "1", "-W", "2", "198.18.0.1")
	if !strings.Contains(out, "From 192.168.46.1") || !strings.Contains(out, "Packet filtered") {
		t.Errorf("ping with the table full: want Packet filtered (ICMP 3/13) from 192.168.46.1, got:\n%s", out)
	}
	// And a new UDP flow: a connected socket learns of the 3/13 as
	// EHOSTUNREACH.
	var probe net.Conn
	err := netns.Do(lan.Netns, func() (err error) {
		probe, err = net.Dial("udp4", "198.18.0.1:30000")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	probe.Write([]byte("probe"))
	probe.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := probe.Read(make([]byte, 64)); !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("a new UDP flow with the table full: read gave %v, want EHOSTUNREACH from ICMP 3/13", err)
	}
	seen := capture.Stop()
	if n := strings.Count(seen, "192.168.46.1 > 192.168.46.2: ICMP host 198.18.0.1 unreachable - admin prohibited filter"); n == 0 {
		t.Errorf("no ICMP 3/13 from the router to the LAN host in the capture:\n%s", seen)
	}
	if refused < flood-ctMax {
		t.Errorf("conntrack_full counted %d refused flows, want at least %d of the %d sent past max = %d", refused, flood-ctMax, flood, ctMax)
	}

	select {
	case err := <-iperfDone:
		if err != nil {
			t.Fatalf("iperf3 started before the flood failed: %v\n%s", err, iperfOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("iperf3 started before the flood did not finish:\n%s", iperfOut.String())
	}
	out = iperfOut.String()
	// Every one-second interval moved data: the flood stalled nothing.
	intervals := regexp.MustCompile(`\]\s+(\d+\.\d+)-(\d+\.\d+)\s+sec\s+([\d.]+) ([KMG]?)Bytes`).FindAllStringSubmatch(out, -1)
	if len(intervals) < 5 {
		t.Fatalf("iperf3 printed %d intervals, want 5 and a summary:\n%s", len(intervals), out)
	}
	for _, iv := range intervals {
		if v, _ := strconv.ParseFloat(iv[3], 64); v == 0 {
			t.Errorf("iperf3 moved nothing in %s-%s s: the established flow stalled:\n%s", iv[1], iv[2], out)
		}
	}
	t.Logf("iperf3 through the flood: %.0f Mbit/s", iperfRate(t, out)/1e6)
}
