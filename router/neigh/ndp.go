package neigh

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// ndp is a Neighbor Discovery message that passed validation.
type ndp struct {
	typ      header.ICMPv6Type
	src, dst netip.Addr
	target   netip.Addr // NS, NA
	// lla is the Source Link-Layer Address option of an NS or RS, the
	// Target Link-Layer Address option of an NA.
	lla                 MAC
	hasLLA              bool
	solicited, override bool // NA flags
}

// IsNDP reports whether an IPv6 packet is a Neighbor Discovery message,
// ICMPv6 types 133 to 137 right after the IPv6 header, which the link
// layer hands to HandleNDP rather than to the pipeline.
func IsNDP(pkt []byte) bool {
	_, ok := ndpType(pkt)
	return ok
}

func ndpType(pkt []byte) (header.ICMPv6Type, bool) {
	ip := header.IPv6(pkt)
	if !ip.IsValid(len(pkt)) || ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) {
		return 0, false
	}
	icmp := header.ICMPv6(ip.Payload())
	if len(icmp) < header.ICMPv6HeaderSize {
		return 0, false
	}
	t := icmp.Type()
	return t, t >= header.ICMPv6RouterSolicit && t <= header.ICMPv6RedirectMsg
}

// parseNDP validates the NS, NA and RS a router acts on, by the checks
// of RFC 4861 §7.1.1, §7.1.2 and §6.1.1. The ones they share: "The IP
// Hop Limit field has a value of 255, i.e., the packet could not
// possibly have been forwarded by a router. ICMP Checksum is valid. ICMP
// Code is 0. [...] All included options have a length that is greater
// than zero."
func parseNDP(pkt []byte) (ndp, bool) {
	ip := header.IPv6(pkt)
	if !ip.IsValid(len(pkt)) || ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) ||
		ip.HopLimit() != header.NDPHopLimit {
		return ndp{}, false
	}
	icmp := header.ICMPv6(ip.Payload())
	if len(icmp) < header.ICMPv6HeaderSize || icmp.Code() != 0 {
		return ndp{}, false
	}
	m := ndp{
		typ: icmp.Type(),
		src: fromTcpip6(ip.SourceAddress()),
		dst: fromTcpip6(ip.DestinationAddress()),
	}
	var opts header.NDPOptions
	switch m.typ {
	case header.ICMPv6NeighborSolicit:
		if len(icmp) < header.ICMPv6NeighborSolicitMinimumSize {
			return ndp{}, false
		}
		ns := header.NDPNeighborSolicit(icmp.MessageBody())
		m.target, opts = fromTcpip6(ns.TargetAddress()), ns.Options()
	case header.ICMPv6NeighborAdvert:
		if len(icmp) < header.ICMPv6NeighborAdvertMinimumSize {
			return ndp{}, false
		}
		na := header.NDPNeighborAdvert(icmp.MessageBody())
		m.target, opts = fromTcpip6(na.TargetAddress()), na.Options()
		m.solicited, m.override = na.SolicitedFlag(), na.OverrideFlag()
	case header.ICMPv6RouterSolicit:
		if len(icmp) < header.ICMPv6HeaderSize+header.NDPRSMinimumSize {
			return ndp{}, false
		}
		opts = header.NDPRouterSolicit(icmp.MessageBody()).Options()
	default:
		return ndp{}, false
	}
	if !checksumValid(ip, icmp) || !m.readOptions(opts) {
		return ndp{}, false
	}
	return m, m.valid()
}

func checksumValid(ip header.IPv6, icmp header.ICMPv6) bool {
	return header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: icmp,
		Src:    ip.SourceAddress(),
		Dst:    ip.DestinationAddress(),
	}) == icmp.Checksum()
}

// readOptions finds the link-layer address option the message type
// carries; it fails on malformed options (zero length, truncated).
func (m *ndp) readOptions(opts header.NDPOptions) bool {
	it, err := opts.Iter(true)
	if err != nil {
		return false
	}
	for {
		opt, done, err := it.Next()
		if err != nil {
			return false
		}
		if done {
			return true
		}
		switch o := opt.(type) {
		case header.NDPSourceLinkLayerAddressOption:
			if m.typ != header.ICMPv6NeighborAdvert {
				m.lla, m.hasLLA = macFrom(o.EthernetAddress())
			}
		case header.NDPTargetLinkLayerAddressOption:
			if m.typ == header.ICMPv6NeighborAdvert {
				m.lla, m.hasLLA = macFrom(o.EthernetAddress())
			}
		}
	}
}

