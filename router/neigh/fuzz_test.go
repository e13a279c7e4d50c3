package neigh

import (
	"bytes"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// checkTable: whatever came in, the cache holds no entry for our own
// addresses and no MAC a neighbor cannot have.
func checkTable(t *testing.T, c *Cache) {
	t.Helper()
	for _, x := range c.Entries() {
		if lan.ours(x.IP) {
			t.Fatalf("entry for our own address %v", x.IP)
		}
		if x.State != Incomplete && !x.MAC.unicast() {
			t.Fatalf("entry %v with MAC %v", x.IP, x.MAC)
		}
	}
	if n := c.Stats().Entries; n != len(c.Entries()) {
		t.Fatalf("Stats.Entries %d, table holds %d", n, len(c.Entries()))
	}
}

// FuzzARP feeds arbitrary bytes to HandleARP: it must not panic or
// change its input, and any reply must be a valid ARP reply from us to a
// request for one of our addresses.
func FuzzARP(f *testing.F) {
	f.Add(arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4))
	f.Add(arpFrom(header.ARPReply, hostMAC, hostIP4, routerMAC, routerIP4))
	f.Add(arpFrom(header.ARPRequest, hostMAC, netip.IPv4Unspecified(), MAC{}, routerIP4))
	f.Add(arpFrom(header.ARPRequest, otherMAC, otherIP4, MAC{}, otherIP4))
	f.Add(append(arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4), 0, 0, 0, 0))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := newEnv(t, Config{MaxEntries: 4})
		e.c.Enqueue(1, otherIP4, pkt("waiting"))
		orig := bytes.Clone(b)
		out := make([]byte, header.ARPSize)
		r := e.c.HandleARP(lan, b, out)
		if !bytes.Equal(b, orig) {
			t.Fatal("HandleARP changed its input")
		}
		checkTable(t, e.c)
		if r.N == 0 {
			return
		}
		req, ok := parseARP(b)
		if !ok || req.op != header.ARPRequest || !lan.ours(req.targetIP) || r.Dst != req.senderMAC || !r.Dst.unicast() {
			t.Fatalf("replied %+v to %x", r, b)
		}
		checkARP(t, out[:r.N], header.ARPReply, routerMAC, req.targetIP, req.senderMAC, req.senderIP)
	})
}

// FuzzNDP feeds arbitrary bytes to HandleNDP, with the ICMPv6 checksum
// made right first when fix is set so that the fuzzer gets past it: it
// must not panic or change its input; a reply must be a valid solicited
// or DAD-defending NA for one of our addresses, and rs must come from a
// valid RS.
func FuzzNDP(f *testing.F) {
	f.Add(ns(hostMAC, hostIP6, routerIP6, MAC{}), false)
	f.Add(nsPkt(netip.IPv6Unspecified(), SolicitedNode(routerIP6), routerIP6, MAC{}), false)
	f.Add(nsPkt(hostIP6, routerIP6, LinkLocal(routerMAC), MAC{}), false)
	f.Add(na(hostIP6, routerIP6, hostIP6, hostMAC, true, false), false)
	f.Add(na(hostLL, AllNodes, hostLL, otherMAC, false, true), false)
	f.Add(rs(hostMAC, hostLL, hostMAC), false)
	f.Add(rs(hostMAC, netip.IPv6Unspecified(), MAC{}), true)
	f.Add([]byte{0x60}, true)
	f.Fuzz(func(t *testing.T, b []byte, fix bool) {
		if fix && IsNDP(b) {
			resum(b)
		}
		e := newEnv(t, Config{MaxEntries: 4})
		e.c.Enqueue(1, hostIP6, pkt("waiting"))
		e.c.learn(1, hostLL, news{mac: hostMAC, create: true})
		orig := bytes.Clone(b)
		out := make([]byte, 72)
		r, rs := e.c.HandleNDP(lan, otherMAC, b, out)
		if !bytes.Equal(b, orig) {
			t.Fatal("HandleNDP changed its input")
		}
		checkTable(t, e.c)
		m, ok := parseNDP(b)
		if rs && (!ok || m.typ != header.ICMPv6RouterSolicit) {
			t.Fatalf("rs from %x", b)
		}
		if r.N == 0 {
			return
		}
		if !ok || m.typ != header.ICMPv6NeighborSolicit || !lan.ours(m.target) {
			t.Fatalf("replied to %x", b)
		}
		if m.src.IsUnspecified() {
			checkNA(t, out[:r.N], AllNodes, m.target, false)
		} else {
			checkNA(t, out[:r.N], m.src, m.target, true)
		}
		if reply, ok := parseNDP(out[:r.N]); !ok || reply.typ != header.ICMPv6NeighborAdvert {
			t.Fatal("our NA fails our own validation")
		}
	})
}
