// Package caps narrows the Linux capabilities of the process to those it
// still needs: once tungate's devices are open, a router that keeps
// CAP_NET_ADMIN (to open the devices a reload adds) has no use for the
// others, and a router on handed-in fds needs none.
//
// Capabilities are per thread on Linux, and a Go program has many, so
// every change goes through syscall.AllThreadsSyscall. That needs a
// program built without cgo, as tungate's static binary is; built with
// cgo, Keep reports ErrCgo and changes nothing. (libcap's Go package does
// the same with cgo too, but then needs linker flags that wrap
// pthread_create in every build; the static binary does not need them.)
package caps

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrCgo: the program was built with cgo, and the threads' capabilities
// cannot all be changed together.
var ErrCgo = errors.New("caps: built with cgo: capabilities left as they are (build with CGO_ENABLED=0)")

// The capabilities tungate may keep.
const (
	NetAdmin = unix.CAP_NET_ADMIN // create TUN/TAP devices, configure links
	SysAdmin = unix.CAP_SYS_ADMIN // enter a network namespace (interfaces with netns)
)

// Keep reduces every thread's permitted and effective sets to keep (those
// of them the process has), empties the inheritable and ambient sets (what
// tungate runs needs nothing), and,
// when the process may (CAP_SETPCAP), drops the others from the bounding
// set too, so that nothing it runs gets them back. It returns the
// capabilities left effective.
func Keep(keep ...int) (left []int, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("caps: capget: %w", err)
	}
	var want [2]uint32
	for _, c := range keep {
		want[c/32] |= 1 << (c % 32)
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0); e != 0 {
		if e == syscall.ENOTSUP {
			return nil, ErrCgo
		}
		return nil, fmt.Errorf("caps: clearing the ambient set: %w", e)
	}
	if data[0].Effective&(1<<unix.CAP_SETPCAP) != 0 {
		last, err := lastCap()
		if err != nil {
			return nil, err
		}
		for c := 0; c <= last; c++ {
			if want[c/32]&(1<<(c%32)) != 0 {
				continue
			}
			if _, _, e := syscall.AllThreadsSyscall(unix.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0); e != 0 {
				return nil, fmt.Errorf("caps: dropping %d from the bounding set: %w", c, e)
			}
		}
	}
	for i := range data {
		set := data[i].Permitted & want[i]
		data[i] = unix.CapUserData{Effective: set, Permitted: set}
	}
	if _, _, e := syscall.AllThreadsSyscall(unix.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return nil, fmt.Errorf("caps: capset: %w", e)
	}
	for _, c := range keep {
		if data[c/32].Effective&(1<<(c%32)) != 0 {
			left = append(left, c)
		}
	}
	return left, nil
}

// lastCap is the highest capability this kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("caps: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Name is a capability's name as capabilities(7) writes it.
func Name(c int) string {
	switch c {
	case NetAdmin:
		return "CAP_NET_ADMIN"
	case SysAdmin:
		return "CAP_SYS_ADMIN"
	}
	return "CAP_" + strconv.Itoa(c)
}
