package link

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// EthernetHeaderLen is the length of the Ethernet header a TAP frame starts
// with: destination MAC, source MAC, EtherType. A TAP keeps it in the
// EthernetHeaderLen bytes before the offset of Read and Write.
const EthernetHeaderLen = header.EthernetMinimumSize

// tapBatch is the most frames one TAP Read returns. A plain TAP fd gives
// one frame per read(2), so the batch costs one syscall per frame anyway;
// what it saves is the poller round trip and the router's per-batch work
// (snapshot load, counter flush, one Write per egress). See the package
// documentation for the measurement.
const tapBatch = 64

// TAPOptions says how to open a TAP device.
type TAPOptions struct {
	// Name of the device to create or attach to; "" lets the kernel pick
	// tapN. Ignored with FD ≥ 0: the fd's device has its own name.
	Name string
	// MTU is set by ConfigurePeer; 0 keeps the kernel's (1500). It is the
	// IP MTU: frames are up to EthernetHeaderLen bytes longer.
	MTU int
	// FD is -1 to create the device, else an open TAP fd inherited from a
	// privileged parent (opened with IFF_TAP|IFF_NO_PI, without
	// IFF_VNET_HDR). Mind the zero value: 0 means stdin. OpenTAP takes
	// ownership of the fd, and closes it on error.
	FD int
}

// TAP is an open TAP device: an Ethernet link whose kernel side is an
// ordinary Linux interface with a MAC address of its own, which ARPs,
// answers ARP and does Neighbor Discovery itself. The router's MAC (see
// MACFor) appears only in the frames the router writes.
//
// Frames sit in the caller's buffers with the Ethernet header in the
// EthernetHeaderLen bytes before offset and the payload (an IP packet, an
// ARP packet, or whatever the EtherType says) from offset on:
//
//	bufs[i][offset-EthernetHeaderLen : offset]  Ethernet header
//	bufs[i][offset : offset+sizes[i]]           payload
//
// so the router sees the IP packet at the same offset as on a TUN, and adds
// or strips the link layer without moving it. 802.1Q-tagged frames are
// passed up as they are: their EtherType is 0x8100 and the tag sits at
// offset.
//
// Read, Write and Close may be called concurrently. The kernel deletes a
// device this package created when the TAP is closed, in whatever network
// namespace the device is by then.
type TAP struct {
	dev    netdev
	conn   syscall.RawConn
	closed atomic.Bool
	runts  atomic.Uint64
}

// OpenTAP creates the device (or wraps the inherited fd). Like OpenTUN it
// neither sets the MTU nor brings the link up: ConfigurePeer does, with
// CAP_NET_ADMIN.
func OpenTAP(opt TAPOptions) (*TAP, error) {
	if opt.FD >= 0 {
		return inheritTAP(opt)
	}
	fd, name, err := openDevice(opt.Name, unix.IFF_TAP|unix.IFF_NO_PI)
	if err != nil {
		return nil, fmt.Errorf("link: tap %q: %w", opt.Name, err)
	}
	return newTAP(fd, name, opt.MTU)
}

func inheritTAP(opt TAPOptions) (*TAP, error) {
	name, err := checkTAPFd(opt.FD)
	if err == nil {
		// Our children (and the router's) must not keep the device alive,
		// and the poller needs a non-blocking fd.
		unix.CloseOnExec(opt.FD)
		err = unix.SetNonblock(opt.FD, true)
	}
	if err != nil {
		unix.Close(opt.FD)
		return nil, fmt.Errorf("link: inherited fd %d: %w", opt.FD, err)
	}
	return newTAP(opt.FD, name, opt.MTU)
}

// checkTAPFd returns the device name of a TAP fd and rejects fds whose
// frames Read would misplace: TUN (no Ethernet header), without IFF_NO_PI
// (a 4-byte packet-info header first) or with IFF_VNET_HDR (a virtio-net
// header first, and super-frames once offloads are on).
func checkTAPFd(fd int) (string, error) {
	name, flags, err := deviceFlags(fd)
	switch {
	case err != nil:
		return "", fmt.Errorf("not a TAP fd: %w", err)
	case flags&unix.IFF_TAP == 0:
		return "", errors.New("not a TAP (IFF_TAP) device")
	case flags&unix.IFF_NO_PI == 0:
		return "", errors.New("TAP fd without IFF_NO_PI")
	case flags&unix.IFF_VNET_HDR != 0:
		return "", errors.New("TAP fd with IFF_VNET_HDR; open it without")
	}
	return name, nil
}

// newTAP wraps a non-blocking TAP fd. From os.NewFile on, the file owns the
// fd, and it registers the fd with the runtime's poller: Read then parks
// its goroutine instead of a thread while the link is idle, and Close wakes
// it.
func newTAP(fd int, name string, mtu int) (*TAP, error) {
	f := os.NewFile(uintptr(fd), cloneDevice)
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link: tap %s: %w", name, err)
	}
	return &TAP{dev: netdev{name: name, mtu: mtu, file: f}, conn: conn}, nil
}

