package link

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

var _ device = (*TAP)(nil)

// onLink4 is a neighbor on the TAP's segment that only the test answers for.
var onLink4 = netip.MustParseAddr("10.201.46.9")

func openTAP(t *testing.T, opt TAPOptions) *TAP {
	t.Helper()
	tp, err := OpenTAP(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp
}

// tapName is a fresh device name (IFNAMSIZ allows 15 bytes).
func tapName() string { return "tgp" + randomSuffix() }

// kernelLink returns the kernel side of the TAP in the namespace.
func kernelLink(t *testing.T, h *netlink.Handle, name string) netlink.Link {
	t.Helper()
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s: %v", name, err)
	}
	return link
}

func linkAddr(mac net.HardwareAddr) tcpip.LinkAddress { return tcpip.LinkAddress(mac) }

// quietIPv6 turns IPv6 off for links that later enter the namespace, so
// that the kernel's router solicitations and MLD reports do not mix with
// the frames a test counts.
func quietIPv6(t *testing.T, ns string) {
	t.Helper()
	inNetns(t, ns, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0)
	})
}

// frame is a copy of a frame Read returned, Ethernet header included.
type frame []byte

func (f frame) eth() header.Ethernet { return header.Ethernet(f) }
func (f frame) payload() []byte      { return f[EthernetHeaderLen:] }

// tapReadLoop reads tp until it fails and sends a copy of every frame. The
// channel closes when Read returns an error, i.e. when the test closes tp.
func tapReadLoop(tp *TAP) <-chan frame {
	out := make(chan frame, 1024)
	go func() {
		defer close(out)
		bufs, sizes := newBufs(tp.BatchSize())
		for {
			n, err := tp.Read(bufs, sizes, testHeadroom)
			if err != nil {
				return
			}
			for i := range n {
				out <- bytes.Clone(bufs[i][testHeadroom-EthernetHeaderLen : testHeadroom+sizes[i]])
			}
		}
	}()
	return out
}

// expectFrame waits for the first frame that match accepts, skipping the
// kernel's other traffic on the link.
func expectFrame(t *testing.T, frames <-chan frame, what string, match func(frame) bool) frame {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				t.Fatalf("device closed while waiting for %s", what)
			}
			if match(f) {
				return f
			}
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

// ethFrame puts the Ethernet header before payload, in a buffer with
// testHeadroom before the payload as the router has it.
func ethFrame(dst, src tcpip.LinkAddress, typ tcpip.NetworkProtocolNumber, payload []byte) []byte {
	b := make([]byte, testHeadroom+len(payload), testHeadroom+65535)
	header.Ethernet(b[testHeadroom-EthernetHeaderLen:]).Encode(&header.EthernetFields{SrcAddr: src, DstAddr: dst, Type: typ})
	copy(b[testHeadroom:], payload)
	return b
}

// arpReply answers the request req (an ARP payload) for its target
// address with mac.
func arpReply(req header.ARP, mac tcpip.LinkAddress) []byte {
	rep := header.ARP(make([]byte, header.ARPSize))
	rep.SetIPv4OverEthernet()
	rep.SetOp(header.ARPReply)
	copy(rep.HardwareAddressSender(), mac)
	copy(rep.ProtocolAddressSender(), req.ProtocolAddressTarget())
	copy(rep.HardwareAddressTarget(), req.HardwareAddressSender())
	copy(rep.ProtocolAddressTarget(), req.ProtocolAddressSender())
	return ethFrame(tcpip.LinkAddress(req.HardwareAddressSender()), mac, header.ARPProtocolNumber, rep)
}

func isARPRequestFor(f frame, target netip.Addr) bool {
	a := header.ARP(f.payload())
	return f.eth().Type() == header.ARPProtocolNumber && a.IsValid() && a.Op() == header.ARPRequest &&
		bytes.Equal(a.ProtocolAddressTarget(), target.AsSlice())
}

