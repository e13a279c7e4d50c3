package neigh

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// checkICMPv6 parses an IPv6 ND packet with gVisor's header and checks
// what every ND message must have: hop limit 255, ICMPv6 of type typ,
// code 0, a valid checksum. It returns the ICMPv6 message.
func checkICMPv6(t *testing.T, b []byte, src, dst netip.Addr, typ header.ICMPv6Type) header.ICMPv6 {
	t.Helper()
	ip := header.IPv6(b)
	if !ip.IsValid(len(b)) || int(ip.PayloadLength())+header.IPv6MinimumSize != len(b) {
		t.Fatalf("invalid IPv6 packet %x", b)
	}
	if ip.HopLimit() != 255 || ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) {
		t.Fatalf("hop limit %d, next header %d", ip.HopLimit(), ip.NextHeader())
	}
	if got := fromTcpip6(ip.SourceAddress()); got != src {
		t.Fatalf("source %v, want %v", got, src)
	}
	if got := fromTcpip6(ip.DestinationAddress()); got != dst {
		t.Fatalf("destination %v, want %v", got, dst)
	}
	icmp := header.ICMPv6(ip.Payload())
	if icmp.Type() != typ || icmp.Code() != 0 {
		t.Fatalf("ICMPv6 type %d code %d, want %d 0", icmp.Type(), icmp.Code(), typ)
	}
	if !checksumValid(ip, icmp) {
		t.Fatal("bad ICMPv6 checksum")
	}
	return icmp
}

// linkOption is the one link-layer address option in opts, which must
// parse.
func linkOption(t *testing.T, opts header.NDPOptions) header.NDPOption {
	t.Helper()
	it, err := opts.Iter(true)
	if err != nil {
		t.Fatal(err)
	}
	var found header.NDPOption
	for {
		o, done, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return found
		}
		if found != nil {
			t.Fatalf("second option %v after %v", o, found)
		}
		found = o
	}
}

// checkNA checks a Neighbor Advertisement the router sent.
func checkNA(t *testing.T, b []byte, dst, target netip.Addr, solicited bool) {
	t.Helper()
	icmp := checkICMPv6(t, b, target, dst, header.ICMPv6NeighborAdvert)
	na := header.NDPNeighborAdvert(icmp.MessageBody())
	if fromTcpip6(na.TargetAddress()) != target || !na.RouterFlag() || na.SolicitedFlag() != solicited || !na.OverrideFlag() {
		t.Fatalf("NA target %v R=%t S=%t O=%t, want %v R S=%t O", na.TargetAddress(),
			na.RouterFlag(), na.SolicitedFlag(), na.OverrideFlag(), target, solicited)
	}
	o, ok := linkOption(t, na.Options()).(header.NDPTargetLinkLayerAddressOption)
	if !ok || o.EthernetAddress() != routerMAC.link() {
		t.Fatalf("NA option %v, want target link-layer %v", o, routerMAC)
	}
}

// nsPkt is a Neighbor Solicitation, with a source link-layer option
// unless slla is zero.
func nsPkt(src, dst, target netip.Addr, slla MAC) []byte {
	var opts header.NDPOptionsSerializer
	if slla != (MAC{}) {
		opts = append(opts, header.NDPSourceLinkLayerAddressOption(slla.link()))
	}
	b := make([]byte, 128)
	n := putICMPv6(b, src, dst, header.ICMPv6NeighborSolicit, header.NDPNSMinimumSize+opts.Length(), func(body []byte) {
		m := header.NDPNeighborSolicit(body)
		m.SetTargetAddress(toTcpip(target))
		m.Options().Serialize(opts)
	})
	return b[:n]
}

// TestNSForUs: the answer is a solicited NA with R, S, O and our MAC, to
// the solicitor; the solicitor is learned STALE from its option.
func TestNSForUs(t *testing.T) {
	for _, target := range []netip.Addr{routerIP6, LinkLocal(routerMAC)} {
		e := newEnv(t, Config{})
		out := make([]byte, 72)
		r, rs := e.c.HandleNDP(lan, hostMAC, ns(hostMAC, hostIP6, target, MAC{}), out)
		if rs || r.Dst != hostMAC {
			t.Fatalf("%v: reply to %v, rs %t", target, r.Dst, rs)
		}
		checkNA(t, out[:r.N], hostIP6, target, true)
		e.want(hostIP6, Stale, hostMAC)
	}
}

