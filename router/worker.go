package router

import (
	"errors"
	"os"

	"gvisor.dev/gvisor/pkg/tcpip/header"
	"time"

	"github.com/tungate/tungate/router/fragment"
	"github.com/tungate/tungate/router/packet"
)

// Headroom is the space before each packet in a buffer: wireguard's tun
// writes its 10-byte virtio header there, a TAP device its Ethernet
// header.
const Headroom = 64

// bufferSize leaves room for the largest IP packet after the headroom,
// which GRO coalescing on write needs.
const bufferSize = Headroom + 65535

// reader is where a reader goroutine gets its packets: a Device, or the
// router's own stack.
type reader interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	BatchSize() int
}

// worker is one reader goroutine's private state: its buffers, packets,
// output groups and counters. Nothing in it is shared.
type worker struct {
	r      *Router
	name   string // of the interface, or "local", for the log
	in     int    // interface index, or packet.NoInterface for the local stack
	queue  int    // which queue of in it reads; it writes to the same-numbered queue of the egress
	bufs   [][]byte
	sizes  []int
	pkts   []packet.Packet
	out    [][][]byte // per egress interface: the batch to write
	spare  [][]byte   // extra buffers for IPv4 fragments, reused per batch
	spares int        // how many of spare this batch uses
	views  [][]byte   // fragment's view of the spares it was given
	waited []heldFragment
	counts batchCounters
}

func (r *Router) newWorker(src reader, name string, in, queue int) *worker {
	n := src.BatchSize()
	w := &worker{r: r, name: name, in: in, queue: queue, bufs: make([][]byte, n), sizes: make([]int, n), pkts: make([]packet.Packet, n)}
	for i := range w.bufs {
		w.bufs[i] = make([]byte, bufferSize)
	}
	return w
}

// outputs makes room for an output group per interface of s: a reload
// may have added interfaces.
func (w *worker) outputs(s *snapshot) {
	for len(w.out) < len(s.devs) {
		w.out = append(w.out, make([][]byte, 0, len(w.bufs)))
	}
}

// readLoop reads batches from src until it is closed and takes each
// through the pipeline.
func (r *Router) readLoop(src reader, name string, in, queue int) {
	w := r.newWorker(src, name, in, queue)
	for {
		n, err := src.Read(w.bufs, w.sizes, Headroom)
		if n > 0 {
			w.batch(n)
		}
		if err != nil {
			if isClosed(err) {
				return
			}
			r.log.Warn("read failed", "iface", w.name, "err", err)
			time.Sleep(10 * time.Millisecond) // a failing device must not spin a core
		}
	}
}

// batch takes the first n buffers through the pipeline and writes what
// leaves.
func (w *worker) batch(n int) {
	s := w.r.snap.Load()
	w.outputs(s)
	from, origin, tap := 0, packet.Forwarded, false
	if w.in == packet.NoInterface {
		from, origin = s.pipe.originAt, packet.Local
	} else {
		dev := s.devs[w.in]
		if dev == nil {
			return // a reload removed the interface; its device is closing
		}
		tap = s.ifaces[w.in].tap
		c := &dev.counters
		c.rxPackets.Add(uint64(n))
		var bytes int
		for _, size := range w.sizes[:n] {
			bytes += size
		}
		c.rxBytes.Add(uint64(bytes))
		if cs := &dev.captures; cs.running() {
			for i := range n {
				cs.record(w.bufs[i][frameStart(tap) : Headroom+w.sizes[i]])
			}
		}
	}
	for i := range n {
		p := &w.pkts[i]
		*p = packet.Packet{Buf: w.bufs[i], Start: Headroom, Len: w.sizes[i], In: w.in, Out: packet.NoInterface, Origin: origin}
		if tap && !w.linkIn(s, p) {
			continue
		}
		if origin == packet.Local {
			// The router's own packets skip validate and local, but the
			// stages after them read the parsed view. Config puts validate
			// first, so its counters take a failure.
			if r := p.Parse(); r != packet.ReasonNone {
				w.counts.drop(0, r)
				continue
			}
		}
		w.process(s, p, from)
	}
	// Later fragments that waited for a first fragment of this batch go
	// through the pipeline now, in the spare buffers.
	for len(w.waited) > 0 {
		h := w.waited[0]
		w.waited = w.waited[1:]
		first, views := w.takeSpares(1)
		p := &packet.Packet{Buf: w.spare[first], Start: Headroom, Len: copy(views[0], h.pkt), In: h.in, Out: packet.NoInterface}
		w.process(s, p, 0)
	}
	w.flush(s)
}