// valid applies the type-specific checks of RFC 4861 §7.1.1 ("Target
// Address is not a multicast address. If the IP source address is the
// unspecified address, the IP destination address is a solicited-node
// multicast address. If the IP source address is the unspecified
// address, there is no source link-layer address option in the
// message."), §7.1.2 ("If the IP Destination Address is a multicast
// address the Solicited flag is zero.") and §6.1.1 (RS: the same rule on
// the unspecified source). Beyond them, the source must not be multicast
// (RFC 4291 §2.7: "Multicast addresses must not be used as source
// addresses in IPv6 packets"), for we may answer it, and a link-layer
// address must be one a neighbor can have.
func (m ndp) valid() bool {
	if m.src.IsMulticast() || m.hasLLA && !m.lla.unicast() {
		return false
	}
	switch m.typ {
	case header.ICMPv6NeighborSolicit:
		if m.src.IsUnspecified() && (!header.IsSolicitedNodeAddr(toTcpip(m.dst)) || m.hasLLA) {
			return false
		}
		return !m.target.IsMulticast()
	case header.ICMPv6NeighborAdvert:
		return !m.target.IsMulticast() && !(m.dst.IsMulticast() && m.solicited)
	}
	return !(m.src.IsUnspecified() && m.hasLLA)
}

// HandleNDP processes an IPv6 packet holding a Neighbor Discovery
// message (see IsNDP), received on l in a frame from the Ethernet source
// src. It learns from NS, NA and RS; a Neighbor Solicitation for one of
// our addresses is answered with a Neighbor Advertisement written into
// out (a complete IPv6 packet; 72 bytes are enough). rs reports a valid
// Router Solicitation: an interface that sends Router Advertisements
// answers it with BuildRA, no sooner than MinDelayBetweenRAs after its
// last (RFC 4861 §6.2.6). Other messages, and invalid ones, are ignored;
// invalid ones are counted in Stats.Invalid.
func (c *Cache) HandleNDP(l Link, src MAC, pkt, out []byte) (reply Msg, rs bool) {
	// Router Advertisements and Redirects are for hosts; a router sends
	// them and ignores those of others.
	if t, ok := ndpType(pkt); !ok || t == header.ICMPv6RouterAdvert || t == header.ICMPv6RedirectMsg {
		return Msg{}, false
	}
	m, ok := parseNDP(pkt)
	if !ok {
		c.invalids.Add(1)
		return Msg{}, false
	}
	switch m.typ {
	case header.ICMPv6NeighborSolicit:
		return c.neighborSolicit(l, src, m, out), false
	case header.ICMPv6NeighborAdvert:
		c.neighborAdvert(l, m)
		return Msg{}, false
	}
	c.heard(l, m)
	return Msg{}, true
}

// heard learns from an NS or RS that carries its sender's link-layer
// address. RFC 4861 §7.2.3: "If the Source Address is not the
// unspecified address and, on link layers that have addresses, the
// solicitation includes a Source Link-Layer Address option, then the
// recipient SHOULD create or update the Neighbor Cache entry for the IP
// Source Address of the solicitation. If an entry does not already
// exist, the node SHOULD create a new one and set its reachability state
// to STALE [...]. If an entry already exists, and the cached link-layer
// address differs from the one in the received Source Link-Layer option,
// the cached address should be replaced by the received address, and the
// entry's reachability state MUST be set to STALE." §6.2.6 says the same
// of an RS.
func (c *Cache) heard(l Link, m ndp) {
	if m.hasLLA && l.learnable(m.src) {
		c.learn(l.Index, m.src, news{mac: m.lla, create: true})
	}
}

// neighborSolicit answers an NS for one of our addresses (RFC 4861
// §7.2.3, §7.2.4). An NS for any other address is discarded: we are
// proxy for no one.
func (c *Cache) neighborSolicit(l Link, src MAC, m ndp, out []byte) Msg {
	if !l.ours(m.target) {
		return Msg{}
	}
	c.heard(l, m)
	// §7.2.4: "If the source of the solicitation is the unspecified
	// address, the node MUST set the Solicited flag to zero and multicast
	// the advertisement to the all-nodes address. Otherwise, the node MUST
	// set the Solicited flag to one and unicast the advertisement to the
	// Source Address of the solicitation." A solicitation without a
	// source link-layer option (allowed when unicast) is answered to the
	// frame's source.
	if m.src.IsUnspecified() {
		return buildNA(out, l.MAC, m.target, AllNodes, false)
	}
	dst := src
	if m.hasLLA {
		dst = m.lla
	}
	if !dst.unicast() {
		return Msg{}
	}
	r := buildNA(out, l.MAC, m.target, m.src, true)
	r.Dst = dst
	return r
}

