package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The addresses below exist only inside each test's own network namespace.
var (
	peer4   = netip.MustParsePrefix("10.201.46.2/24")
	peer6   = netip.MustParsePrefix("fd20:201:46::2/64")
	gw4     = netip.MustParseAddr("10.201.46.1")
	gw6     = netip.MustParseAddr("fd20:201:46::1")
	remote4 = netip.MustParseAddr("10.201.250.7") // beyond the router: via the default route
	remote6 = netip.MustParseAddr("fd20:201:250::7")
)

const testMTU = 1400

func testPeer(ns string) Peer {
	return Peer{
		Netns:     ns,
		Addresses: []netip.Prefix{peer4, peer6},
		Gateways:  []netip.Addr{gw4, gw6},
	}
}

func openTUN(t *testing.T, opt TUNOptions) *TUN {
	t.Helper()
	tn, err := OpenTUN(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	return tn
}

// checkKernelSide checks through netlink in the namespace that the link is
// up, with the MTU, the peer addresses (usable, not tentative) and a default
// route per family via the router's address.
func checkKernelSide(t *testing.T, h *netlink.Handle, name string, mtu int, p Peer) {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s in the namespace: %v", name, err)
	}
	if a := link.Attrs(); a.Flags&net.FlagUp == 0 || a.MTU != mtu {
		t.Errorf("link %s: flags %v, mtu %d; want up, mtu %d", name, a.Flags, a.MTU, mtu)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range p.Addresses {
		if !hasAddr(addrs, want) {
			t.Errorf("link %s lacks usable address %s; has %v", name, want, addrs)
		}
	}
	routes, err := h.RouteList(link, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	for _, gw := range p.Gateways {
		if !hasDefaultVia(routes, gw, link.Attrs().Index) {
			t.Errorf("no default route via %s dev %s; routes %v", gw, name, routes)
		}
	}
}

func hasAddr(addrs []netlink.Addr, want netip.Prefix) bool {
	for _, a := range addrs {
		if a.IPNet.String() == want.String() && a.Flags&unix.IFA_F_TENTATIVE == 0 {
			return true
		}
	}
	return false
}

func hasDefaultVia(routes []netlink.Route, gw netip.Addr, index int) bool {
	for _, r := range routes {
		isDefault := r.Dst == nil || r.Dst.IP.IsUnspecified() && strings.HasSuffix(r.Dst.String(), "/0")
		if isDefault && r.Gw.Equal(gw.AsSlice()) && r.LinkIndex == index {
			return true
		}
	}
	return false
}

func checkDeleted(t *testing.T, h *netlink.Handle, name string) {
	t.Helper()
	_, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if !errors.As(err, &notFound) {
		t.Errorf("link %s after closing its last fd: %v; want it deleted", name, err)
	}
}

// TestTUN creates a device, moves it into a namespace with a configured
// peer, and passes UDP both ways, with and without offload.
func TestTUN(t *testing.T) {
	for _, offload := range []bool{true, false} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			tn := openTUN(t, TUNOptions{Name: tunName(), MTU: testMTU, Offload: offload, FD: -1})
			if err := tn.ConfigurePeer(testPeer(ns)); err != nil {
				t.Fatal(err)
			}
			h := nsHandle(t, ns)
			checkKernelSide(t, h, tn.Name(), testMTU, testPeer(ns))
			q := tn.Queues()[0]
			if want := map[bool]int{true: 128, false: 1}[offload]; q.BatchSize() != want {
				t.Errorf("BatchSize = %d, want %d", q.BatchSize(), want)
			}
			pkts := readLoop(q)
			for _, p := range []netip.Prefix{peer4, peer6} {
				remote := map[bool]netip.Addr{true: remote4, false: remote6}[p.Addr().Is4()]
				testSend(t, ns, pkts, p.Addr(), remote)
				testWrite(t, ns, q, p.Addr(), remote)
			}
			if err := tn.ConfigurePeer(testPeer(ns)); err == nil || !strings.Contains(err.Error(), "default route") {
				t.Errorf("configuring twice = %v; want a refusal to replace the default route", err)
			}
			tn.Close()
			checkDeleted(t, h, tn.Name())
		})
	}
}

// testSend sends a datagram from the namespace beyond the router and reads
// it from the device.
func testSend(t *testing.T, ns string, pkts <-chan []byte, peer, remote netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(remote, 5000)
	c := dialUDP(t, ns, dst)
	if _, err := c.Write([]byte("to the router")); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
	d := expectUDP(t, pkts, dst, 1)[0]
	if d.src.Addr() != peer || d.payload != "to the router" {
		t.Errorf("read %+v, want from %s to %s", d, peer, dst)
	}
}

