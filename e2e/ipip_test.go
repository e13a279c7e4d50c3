package e2e

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/e2e/netns"
	"github.com/tungate/tungate/router/link"
)

// TestDecapsulateIPIP sends IP-in-IP packets from host a to host b, as an
// LVS director in tunnel mode would, with a datagram for a VIP on b's
// loopback inside: nothing arrives until b decapsulates, then the
// datagram does, from its inner source. The large one is fragmented on
// the way and reassembled by b before decapsulation.
func TestDecapsulateIPIP(t *testing.T) {
	tp := New(t)
	a, b := &Host{Netns: tp.Netns("a")}, &Host{Netns: tp.Netns("b")}
	ipipVeth(t, a, b, "10.99.47.1/24", "10.99.47.2/24")
	err := withHandle(b.Netns, func(h *netlink.Handle) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return err
		}
		return h.AddrAdd(lo, link.NetlinkAddr(netip.MustParsePrefix("198.51.100.10/32")))
	})
	if err != nil {
		t.Fatalf("VIP on b: %v", err)
	}
	ln := udpListen(t, b.Netns, "198.51.100.10:7000")

	// a's kernel adds the outer header (protocol 4, a to b) and fragments.
	sender := ipipSocket(t, a.Netns, netip.MustParseAddr("10.99.47.2"))
	src := netip.MustParseAddrPort("10.99.47.1:5555")
	send := func(data []byte) {
		t.Helper()
		if _, err := sender.Write(ipipUDP(src, netip.MustParseAddrPort("198.51.100.10:7000"), data)); err != nil {
			t.Fatalf("sending from a: %v", err)
		}
	}
	buf := make([]byte, 1<<16)
	receive := func(wait time.Duration) ([]byte, netip.AddrPort, error) {
		ln.SetReadDeadline(time.Now().Add(wait))
		n, from, err := ln.ReadFromUDPAddrPort(buf)
		return buf[:n], from, err
	}

	// Without the decapsulator, b's kernel gets the packet (a raw socket
	// of protocol 4 sees it) and the listener does not.
	witness := ipipSocket(t, b.Netns, netip.Addr{})
	hello := []byte("hello")
	for deadline := time.Now().Add(2 * time.Second); ; {
		send(hello)
		witness.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := witness.Read(buf)
		if err == nil {
			break
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the IP-in-IP packet did not reach b within 2s")
		}
	}
	witness.Close()
	if got, from, err := receive(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("without the decapsulator: got %q from %v (err %v), want nothing", got, from, err)
	}

	b.DecapsulateIPIP(t)
	large := bytes.Repeat([]byte("0123456789abcdef"), 250) // 4000 bytes: fragments on a 1500-byte link
	var done [][]byte                                      // late copies of these are skipped
	for _, want := range [][]byte{hello, large} {
		deadline := time.Now().Add(2 * time.Second)
	retry:
		for {
			send(want)
			for {
				got, from, err := receive(500 * time.Millisecond)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if slices.ContainsFunc(done, func(d []byte) bool { return bytes.Equal(got, d) }) {
					continue
				}
				if !bytes.Equal(got, want) || from != src {
					t.Fatalf("got %d bytes %.20q from %v, want %d bytes %.20q from %v", len(got), got, from, len(want), want, src)
				}
				break retry
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d-byte datagram not received within 2s of decapsulation", len(want))
			}
		}
		done = append(done, want)
	}
}

