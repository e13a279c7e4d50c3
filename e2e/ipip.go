package e2e

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/e2e/netns"
)

// DecapsulateIPIP makes h an IP-in-IP tunnel endpoint in userspace, as a
// kernel ipip device would be: IPv4 packets of protocol 4 addressed to h
// are stripped of their outer header and handed to h's kernel as if they
// had arrived on a device of their own. It is what an LVS "tunnel" backend
// needs on kernels without ipip. It lasts until the test ends.
//
// The device is a TUN called decapN (MTU 65535, up, no address, IPv6
// off). Reverse-path filtering is turned off in h (all, default and the
// device), since inner packets come from sources h routes elsewhere;
// addresses they are sent to, such as a VIP on h's loopback, are then
// accepted as on any device. Replies leave by h's routes, unencapsulated.
func (h *Host) DecapsulateIPIP(t testing.TB) {
	t.Helper()
	var tun, sock *os.File
	err := netns.Do(h.Netns, func() error {
		for _, conf := range []string{"all", "default"} {
			if err := ipipSysctl("ipv4/conf/"+conf+"/rp_filter", "0"); err != nil {
				return err
			}
		}
		var err error
		if tun, err = ipipTUN(); err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_IPIP)
		if err != nil {
			return fmt.Errorf("raw socket for protocol 4: %w", err)
		}
		sock = os.NewFile(uintptr(fd), "ipip")
		return nil
	})
	if err == nil {
		err = withHandle(h.Netns, func(nh *netlink.Handle) error {
			l, err := nh.LinkByName(tun.Name())
			if err != nil {
				return err
			}
			if err := nh.LinkSetMTU(l, 65535); err != nil {
				return err
			}
			return nh.LinkSetUp(l)
		})
	}
	if err != nil {
		for _, f := range []*os.File{sock, tun} {
			if f != nil {
				f.Close()
			}
		}
		t.Fatalf("ipip decapsulator in %s: %v", h.Netns, err)
	}

	var decapsulated, dropped atomic.Uint64
	var readErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					readErr = err
				}
				return
			}
			inner, ok := ipipInner(buf[:n])
			if !ok {
				dropped.Add(1)
				continue
			}
			if _, err := tun.Write(inner); err != nil {
				dropped.Add(1)
				continue
			}
			decapsulated.Add(1)
		}
	}()
	t.Cleanup(func() {
		sock.Close() // ends the read
		select {
		case <-done:
			if readErr != nil {
				t.Errorf("ipip decapsulator in %s stopped early: %v", h.Netns, readErr)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("ipip decapsulator in %s did not stop", h.Netns)
		}
		tun.Close() // removes the device
		t.Logf("ipip: %d packets decapsulated, %d dropped", decapsulated.Load(), dropped.Load())
	})
}

// ipipTUN makes a TUN device (IFF_TUN|IFF_NO_PI: raw IP packets) in
// the calling thread's namespace, with a name the kernel picks, and turns
// off reverse-path filtering and IPv6 on it. The file's name is the
// device's; closing it removes the device.
func ipipTUN() (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	ifr, err := unix.NewIfreq("decap%d")
	if err == nil {
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		err = unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUN device: %w", err)
	}
	tun := os.NewFile(uintptr(fd), ifr.Name())
	if err := ipipSysctl("ipv4/conf/"+tun.Name()+"/rp_filter", "0"); err != nil {
		tun.Close()
		return nil, err
	}
	// Without IPv6 the device sends nothing of its own (router
	// solicitations, MLD) that would wait unread. Kernels without IPv6
	// have nothing to turn off.
	if err := ipipSysctl("ipv6/conf/"+tun.Name()+"/disable_ipv6", "1"); err != nil && !errors.Is(err, os.ErrNotExist) {
		tun.Close()
		return nil, err
	}
	return tun, nil
}

// ipipSysctl sets the net.* sysctl at path (under /proc/sys/net) in the
// calling thread's namespace.
func ipipSysctl(path, value string) error {
	return os.WriteFile("/proc/sys/net/"+path, []byte(value), 0o644)
}

// ipipInner is the inner packet of an IP-in-IP packet, as read from a raw
// IPv4 socket (outer header included), or false if either header is not
// a valid IPv4 header or the inner packet is cut short. Bytes after the
// inner packet's total length are left out.
func ipipInner(pkt []byte) ([]byte, bool) {
	outer := header.IPv4(pkt)
	if !outer.IsValid(len(pkt)) || outer.Protocol() != unix.IPPROTO_IPIP {
		return nil, false
	}
	inner := header.IPv4(outer.Payload())
	if !inner.IsValid(len(inner)) {
		return nil, false
	}
	return inner[:inner.TotalLength()], true
}
