package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tungate/tungate/e2e/netns"
)

// Helpers for natflows_test.go: sockets opened inside a host's namespace
// that report the address they see their peer at, which is what a NAT
// test observes.

// udpListen opens a UDP socket on addr inside the namespace, closed when
// the test ends.
func udpListen(t *testing.T, ns, addr string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	err := netns.Do(ns, func() (err error) {
		c, err = net.ListenPacket("udp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("udp %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.UDPConn)
}

// udpMirror answers every datagram to addr, inside the namespace, with
// the source ip:port it came from, as text, until the test ends.
func udpMirror(t *testing.T, ns, addr string) {
	t.Helper()
	c := udpListen(t, ns, addr)
	go func() {
		buf := make([]byte, 1500)
		for {
			_, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed
			}
			c.WriteToUDPAddrPort([]byte(from.String()), from)
		}
	}()
}

// udpAsk sends a datagram from c to a udpMirror at to and returns the
// source the mirror saw: c's external endpoint as to sees it. It tries
// three times, a second each.
func udpAsk(c *net.UDPConn, to netip.AddrPort) (netip.AddrPort, error) {
	buf := make([]byte, 1500)
	for try := 0; try < 3; try++ {
		if _, err := c.WriteToUDPAddrPort([]byte("who am I"), to); err != nil {
			return netip.AddrPort{}, err
		}
		c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				break // timed out: send again
			}
			if from.Addr().Unmap() != to.Addr() || from.Port() != to.Port() {
				continue
			}
			seen, err := netip.ParseAddrPort(string(buf[:n]))
			if err != nil {
				return netip.AddrPort{}, fmt.Errorf("mirror %s answered %q", to, buf[:n])
			}
			return seen, nil
		}
	}
	return netip.AddrPort{}, fmt.Errorf("no answer from %s after 3 tries", to)
}

// udpRecv waits up to d for a datagram on c and returns its payload and
// source.
func udpRecv(c *net.UDPConn, d time.Duration) (string, netip.AddrPort, error) {
	buf := make([]byte, 1500)
	c.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return "", netip.AddrPort{}, err
	}
	return string(buf[:n]), netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), nil
}

// reusePort lets a TCP socket share its local port with others that set
// it too, as TCP hole punching does: a connection out and a listener on
// one port.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	return errors.Join(err, serr)
}

// tcpMirror accepts connections on addr inside the namespace and writes
// each the remote ip:port it sees, a line, then holds it open until the
// peer closes or the test ends.
func tcpMirror(t *testing.T, ns, addr string) {
	t.Helper()
	ln, err := netns.Listen(ns, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintln(c, c.RemoteAddr())
				io.Copy(io.Discard, c)
			}()
		}
	}()
}

// tcpDialFrom connects from local (an ip:port inside the namespace,
// sharing the port with reusePort) to addr, bounded by d; the connection
// closes when the test ends.
func tcpDialFrom(t *testing.T, ns, local, addr string, d time.Duration) (net.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var c net.Conn
	err := netns.Do(ns, func() (err error) {
		dl := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.MustParseAddrPort(local)), Control: reusePort}
		c, err = dl.DialContext(ctx, "tcp4", addr)
		return err
	})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// tcpAsk connects from local to a tcpMirror at addr and returns the
// source the mirror saw. The connection stays open until the test ends,
// so the NAT keeps its mapping.
func tcpAsk(t *testing.T, ns, local, addr string) netip.AddrPort {
	t.Helper()
	c, err := tcpDialFrom(t, ns, local, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect %s -> %s in %s: %v", local, addr, ns, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the mirror %s: %v", addr, err)
	}
	seen, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("mirror %s answered %q", addr, line)
	}
	return seen
}

// tcpListenOn listens on addr inside the namespace with reusePort, so
// that it can share its port with a connection out; closed when the test
// ends.
func tcpListenOn(t *testing.T, ns, addr string) *net.TCPListener {
	t.Helper()
	var ln net.Listener
	err := netns.Do(ns, func() (err error) {
		lc := net.ListenConfig{Control: reusePort}
		ln, err = lc.Listen(context.Background(), "tcp4", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// iperfReceiver is the receiver's rate in an iperf3 client's output, as
// a number and unit prefix ("941", "M").
var iperfReceiver = regexp.MustCompile(`([\d.]+) ([KMG]?)bits/sec.*receiver`)

// iperfRate is the receiver's rate iperf3 printed, in bit/s, or fails t.
func iperfRate(t *testing.T, out string) float64 {
	t.Helper()
	m := iperfReceiver.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receiver line in iperf3 output:\n%s", out)
	}
	var v float64
	fmt.Sscan(m[1], &v)
	return v * map[string]float64{"": 1, "K": 1e3, "M": 1e6, "G": 1e9}[m[2]]
}

// waitListening waits, at most 5 s, until something listens on the TCP
// port inside the host. It does not connect: a probe connection can
// leave iperf3's server busy with it when the real client comes.
func waitListening(t *testing.T, h *Host, port int) {
	t.Helper()
	filter := fmt.Sprintf("sport = :%d", port)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := h.Try("ss", "-Hltn", filter)
		if err == nil && strings.Contains(out, fmt.Sprintf(":%d ", port)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on TCP port %d in %s after 5s: %v\n%s", port, h.Netns, err, out)
		}
	}
}

// drops is the router's drop counter for reason.
func drops(r *Router, reason string) uint64 { return r.Stats().Drops[reason] }
