// Package netns makes named network namespaces (/run/netns/NAME, as `ip
// netns` does), runs code and commands inside them, and removes them. The
// e2e topology builder and `tungate demo` build their hosts with it.
package netns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Add creates the named namespace with its loopback up.
func Add(name string) error {
	err := lockedThread(func() error {
		ns, err := netns.NewNamed(name) // also moves this thread into it
		if err != nil {
			return err
		}
		ns.Close()
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	if err != nil {
		Delete(name)
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

// Delete removes the named namespace; a missing one is not an error.
func Delete(name string) error {
	if err := netns.DeleteNamed(name); err != nil && !isNotExist(err) {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// Do runs fn on a thread inside the named namespace. Sockets fn opens
// stay in that namespace after it returns.
func Do(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("netns %s: %w", name, err)
	}
	defer target.Close()
	return lockedThread(func() error {
		if err := netns.Set(target); err != nil {
			return err
		}
		return fn()
	})
}

// lockedThread runs fn on a locked OS thread and puts the thread back in
// the namespace it started in; if that fails the thread is left locked,
// so the runtime retires it instead of reusing it in the wrong namespace.
func lockedThread(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("restoring the namespace: %w", err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Command is a command that runs inside the named namespace.
func Command(ctx context.Context, name string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", name}, argv...)...)
}

// Listen opens a listener inside the named namespace.
func Listen(name, network, addr string) (ln net.Listener, err error) {
	err = Do(name, func() error {
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// Dial connects from inside the named namespace.
func Dial(ctx context.Context, name, network, addr string) (c net.Conn, err error) {
	err = Do(name, func() error {
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}