// TestTAP configures the kernel side of a TAP in a namespace and talks
// Ethernet with it: the kernel ARPs for an on-link address and for its
// gateway, the test answers with the router's MAC and gets the datagrams
// addressed to that MAC; frames written to the kernel's MAC reach sockets.
func TestTAP(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			tp := openTAP(t, TAPOptions{Name: tapName(), MTU: testMTU, Offload: offload, FD: -1})
			if err := tp.ConfigurePeer(testPeer(ns)); err != nil {
				t.Fatal(err)
			}
			h := nsHandle(t, ns)
			checkKernelSide(t, h, tp.Name(), testMTU, testPeer(ns))
			kmac := linkAddr(kernelLink(t, h, tp.Name()).Attrs().HardwareAddr)
			mac := MACFor(tp.Name())
			frames := tapReadLoop(tp)

			// The kernel resolves an on-link destination, and the gateway
			// of its default route, by ARP; the test answers for both.
			for _, to := range []netip.AddrPort{netip.AddrPortFrom(onLink4, 5000), netip.AddrPortFrom(remote4, 5001)} {
				hop := to.Addr()
				if hop == remote4 {
					hop = gw4
				}
				if _, err := dialUDP(t, ns, to).Write([]byte("via ARP")); err != nil {
					t.Fatal(err)
				}
				req := expectFrame(t, frames, "ARP request for "+hop.String(), func(f frame) bool { return isARPRequestFor(f, hop) })
				a := header.ARP(req.payload())
				if req.eth().DestinationAddress() != header.EthernetBroadcastAddress || req.eth().SourceAddress() != kmac ||
					tcpip.LinkAddress(a.HardwareAddressSender()) != kmac || !bytes.Equal(a.ProtocolAddressSender(), peer4.Addr().AsSlice()) {
					t.Errorf("ARP request: Ethernet %s → %s, sender %x %v; want from the kernel's MAC %s and %s",
						req.eth().SourceAddress(), req.eth().DestinationAddress(), a.HardwareAddressSender(), a.ProtocolAddressSender(), kmac, peer4.Addr())
				}
				if n, err := tp.Write([][]byte{arpReply(a, tcpip.LinkAddress(mac[:]))}, testHeadroom); n != 1 || err != nil {
					t.Fatalf("writing the ARP reply: %d, %v", n, err)
				}
				f := expectFrame(t, frames, "datagram to "+to.String(), func(f frame) bool {
					d, ok := parseUDP(f.payload())
					return f.eth().Type() == header.IPv4ProtocolNumber && ok && d.dst == to
				})
				if f.eth().DestinationAddress() != tcpip.LinkAddress(mac[:]) || f.eth().SourceAddress() != kmac {
					t.Errorf("datagram to %s: Ethernet %s → %s, want %s → %x", to, f.eth().SourceAddress(), f.eth().DestinationAddress(), kmac, mac)
				}
			}

			for _, p := range []netip.Prefix{peer4, peer6} {
				remote := map[bool]netip.Addr{true: remote4, false: remote6}[p.Addr().Is4()]
				testTAPWrite(t, ns, tp, kmac, p.Addr(), remote)
			}
			if d := tp.Drops(); d != (ReadDrops{}) {
				t.Errorf("drops %+v", d)
			}
			tp.Close()
			checkDeleted(t, h, tp.Name())
		})
	}
}

// testTAPWrite writes a batch of datagrams in frames to the kernel's MAC
// and receives each of them on a socket in the namespace.
func testTAPWrite(t *testing.T, ns string, tp *TAP, kmac tcpip.LinkAddress, peer, remote netip.Addr) {
	t.Helper()
	dst := netip.AddrPortFrom(peer, 6000)
	c := listenUDP(t, ns, dst)
	typ := header.IPv4ProtocolNumber
	if peer.Is6() {
		typ = header.IPv6ProtocolNumber
	}
	mac := MACFor(tp.Name())
	const n = 4
	var bufs [][]byte
	for i := range n {
		pkt := udpPacket(netip.AddrPortFrom(remote, 7777), dst, fmt.Appendf(nil, "frame %d", i))
		bufs = append(bufs, ethFrame(kmac, tcpip.LinkAddress(mac[:]), typ, pkt))
	}
	if got, err := tp.Write(bufs, testHeadroom); err != nil || got != n {
		t.Fatalf("Write = %d, %v; want %d", got, err, n)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 2048)
	for i := range n {
		m, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d to %s: %v", i, n, dst, err)
		}
		if want := fmt.Sprintf("frame %d", i); string(buf[:m]) != want || from.Addr().Unmap() != remote {
			t.Errorf("received %q from %s, want %q from %s", buf[:m], from, want, remote)
		}
	}
}

