package neigh

import (
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Link is the interface a message arrived on, as the handlers need it.
type Link struct {
	Index int // the interface index entries are keyed by
	MAC   MAC // the router's MAC on the link
	// Ours reports whether an address is one of the router's on this
	// link. The IPv6 link-local address LinkLocal(MAC) is always ours.
	Ours func(netip.Addr) bool
}

func (l Link) ours(ip netip.Addr) bool {
	if ip.Is6() && ip == LinkLocal(l.MAC) {
		return true
	}
	return l.Ours != nil && l.Ours(ip)
}

// learnable reports whether ip may have a neighbor entry on l: a host's
// address, not the router's own. Someone else claiming our address is a
// conflict to ignore, not a neighbor to cache.
func (l Link) learnable(ip netip.Addr) bool {
	return host(ip) && !l.ours(ip)
}

// host reports whether ip can be an interface's address: unicast,
// specified, not loopback, not the limited broadcast.
func host(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast() &&
		!ip.IsLoopback() && ip != limitedBroadcast
}

var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

// Msg is a message a function wrote into the caller's buffer: its length
// (zero: nothing to send) and the Ethernet destination to send it to.
type Msg struct {
	N   int
	Dst MAC
}

// arp is an ARP packet for IPv4 over Ethernet, parsed.
type arp struct {
	op                   header.ARPOp
	senderMAC, targetMAC MAC
	senderIP, targetIP   netip.Addr
}

// parseARP reads an ARP packet (the Ethernet payload). RFC 826 has the
// receiver check the hardware type, the protocol and their lengths ("?Do
// I have the hardware type in ar$hrd? [...] ?Do I speak the protocol in
// ar$pro?"), which header.ARP.IsValid does; only requests and replies
// are ARP proper.
func parseARP(b []byte) (arp, bool) {
	h := header.ARP(b)
	if !h.IsValid() || h.Op() != header.ARPRequest && h.Op() != header.ARPReply {
		return arp{}, false
	}
	return arp{
		op:        h.Op(),
		senderMAC: MAC(h.HardwareAddressSender()),
		targetMAC: MAC(h.HardwareAddressTarget()),
		senderIP:  netip.AddrFrom4([4]byte(h.ProtocolAddressSender())),
		targetIP:  netip.AddrFrom4([4]byte(h.ProtocolAddressTarget())),
	}, true
}

func (a arp) put(b []byte) int {
	if len(b) < header.ARPSize || !a.senderIP.Is4() || !a.targetIP.Is4() {
		return 0
	}
	h := header.ARP(b[:header.ARPSize])
	h.SetIPv4OverEthernet()
	h.SetOp(a.op)
	sip, tip := a.senderIP.As4(), a.targetIP.As4()
	copy(h.HardwareAddressSender(), a.senderMAC[:])
	copy(h.ProtocolAddressSender(), sip[:])
	copy(h.HardwareAddressTarget(), a.targetMAC[:])
	copy(h.ProtocolAddressTarget(), tip[:])
	return header.ARPSize
}

// BuildARPRequest writes into b (header.ARPSize bytes) an ARP request
// from mac and src asking for target's hardware address. It goes to
// unicast when that is not zero (a PROBE, as Sender.Solicit asks), else
// to the broadcast address; Msg.Dst says which. The caller adds the
// Ethernet header (EtherType header.ARPProtocolNumber).
func BuildARPRequest(b []byte, mac MAC, src, target netip.Addr, unicast MAC) Msg {
	dst := unicast
	if dst == (MAC{}) {
		dst = Broadcast
	}
	a := arp{op: header.ARPRequest, senderMAC: mac, senderIP: src, targetIP: target}
	return Msg{N: a.put(b), Dst: dst}
}

// BuildGratuitousARP writes the ARP Announcement of ip for an interface
// that comes up, so that neighbors update their caches at once: a
// broadcast request with the sender's address as the target too (RFC
// 5227 §3: "an ARP Request [...] with both the sender and target IP
// address fields set to the IP address being announced").
func BuildGratuitousARP(b []byte, mac MAC, ip netip.Addr) Msg {
	return BuildARPRequest(b, mac, ip, ip, MAC{})
}

// HandleARP processes an ARP packet (the Ethernet payload) received on l
// and returns the reply to send, if any, written into out (at least
// header.ARPSize bytes; the caller adds the Ethernet header).
//
// It follows RFC 826's reception algorithm: the sender's entry is
// updated if there is one, whatever the target ("Merge_flag := false. If
// the pair <protocol type, sender protocol address> is already in my
// translation table, update the sender hardware address field"); a new
// entry is added only when the target is one of our addresses; a
// request for one of our addresses is answered ("Swap hardware and
// protocol fields, putting the local hardware and protocol addresses in
// the sender fields. Set the ar$op field to ares_op$REPLY. Send the
// packet to the (new) target hardware address"). A reply to our own
// request confirms the neighbor REACHABLE; anything else leaves or makes
// it STALE, as RFC 4861 §7.3.3 does for IPv6.
//
// An ARP Probe (sender address 0.0.0.0, RFC 5227 §2.1.1) for one of our
// addresses is answered, to defend it, and teaches nothing. A sender
// that no host can be (a group or broadcast address, hardware or
// protocol) makes the packet invalid.
func (c *Cache) HandleARP(l Link, b, out []byte) Msg {
	a, ok := parseARP(b)
	if !ok || !a.senderMAC.unicast() || !a.senderIP.IsUnspecified() && !host(a.senderIP) {
		c.invalids.Add(1)
		return Msg{}
	}
	if a.senderMAC == l.MAC {
		return Msg{} // our own, looped back
	}
	forUs := l.ours(a.targetIP)
	if l.learnable(a.senderIP) {
		c.learn(l.Index, a.senderIP, news{
			mac:     a.senderMAC,
			create:  forUs,
			confirm: a.op == header.ARPReply && forUs && a.targetMAC == l.MAC,
		})
	}
	if a.op != header.ARPRequest || !forUs {
		return Msg{}
	}
	reply := arp{
		op:        header.ARPReply,
		senderMAC: l.MAC, senderIP: a.targetIP,
		targetMAC: a.senderMAC, targetIP: a.senderIP,
	}
	return Msg{N: reply.put(out), Dst: a.senderMAC}
}
