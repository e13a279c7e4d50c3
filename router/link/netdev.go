package link

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// cloneDevice is where TUN and TAP fds come from: each open of it is
// attached to an interface with TUNSETIFF.
const cloneDevice = "/dev/net/tun"

// netdev is what TUN and TAP share on the kernel side: the interface's
// name, the MTU ConfigurePeer sets, and an open fd on the device, through
// which the device's network namespace is found wherever it has moved.
type netdev struct {
	name string
	mtu  int
	file *os.File
}

// openDevice opens a new fd on /dev/net/tun and attaches it to the
// interface name with flags, creating the interface if it does not exist
// ("" lets the kernel pick a name). The fd is non-blocking, for the Go
// runtime's poller, and close-on-exec, so that children do not keep the
// device alive. It returns the fd and the interface's name.
func openDevice(name string, flags uint16) (int, string, error) {
	fd, err := unix.Open(cloneDevice, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, "", err
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("TUNSETIFF: %w", err)
	}
	return fd, ifr.Name(), nil
}

// deviceFlags returns the interface name of a TUN or TAP fd and the flags
// it was attached with (IFF_TUN or IFF_TAP, IFF_NO_PI, IFF_VNET_HDR, ...).
func deviceFlags(fd int) (string, uint16, error) {
	ifr, err := unix.NewIfreq("")
	if err != nil {
		return "", 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.TUNGETIFF, ifr); err != nil {
		return "", 0, fmt.Errorf("TUNGETIFF: %w", err)
	}
	return ifr.Name(), ifr.Uint16(), nil
}

// netns opens the network namespace the device is in now. It follows the
// device wherever it was moved, and finds an inherited device that lives in
// another namespace than ours, which a lookup by name would miss.
// TUNGETDEVNETNS (Linux 5.2; TUN and TAP fds alike) is missing from x/sys:
// _IO('T', 227).
func (d netdev) netns() (int, error) {
	const tunGetDevNetns = 0x54e3
	rc, err := d.file.SyscallConn()
	if err != nil {
		return -1, err
	}
	var fd int
	var ioErr error
	err = rc.Control(func(s uintptr) {
		fd, ioErr = unix.IoctlRetInt(int(s), tunGetDevNetns)
	})
	if err = errors.Join(err, ioErr); err != nil {
		return -1, fmt.Errorf("TUNGETDEVNETNS: %w", err)
	}
	return fd, nil
}