// TestNSWithoutSourceOption: a unicast NS may leave its option out; the
// answer goes to the frame's source, and nothing is learned.
func TestNSWithoutSourceOption(t *testing.T) {
	e := newEnv(t, Config{})
	out := make([]byte, 72)
	r, _ := e.c.HandleNDP(lan, otherMAC, nsPkt(hostIP6, routerIP6, routerIP6, MAC{}), out)
	if r.Dst != otherMAC {
		t.Fatalf("reply to %v, want the frame's source", r.Dst)
	}
	checkNA(t, out[:r.N], hostIP6, routerIP6, true)
	if len(e.c.Entries()) != 0 {
		t.Fatalf("learned %+v", e.c.Entries())
	}
	// A frame from a group address has no one to answer.
	if r, _ := e.c.HandleNDP(lan, Broadcast, nsPkt(hostIP6, routerIP6, routerIP6, MAC{}), out); r.N != 0 {
		t.Fatalf("answered to %v", r.Dst)
	}
}

// TestNSDuplicateAddressDetection: an NS from :: is someone's DAD for
// our address; we defend it with an NA to all-nodes, S clear.
func TestNSDuplicateAddressDetection(t *testing.T) {
	e := newEnv(t, Config{})
	out := make([]byte, 72)
	r, _ := e.c.HandleNDP(lan, hostMAC, nsPkt(netip.IPv6Unspecified(), SolicitedNode(routerIP6), routerIP6, MAC{}), out)
	if r.Dst != (MAC{0x33, 0x33, 0, 0, 0, 1}) {
		t.Fatalf("reply to %v, want 33:33:00:00:00:01", r.Dst)
	}
	checkNA(t, out[:r.N], AllNodes, routerIP6, false)
	if len(e.c.Entries()) != 0 {
		t.Fatalf("learned %+v", e.c.Entries())
	}
}

func TestNSNotForUs(t *testing.T) {
	e := newEnv(t, Config{})
	r, _ := e.c.HandleNDP(lan, hostMAC, ns(hostMAC, hostIP6, netip.MustParseAddr("fd46::99"), MAC{}), make([]byte, 72))
	if r.N != 0 || len(e.c.Entries()) != 0 {
		t.Fatalf("acted on an NS for someone else: %+v %+v", r, e.c.Entries())
	}
}