// staticNeighbor makes the kernel side send to addr without asking ARP.
func staticNeighbor(t *testing.T, h *netlink.Handle, link netlink.Link, addr netip.Addr, mac [6]byte) {
	t.Helper()
	err := h.NeighAdd(&netlink.Neigh{
		LinkIndex: link.Attrs().Index, State: netlink.NUD_PERMANENT, Family: netlink.FAMILY_V4,
		IP: addr.AsSlice(), HardwareAddr: mac[:],
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestTAPBatchRead queues frames before the first Read, which must return
// them all at once; and a frame longer than Read's buffer is dropped and
// counted without ending the device.
func TestTAPBatchRead(t *testing.T) {
	for _, offload := range []bool{false, true} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			quietIPv6(t, ns)
			tp := openTAP(t, TAPOptions{Name: tapName(), Offload: offload, FD: -1})
			p := Peer{Netns: ns, Addresses: []netip.Prefix{peer4}}
			if err := tp.ConfigurePeer(p); err != nil {
				t.Fatal(err)
			}
			h := nsHandle(t, ns)
			staticNeighbor(t, h, kernelLink(t, h, tp.Name()), onLink4, MACFor(tp.Name()))
			dst := netip.AddrPortFrom(onLink4, 5000)
			c := dialUDP(t, ns, dst)
			// On an idle link send(2) takes the qdisc's bypass and puts the
			// frame in the TAP's queue before it returns. (The link's TX
			// counters would not tell: the TAP counts frames when they are
			// read.)
			const n = 10
			for i := range n {
				if _, err := c.Write(fmt.Appendf(nil, "queued %d", i)); err != nil {
					t.Fatal(err)
				}
			}
			bufs, sizes := newBufs(16)
			got, err := tp.Read(bufs, sizes, testHeadroom)
			if err != nil || got != n {
				t.Fatalf("Read = %d, %v; want the %d queued frames in one batch", got, err, n)
			}
			for i := range got {
				d, ok := parseUDP(bufs[i][testHeadroom : testHeadroom+sizes[i]])
				if want := fmt.Sprintf("queued %d", i); !ok || d.payload != want {
					t.Errorf("frame %d: %+v, %v; want %q", i, d, ok, want)
				}
			}

			// A datagram too long for a short buffer, then one that fits.
			if _, err := c.Write(make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("short")); err != nil {
				t.Fatal(err)
			}
			short := [][]byte{make([]byte, testHeadroom+200)}
			if got, err := tp.Read(short, sizes, testHeadroom); err != nil || got != 1 {
				t.Fatalf("Read = %d, %v; want the short datagram", got, err)
			}
			if d, ok := parseUDP(short[0][testHeadroom : testHeadroom+sizes[0]]); !ok || d.payload != "short" {
				t.Errorf("read %+v, %v; want the short datagram", d, ok)
			}
			if d := tp.Drops(); d != (ReadDrops{TooLong: 1}) {
				t.Errorf("drops %+v, want one too long", d)
			}
		})
	}
}