// neighborAdvert updates the target's entry from an NA (RFC 4861
// §7.2.5). An NA never creates an entry, and one for our own address
// (a duplicate) is ignored.
func (c *Cache) neighborAdvert(l Link, m ndp) {
	if !l.learnable(m.target) {
		return
	}
	c.learn(l.Index, m.target, news{
		mac:     m.lla,
		noMAC:   !m.hasLLA,
		confirm: m.solicited,
		weak:    !m.override,
	})
}

// BuildNS writes into out a Neighbor Solicitation from mac and src (the
// interface's LinkLocal address is always a good source) asking for
// target: to target's solicited-node group (RFC 4861 §7.2.2), or to
// target itself through unicast when that is not zero (a PROBE, §7.3.3),
// with a Source Link-Layer Address option either way. The result is a
// complete IPv6 packet (72 bytes); the caller adds the Ethernet header,
// to Msg.Dst.
func BuildNS(out []byte, mac MAC, src, target netip.Addr, unicast MAC) Msg {
	dst, dstMAC := target, unicast
	if unicast == (MAC{}) {
		dst = SolicitedNode(target)
		dstMAC = MulticastMAC(dst)
	}
	opts := header.NDPOptionsSerializer{header.NDPSourceLinkLayerAddressOption(mac.link())}
	n := putICMPv6(out, src, dst, header.ICMPv6NeighborSolicit, header.NDPNSMinimumSize+opts.Length(),
		func(body []byte) {
			ns := header.NDPNeighborSolicit(body)
			ns.SetTargetAddress(toTcpip(target))
			ns.Options().Serialize(opts)
		})
	return Msg{N: n, Dst: dstMAC}
}

// BuildUnsolicitedNA writes the Neighbor Advertisement an interface
// sends for its address ip when it comes up (RFC 4861 §7.2.6: "a node
// MAY send up to MAX_NEIGHBOR_ADVERTISEMENT unsolicited Neighbor
// Advertisements to the all-nodes multicast address"), with the
// Override flag so neighbors replace what they cached.
func BuildUnsolicitedNA(out []byte, mac MAC, ip netip.Addr) Msg {
	return buildNA(out, mac, ip, AllNodes, false)
}

// buildNA writes a Neighbor Advertisement for target, one of our
// addresses, from that address. Flags (RFC 4861 §4.4, §7.2.4): Router,
// since we are one; Solicited as the caller says; Override, since the
// address is ours and not an anycast or proxied one. The Target
// Link-Layer Address option carries mac.
func buildNA(out []byte, mac MAC, target, dst netip.Addr, solicited bool) Msg {
	opts := header.NDPOptionsSerializer{header.NDPTargetLinkLayerAddressOption(mac.link())}
	n := putICMPv6(out, target, dst, header.ICMPv6NeighborAdvert, header.NDPNAMinimumSize+opts.Length(),
		func(body []byte) {
			na := header.NDPNeighborAdvert(body)
			na.SetRouterFlag(true)
			na.SetSolicitedFlag(solicited)
			na.SetOverrideFlag(true)
			na.SetTargetAddress(toTcpip(target))
			na.Options().Serialize(opts)
		})
	var dstMAC MAC
	if dst.IsMulticast() {
		dstMAC = MulticastMAC(dst)
	}
	return Msg{N: n, Dst: dstMAC}
}

// putICMPv6 writes into b an IPv6 packet from src to dst with hop limit
// 255 (RFC 4861 requires it of every ND message) holding an ICMPv6
// message of type typ whose body of size bodyLen fill writes; then the
// checksum. It returns the packet's length, or 0 if b is too short.
func putICMPv6(b []byte, src, dst netip.Addr, typ header.ICMPv6Type, bodyLen int, fill func(body []byte)) int {
	n := header.IPv6MinimumSize + header.ICMPv6HeaderSize + bodyLen
	if len(b) < n || !src.Is6() || !dst.Is6() {
		return 0
	}
	b = b[:n]
	clear(b)
	ip := header.IPv6(b)
	ip.Encode(&header.IPv6Fields{
		PayloadLength:     uint16(n - header.IPv6MinimumSize),
		TransportProtocol: header.ICMPv6ProtocolNumber,
		HopLimit:          header.NDPHopLimit,
		SrcAddr:           toTcpip(src),
		DstAddr:           toTcpip(dst),
	})
	icmp := header.ICMPv6(ip.Payload())
	icmp.SetType(typ)
	fill(icmp.MessageBody())
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: icmp,
		Src:    ip.SourceAddress(),
		Dst:    ip.DestinationAddress(),
	}))
	return n
}
