package router

import (
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// validateStage parses the IP header once (packet.Parse) so later stages
// can trust the view.
type validateStage struct{}

func (validateStage) Process(p *packet.Packet) packet.Verdict {
	if r := p.Parse(); r != packet.ReasonNone {
		return packet.Drop(r)
	}
	return packet.Continue
}

// localStage hands packets addressed to the router to its own stack,
// except those the NAT translates (replies to masqueraded flows, port
// forwards), which share the router's external address.
type localStage struct {
	r *Router
	s *snapshot
}

func (st localStage) Process(p *packet.Packet) packet.Verdict {
	r := st.r
	if !st.s.own[p.Dst] {
		return packet.Continue
	}
	if p.NonFirstFragment {
		// Only the first fragment tells the NAT's from the router's own.
		if v, local := r.frags.later(p, r.now(), true); v != packet.Continue || !local {
			return v
		}
	} else if r.claimed(st.s, p) {
		return packet.Continue
	} else if !st.s.nat.pcpAllowed(p) {
		return packet.Drop(packet.ReasonPCPRefused)
	} else if p.Fragment {
		for _, h := range r.frags.first(fragKeyOf(p), p.Src, p.Dst, true, r.now()) {
			r.local.Deliver(h.pkt)
		}
	}
	if !r.local.Deliver(p.Data()) {
		return packet.Drop(packet.ReasonLocalQueueFull)
	}
	return packet.Taken
}

// routeStage picks the egress interface and next hop by longest-prefix
// match.
type routeStage struct {
	r *Router
	s *snapshot
}

func (st routeStage) Process(p *packet.Packet) packet.Verdict {
	if p.Direct {
		return packet.Continue
	}
	rt := st.s.fib.Lookup(p.Dst)
	if rt == nil {
		// RFC 1812 §5.2.7.1: a router that cannot forward a packet for
		// lack of a route SHOULD send Destination Unreachable.
		return st.r.answer(st.s, p, icmperr.NetUnreachable, 0, packet.ReasonNoRoute)
	}
	rt.Use.Add(1)
	p.RouteUse = &rt.Use
	p.Out = rt.Dev
	p.NextHop = rt.Via
	if !p.NextHop.IsValid() {
		p.NextHop = p.Dst
	}
	return packet.Continue
}

// ttlStage is the router hop of RFC 1812 §5.3.1 and RFC 8200 §3: it
// decrements the TTL (hop limit) and checks the packet fits the egress
// link, answering with ICMP where the packet cannot go on.
type ttlStage struct {
	r *Router
	s *snapshot
}

func (st ttlStage) Process(p *packet.Packet) packet.Verdict {
	if p.TunnelTo.IsValid() {
		// The last stage that may answer about the packet as its client
		// sent it: wrapped, it is the router's to a backend.
		if v := st.r.encapsulate(st.s, p); v != packet.Continue {
			return v
		}
	}
	mtu := st.s.ifaces[p.Out].mtu
	tooBig := p.Len > mtu
	if p.Origin == packet.Local {
		// The router's own packets carry a fresh TTL; one too big for
		// the link can only be fragmented (IPv4 without DF) at output.
		if tooBig && !canFragment(p) {
			return packet.Drop(packet.ReasonTooBig)
		}
		return packet.Continue
	}
	if p.Version == 4 {
		h := header.IPv4(p.Data())
		// RFC 1812 §5.3.1: a packet whose TTL would reach zero MUST
		// NOT be forwarded; the router sends Time Exceeded.
		if h.TTL() <= 1 {
			return st.r.answer(st.s, p, icmperr.TimeExceeded, 0, packet.ReasonTTLExceeded)
		}
		// RFC 1191 §4: DF set and too big for the next hop: Fragmentation
		// Needed carrying the next-hop MTU. Without DF, output fragments.
		if tooBig && !canFragment(p) {
			return st.r.answer(st.s, p, icmperr.FragNeeded, uint32(mtu), packet.ReasonTooBig)
		}
		decrementTTL(h)
		return packet.Continue
	}
	h := header.IPv6(p.Data())
	if h.HopLimit() <= 1 {
		return st.r.answer(st.s, p, icmperr.TimeExceeded, 0, packet.ReasonTTLExceeded)
	}
	// RFC 8200 §5: routers never fragment; RFC 4443 §3.2: Packet Too Big.
	if tooBig {
		return st.r.answer(st.s, p, icmperr.PacketTooBig, uint32(mtu), packet.ReasonTooBig)
	}
	h.SetHopLimit(h.HopLimit() - 1)
	return packet.Continue
}

// canFragment reports whether an IPv4 packet may be split for a smaller
// link: IPv4 without the Don't Fragment flag.
func canFragment(p *packet.Packet) bool {
	return p.Version == 4 && header.IPv4(p.Data()).Flags()&header.IPv4FlagDontFragment == 0
}

// decrementTTL lowers the TTL by one and updates the header checksum
// incrementally (RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')), where m is the
// 16-bit word that holds the TTL and the protocol.
func decrementTTL(h header.IPv4) {
	old := uint16(h.TTL())<<8 | uint16(h.Protocol())
	h.SetTTL(h.TTL() - 1)
	updated := old - 1<<8
	h.SetChecksum(^checksum.Combine(checksum.Combine(^h.Checksum(), ^old), updated))
}

// answer replaces p, which cannot be forwarded for reason r, with the ICMP
// error of kind k about it, when RFC 1812 §4.3.2.7 allows one and the rate
// limit has room (RFC 1812 §4.3.2.8). Otherwise p is just dropped.
func (r *Router) answer(s *snapshot, p *packet.Packet, k icmperr.Kind, mtu uint32, reason packet.Reason) packet.Verdict {
	if p.Origin == packet.Local || !icmperr.Allowed(p, k) {
		return packet.Drop(reason)
	}
	src := s.sourceFor(p)
	if !src.IsValid() || !r.icmpLimit.Allow() {
		return packet.Drop(reason)
	}
	untranslate(p)
	if !icmperr.Build(p, k, mtu, src) {
		return packet.Drop(reason)
	}
	return packet.Reply(reason)
}

// Compile-time checks that each stage is a Stage.
var (
	_ Stage = validateStage{}
	_ Stage = localStage{}
	_ Stage = routeStage{}
	_ Stage = ttlStage{}
	_ Stage = dnatStage{}
	_ Stage = snatStage{}
	_ Stage = neighborStage{}
)
