// Package link provides the devices the router reads packets from and
// writes packets to: Linux TUN devices (through golang.zx2c4.com/wireguard/tun,
// which brings batching, GSO splitting on read and GRO coalescing on write),
// the kernel-side setup of such a device (moving it into a network namespace,
// addresses, default route), and Memory, an in-memory device for tests.
//
// Every device reads and writes IP packets at an offset into the caller's
// buffers. Writes need at least MinHeadroom bytes of headroom before each
// packet, and buffers with spare capacity behind it (up to 65535 bytes plus
// headroom), because an offloading TUN prepends a virtio-net header and
// coalesces segments in place.
//
// Read returns an error satisfying errors.Is(err, os.ErrClosed) once the
// device is closed; a Read blocked at that moment returns it too.
package link

import "fmt"

// MinHeadroom is the least offset Write accepts. An offloading TUN writes its
// 10-byte virtio-net header in front of the packet; wireguard-go keeps 16
// bytes, and so do we so that every device kind has the same contract.
const MinHeadroom = 16

func checkHeadroom(offset int) error {
	if offset < MinHeadroom {
		return fmt.Errorf("link: write offset %d is below the headroom of %d bytes", offset, MinHeadroom)
	}
	return nil
}

// ReadDrops counts what a device's Read dropped instead of failing. Each
// kind of device fills the fields that apply to it.
type ReadDrops struct {
	// TruncatedGSO counts super-packets with more segments than a TUN Read
	// was given buffers; the segments that did not fit were lost.
	TruncatedGSO uint64
	// Malformed counts TUN reads the wrapper could not parse (virtio-net
	// header, GSO type or lengths it rejects); the whole read was lost.
	Malformed uint64
	// Runts counts TAP frames shorter than an Ethernet header.
	Runts uint64
}
