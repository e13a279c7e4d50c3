package link

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/tun"
)

// TUNOptions says how to open a TUN device.
type TUNOptions struct {
	// Name of the device to create or attach to; "" lets the kernel pick
	// tunN. Ignored with FD ≥ 0: the fd's device has its own name.
	Name string
	// MTU is set by ConfigurePeer; 0 keeps the kernel's (1500).
	MTU int
	// Offload opens the device with IFF_VNET_HDR: batches of up to 128
	// packets, GSO super-packets split on Read, GRO on Write. Ignored with
	// FD ≥ 0: the flags the fd was opened with decide.
	Offload bool
	// FD is -1 to create the device, else an open TUN fd inherited from a
	// privileged parent (opened with IFF_TUN|IFF_NO_PI). Mind the zero
	// value: 0 means stdin. OpenTUN takes ownership of the fd, and closes
	// it on error.
	FD int
	// Queues opens a created device IFF_MULTI_QUEUE with this many queues,
	// one fd each; the kernel spreads flows over them by hash. 0 or 1 opens
	// a single-queue device. Must be ≤ 1 with FD ≥ 0.
	Queues int
}

// TUN is an open TUN device: one Queue per fd. The kernel deletes a device
// this package created when its last fd is closed, in whatever network
// namespace the device is by then; a persistent (TUNSETPERSIST) device that
// was attached to, or an inherited one kept open elsewhere, stays.
type TUN struct {
	dev    netdev // its file is the first queue's
	queues []*Queue
}

// OpenTUN creates the device (or wraps the inherited fd) and opens its
// queues. It neither sets the MTU nor brings the link up: ConfigurePeer
// does, with CAP_NET_ADMIN. A created link stays down until then, and
// writes to a down TUN fail with EIO.
//
// Every fd is wrapped with tun.CreateUnmonitoredTUNFromFD, so wireguard's
// netlink listener never runs: it listens in the namespace the device was
// created in and hears nothing once the device moves; its Events channel
// (5 slots) blocks it unless drained; a netlink error on its socket (ENOBUFS
// when link events burst) would come out of Read; and its MTU calls look the
// name up in the calling thread's namespace (ENODEV once the device moved).
// The router tracks the MTU itself and needs no events.
func OpenTUN(opt TUNOptions) (*TUN, error) {
	if opt.FD >= 0 {
		return inheritTUN(opt)
	}
	return createTUN(opt)
}

func inheritTUN(opt TUNOptions) (*TUN, error) {
	if opt.Queues > 1 || opt.Queues < 0 {
		unix.Close(opt.FD)
		return nil, fmt.Errorf("link: an inherited TUN fd is one queue; queues must be 1, not %d", opt.Queues)
	}
	// Our children (and the router's) must not keep the device alive.
	unix.CloseOnExec(opt.FD)
	q, name, err := adopt(opt.FD)
	if err != nil {
		return nil, fmt.Errorf("link: inherited fd %d: %w", opt.FD, err)
	}
	return &TUN{dev: netdev{name: name, mtu: opt.MTU, file: q.dev.File()}, queues: []*Queue{q}}, nil
}

func createTUN(opt TUNOptions) (*TUN, error) {
	if opt.Queues < 0 {
		return nil, fmt.Errorf("link: tun %q: %d queues", opt.Name, opt.Queues)
	}
	flags := uint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if opt.Offload {
		flags |= unix.IFF_VNET_HDR
	}
	n := max(opt.Queues, 1)
	if n > 1 {
		flags |= unix.IFF_MULTI_QUEUE
	}
	t := &TUN{dev: netdev{name: opt.Name, mtu: opt.MTU}}
	for range n {
		if err := t.openQueue(flags); err != nil {
			t.Close()
			return nil, fmt.Errorf("link: tun %q: %w", opt.Name, err)
		}
	}
	return t, nil
}

// openQueue opens one more fd on the device. The first fd of an unnamed
// device gets a name from the kernel; later ones attach to it by that name.
func (t *TUN) openQueue(flags uint16) error {
	fd, _, err := openDevice(t.dev.name, flags)
	if err != nil {
		return err
	}
	q, name, err := adopt(fd)
	if err != nil {
		return err
	}
	if len(t.queues) == 0 {
		t.dev.name, t.dev.file = name, q.dev.File()
	}
	t.queues = append(t.queues, q)
	return nil
}

