package router

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Capture: the packets an interface reads and writes, as pcap (the
// libpcap file format, which tcpdump and Wireshark read), for `tungate
// capture` and GET /capture. A reader goroutine checks one atomic pointer
// per batch and finds it nil unless a capture runs; a capture copies the
// packets into a bounded queue that its own goroutine writes out, so a
// slow consumer loses capture records (counted) and never slows the
// packet path.
//
// pcap is written here rather than with gVisor's sniffer, which wraps a
// stack.LinkEndpoint around PacketBuffers and panics when its writer
// fails: a capture whose client goes away must end quietly.

// pcap link types (https://www.tcpdump.org/linktypes.html).
const (
	linkTypeEthernet = 1   // TAP interfaces: whole Ethernet frames
	linkTypeRaw      = 101 // TUN interfaces: IPv4 or IPv6 packets
)

// A capture holds at most captureQueue packets and captureBytes bytes for
// its writer.
const (
	captureQueue = 4096
	captureBytes = 16 << 20
)

// captureSnapLen bounds a record: the largest packet a device hands over.
const captureSnapLen = 65535

// capture is one running capture of an interface.
type capture struct {
	queue   chan captured
	queued  atomic.Int64 // bytes in queue
	dropped atomic.Uint64
}

type captured struct {
	at   time.Time
	data []byte
}

// offer queues a copy of pkt, or counts it lost when the queue is full.
func (c *capture) offer(at time.Time, pkt []byte) {
	if c.queued.Load()+int64(len(pkt)) > captureBytes {
		c.dropped.Add(1)
		return
	}
	select {
	case c.queue <- captured{at, slices.Clone(pkt)}:
		c.queued.Add(int64(len(pkt)))
	default:
		c.dropped.Add(1)
	}
}

// captures are the captures of one interface, replaced whole when one
// starts or ends.
type captures struct {
	mu   sync.Mutex // serializes the replacements
	live atomic.Pointer[[]*capture]
}

func (cs *captures) add(c *capture) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	var next []*capture
	if old := cs.live.Load(); old != nil {
		next = slices.Clone(*old)
	}
	next = append(next, c)
	cs.live.Store(&next)
}

func (cs *captures) remove(c *capture) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(*cs.live.Load()), func(o *capture) bool { return o == c })
	if len(next) == 0 {
		cs.live.Store(nil)
		return
	}
	cs.live.Store(&next)
}

// running reports whether any capture runs: one atomic load.
func (cs *captures) running() bool { return cs.live.Load() != nil }

// record offers frame, as the interface saw it, to the running captures.
func (cs *captures) record(frame []byte) {
	list := cs.live.Load()
	if list == nil {
		return
	}
	now := time.Now()
	for _, c := range *list {
		c.offer(now, frame)
	}
}

// frameStart is where a packet's frame starts in its buffer: the packet
// itself on TUN, its Ethernet header on TAP.
func frameStart(tap bool) int {
	if tap {
		return Headroom - ethLen
	}
	return Headroom
}

// Capture writes what the interface called name reads and writes to w as
// pcap, frames with their Ethernet header on a TAP interface, until ctx
// ends, count packets are written (0: no limit), w fails or a reload
// removes the interface. It returns the packets written and how many were
// lost because w was too slow.
func (r *Router) Capture(ctx context.Context, name string, w io.Writer, count int) (written int, lost uint64, err error) {
	s := r.snap.Load()
	i, ok := s.index[name]
	if !ok {
		return 0, 0, fmt.Errorf("no interface %q", name)
	}
	ifc := s.devs[i]
	linkType := uint32(linkTypeRaw)
	if s.ifaces[i].tap {
		linkType = linkTypeEthernet
	}
	if err := writePcapHeader(w, linkType); err != nil {
		return 0, 0, err
	}
	c := &capture{queue: make(chan captured, captureQueue)}
	ifc.captures.add(c)
	defer ifc.captures.remove(c)
	if f, ok := w.(interface{ Flush() }); ok {
		defer f.Flush()
	}
	gone := time.NewTicker(time.Second)
	defer gone.Stop()
	for count == 0 || written < count {
		select {
		case <-ctx.Done():
			return written, c.dropped.Load(), nil
		case <-gone.C:
			if s := r.snap.Load(); i >= len(s.devs) || s.devs[i] != ifc {
				return written, c.dropped.Load(), fmt.Errorf("interface %q was removed", name)
			}
		case p := <-c.queue:
			c.queued.Add(-int64(len(p.data)))
			if err := writePcapRecord(w, p); err != nil {
				return written, c.dropped.Load(), err
			}
			written++
		}
	}
	return written, c.dropped.Load(), nil
}

// writePcapHeader writes the pcap file header: microsecond timestamps,
// version 2.4, little-endian as the magic number says.
func writePcapHeader(w io.Writer, linkType uint32) error {
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], captureSnapLen)
	binary.LittleEndian.PutUint32(h[20:], linkType)
	_, err := w.Write(h[:])
	return err
}

func writePcapRecord(w io.Writer, p captured) error {
	data := p.data[:min(len(p.data), captureSnapLen)]
	var h [16]byte
	binary.LittleEndian.PutUint32(h[0:], uint32(p.at.Unix()))
	binary.LittleEndian.PutUint32(h[4:], uint32(p.at.Nanosecond()/1000))
	binary.LittleEndian.PutUint32(h[8:], uint32(len(data)))
	binary.LittleEndian.PutUint32(h[12:], uint32(len(p.data)))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}
