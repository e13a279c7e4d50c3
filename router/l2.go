package router

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/neigh"
	"github.com/tungate/tungate/router/packet"
)

// Ethernet II framing (RFC 894): destination MAC, source MAC, EtherType,
// in the ethLen bytes before the IP packet. gVisor's header.Ethernet
// reads and writes addresses as strings, which allocate, so the router
// reads and writes these three fields in place.
const (
	ethLen  = header.EthernetMinimumSize
	ethDst  = 0
	ethSrc  = header.EthernetAddressSize
	ethType = 2 * header.EthernetAddressSize
)

// putEthernet writes the Ethernet header in front of the packet at
// buf[start:].
func putEthernet(buf []byte, start int, dst, src neigh.MAC, typ uint16) {
	eth := buf[start-ethLen : start]
	copy(eth[ethDst:], dst[:])
	copy(eth[ethSrc:], src[:])
	binary.BigEndian.PutUint16(eth[ethType:], typ)
}

// etherType is the EtherType of an IP packet of the given version.
func etherType(version uint8) uint16 {
	if version == 4 {
		return uint16(header.IPv4ProtocolNumber)
	}
	return uint16(header.IPv6ProtocolNumber)
}

// linkIn takes a frame read from a TAP interface. It reports whether p
// is an IP packet for the pipeline; ARP and NDP messages go to the
// neighbor cache, and its answer is queued for output on the same link.
func (w *worker) linkIn(s *snapshot, p *packet.Packet) bool {
	c := &s.ifaces[w.in]
	eth := p.Buf[p.Start-ethLen : p.Start]
	var dst, src neigh.MAC
	copy(dst[:], eth[ethDst:])
	copy(src[:], eth[ethSrc:])
	// IEEE 802: the lowest bit of the first octet marks a group
	// (multicast or broadcast) address, which every station takes.
	if dst != c.mac && dst[0]&1 == 0 {
		w.counts.linkDrops[packet.ReasonOtherHost]++
		return false
	}
	var answer func([]byte) (neigh.Msg, uint16)
	switch binary.BigEndian.Uint16(eth[ethType:]) {
	case uint16(header.IPv4ProtocolNumber):
		return true
	case uint16(header.IPv6ProtocolNumber):
		if !neigh.IsNDP(p.Data()) {
			return true
		}
		answer = func(out []byte) (neigh.Msg, uint16) {
			msg, rs := w.r.neigh.HandleNDP(c.link, src, p.Data(), out)
			if rs && c.ra {
				w.r.ra.solicited(w.in, w.r.now())
			}
			return msg, uint16(header.IPv6ProtocolNumber)
		}
	case uint16(header.ARPProtocolNumber):
		answer = func(out []byte) (neigh.Msg, uint16) {
			return w.r.neigh.HandleARP(c.link, p.Data(), out), uint16(header.ARPProtocolNumber)
		}
	default:
		w.counts.linkDrops[packet.ReasonEtherType]++
		return false
	}
	w.counts.linkTaken++
	first, views := w.takeSpares(1)
	if msg, typ := answer(views[0]); msg.N > 0 {
		buf := w.spare[first]
		putEthernet(buf, Headroom, msg.Dst, c.mac, typ)
		w.out[w.in] = append(w.out[w.in], buf[:Headroom+msg.N])
	}
	return false
}

// neighborStage finds the link-layer address of the next hop on a TAP
// link and writes the Ethernet header; a packet whose next hop is not
// resolved yet waits in the neighbor cache. TUN links have no link layer.
type neighborStage struct {
	r *Router
	s *snapshot
}

func (st neighborStage) Process(p *packet.Packet) packet.Verdict {
	c := &st.s.ifaces[p.Out]
	if !c.tap {
		return packet.Continue
	}
	mac, ok := st.r.neigh.Resolve(p.Out, p.NextHop)
	if !ok {
		if !st.r.neigh.Enqueue(p.Out, p.NextHop, p.Data()) {
			return packet.Drop(packet.ReasonNeighborRefused)
		}
		return packet.Taken
	}
	putEthernet(p.Buf, p.Start, mac, c.mac, etherType(p.Version))
	return packet.Continue
}