// TestTAPTCP carries a TCP transfer between two namespaces over two TAPs
// joined by a copy loop, as a router's forwarding does: with offload the
// sender's TSO super-frames are cut into segments on Read, and the
// receiver's kernel checks every checksum.
func TestTAPTCP(t *testing.T) {
	for _, offload := range [][2]bool{{true, true}, {true, false}, {false, false}} {
		t.Run(fmt.Sprintf("offload=%v", offload), func(t *testing.T) {
			requireRoot(t)
			nsA, nsB := newNetns(t), newNetns(t)
			a := openTAP(t, TAPOptions{Name: tapName(), Offload: offload[0], FD: -1})
			b := openTAP(t, TAPOptions{Name: tapName(), Offload: offload[1], FD: -1})
			addrA, addrB := netip.MustParsePrefix("10.201.47.1/24"), netip.MustParsePrefix("10.201.47.2/24")
			if err := a.ConfigurePeer(Peer{Netns: nsA, Addresses: []netip.Prefix{addrA}}); err != nil {
				t.Fatal(err)
			}
			if err := b.ConfigurePeer(Peer{Netns: nsB, Addresses: []netip.Prefix{addrB}}); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { defer wg.Done(); copyFrames(b, a) }()
			go func() { defer wg.Done(); copyFrames(a, b) }()
			defer wg.Wait()
			defer a.Close()
			defer b.Close()

			to := netip.AddrPortFrom(addrB.Addr(), 5201)
			var ln net.Listener
			inNetns(t, nsB, func() (err error) {
				ln, err = net.Listen("tcp", to.String())
				return err
			})
			defer ln.Close()
			data := pattern(8 << 20)
			received := make(chan [32]byte, 1)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					received <- [32]byte{}
					return
				}
				defer c.Close()
				h := sha256.New()
				io.Copy(h, c)
				received <- [32]byte(h.Sum(nil))
			}()
			var c net.Conn
			inNetns(t, nsA, func() (err error) {
				c, err = net.DialTimeout("tcp", to.String(), 5*time.Second)
				return err
			})
			c.SetDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(data); err != nil {
				t.Fatalf("sending: %v", err)
			}
			c.Close()
			select {
			case sum := <-received:
				if sum != sha256.Sum256(data) {
					t.Error("the receiver got other bytes than were sent")
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the transfer did not finish")
			}
			for _, tp := range []*TAP{a, b} {
				if d := tp.Drops(); d != (ReadDrops{}) {
					t.Errorf("%s drops %+v", tp.Name(), d)
				}
			}
		})
	}
}

// copyFrames writes every frame read from src to dst until either fails
// for good. Writes fail with EIO until dst's link is up, which is not an
// end.
func copyFrames(src, dst *TAP) {
	bufs, sizes := newBufs(src.BatchSize())
	out := make([][]byte, len(bufs))
	for {
		n, err := src.Read(bufs, sizes, testHeadroom)
		if err != nil {
			return
		}
		for i := range n {
			out[i] = bufs[i][:testHeadroom+sizes[i]]
		}
		if _, err := dst.Write(out[:n], testHeadroom); errors.Is(err, os.ErrClosed) {
			return
		}
	}
}

// TestTAPInheritedFD wraps a fd opened the way a privileged parent would,
// for a device that lives in another namespace than ours.
func TestTAPInheritedFD(t *testing.T) {
	for _, vnet := range []bool{false, true} {
		t.Run(fmt.Sprintf("vnet_hdr=%v", vnet), func(t *testing.T) {
			requireRoot(t)
			ns := newNetns(t)
			name := tapName()
			var fd int
			inNetns(t, ns, func() (err error) {
				fd, err = openParentFd(name, unix.IFF_TAP, vnet)
				return err
			})
			tp := openTAP(t, TAPOptions{FD: fd, MTU: testMTU})
			if tp.Name() != name || tp.vnet != vnet {
				t.Errorf("Name = %q, vnet %v; want %q, %v", tp.Name(), tp.vnet, name, vnet)
			}
			flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("inherited fd flags %#x, %v; want FD_CLOEXEC so our children do not hold the device", flags, err)
			}
			p := Peer{Addresses: []netip.Prefix{peer4}}
			if err := tp.ConfigurePeer(p); err != nil {
				t.Fatal(err)
			}
			h := nsHandle(t, ns)
			checkKernelSide(t, h, name, testMTU, p)
			testTAPWrite(t, ns, tp, linkAddr(kernelLink(t, h, name).Attrs().HardwareAddr), peer4.Addr(), remote4)
			tp.Close()
			checkDeleted(t, h, name)
		})
	}
}