// TestIPIPInner checks which packets the decapsulator passes on, and
// how much of them; it needs no root.
func TestIPIPInner(t *testing.T) {
	inner := ipipUDP(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), []byte("hi"))
	outer := func(payload []byte) []byte {
		return ipipIPv4(netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.4"), unix.IPPROTO_IPIP, payload)
	}
	padded := outer(append(append([]byte{}, inner...), 0, 0, 0)) // inner total length shorter than the outer payload
	otherProto := outer(inner)
	otherProto[9] = unix.IPPROTO_UDP // the protocol field
	v6 := append([]byte{}, inner...)
	v6[0] = 0x65
	for _, c := range []struct {
		name string
		pkt  []byte
		want []byte // nil: dropped
	}{
		{"ok", outer(inner), inner},
		{"padded", padded, inner},
		{"short outer", outer(inner)[:10], nil},
		{"outer cut short", outer(inner)[:30], nil},
		{"inner cut short", outer(inner[:25]), nil},
		{"empty inner", outer(nil), nil},
		{"inner not IPv4", outer(v6), nil},
		{"not protocol 4", otherProto, nil},
	} {
		got, ok := ipipInner(c.pkt)
		if ok != (c.want != nil) || !bytes.Equal(got, c.want) {
			t.Errorf("%s: got %x, %v; want %x", c.name, got, ok, c.want)
		}
	}
}

// ipipSocket is a raw socket of protocol 4 in ns, connected to peer if
// valid, for the poller (deadlines), closed when the test ends.
func ipipSocket(t *testing.T, ns string, peer netip.Addr) *os.File {
	t.Helper()
	var fd int
	err := netns.Do(ns, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP); err != nil {
			return err
		}
		if peer.IsValid() {
			if err = unix.Connect(fd, &unix.SockaddrInet4{Addr: peer.As4()}); err != nil {
				unix.Close(fd)
			}
		}
		return err
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", ns, err)
	}
	f := os.NewFile(uintptr(fd), "ipip")
	t.Cleanup(func() { f.Close() })
	return f
}

// ipipVeth joins a and b by a veth pair, eth0 at both ends, with the
// given addresses, up. The pair is made inside a's namespace, so it goes
// with the namespaces.
func ipipVeth(t *testing.T, a, b *Host, addrA, addrB string) {
	t.Helper()
	target, err := vnetns.GetFromName(b.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	err = withHandle(a.Netns, func(h *netlink.Handle) error {
		return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth0", PeerNamespace: netlink.NsFd(target)})
	})
	if err != nil {
		t.Fatalf("veth between %s and %s: %v", a.Netns, b.Netns, err)
	}
	for _, end := range []struct {
		h    *Host
		addr string
	}{{a, addrA}, {b, addrB}} {
		err := withHandle(end.h.Netns, func(h *netlink.Handle) error {
			eth, err := h.LinkByName("eth0")
			if err != nil {
				return err
			}
			if err := h.AddrAdd(eth, link.NetlinkAddr(netip.MustParsePrefix(end.addr))); err != nil {
				return err
			}
			return h.LinkSetUp(eth)
		})
		if err != nil {
			t.Fatalf("veth end in %s: %v", end.h.Netns, err)
		}
	}
}

// ipipIPv4 is an IPv4 packet with payload, with a valid header checksum.
func ipipIPv4(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	b := make([]byte, header.IPv4MinimumSize+len(payload))
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(len(b)), TTL: 64, Protocol: proto, ID: 7,
		SrcAddr: tcpip.AddrFrom4(src.As4()), DstAddr: tcpip.AddrFrom4(dst.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	copy(ip.Payload(), payload)
	return b
}

// ipipUDP is an IPv4 UDP datagram with valid checksums.
func ipipUDP(src, dst netip.AddrPort, data []byte) []byte {
	b := ipipIPv4(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, make([]byte, header.UDPMinimumSize+len(data)))
	ip := header.IPv4(b)
	udp := header.UDP(ip.Payload())
	udp.Encode(&header.UDPFields{SrcPort: src.Port(), DstPort: dst.Port(), Length: uint16(len(udp))})
	copy(udp.Payload(), data)
	xsum := header.PseudoHeaderChecksum(header.UDPProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), udp.Length())
	udp.SetChecksum(^udp.CalculateChecksum(checksum.Checksum(udp.Payload(), xsum)))
	return b
}