// process takes p through the pipeline from stage from, accounts it to
// its flow, and queues it for output.
func (w *worker) process(s *snapshot, p *packet.Packet, from int) {
	switch s.pipe.run(p, from, &w.counts) {
	case packet.Continue:
		if !w.r.track(s, p) {
			w.counts.outputDrops[packet.ReasonFlowRace]++
			return
		}
		w.waited = append(w.waited, w.r.firstFragment(p)...)
		w.send(s, p)
	case packet.Taken:
		// Waiting for its next hop's address, a new conversation's first
		// packet has made its flow all the same; a first fragment lets its
		// later ones follow it into the queue.
		w.r.track(s, p)
		if p.Out != packet.NoInterface {
			w.waited = append(w.waited, w.r.firstFragment(p)...)
		}
	default:
		forgetFlow(p)
	}
}

// send queues p for its egress device, fragmenting an IPv4 packet that is
// too big for the link (the ttl stage has refused those with DF set).
func (w *worker) send(s *snapshot, p *packet.Packet) {
	if p.Out < 0 || p.Out >= len(w.out) {
		w.counts.outputDrops[packet.ReasonNoRoute]++
		return
	}
	mtu := s.ifaces[p.Out].mtu
	if p.Len <= mtu {
		w.out[p.Out] = append(w.out[p.Out], p.Buf[:p.Start+p.Len])
		return
	}
	w.fragment(p, mtu)
}

// flush writes each egress group as one batch and publishes the counters.
func (w *worker) flush(s *snapshot) {
	// The counters go first: whoever sees a packet leave sees it counted.
	// A failed write adds its drops itself.
	w.counts.flush(s.pipe.counters, &w.r.link, &w.r.output)
	for i, bufs := range w.out {
		if len(bufs) == 0 {
			continue
		}
		ifc := s.devs[i]
		if ifc == nil {
			w.r.output.drops[packet.ReasonTxError].Add(uint64(len(bufs)))
			w.out[i] = bufs[:0]
			continue
		}
		var bytes int
		for _, b := range bufs {
			bytes += len(b) - Headroom
		}
		if ifc.captures.running() {
			for _, b := range bufs {
				ifc.captures.record(b[frameStart(s.ifaces[i].tap):])
			}
		}
		if _, err := ifc.queues[w.queue%len(ifc.queues)].Write(bufs, Headroom); err != nil {
			ifc.counters.txErrors.Add(uint64(len(bufs)))
			w.r.output.drops[packet.ReasonTxError].Add(uint64(len(bufs)))
		} else {
			ifc.counters.txPackets.Add(uint64(len(bufs)))
			ifc.counters.txBytes.Add(uint64(bytes))
		}
		w.out[i] = bufs[:0]
	}
	w.spares = 0
}

// isClosed tells the end of a device: every kind of device, and the
// router's own stack, returns os.ErrClosed from Read once closed.
func isClosed(err error) bool { return errors.Is(err, os.ErrClosed) }

// fragment splits an IPv4 packet too big for the egress link into
// fragments in the worker's spare buffers (RFC 791 §2.3; RFC 1812
// §4.2.2.7: a router fragments on output). The original buffer is not
// written.
func (w *worker) fragment(p *packet.Packet, mtu int) {
	if !canFragment(p) {
		w.counts.outputDrops[packet.ReasonTooBig]++
		return
	}
	// Each fragment carries at least mtu-60 bytes of payload (60 is the
	// largest IPv4 header), rounded down to a multiple of 8; config keeps
	// every MTU at 576 or more (RFC 791's minimum datagram).
	perFragment := (mtu - header.IPv4MaximumHeaderSize) &^ 7
	if perFragment <= 0 {
		w.counts.outputDrops[packet.ReasonFragmentFailed]++
		return
	}
	first, views := w.takeSpares(p.Len/perFragment + 1)
	n, err := fragment.IPv4(p.Data(), mtu, views)
	if err != nil {
		w.counts.outputDrops[packet.ReasonFragmentFailed]++
		return
	}
	for i, v := range views[:n] {
		buf := w.spare[first+i]
		// The neighbor stage wrote the link header in front of the
		// original; each fragment needs it too (TUN links ignore it).
		copy(buf[Headroom-ethLen:Headroom], p.Buf[p.Start-ethLen:p.Start])
		w.out[p.Out] = append(w.out[p.Out], buf[:Headroom+len(v)])
	}
}

// takeSpares hands out k spare buffers for this batch, as views past the
// headroom. Buffers are made the first time they are needed and kept.
func (w *worker) takeSpares(k int) (first int, views [][]byte) {
	first = w.spares
	for len(w.spare) < first+k {
		w.spare = append(w.spare, make([]byte, bufferSize))
	}
	w.views = w.views[:0]
	for _, b := range w.spare[first : first+k] {
		w.views = append(w.views, b[Headroom:])
	}
	w.spares += k
	return first, w.views
}
