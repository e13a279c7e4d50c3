package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
)

var (
	routerV4 = netip.MustParseAddr("192.168.46.1")
	routerV6 = netip.MustParseAddr("2001:db8:46::1")
	hostV4   = netip.MustParseAddr("192.168.46.10")
	hostV6   = netip.MustParseAddr("2001:db8:46::10")
	// A host several hops away: replies to it must still go out of the
	// one NIC, since gVisor must not need a route of its own.
	farV4 = netip.MustParseAddr("198.51.100.7")
	farV6 = netip.MustParseAddr("2001:db8:99::7")
)

func routerAddrs() []netip.Prefix {
	return []netip.Prefix{netip.MustParsePrefix("192.168.46.1/24"), netip.MustParsePrefix("2001:db8:46::1/64")}
}

func newStack(t *testing.T, o Options) *Stack {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// families runs f for IPv4 and IPv6 with the router's address and a
// client address of that family.
func families(t *testing.T, f func(t *testing.T, router, client netip.Addr)) {
	t.Run("v4", func(t *testing.T) { f(t, routerV4, hostV4) })
	t.Run("v6", func(t *testing.T) { f(t, routerV6, hostV6) })
	t.Run("v4-far", func(t *testing.T) { f(t, routerV4, farV4) })
	t.Run("v6-far", func(t *testing.T) { f(t, routerV6, farV6) })
}

func TestQuietWhenIdle(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	out := collect(s)
	quiet(t, out, 200*time.Millisecond)
	// Adding addresses later must not start DAD or MLD either.
	if err := s.SetAddresses(append(routerAddrs(), netip.MustParsePrefix("2001:db8:47::1/64"), netip.MustParsePrefix("10.9.9.9/8"))); err != nil {
		t.Fatal(err)
	}
	quiet(t, out, 200*time.Millisecond)
}

func TestEcho(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	out := collect(s)
	families(t, func(t *testing.T, router, client netip.Addr) {
		// TTL 1 on purpose: a packet for the router itself is delivered,
		// not answered with Time Exceeded (RFC 1812 §5.3.1 decrements
		// only when forwarding), which is what traceroute to the router
		// relies on.
		for _, ttl := range []uint8{64, 1} {
			payload := []byte("tungate ping payload")
			if !s.Deliver(echoRequest(client, router, ttl, 0x1234, 7, payload)) {
				t.Fatal("Deliver refused an echo request")
			}
			ip := parseIP(t, next(t, out))
			checkAddrs(t, ip, router, client)
			if router.Is4() {
				icmp := header.ICMPv4(ip.Payload())
				if icmp.Type() != header.ICMPv4EchoReply || icmp.Code() != 0 {
					t.Fatalf("ICMP type %d code %d, want echo reply", icmp.Type(), icmp.Code())
				}
				if icmp.Ident() != 0x1234 || icmp.Sequence() != 7 || !bytes.Equal(icmp.Payload(), payload) {
					t.Fatalf("echo reply id %#x seq %d payload %q", icmp.Ident(), icmp.Sequence(), icmp.Payload())
				}
				if got := ip.(header.IPv4).TTL(); got != ipv4.DefaultTTL {
					t.Errorf("reply TTL %d, want %d", got, ipv4.DefaultTTL)
				}
			} else {
				icmp := header.ICMPv6(ip.Payload())
				if icmp.Type() != header.ICMPv6EchoReply || icmp.Code() != 0 {
					t.Fatalf("ICMPv6 type %d code %d, want echo reply", icmp.Type(), icmp.Code())
				}
				if icmp.Ident() != 0x1234 || icmp.Sequence() != 7 || !bytes.Equal(icmp.Payload(), payload) {
					t.Fatalf("echo reply id %#x seq %d payload %q", icmp.Ident(), icmp.Sequence(), icmp.Payload())
				}
				if got := ip.(header.IPv6).HopLimit(); got != ipv6.DefaultTTL {
					t.Errorf("reply hop limit %d, want %d", got, ipv6.DefaultTTL)
				}
			}
		}
		quiet(t, out, 20*time.Millisecond)
	})
}

func TestUDPClosedPort(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	out := collect(s)
	families(t, func(t *testing.T, router, client netip.Addr) {
		// The probe traceroute sends as its last hop: TTL 1, high port.
		orig := udpPacket(client, router, 1, 40000, 33434, []byte("traceroute probe"))
		if !s.Deliver(orig) {
			t.Fatal("Deliver refused a UDP packet")
		}
		ip := parseIP(t, next(t, out))
		checkAddrs(t, ip, router, client)
		var embedded []byte
		if router.Is4() {
			icmp := header.ICMPv4(ip.Payload())
			if icmp.Type() != header.ICMPv4DstUnreachable || icmp.Code() != header.ICMPv4PortUnreachable {
				t.Fatalf("ICMP type %d code %d, want port unreachable", icmp.Type(), icmp.Code())
			}
			embedded = icmp.Payload()
		} else {
			icmp := header.ICMPv6(ip.Payload())
			if icmp.Type() != header.ICMPv6DstUnreachable || icmp.Code() != header.ICMPv6PortUnreachable {
				t.Fatalf("ICMPv6 type %d code %d, want port unreachable", icmp.Type(), icmp.Code())
			}
			embedded = icmp.Payload()
		}
		// The packet is small enough to be quoted whole.
		if !bytes.Equal(embedded, orig) {
			t.Fatalf("quoted packet\n% x\nwant\n% x", embedded, orig)
		}
	})
}

func TestTCPClosedPort(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	out := collect(s)
	families(t, func(t *testing.T, router, client netip.Addr) {
		const seq = 1000
		if !s.Deliver(tcpSYN(client, router, 40001, 81, seq)) {
			t.Fatal("Deliver refused a TCP SYN")
		}
		ip := parseIP(t, next(t, out))
		checkAddrs(t, ip, router, client)
		if ip.TransportProtocol() != header.TCPProtocolNumber {
			t.Fatalf("reply protocol %d, want TCP", ip.TransportProtocol())
		}
		tcp := header.TCP(ip.Payload())
		if tcp.SourcePort() != 81 || tcp.DestinationPort() != 40001 {
			t.Fatalf("RST ports %d -> %d", tcp.SourcePort(), tcp.DestinationPort())
		}
		// RFC 9293 §3.10.7.1: a SYN to a closed port gets
		// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, the SYN counting one.
		if tcp.Flags() != header.TCPFlagRst|header.TCPFlagAck || tcp.AckNumber() != seq+1 {
			t.Fatalf("reply flags %v ack %d, want RST|ACK ack %d", tcp.Flags(), tcp.AckNumber(), seq+1)
		}
	})
}

// TestTCPBetweenStacks wires two Stacks back to back, as two routers' hosts
// would be across a link, and runs a gonet connection over them.
func TestTCPBetweenStacks(t *testing.T) {
	a := newStack(t, Options{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}})
	b := newStack(t, Options{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}})
	pump := func(from, to *Stack) {
		for p := range collect(from) {
			to.Deliver(p)
		}
	}
	go pump(a, b)
	go pump(b, a)

	for _, tc := range []struct {
		name  string
		proto tcpip.NetworkProtocolNumber
		dst   netip.Addr
	}{
		{"v4", ipv4.ProtocolNumber, netip.MustParseAddr("10.0.0.2")},
		{"v6", ipv6.ProtocolNumber, netip.MustParseAddr("fd00::2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := tcpip.FullAddress{Addr: addr(tc.dst), Port: 8080}
			l, err := gonet.ListenTCP(b.NetStack(), full, tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			served := make(chan error, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					served <- err
					return
				}
				defer c.Close()
				buf := make([]byte, 5)
				if _, err := io.ReadFull(c, buf); err != nil {
					served <- err
					return
				}
				_, err = c.Write(append([]byte("pong "), buf...))
				served <- err
			}()

			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c, err := gonet.DialContextTCP(ctx, a.NetStack(), full, tc.proto)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "pong hello" {
				t.Fatalf("got %q", got)
			}
			if err := <-served; err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetAddresses(t *testing.T) {
	s := newStack(t, Options{Addresses: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}})
	out := collect(s)
	client := netip.MustParseAddr("10.0.0.99")
	client6 := netip.MustParseAddr("fd00::99")
	ping := func(t *testing.T, from, to netip.Addr, want bool) {
		t.Helper()
		if !s.Deliver(echoRequest(from, to, 64, 1, 1, nil)) {
			t.Fatal("Deliver refused an echo request")
		}
		if !want {
			quiet(t, out, 200*time.Millisecond)
			return
		}
		checkAddrs(t, parseIP(t, next(t, out)), to, from)
	}
	ping(t, client, netip.MustParseAddr("10.0.0.1"), true)

	if err := s.SetAddresses([]netip.Prefix{netip.MustParsePrefix("10.0.0.2/24"), netip.MustParsePrefix("fd00::2/64")}); err != nil {
		t.Fatal(err)
	}
	ping(t, client, netip.MustParseAddr("10.0.0.1"), false)
	ping(t, client, netip.MustParseAddr("10.0.0.2"), true)
	ping(t, client6, netip.MustParseAddr("fd00::2"), true)

	// Same address, other prefix length: replaced, still answering.
	if err := s.SetAddresses([]netip.Prefix{netip.MustParsePrefix("10.0.0.2/16")}); err != nil {
		t.Fatal(err)
	}
	ping(t, client, netip.MustParseAddr("10.0.0.2"), true)
	ping(t, client6, netip.MustParseAddr("fd00::2"), false)
	// gVisor's IPv4 endpoint holds 255.255.255.255/32 by itself.
	var got []string
	for _, pa := range s.NetStack().AllAddresses()[nicID] {
		if a := pa.AddressWithPrefix.String(); a != "255.255.255.255/32" {
			got = append(got, a)
		}
	}
	if len(got) != 1 || got[0] != "10.0.0.2/16" {
		t.Fatalf("stack addresses %v, want [10.0.0.2/16]", got)
	}

	for _, bad := range [][]netip.Prefix{
		{{}},
		{netip.MustParsePrefix("::ffff:10.0.0.3/128")},
		{netip.MustParsePrefix("0.0.0.0/0")},
		{netip.MustParsePrefix("224.0.0.1/32")},
		{netip.MustParsePrefix("10.0.0.3/24"), netip.MustParsePrefix("10.0.0.3/16")},
	} {
		if err := s.SetAddresses(bad); err == nil {
			t.Errorf("SetAddresses(%v) succeeded", bad)
		}
	}
	// A refused list changes nothing.
	ping(t, client, netip.MustParseAddr("10.0.0.2"), true)
}

func TestDeliverRefuses(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	for _, p := range [][]byte{nil, {0x50, 0, 0, 20}, {0x00}} {
		if s.Deliver(p) {
			t.Errorf("Deliver(% x) = true", p)
		}
	}
}

func TestReadBatches(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	for seq := range uint16(3) {
		s.Deliver(echoRequest(hostV4, routerV4, 64, 9, seq, []byte("x")))
	}
	// Echo replies are made on Deliver's goroutine, so all three are
	// queued now; a read of two takes two, the next read the third.
	bufs := [][]byte{make([]byte, 100), make([]byte, 100)}
	sizes := make([]int, 2)
	var seqs []uint16
	for _, want := range []int{2, 1} {
		n, err := s.Read(bufs, sizes, 8)
		if err != nil || n != want {
			t.Fatalf("Read = %d, %v; want %d, nil", n, err, want)
		}
		for i := range n {
			ip := parseIP(t, bufs[i][8:8+sizes[i]])
			seqs = append(seqs, header.ICMPv4(ip.Payload()).Sequence())
		}
	}
	if len(seqs) != 3 || seqs[0] != 0 || seqs[1] != 1 || seqs[2] != 2 {
		t.Fatalf("sequence numbers %v, want [0 1 2]", seqs)
	}

	// A buffer too small for the packet: an error, not a truncated packet.
	s.Deliver(echoRequest(hostV4, routerV4, 64, 9, 3, make([]byte, 200)))
	n, err := s.Read(bufs, sizes, 8)
	if n != 0 || !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Read = %d, %v; want 0, io.ErrShortBuffer", n, err)
	}
}

// TestFullQueue checks that the stack drops rather than blocks when nobody
// reads, and counts the drop.
func TestFullQueue(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs(), Queue: 2})
	if s.BatchSize() != 2 {
		t.Fatalf("BatchSize = %d, want 2", s.BatchSize())
	}
	for seq := range uint16(5) {
		s.Deliver(echoRequest(hostV4, routerV4, 64, 9, seq, nil))
	}
	bufs := [][]byte{make([]byte, 100), make([]byte, 100)}
	if n, err := s.Read(bufs, make([]int, 2), 0); n != 2 || err != nil {
		t.Fatalf("Read = %d, %v; want 2, nil", n, err)
	}
	if got := s.NetStack().Stats().NICs.TxPacketsDroppedNoBufferSpace.Value(); got != 3 {
		t.Errorf("dropped %d packets for want of queue, want 3", got)
	}
}