// testWrite writes a batch of same-flow datagrams (coalesced with offload)
// and receives each of them on a socket in the namespace.
func testWrite(t *testing.T, ns string, q *Queue, peer, remote netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(peer, 6000)
	src := netip.AddrPortFrom(remote, 7777)
	c := listenUDP(t, ns, dst)
	const n = 4
	var pkts [][]byte
	for i := range n {
		pkts = append(pkts, udpPacket(src, dst, fmt.Appendf(nil, "datagram %d", i)))
	}
	if got, err := q.Write(writeBufs(pkts...), testHeadroom); err != nil || got != n {
		t.Fatalf("Write = %d, %v; want %d", got, err, n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i := range n {
		m, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d to %s: %v", i, n, dst, err)
		}
		if want := fmt.Sprintf("datagram %d", i); string(buf[:m]) != want || from.Addr().Unmap() != remote {
			t.Errorf("received %q from %s, want %q from %s", buf[:m], from, want, src)
		}
	}
}

// TestTUNInheritedFD wraps a fd opened the way a privileged parent would,
// for a device that lives in another namespace than ours: ConfigurePeer
// must find it there (TUNGETDEVNETNS), not by name in ours.
func TestTUNInheritedFD(t *testing.T) {
	for _, vnet := range []bool{true, false} {
		t.Run(fmt.Sprintf("vnet_hdr=%v", vnet), func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			name := tunName()
			var fd int
			inNetns(t, ns, func() (err error) {
				fd, err = openParentFd(name, unix.IFF_TUN, vnet)
				return err
			})
			tn := openTUN(t, TUNOptions{FD: fd, MTU: testMTU})
			if tn.Name() != name {
				t.Errorf("Name = %q, want %q", tn.Name(), name)
			}
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("inherited fd flags %#x, %v; want FD_CLOEXEC so our children do not hold the device", flags, err)
			}
			if want := map[bool]int{true: 128, false: 1}[vnet]; tn.Queues()[0].BatchSize() != want {
				t.Errorf("BatchSize = %d, want %d", tn.Queues()[0].BatchSize(), want)
			}
			p := testPeer("")
			if err := tn.ConfigurePeer(p); err != nil {
				t.Fatal(err)
			}
			h := nsHandle(t, ns)
			checkKernelSide(t, h, name, testMTU, p)
			testSend(t, ns, readLoop(tn.Queues()[0]), peer4.Addr(), remote4)
			tn.Close()
			checkDeleted(t, h, name)
		})
	}
}

// openParentFd opens a TUN or TAP fd (kind is IFF_TUN or IFF_TAP) without
// O_CLOEXEC or O_NONBLOCK, as a parent passing it to a child would.
func openParentFd(name string, kind uint16, vnet bool) (int, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR, 0)
	if err != nil {
		return -1, err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	flags := kind | unix.IFF_NO_PI
	if vnet {
		flags |= unix.IFF_VNET_HDR
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// TestTUNMultiQueue reads many flows from two queues at once.
func TestTUNMultiQueue(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	tn := openTUN(t, TUNOptions{Name: tunName(), MTU: testMTU, Offload: true, FD: -1, Queues: 2})
	if len(tn.Queues()) != 2 {
		t.Fatalf("%d queues, want 2", len(tn.Queues()))
	}
	if err := tn.ConfigurePeer(testPeer(ns)); err != nil {
		t.Fatal(err)
	}
	merged := make(chan []byte, 1024)
	perQueue := make([]int, 2)
	var mu sync.Mutex
	for i, q := range tn.Queues() {
		go func() {
			for pkt := range readLoop(q) {
				mu.Lock()
				perQueue[i]++
				mu.Unlock()
				merged <- pkt
			}
		}()
	}
	dst := netip.AddrPortFrom(remote4, 5000)
	const flows = 32
	for range flows {
		if _, err := dialUDP(t, ns, dst).Write([]byte("flow")); err != nil {
			t.Fatal(err)
		}
	}
	expectUDP(t, merged, dst, flows)
	mu.Lock()
	t.Logf("packets per queue (flows and the kernel's own IPv6 traffic): %v", perQueue)
	mu.Unlock()
	h := nsHandle(t, ns)
	tn.Queues()[0].Close()
	if _, err := h.LinkByName(tn.Name()); err != nil {
		t.Errorf("link gone after closing one of two queues: %v", err)
	}
	tn.Close()
	checkDeleted(t, h, tn.Name())
}

// TestTUNTooManySegments sends a UDP GSO super-packet of 10 segments and
// reads it with 3 buffers: Read must return the segments that fit, no error.
func TestTUNTooManySegments(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	tn := openTUN(t, TUNOptions{Name: tunName(), MTU: testMTU, Offload: true, FD: -1})
	if err := tn.ConfigurePeer(testPeer(ns)); err != nil {
		t.Fatal(err)
	}
	q := tn.Queues()[0]
	dst := netip.AddrPortFrom(remote4, 5000)
	res := make(chan []datagram, 1)
	go func() { res <- readFirstUDP(q, 3, dst) }()
	c := dialUDP(t, ns, dst)
	setUDPSegment(t, c, 100)
	if _, err := c.Write(make([]byte, 1000)); err != nil {
		t.Fatalf("GSO send: %v", err)
	}
	select {
	case got := <-res:
		if q.Drops().TruncatedGSO == 0 {
			t.Skipf("read %d segments and no truncation: the kernel segmented before the device (no USO on this TUN?)", len(got))
		}
		if len(got) == 0 || len(got) > 3 {
			t.Errorf("read %d segments into 3 buffers", len(got))
		}
		t.Logf("read %d of 10 segments with 3 buffers; drops %+v", len(got), q.Drops())
	case <-time.After(5 * time.Second):
		t.Fatal("no read of the super-packet")
	}
}

// readFirstUDP reads with nbufs buffers until a read holds datagrams to dst
// and returns them; nil when the queue fails.
func readFirstUDP(q *Queue, nbufs int, dst netip.AddrPort) []datagram {
	bufs, sizes := newBufs(nbufs)
	for {
		n, err := q.Read(bufs, sizes, testHeadroom)
		if err != nil {
			return nil
		}
		var got []datagram
		for i := range n {
			if d, ok := parseUDP(bufs[i][testHeadroom : testHeadroom+sizes[i]]); ok && d.dst == dst {
				got = append(got, d)
			}
		}
		if len(got) > 0 {
			return got
		}
	}
}

func setUDPSegment(t *testing.T, c *net.UDPConn, size int) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sockErr error
	if err := rc.Control(func(fd uintptr) {
		sockErr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_SEGMENT, size)
	}); err != nil {
		t.Fatal(err)
	}
	if sockErr != nil {
		t.Skipf("UDP_SEGMENT: %v", sockErr)
	}
}