// neighSender carries out what the neighbor cache decides: it sends
// solicitations and the packets that waited, and answers for those whose
// next hop never answered.
type neighSender struct{ r *Router }

var _ neigh.Sender = neighSender{}

// Solicit sends an ARP request or a Neighbor Solicitation for target.
func (n neighSender) Solicit(iface int, target netip.Addr, unicast neigh.MAC) {
	c := &n.r.snap.Load().ifaces[iface]
	buf := make([]byte, Headroom+128)
	src := c.solicitSource(target)
	var msg neigh.Msg
	typ := uint16(header.IPv6ProtocolNumber)
	if target.Is4() {
		msg, typ = neigh.BuildARPRequest(buf[Headroom:], c.mac, src, target, unicast), uint16(header.ARPProtocolNumber)
	} else {
		msg = neigh.BuildNS(buf[Headroom:], c.mac, src, target, unicast)
	}
	if msg.N == 0 || !src.IsValid() {
		return
	}
	putEthernet(buf, Headroom, msg.Dst, c.mac, typ)
	n.r.sendFrames(iface, [][]byte{buf[:Headroom+msg.N]})
}

// Flush sends the packets that waited for mac.
func (n neighSender) Flush(iface int, mac neigh.MAC, pkts [][]byte) {
	c := &n.r.snap.Load().ifaces[iface]
	bufs := make([][]byte, len(pkts))
	for i, pkt := range pkts {
		bufs[i] = make([]byte, Headroom+len(pkt))
		copy(bufs[i][Headroom:], pkt)
		putEthernet(bufs[i], Headroom, mac, c.mac, etherType(uint8(header.IPVersion(pkt))))
	}
	n.r.sendFrames(iface, bufs)
}

// Fail answers each packet whose next hop did not resolve with ICMP
// Destination Host Unreachable (ICMPv6 Address Unreachable), routed back
// to its sender like any packet of the router's own.
func (n neighSender) Fail(iface int, _ netip.Addr, pkts [][]byte) {
	s := n.r.snap.Load()
	for _, pkt := range pkts {
		n.r.output.drops[packet.ReasonNeighborFailed].Add(1)
		// The error is at most 576 (IPv4) or 1280 (IPv6) bytes, built in
		// place, so the buffer needs room for it whatever the original's
		// size.
		buf := make([]byte, Headroom+max(len(pkt), header.IPv6MinimumMTU))
		copy(buf[Headroom:], pkt)
		p := &packet.Packet{Buf: buf, Start: Headroom, Len: len(pkt), In: packet.NoInterface, Out: iface}
		if p.Parse() != packet.ReasonNone {
			continue
		}
		// RFC 1812 §4.3.2.4: the error's source is an address of the
		// interface it leaves by, the one towards the sender.
		if rt := s.fib.Lookup(p.Src); rt != nil {
			p.In = rt.Dev
		}
		if n.r.answer(s, p, icmperr.HostUnreachable, 0, packet.ReasonNeighborFailed).IsReply() {
			n.r.origin.Inject(p.Data())
		}
	}
}

// sendFrames writes frames built outside the pipeline to a TAP link.
func (r *Router) sendFrames(iface int, bufs [][]byte) {
	ifc := r.snap.Load().devs[iface]
	if ifc == nil {
		return // removed by a reload meanwhile
	}
	if _, err := ifc.queues[0].Write(bufs, Headroom); err != nil {
		ifc.counters.txErrors.Add(uint64(len(bufs)))
		return
	}
	var bytes int
	for _, b := range bufs {
		bytes += len(b) - Headroom
	}
	ifc.counters.txPackets.Add(uint64(len(bufs)))
	ifc.counters.txBytes.Add(uint64(bytes))
}

