// Package link provides the devices the router reads packets from and
// writes packets to: Linux TUN devices (through golang.zx2c4.com/wireguard/tun,
// which brings batching, GSO splitting on read and GRO coalescing on write),
// Linux TAP devices (Ethernet frames, with batching and TCP segmentation of
// our own), the kernel-side setup of either (moving it into a network
// namespace, addresses, default route), and Memory, an in-memory device for
// tests.
//
// Every device reads and writes at an offset into the caller's buffers, and
// the IP packet always starts at that offset: a TUN and Memory carry bare IP
// packets, a TAP keeps the Ethernet header in the EthernetHeaderLen bytes
// before it (see TAP). Writes need at least MinHeadroom bytes of headroom,
// and buffers hold up to 65535 bytes behind the offset, because an
// offloading TUN prepends a virtio-net header and coalesces segments in
// place, and an offloading TAP reads 64 KiB super-frames.
//
// Read returns an error satisfying errors.Is(err, os.ErrClosed) once the
// device is closed; a Read blocked at that moment returns it too.
//
// # TAP offload
//
// A plain TAP fd gives one frame per read(2). TAP.Read batches anyway: it
// waits in the runtime's poller for the first frame and then reads until
// the queue is empty, so the router's per-batch work is shared. With
// TAPOptions.Offload (IFF_VNET_HDR, TUNSETOFFLOAD with CSUM, TSO4, TSO6,
// TSO_ECN) the kernel side keeps its TCP super-frames of up to 64 KiB and
// leaves checksums partial; Read cuts them into segments in the caller's
// buffers and completes the checksums, which wireguard/tun does for a TUN
// but does not export.
//
// Measured on a 2-CPU VM shared with other jobs (load average 5 to 13),
// so absolute numbers are low and noisy: two TAPs in two namespaces joined
// by a Go loop that copies every frame from Read to Write (a bridge in
// userspace), iperf3 between the namespaces, 4 s per test, modes
// interleaved; median (range) of 5 rounds:
//
//	                         TCP x1 Gbit/s     TCP x4 Gbit/s     copier CPU s/GB  TCP retransmits
//	one frame per Read       0.96 (0.40–1.17)  0.69 (0.62–0.85)  5.7 (5.5–7.0)    550–6800
//	plain, batches of 128    1.00 (0.49–1.30)  1.15 (0.74–1.35)  4.7 (4.3–5.5)    2400–6300
//	offload, batches of 128  1.39 (1.27–1.77)  1.22 (0.54–1.67)  3.6 (3.2–4.5)    0–1
//	kernel veth, same run    3.99              8.80
//
// Two more runs ranked them the same way (best TCP x1: 1.10, 1.47, 2.64
// Gbit/s; 1.49, 2.06, 2.29 with a first, copying version of the
// segmentation). The copier's CPU time per byte, the figure the load
// disturbs least, is lowest with offload in every run: the userspace
// checksum per segment costs less than the kernel's per-frame work it
// saves, and whole super-frames do not overflow the TAP's queue as
// single frames do (the retransmits above). So offload is the faster path
// for TCP and the one to use. 64-byte UDP gained or lost nothing
// measurable (50 to 240 kpps for every mode, all noise). Writing
// super-frames back whole instead of segments (GRO, not done) reached
// 9–11 Gbit/s in the same setup: the next step if TAP throughput matters.
// The plain path remains for fds opened without IFF_VNET_HDR and for
// offload = false.
package link

import "fmt"

// MinHeadroom is the least offset Write (and a TAP's Read) accepts, the
// same for every kind of device. An offloading TUN writes its 10-byte
// virtio-net header in front of the packet (wireguard-go keeps 16 bytes);
// a TAP keeps the 14-byte Ethernet header there, and with offload the
// virtio-net header in front of that.
const MinHeadroom = EthernetHeaderLen + vnetHdrLen

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
	// Malformed counts reads whose virtio-net header, GSO type or lengths
	// a TUN's wrapper or a TAP with offload rejects; the whole read was
	// lost.
	Malformed uint64
	// Runts counts TAP frames shorter than an Ethernet header.
	Runts uint64
	// TooLong counts TAP frames longer than Read's buffer.
	TooLong uint64
}
