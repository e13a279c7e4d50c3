package link

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, unless CI=true, where a skipped
// kernel test would hide that it never ran.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	const why = "needs root: creates TUN devices and network namespaces"
	if os.Getenv("CI") == "true" {
		t.Fatal(why + " (CI=true: failing instead of skipping)")
	}
	t.Skip(why)
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// tunName is a fresh device name (IFNAMSIZ allows 15 bytes).
func tunName() string { return "tgl" + randomSuffix() }

// newNetns creates a named network namespace that the test's cleanup
// removes by that exact name. The name is created in /run/netns, like
// `ip netns add`.
func newNetns(t *testing.T) string {
	t.Helper()
	name := "tglink-" + randomSuffix()
	t.Cleanup(func() { deleteNetns(t, name) })
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	ns, err := netns.NewNamed(name) // switches this thread into it
	if err == nil {
		ns.Close()
	}
	restore(t, orig)
	if err != nil {
		t.Fatalf("netns %s: %v", name, err)
	}
	return name
}

func deleteNetns(t *testing.T, name string) {
	if err := netns.DeleteNamed(name); err != nil {
		// The bind mount may never have happened; the file still may have.
		if rmErr := os.Remove(filepath.Join("/run/netns", name)); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
			t.Errorf("removing netns %s: %v, %v", name, err, rmErr)
		}
	}
}

// restore puts the locked thread back into orig and unlocks it. If that
// fails the thread stays locked, so it dies with the goroutine instead of
// running other goroutines in the wrong namespace.
func restore(t *testing.T, orig netns.NsHandle) {
	if err := netns.Set(orig); err != nil {
		t.Fatalf("restoring the network namespace: %v", err)
	}
	runtime.UnlockOSThread()
}

// inNetns runs fn on a thread inside the named namespace. Sockets and
// devices fn creates stay in that namespace after it returns.
func inNetns(t *testing.T, name string, fn func() error) {
	t.Helper()
	target, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	err = fn()
	restore(t, orig)
	if err != nil {
		t.Fatal(err)
	}
}

func nsHandle(t *testing.T, name string) *netlink.Handle {
	t.Helper()
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// listenUDP opens a UDP socket inside the namespace.
func listenUDP(t *testing.T, ns string, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	inNetns(t, ns, func() (err error) {
		c, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}

// dialUDP opens a connected UDP socket inside the namespace.
func dialUDP(t *testing.T, ns string, to netip.AddrPort) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	inNetns(t, ns, func() (err error) {
		c, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to))
		return err
	})
	t.Cleanup(func() { c.Close() })
	return c
}