// TestNDPInvalid: each §7.1.1, §7.1.2, §6.1.1 check, broken on purpose,
// makes the message ignored and counted.
func TestNDPInvalid(t *testing.T) {
	valid := func() []byte { return ns(hostMAC, hostIP6, routerIP6, MAC{}) }
	mutate := func(f func(ip header.IPv6, icmp header.ICMPv6)) []byte {
		b := valid()
		ip := header.IPv6(b)
		f(ip, header.ICMPv6(ip.Payload()))
		return b
	}
	tests := []struct {
		name string
		pkt  []byte
	}{
		{"hop limit 254", mutate(func(ip header.IPv6, _ header.ICMPv6) { ip.SetHopLimit(254) })},
		{"bad checksum", mutate(func(_ header.IPv6, icmp header.ICMPv6) { icmp.SetChecksum(icmp.Checksum() + 1) })},
		{"code 1", resum(mutate(func(_ header.IPv6, icmp header.ICMPv6) { icmp.SetCode(1) }))},
		{"multicast target", nsPkt(hostIP6, routerIP6, AllNodes, hostMAC)},
		{"multicast source", nsPkt(netip.MustParseAddr("ff02::2"), routerIP6, routerIP6, hostMAC)},
		{"DAD with source option", nsPkt(netip.IPv6Unspecified(), SolicitedNode(routerIP6), routerIP6, hostMAC)},
		{"DAD not to solicited-node", nsPkt(netip.IPv6Unspecified(), routerIP6, routerIP6, MAC{})},
		{"zero-length option", resum(mutate(func(_ header.IPv6, icmp header.ICMPv6) {
			opts := header.NDPNeighborSolicit(icmp.MessageBody()).Options()
			opts[1] = 0 // the option's Length field (RFC 4861 §4.6)
		}))},
		{"short", func() []byte {
			b := nsPkt(hostIP6, routerIP6, routerIP6, MAC{})
			b = b[:len(b)-1]
			header.IPv6(b).SetPayloadLength(uint16(len(b) - header.IPv6MinimumSize))
			return resum(b)
		}()},
		{"multicast source option", nsPkt(hostIP6, routerIP6, routerIP6, MAC{0x33, 0x33, 0, 0, 0, 1})},
		{"solicited NA to multicast", na(hostIP6, AllNodes, hostIP6, hostMAC, true, true)},
		{"NA for multicast target", na(hostIP6, routerIP6, AllNodes, hostMAC, true, true)},
		{"RS from :: with source option", rs(hostMAC, netip.IPv6Unspecified(), hostMAC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			if !IsNDP(tt.pkt) {
				t.Fatal("not even NDP")
			}
			r, rs := e.c.HandleNDP(lan, hostMAC, tt.pkt, make([]byte, 72))
			if r.N != 0 || rs || len(e.c.Entries()) != 0 {
				t.Fatalf("acted on it: %+v rs=%t %+v", r, rs, e.c.Entries())
			}
			if got := e.c.Stats().Invalid; got != 1 {
				t.Fatalf("Invalid = %d", got)
			}
		})
	}
}

// TestNAUpdates drives one entry through NAs (RFC 4861 §7.2.5).
func TestNAUpdates(t *testing.T) {
	e := newEnv(t, Config{})
	e.c.Enqueue(1, hostIP6, pkt("p1"))
	e.c.Enqueue(1, hostIP6, pkt("p2"))
	e.wantCalls(solicit(hostIP6, MAC{}))
	steps := []struct {
		name                string
		tlla                MAC
		solicited, override bool
		state               State
		mac                 MAC
	}{
		{"solicited answer", hostMAC, true, false, Reachable, hostMAC},
		{"override clear, other MAC", otherMAC, false, false, Stale, hostMAC},
		{"override, other MAC", otherMAC, false, true, Stale, otherMAC},
		{"solicited, no option", MAC{}, true, false, Reachable, otherMAC},
	}
	for _, s := range steps {
		e.c.HandleNDP(lan, s.tlla, na(hostIP6, routerIP6, hostIP6, s.tlla, s.solicited, s.override), nil)
		if got, _ := e.entry(hostIP6); got.State != s.state || got.MAC != s.mac {
			t.Fatalf("%s: %v %v, want %v %v", s.name, got.State, got.MAC, s.state, s.mac)
		}
	}
	e.wantCalls(flush(hostMAC, pkt("p1"), pkt("p2")))
	// An NA for a neighbor we have no entry for, or for our own address,
	// is dropped.
	e.c.HandleNDP(lan, hostMAC, na(hostLL, AllNodes, hostLL, hostMAC, false, true), nil)
	e.c.HandleNDP(lan, hostMAC, na(hostLL, AllNodes, routerIP6, hostMAC, false, true), nil)
	if n := len(e.c.Entries()); n != 1 {
		t.Fatalf("%d entries: %+v", n, e.c.Entries())
	}
}

// TestRS: a valid RS asks for an RA and teaches its sender's MAC.
func TestRS(t *testing.T) {
	e := newEnv(t, Config{})
	if r, rs := e.c.HandleNDP(lan, hostMAC, rs(hostMAC, hostLL, hostMAC), nil); !rs || r.N != 0 {
		t.Fatal("RS not reported")
	}
	e.want(hostLL, Stale, hostMAC)
	if _, rs := e.c.HandleNDP(lan, hostMAC, rs(hostMAC, netip.IPv6Unspecified(), MAC{}), nil); !rs {
		t.Fatal("RS from :: not reported")
	}
	if n := len(e.c.Entries()); n != 1 {
		t.Fatalf("%d entries", n)
	}
}