// adopt wraps a TUN fd. It makes the wireguard constructor's own ioctls
// first: once the constructor has put the fd in an *os.File, a failure would
// leave that file's GC cleanup to close the fd, and closing it here as well
// could close an unrelated, reused fd. So on error before that point the fd
// is closed here; after it, it is left to the cleanup.
func adopt(fd int) (*Queue, string, error) {
	name, err := checkTUNFd(fd)
	if err != nil {
		unix.Close(fd)
		return nil, "", err
	}
	dev, _, err := tun.CreateUnmonitoredTUNFromFD(fd)
	if err != nil {
		return nil, "", err
	}
	return &Queue{dev: dev}, name, nil
}

// checkTUNFd returns the device name of a TUN fd and rejects fds the wrapper
// would misread: TAP (Ethernet frames), or without IFF_NO_PI (a 4-byte
// packet-info header before each packet).
func checkTUNFd(fd int) (string, error) {
	name, flags, err := deviceFlags(fd)
	if err != nil {
		return "", fmt.Errorf("not a TUN fd: %w", err)
	}
	if flags&unix.IFF_TUN == 0 {
		return "", errors.New("not a TUN (IFF_TUN) device")
	}
	if flags&unix.IFF_NO_PI == 0 {
		return "", errors.New("TUN fd without IFF_NO_PI")
	}
	if flags&unix.IFF_VNET_HDR != 0 {
		// The same offloads the wrapper asks for; it fails the same way.
		const offloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
		if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offloads); err != nil {
			return "", fmt.Errorf("TUNSETOFFLOAD: %w", err)
		}
	}
	return name, nil
}

// Name is the device's interface name.
func (t *TUN) Name() string { return t.dev.name }

// ConfigurePeer sets up the kernel side of the device through netlink: it
// moves the link into p.Netns, then, in the namespace the link is in, sets
// the MTU (when TUNOptions.MTU > 0), brings the link up, adds p.Addresses
// (IPv6 without duplicate address detection, so they are usable at once)
// and the default routes. With a zero Peer it only sets the MTU and brings
// the link up. It needs CAP_NET_ADMIN over the device's namespace (and the
// target's), and fails rather than replace an existing default route.
func (t *TUN) ConfigurePeer(p Peer) error { return t.dev.configurePeer(p) }

// Queues are the device's queues, each a device of its own for the router:
// give each its own reader. Writes may go to any queue; separate queues let
// writers run in parallel (each queue serialises its own writes).
func (t *TUN) Queues() []*Queue { return t.queues }

// Close closes every queue. Calling it again, or after closing queues one
// by one, is harmless.
func (t *TUN) Close() error {
	var errs []error
	for _, q := range t.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// Queue is one fd of a TUN device.
type Queue struct {
	dev          tun.Device
	truncatedGSO atomic.Uint64
	malformed    atomic.Uint64
}

// Drops reports what Read has dropped so far.
func (q *Queue) Drops() ReadDrops {
	return ReadDrops{TruncatedGSO: q.truncatedGSO.Load(), Malformed: q.malformed.Load()}
}

// BatchSize is the most packets one Read returns and one Write should get:
// 128 with offload, else 1.
func (q *Queue) BatchSize() int { return q.dev.BatchSize() }

// Read reads the packets of one read(2) into bufs[i][offset:offset+sizes[i]].
// With offload that is one packet or the MTU-sized segments of one GSO
// super-packet, so pass BatchSize buffers of 65535+offset bytes. It may
// return 0 packets with a nil error: the read was dropped (see Drops). An
// error means the queue is finished: os.ErrClosed after Close, or an I/O
// error of the fd.
func (q *Queue) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := q.dev.Read(bufs, sizes, offset)
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, tun.ErrTooManySegments):
		// The segments returned are valid; the wrapper says so itself.
		q.truncatedGSO.Add(1)
		return n, nil
	case errors.Is(err, os.ErrClosed):
		return 0, os.ErrClosed
	case isFileError(err):
		return 0, err
	default:
		q.malformed.Add(1)
		return 0, nil
	}
}

// isFileError tells errors of read(2) on the fd, which end the queue, from
// the wrapper's complaints about one read's content, which do not.
func isFileError(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe)
}

// Write writes the packets bufs[i][offset:]; offset must be at least
// MinHeadroom. With offload, segments of the same TCP or UDP flow are
// coalesced in place, so the buffers need spare capacity. It returns
// len(bufs) on success. On error it returns 0, and some packets may still
// have been written (each coalesced packet is its own write(2)).
func (q *Queue) Write(bufs [][]byte, offset int) (int, error) {
	if err := checkHeadroom(offset); err != nil {
		return 0, err
	}
	// The wrapper returns a byte count; the router counts packets.
	if _, err := q.dev.Write(bufs, offset); err != nil {
		return 0, err
	}
	return len(bufs), nil
}

// Close closes this queue's fd, unblocking a Read in progress.
func (q *Queue) Close() error { return q.dev.Close() }