// Name is the device's interface name, the same in whatever namespace the
// device is: tests and callers that attach the kernel side to a bridge find
// the link by it.
func (t *TAP) Name() string { return t.dev.name }

// ConfigurePeer sets up the kernel side of the device as TUN.ConfigurePeer
// does, with TAPOptions.MTU. The kernel side then resolves the gateways by
// ARP and Neighbor Discovery, which the router answers.
func (t *TAP) ConfigurePeer(p Peer) error { return t.dev.configurePeer(p) }

// BatchSize is the most frames one Read returns.
func (t *TAP) BatchSize() int { return tapBatch }

// Drops reports what Read has dropped so far (Runts).
func (t *TAP) Drops() ReadDrops { return ReadDrops{Runts: t.runts.Load()} }

// Read blocks until at least one frame has arrived, then returns every
// frame that is already queued, up to len(bufs), without waiting for more:
// a busy link gives batches, a quiet one single frames without delay. Each
// frame goes to bufs[i][offset-EthernetHeaderLen:], so its payload starts
// at offset, and sizes[i] is its length after the Ethernet header. offset
// must be at least EthernetHeaderLen; buffers of offset+65535 bytes hold
// any untagged frame (a longer frame would be cut to the buffer). Frames
// shorter than an Ethernet header are dropped and counted (Drops). An error
// means the device is finished: os.ErrClosed after Close, or an I/O error
// of the fd.
func (t *TAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if offset < EthernetHeaderLen {
		return 0, fmt.Errorf("link: tap read offset %d leaves no room for the %d-byte Ethernet header", offset, EthernetHeaderLen)
	}
	n := 0
	var readErr error
	// The callback runs again each time the poller reports the fd
	// readable, for as long as it returns false.
	err := t.conn.Read(func(fd uintptr) bool {
		for n < len(bufs) {
			m, err := unix.Read(int(fd), bufs[n][offset-EthernetHeaderLen:])
			switch {
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return n > 0 // nothing queued: wait only if we have nothing
			case err != nil:
				readErr = err
				return true
			case m < EthernetHeaderLen:
				t.runts.Add(1)
			default:
				sizes[n] = m - EthernetHeaderLen
				n++
			}
		}
		return true
	})
	switch {
	case err != nil && t.closed.Load():
		return 0, os.ErrClosed
	case err != nil:
		return 0, err
	case n == 0:
		return 0, &os.PathError{Op: "read", Path: t.dev.name, Err: readErr}
	}
	// An error after some frames is the fd's, not theirs; the next Read
	// meets it again.
	return n, nil
}

// Write writes each frame bufs[i][offset-EthernetHeaderLen:] with one
// write(2): the caller has put the Ethernet header in the EthernetHeaderLen
// bytes before offset, the payload from offset on. offset must be at least
// MinHeadroom. It returns len(bufs) on success; on error, the number of
// frames written before the one that failed (os.ErrClosed once the device
// is closed; EIO while the link is down).
func (t *TAP) Write(bufs [][]byte, offset int) (int, error) {
	if err := checkHeadroom(offset); err != nil {
		return 0, err
	}
	n := 0
	var writeErr error
	err := t.conn.Write(func(fd uintptr) bool {
		for n < len(bufs) {
			_, err := unix.Write(int(fd), bufs[n][offset-EthernetHeaderLen:])
			switch err {
			case nil:
				n++
			case unix.EINTR:
			case unix.EAGAIN:
				return false // the socket's send buffer is full: wait for room
			default:
				writeErr = err
				return true
			}
		}
		return true
	})
	switch {
	case err != nil && t.closed.Load():
		return n, os.ErrClosed
	case err != nil:
		return n, err
	case writeErr != nil:
		return n, &os.PathError{Op: "write", Path: t.dev.name, Err: writeErr}
	}
	return n, nil
}

// Close closes the fd, unblocking a Read or Write in progress. Closing
// again is harmless.
func (t *TAP) Close() error {
	if t.closed.Swap(true) {
		return nil
	}
	return t.dev.file.Close()
}

// MACFor is the router's MAC on the interface name when the config gives
// none: the first six bytes of SHA-256(name), made a locally administered
// (0x02 set) unicast (0x01 clear) address, as IEEE 802 reserves for
// addresses not assigned by a vendor. It depends on the name only, so it
// survives restarts and neighbors' caches stay right; two routers on one
// segment with the same interface name would share it, and need `mac`.
func MACFor(name string) [6]byte {
	sum := sha256.Sum256([]byte(name))
	var mac [6]byte
	copy(mac[:], sum[:])
	mac[0] = mac[0]&^0x01 | 0x02
	return mac
}
