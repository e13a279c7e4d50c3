package link

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// EthernetHeaderLen is the length of the Ethernet header a TAP frame starts
// with: destination MAC, source MAC, EtherType. A TAP keeps it in the
// EthernetHeaderLen bytes before the offset of Read and Write.
const EthernetHeaderLen = header.EthernetMinimumSize

// tapBatch is the most frames one TAP Read returns, and the number of
// buffers the router should pass. It matches the TUN's 128: a super-frame
// of 64 KiB makes about 45 segments at a 1500-byte MTU, so a batch holds
// two or three of them.
const tapBatch = 128

// TAPOptions says how to open a TAP device.
type TAPOptions struct {
	// Name of the device to create or attach to; "" lets the kernel pick
	// tapN. Ignored with FD ≥ 0: the fd's device has its own name.
	Name string
	// MTU is set by ConfigurePeer; 0 keeps the kernel's (1500). It is the
	// IP MTU: frames are up to EthernetHeaderLen bytes longer.
	MTU int
	// Offload opens the device with IFF_VNET_HDR and TCP segmentation
	// offload: the kernel hands over TCP super-frames of up to 64 KiB,
	// which Read cuts into MTU-sized segments (see the package doc for
	// why). Ignored with FD ≥ 0: the flags the fd was opened with decide.
	Offload bool
	// FD is -1 to create the device, else an open TAP fd inherited from a
	// privileged parent (opened with IFF_TAP|IFF_NO_PI, with or without
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
// or strips the link layer without moving it. With offload, the 10 bytes
// before the Ethernet header carry the virtio-net header on both Read and
// Write, which is why offset must be at least MinHeadroom. 802.1Q-tagged
// frames are passed up as they are: their EtherType is 0x8100 and the tag
// sits at offset.
//
// Read, Write and Close may be called concurrently; concurrent Reads take
// turns. The kernel deletes a device this package created when the TAP is
// closed, in whatever network namespace the device is by then.
type TAP struct {
	dev    netdev
	conn   syscall.RawConn
	vnet   bool // IFF_VNET_HDR: a virtio-net header before each frame
	closed atomic.Bool

	readMu sync.Mutex // serialises Reads, for the carry fields
	// carry is a super-frame whose segments did not all fit in the
	// buffers of the Read that read it; the next Reads return the rest.
	carry    superFrame
	carried  int    // segments of carry already returned
	carryBuf []byte // holds carry.frame: the caller reuses its buffers

	runts, tooLong, malformed atomic.Uint64 // see ReadDrops
}

// OpenTAP creates the device (or wraps the inherited fd). Like OpenTUN it
// neither sets the MTU nor brings the link up: ConfigurePeer does, with
// CAP_NET_ADMIN.
func OpenTAP(opt TAPOptions) (*TAP, error) {
	if opt.FD >= 0 {
		return inheritTAP(opt)
	}
	flags := uint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if opt.Offload {
		flags |= unix.IFF_VNET_HDR
	}
	fd, name, err := openDevice(opt.Name, flags)
	if err == nil && opt.Offload {
		if err = setOffloads(fd); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("link: tap %q: %w", opt.Name, err)
	}
	return newTAP(fd, name, opt.MTU, opt.Offload)
}

func inheritTAP(opt TAPOptions) (*TAP, error) {
	name, vnet, err := checkTAPFd(opt.FD)
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
	return newTAP(opt.FD, name, opt.MTU, vnet)
}

// checkTAPFd returns the device name of a TAP fd and whether it has
// IFF_VNET_HDR, and rejects fds whose frames Read would misplace: TUN (no
// Ethernet header), or without IFF_NO_PI (a 4-byte packet-info header
// first). An fd with IFF_VNET_HDR gets the header size and offloads Read
// expects.
func checkTAPFd(fd int) (string, bool, error) {
	name, flags, err := deviceFlags(fd)
	switch {
	case err != nil:
		return "", false, fmt.Errorf("not a TAP fd: %w", err)
	case flags&unix.IFF_TAP == 0:
		return "", false, errors.New("not a TAP (IFF_TAP) device")
	case flags&unix.IFF_NO_PI == 0:
		return "", false, errors.New("TAP fd without IFF_NO_PI")
	case flags&unix.IFF_VNET_HDR == 0:
		return name, false, nil
	}
	// The parent may have set another header size (12 with mergeable
	// buffers); Read and Write place exactly vnetHdrLen bytes.
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		return "", false, fmt.Errorf("TUNSETVNETHDRSZ: %w", err)
	}
	if err := setOffloads(fd); err != nil {
		return "", false, err
	}
	return name, true, nil
}

func setOffloads(fd int) error {
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, tapOffloads); err != nil {
		return fmt.Errorf("TUNSETOFFLOAD: %w", err)
	}
	return nil
}

// newTAP wraps a non-blocking TAP fd. From os.NewFile on, the file owns the
// fd, and it registers the fd with the runtime's poller: Read then parks
// its goroutine instead of a thread while the link is idle, and Close wakes
// it.
func newTAP(fd int, name string, mtu int, vnet bool) (*TAP, error) {
	f := os.NewFile(uintptr(fd), cloneDevice)
	conn, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("link: tap %s: %w", name, err)
	}
	return &TAP{dev: netdev{name: name, mtu: mtu, file: f}, conn: conn, vnet: vnet}, nil
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

// Drops reports what Read has dropped so far: Runts, TooLong, and with
// offload Malformed.
func (t *TAP) Drops() ReadDrops {
	return ReadDrops{Runts: t.runts.Load(), TooLong: t.tooLong.Load(), Malformed: t.malformed.Load()}
}