// announce tells a TAP link the router's addresses when it comes up:
// an ARP announcement per IPv4 address (RFC 5227 §3) and an unsolicited
// Neighbor Advertisement per IPv6 address (RFC 4861 §7.2.6).
func (r *Router) announce(iface int) {
	c := &r.snap.Load().ifaces[iface]
	var frames [][]byte
	addrs := append([]netip.Addr{neigh.LinkLocal(c.mac)}, c.addrs()...)
	for _, a := range addrs {
		buf := make([]byte, Headroom+128)
		var msg neigh.Msg
		typ := uint16(header.IPv6ProtocolNumber)
		if a.Is4() {
			msg, typ = neigh.BuildGratuitousARP(buf[Headroom:], c.mac, a), uint16(header.ARPProtocolNumber)
		} else {
			msg = neigh.BuildUnsolicitedNA(buf[Headroom:], c.mac, a)
		}
		putEthernet(buf, Headroom, msg.Dst, c.mac, typ)
		frames = append(frames, buf[:Headroom+msg.N])
	}
	r.sendFrames(iface, frames)
}

// raSchedule times the Router Advertisements of the interfaces that send
// them (RFC 4861 §6.2.4 and §6.2.6).
type raSchedule struct {
	mu    sync.Mutex
	state map[int]*raState
}

type raState struct {
	next, last time.Time
	sent       int
}

// due returns the interfaces whose RA is due at now, and schedules their
// next one: the first MaxInitialRtrAdvertisements at most
// MaxInitialRtrAdvertInterval apart, then uniformly between
// MinRtrAdvInterval and MaxRtrAdvInterval (§6.2.4).
func (ra *raSchedule) due(now time.Time, enabled func(int) bool) []int {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	var out []int
	for iface, st := range ra.state {
		if !enabled(iface) || now.Before(st.next) {
			continue
		}
		out = append(out, iface)
		st.last, st.sent = now, st.sent+1
		interval := neigh.MinRtrAdvInterval + rand.N(neigh.MaxRtrAdvInterval-neigh.MinRtrAdvInterval)
		if st.sent < neigh.MaxInitialRtrAdvertisements {
			interval = min(interval, neigh.MaxInitialRtrAdvertInterval)
		}
		st.next = now.Add(interval)
	}
	return out
}

// add schedules the RAs of a new TAP interface, the first at now.
func (ra *raSchedule) add(iface int, now time.Time) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	ra.state[iface] = &raState{next: now}
}

// remove forgets an interface a reload closed.
func (ra *raSchedule) remove(iface int) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	delete(ra.state, iface)
}

// solicited brings an interface's next RA forward to answer a Router
// Solicitation, but no sooner than MinDelayBetweenRAs after the last
// (§6.2.6).
func (ra *raSchedule) solicited(iface int, now time.Time) {
	ra.mu.Lock()
	defer ra.mu.Unlock()
	st, ok := ra.state[iface]
	if !ok {
		return
	}
	at := st.last.Add(neigh.MinDelayBetweenRAs)
	if at.Before(now) {
		at = now
	}
	if at.Before(st.next) {
		st.next = at
	}
}

// sendRA multicasts an interface's Router Advertisement.
func (r *Router) sendRA(iface int) {
	c := &r.snap.Load().ifaces[iface]
	buf := make([]byte, Headroom+1024)
	msg := neigh.BuildRA(buf[Headroom:], neigh.RA{MAC: c.mac, Lifetime: neigh.DefaultRouterLifetime, MTU: uint32(c.mtu), Prefixes: c.prefixes})
	if msg.N == 0 {
		return
	}
	putEthernet(buf, Headroom, msg.Dst, c.mac, uint16(header.IPv6ProtocolNumber))
	r.sendFrames(iface, [][]byte{buf[:Headroom+msg.N]})
}

// expireBudget bounds the flows one housekeeping tick reaps, so a flood
// of expiring flows is spread over ticks instead of stalling one.
const expireBudget = 10000

// housekeeping runs the neighbor cache's timers, conntrack's reaper and the RA schedule until
// the router closes.
func (r *Router) housekeeping() {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
			r.tick()
			r.neigh.Tick()
			r.ct.Expire(expireBudget)
			r.answerHeldSYNs()
			r.expireFragments()
			r.checkRefusals(r.now())
			s := r.snap.Load()
			for _, t := range s.nat.tables {
				t.ExpireExplicit()
			}
			for _, iface := range r.ra.due(r.now(), func(i int) bool { return i < len(s.ifaces) && s.ifaces[i].ra }) {
				r.sendRA(iface)
			}
		}
	}
}