// TestTAPClose closes a TAP while a Read waits on it; Write fails with EIO
// while the link is down, and with os.ErrClosed after Close.
func TestTAPClose(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	var tp *TAP
	inNetns(t, ns, func() (err error) {
		tp, err = OpenTAP(TAPOptions{Name: tapName(), FD: -1})
		return err
	})
	t.Cleanup(func() { tp.Close() })
	pkt := ethFrame(header.EthernetBroadcastAddress, routerMAC, header.IPv4ProtocolNumber, make([]byte, 20))
	if _, err := tp.Write([][]byte{pkt}, testHeadroom); !errors.Is(err, unix.EIO) {
		t.Errorf("Write to a down link = %v, want EIO", err)
	}
	res := make(chan error, 1)
	go func() {
		bufs, sizes := newBufs(1)
		_, err := tp.Read(bufs, sizes, testHeadroom)
		res <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Read block
	if err := tp.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-res:
		if err != os.ErrClosed {
			t.Errorf("Read after Close = %v; want os.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock Read")
	}
	if err := tp.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := tp.Write([][]byte{pkt}, testHeadroom); err != os.ErrClosed {
		t.Errorf("Write after Close = %v; want os.ErrClosed", err)
	}
	checkDeleted(t, nsHandle(t, ns), tp.Name())
}

// TestTAPWriteStopsAtError writes a batch whose middle frame the kernel
// refuses (shorter than an Ethernet header): Write reports the frames
// written before it.
func TestTAPWriteStopsAtError(t *testing.T) {
	requireRoot(t)
	ns := newNetns(t)
	tp := openTAP(t, TAPOptions{Name: tapName(), FD: -1})
	if err := tp.ConfigurePeer(Peer{Netns: ns}); err != nil {
		t.Fatal(err)
	}
	good := ethFrame(header.EthernetBroadcastAddress, routerMAC, header.IPv4ProtocolNumber, make([]byte, 20))
	runt := make([]byte, testHeadroom-4) // 10 bytes from offset-14
	n, err := tp.Write([][]byte{good, runt, good}, testHeadroom)
	if n != 1 || !errors.Is(err, unix.EINVAL) {
		t.Errorf("Write = %d, %v; want 1 and EINVAL", n, err)
	}
}

func TestOpenTAPRejects(t *testing.T) {
	t.Run("not a TAP fd", func(t *testing.T) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[1])
		// OpenTAP owns and closes p[0], on error too.
		if _, err := OpenTAP(TAPOptions{FD: p[0]}); err == nil || !strings.Contains(err.Error(), "not a TAP fd") {
			t.Errorf("OpenTAP = %v, want an error about a TAP fd", err)
		}
	})
	t.Run("a TUN fd", func(t *testing.T) {
		requireRoot(t)
		ns := newNetns(t)
		var fd int
		inNetns(t, ns, func() (err error) {
			fd, err = openParentFd(tunName(), unix.IFF_TUN, false)
			return err
		})
		if _, err := OpenTAP(TAPOptions{FD: fd}); err == nil || !strings.Contains(err.Error(), "not a TAP (IFF_TAP)") {
			t.Errorf("OpenTAP = %v, want a refusal of a TUN", err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
			t.Errorf("the refused fd is still open (%v)", err)
		}
	})
}

func TestMACFor(t *testing.T) {
	seen := map[[6]byte]string{}
	for _, name := range []string{"lan0", "lan1", "tap0", "eth0", "", "a-much-longer-name"} {
		mac := MACFor(name)
		if mac != MACFor(name) {
			t.Errorf("MACFor(%q) is not stable", name)
		}
		if mac[0]&0x02 == 0 || mac[0]&0x01 != 0 {
			t.Errorf("MACFor(%q) = %x: want locally administered (0x02) unicast (not 0x01)", name, mac)
		}
		if !header.IsValidUnicastEthernetAddress(tcpip.LinkAddress(mac[:])) {
			t.Errorf("MACFor(%q) = %x is not a valid unicast address", name, mac)
		}
		if other, ok := seen[mac]; ok {
			t.Errorf("MACFor(%q) = MACFor(%q) = %x", name, other, mac)
		}
		seen[mac] = name
	}
	// Pinned: neighbors cache the MAC, so a new release must not change it.
	if mac := MACFor("lan0"); net.HardwareAddr(mac[:]).String() != "82:06:f8:20:8e:2d" {
		t.Errorf("MACFor(lan0) = %s, want 82:06:f8:20:8e:2d", net.HardwareAddr(mac[:]))
	}
}