// TestNDPForHosts: RAs and Redirects of others are ignored, not counted
// as invalid; packets that are not NDP are not looked at.
func TestNDPForHosts(t *testing.T) {
	e := newEnv(t, Config{})
	ra := make([]byte, 128)
	ra = ra[:BuildRA(ra, RA{MAC: hostMAC, Lifetime: DefaultRouterLifetime}).N]
	echo := make([]byte, 64)
	echo = echo[:putICMPv6(echo, hostIP6, routerIP6, header.ICMPv6EchoRequest, 4, func([]byte) {})]
	for _, p := range [][]byte{ra, echo, nil, []byte("garbage")} {
		if r, rs := e.c.HandleNDP(lan, hostMAC, p, make([]byte, 72)); r.N != 0 || rs {
			t.Fatalf("acted on %x", p)
		}
	}
	if s := e.c.Stats(); s.Invalid != 0 || s.Entries != 0 {
		t.Fatalf("stats %+v", s)
	}
	if !IsNDP(ra) || IsNDP(echo) || IsNDP(nil) {
		t.Fatal("IsNDP wrong")
	}
}

func TestBuildNS(t *testing.T) {
	src := LinkLocal(routerMAC)
	out := make([]byte, 72)
	r := BuildNS(out, routerMAC, src, hostIP6, MAC{})
	group := netip.MustParseAddr("ff02::1:ff00:2")
	if r.Dst != (MAC{0x33, 0x33, 0xff, 0, 0, 2}) {
		t.Fatalf("to %v", r.Dst)
	}
	checkNS := func(b []byte, dst netip.Addr) {
		t.Helper()
		icmp := checkICMPv6(t, b, src, dst, header.ICMPv6NeighborSolicit)
		m := header.NDPNeighborSolicit(icmp.MessageBody())
		o, ok := linkOption(t, m.Options()).(header.NDPSourceLinkLayerAddressOption)
		if fromTcpip6(m.TargetAddress()) != hostIP6 || !ok || o.EthernetAddress() != routerMAC.link() {
			t.Fatalf("NS for %v with %v", m.TargetAddress(), o)
		}
	}
	checkNS(out[:r.N], group)
	r = BuildNS(out, routerMAC, src, hostIP6, hostMAC)
	if r.Dst != hostMAC {
		t.Fatalf("probe to %v", r.Dst)
	}
	checkNS(out[:r.N], hostIP6)
	if r := BuildNS(out[:71], routerMAC, src, hostIP6, MAC{}); r.N != 0 {
		t.Fatal("wrote into a short buffer")
	}
}

func TestBuildUnsolicitedNA(t *testing.T) {
	out := make([]byte, 72)
	r := BuildUnsolicitedNA(out, routerMAC, routerIP6)
	if r.Dst != (MAC{0x33, 0x33, 0, 0, 0, 1}) {
		t.Fatalf("to %v", r.Dst)
	}
	checkNA(t, out[:r.N], AllNodes, routerIP6, false)
}

func TestAddresses(t *testing.T) {
	if got := LinkLocal(hostMAC); got != hostLL {
		t.Errorf("LinkLocal(%v) = %v, want %v", hostMAC, got, hostLL)
	}
	if got := SolicitedNode(netip.MustParseAddr("fd46::1234:5678")); got != netip.MustParseAddr("ff02::1:ff34:5678") {
		t.Errorf("SolicitedNode = %v", got)
	}
	if got := MulticastMAC(netip.MustParseAddr("ff02::1:ff34:5678")); got != (MAC{0x33, 0x33, 0xff, 0x34, 0x56, 0x78}) {
		t.Errorf("MulticastMAC v6 = %v", got)
	}
	if got := MulticastMAC(netip.MustParseAddr("224.128.0.251")); got != (MAC{0x01, 0, 0x5e, 0, 0, 0xfb}) {
		t.Errorf("MulticastMAC v4 = %v", got)
	}
	if AllNodes != netip.MustParseAddr("ff02::1") {
		t.Errorf("AllNodes = %v", AllNodes)
	}
}