// prefix is what the kernel puts before the Ethernet header.
func (t *TAP) prefix() int {
	if t.vnet {
		return vnetHdrLen
	}
	return 0
}

// Read blocks until at least one frame has arrived, then returns every
// frame that is already queued, up to len(bufs), without waiting for more:
// a busy link gives batches, a quiet one single frames without delay. Each
// frame goes to bufs[i][offset-EthernetHeaderLen:], so its payload starts
// at offset, and sizes[i] is its length after the Ethernet header. With
// offload a TCP super-frame comes back as its MTU-sized segments, in
// consecutive buffers, with complete checksums; segments that do not fit
// in bufs come first in the next Read. offset must be at least MinHeadroom;
// buffers of offset+65535 bytes hold any frame the kernel sends. Frames
// Read cannot return are dropped and counted (Drops). An error means the
// device is finished: os.ErrClosed after Close, or an I/O error of the fd.
func (t *TAP) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if err := checkHeadroom(offset); err != nil {
		return 0, err
	}
	t.readMu.Lock()
	defer t.readMu.Unlock()
	n := t.takeCarried(bufs, sizes, offset)
	if n == len(bufs) {
		return n, nil
	}
	var readErr error
	// The kernel cuts a frame to the buffer and returns the length it
	// copied, so only a byte read past the buffer, into spare, tells a
	// frame that did not fit from one that filled it exactly.
	var spare [1]byte
	// The callback runs again each time the poller reports the fd
	// readable, for as long as it returns false.
	err := t.conn.Read(func(fd uintptr) bool {
		for n < len(bufs) {
			b := bufs[n][offset-EthernetHeaderLen-t.prefix():]
			m, err := unix.Readv(int(fd), [][]byte{b, spare[:]})
			switch {
			case err == unix.EINTR:
			case err == unix.EAGAIN:
				return n > 0 // nothing queued: wait only if we have nothing
			case err != nil:
				readErr = err
				return true
			case m > len(b):
				t.tooLong.Add(1)
			case m < t.prefix()+EthernetHeaderLen:
				t.runts.Add(1)
			case t.vnet:
				n = t.takeVnet(bufs, sizes, offset, n, b[:m])
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

// takeVnet takes the frame b, read with its virtio-net header into
// bufs[n], and returns how many buffers are filled now: one for an
// ordinary frame, whose checksum it completes if the kernel left it
// partial; one per segment for a super-frame, or every buffer left when
// the segments do not all fit, the rest then carried to the next Read.
func (t *TAP) takeVnet(bufs [][]byte, sizes []int, offset, n int, b []byte) int {
	h := parseVnetHdr(b)
	frame := b[vnetHdrLen:]
	if h.gsoType == vnetGSONone {
		if h.flags&vnetNeedsCsum != 0 && !completeChecksum(h, frame) {
			t.malformed.Add(1)
			return n
		}
		sizes[n] = len(frame) - EthernetHeaderLen
		return n + 1
	}
	s, ok := parseSuperFrame(h, frame)
	if !ok {
		t.malformed.Add(1)
		return n
	}
	if s.segs > len(bufs)-n {
		// Buffers run out. bufs[n] is about to be overwritten with a
		// segment, so the super-frame moves to a buffer of our own.
		if t.carryBuf == nil {
			t.carryBuf = make([]byte, 0, maxFrame)
		}
		t.carryBuf = append(t.carryBuf[:0], frame...)
		s.frame = t.carryBuf
		t.carry, t.carried = s, 0
		return n + t.takeCarried(bufs[n:], sizes[n:], offset)
	}
	// Segment 0 stays where it was read: every other segment is copied
	// out of it first.
	for i := s.segs - 1; i >= 0; i-- {
		sizes[n+i] = s.segment(i, bufs[n+i][offset-EthernetHeaderLen:]) - EthernetHeaderLen
	}
	return n + s.segs
}

// maxFrame is the longest frame a TAP hands over: an IP packet of up to
// 64 KiB behind the Ethernet header.
const maxFrame = EthernetHeaderLen + 65535

// takeCarried returns segments of the carried super-frame in bufs, as
// many as fit, and how many it returned.
func (t *TAP) takeCarried(bufs [][]byte, sizes []int, offset int) int {
	n := 0
	for ; t.carried < t.carry.segs && n < len(bufs); n++ {
		sizes[n] = t.carry.segment(t.carried, bufs[n][offset-EthernetHeaderLen:]) - EthernetHeaderLen
		t.carried++
	}
	return n
}

// Write writes each frame bufs[i][offset-EthernetHeaderLen:] with one
// write(2): the caller has put the Ethernet header in the EthernetHeaderLen
// bytes before offset, the payload from offset on, with complete
// checksums. offset must be at least MinHeadroom; with offload Write puts
// an empty virtio-net header before the Ethernet header. It returns
// len(bufs) on success; on error, the number of frames written before the
// one that failed (os.ErrClosed once the device is closed; EIO while the
// link is down).
func (t *TAP) Write(bufs [][]byte, offset int) (int, error) {
	if err := checkHeadroom(offset); err != nil {
		return 0, err
	}
	start := offset - EthernetHeaderLen - t.prefix()
	if t.vnet {
		// No offload asked of the kernel: GSO type none, no checksum to
		// finish.
		for _, b := range bufs {
			clear(b[start : start+vnetHdrLen])
		}
	}
	n := 0
	var writeErr error
	err := t.conn.Write(func(fd uintptr) bool {
		for n < len(bufs) {
			_, err := unix.Write(int(fd), bufs[n][start:])
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