// TestConfigurePeerWithoutPeer creates the device inside a namespace and
// configures it with no peer: it must come up there with its MTU.
func TestConfigurePeerWithoutPeer(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	var tn *TUN
	inNetns(t, ns, func() (err error) {
		tn, err = OpenTUN(TUNOptions{Name: tunName(), MTU: 1300, Offload: true, FD: -1})
		return err
	})
	t.Cleanup(func() { tn.Close() })
	if err := tn.ConfigurePeer(Peer{}); err != nil {
		t.Fatal(err)
	}
	h := nsHandle(t, ns)
	checkKernelSide(t, h, tn.Name(), 1300, Peer{})
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 0 {
		t.Errorf("IPv4 routes without a peer: %v", routes)
	}
}

// TestTUNCloseUnblocksRead closes a device while a Read waits on it.
func TestTUNCloseUnblocksRead(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	var tn *TUN
	inNetns(t, ns, func() (err error) {
		tn, err = OpenTUN(TUNOptions{Name: tunName(), FD: -1})
		return err
	})
	res := readAsync(tn.Queues()[0])
	time.Sleep(20 * time.Millisecond) // let Read block
	if err := tn.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-res:
		if r.err != os.ErrClosed {
			t.Errorf("Read after Close = %d, %v; want os.ErrClosed", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := tn.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestOpenTUNRejects needs no root: the fds are refused before any netlink.
func TestOpenTUNRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  func(fd int) TUNOptions
		want string
	}{
		{"not a TUN fd", func(fd int) TUNOptions { return TUNOptions{FD: fd} }, "not a TUN fd"},
		{"inherited multiqueue", func(fd int) TUNOptions { return TUNOptions{FD: fd, Queues: 2} }, "queues must be 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(p[1])
			// OpenTUN owns and closes p[0], on error too.
			_, err := OpenTUN(tc.opt(p[0]))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenTUN = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

func TestDefaultRoutes(t *testing.T) {
	routes := defaultRoutes(7, Peer{
		Addresses: []netip.Prefix{peer6, peer4, netip.MustParsePrefix("10.9.9.9/32")},
		Gateways:  []netip.Addr{gw6, gw4},
	})
	var got []string
	for _, r := range routes {
		got = append(got, fmt.Sprintf("%s via %s dev %d scope %s flags %v", r.Dst, r.Gw, r.LinkIndex, r.Scope, r.ListFlags()))
	}
	want := []string{
		"0.0.0.0/0 via 10.201.46.1 dev 7 scope universe flags [onlink]",
		"::/0 via fd20:201:46::1 dev 7 scope universe flags [onlink]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("routes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r := defaultRoutes(7, Peer{Addresses: []netip.Prefix{peer4}})
	if len(r) != 1 || r[0].Gw != nil || r[0].Scope != netlink.SCOPE_LINK {
		t.Errorf("without a router address: %v; want one device route, scope link", r)
	}
}

func TestPeerAddr(t *testing.T) {
	if a := NetlinkAddr(peer6); a.IPNet.String() != "fd20:201:46::2/64" || a.Flags&unix.IFA_F_NODAD == 0 {
		t.Errorf("NetlinkAddr(%s) = %s flags %#x; want NODAD", peer6, a.IPNet, a.Flags)
	}
	if a := NetlinkAddr(peer4); a.IPNet.String() != "10.201.46.2/24" || a.Flags != 0 {
		t.Errorf("NetlinkAddr(%s) = %s flags %#x", peer4, a.IPNet, a.Flags)
	}
}