func TestClose(t *testing.T) {
	s, err := New(Options{Addresses: routerAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Read([][]byte{make([]byte, 1500)}, make([]int, 1), 0)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Read block
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Fatalf("Read after Close: %v, want os.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if _, err := s.Read([][]byte{make([]byte, 1500)}, make([]int, 1), 0); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Read: %v, want os.ErrClosed", err)
	}
	if s.Deliver(echoRequest(hostV4, routerV4, 64, 1, 1, nil)) {
		t.Error("Deliver after Close = true")
	}
	if err := s.SetAddresses(routerAddrs()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("SetAddresses after Close: %v, want os.ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNewOptions(t *testing.T) {
	for _, o := range []Options{
		{MTU: 1279},
		{MTU: 70000},
		{Queue: -1},
		{Addresses: []netip.Prefix{{}}},
	} {
		if s, err := New(o); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
	s := newStack(t, Options{})
	if s.BatchSize() != maxBatch {
		t.Errorf("BatchSize = %d, want %d", s.BatchSize(), maxBatch)
	}
	if mtu := s.NetStack().NICInfo()[nicID].MTU; mtu != DefaultMTU {
		t.Errorf("MTU = %d, want %d", mtu, DefaultMTU)
	}
}

// TestLoopback checks that the router talking to its own address stays
// inside the stack: nothing comes out of Read.
func TestLoopback(t *testing.T) {
	s := newStack(t, Options{Addresses: routerAddrs()})
	out := collect(s)
	full := tcpip.FullAddress{Addr: addr(routerV4), Port: 7}
	l, err := gonet.ListenTCP(s.NetStack(), full, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := gonet.DialContextTCP(ctx, s.NetStack(), full, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("echo")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "echo" {
		t.Fatalf("read %q, %v", buf, err)
	}
	quiet(t, out, 50*time.Millisecond)
}
