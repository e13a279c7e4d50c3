package neigh

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// clock is the fake clock tests drive.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// call is one Sender call.
type call struct {
	kind  string // "solicit", "flush", "fail"
	iface int
	ip    netip.Addr // solicit, fail
	mac   MAC        // solicit (unicast), flush
	pkts  [][]byte
}

// recorder is a Sender that remembers its calls.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) add(c call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) Solicit(iface int, target netip.Addr, unicast MAC) {
	r.add(call{kind: "solicit", iface: iface, ip: target, mac: unicast})
}

func (r *recorder) Flush(iface int, mac MAC, pkts [][]byte) {
	r.add(call{kind: "flush", iface: iface, mac: mac, pkts: pkts})
}

func (r *recorder) Fail(iface int, target netip.Addr, pkts [][]byte) {
	r.add(call{kind: "fail", iface: iface, ip: target, pkts: pkts})
}

// take returns the calls so far and forgets them.
func (r *recorder) take() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

// env is a cache with its clock and recorder.
type env struct {
	t   *testing.T
	c   *Cache
	clk *clock
	rec *recorder
}

func newEnv(t *testing.T, cfg Config) *env {
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	rec := &recorder{}
	return &env{t: t, c: New(cfg, clk.now, rec), clk: clk, rec: rec}
}

// run advances the clock by d in the router's 100 ms steps, ticking.
func (e *env) run(d time.Duration) {
	const step = 100 * time.Millisecond
	for ; d > 0; d -= step {
		e.clk.advance(min(step, d))
		e.c.Tick()
	}
}

// entry is the cache's entry for ip on iface 1.
func (e *env) entry(ip netip.Addr) (Entry, bool) {
	all := e.c.Entries()
	i := slices.IndexFunc(all, func(x Entry) bool { return x.Iface == 1 && x.IP == ip })
	if i < 0 {
		return Entry{}, false
	}
	return all[i], true
}

// want checks ip's state and MAC; state 0 means no entry.
func (e *env) want(ip netip.Addr, st State, mac MAC) {
	e.t.Helper()
	got, ok := e.entry(ip)
	switch {
	case st == 0 && ok:
		e.t.Fatalf("%v: entry %v %v, want none", ip, got.State, got.MAC)
	case st == 0:
	case !ok:
		e.t.Fatalf("%v: no entry, want %v", ip, st)
	case got.State != st || got.MAC != mac:
		e.t.Fatalf("%v: %v %v, want %v %v", ip, got.State, got.MAC, st, mac)
	}
}

// wantCalls checks the Sender calls since the last check, by kind, IP
// (or MAC for flushes) and packets.
func (e *env) wantCalls(want ...call) {
	e.t.Helper()
	got := e.rec.take()
	if len(got) != len(want) {
		e.t.Fatalf("calls %+v, want %+v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.kind != w.kind || g.iface != w.iface || g.ip != w.ip || g.mac != w.mac || !slices.EqualFunc(g.pkts, w.pkts, slices.Equal) {
			e.t.Fatalf("call %d: %+v, want %+v", i, g, w)
		}
	}
}

var (
	routerMAC = MAC{0x02, 0, 0, 0, 0, 0x01}
	hostMAC   = MAC{0x00, 0x50, 0x56, 0xf4, 0x6c, 0xf2}
	otherMAC  = MAC{0x00, 0x50, 0x56, 0x11, 0x22, 0x33}

	routerIP4 = netip.MustParseAddr("192.168.46.1")
	hostIP4   = netip.MustParseAddr("192.168.46.2")
	otherIP4  = netip.MustParseAddr("192.168.46.3")
	routerIP6 = netip.MustParseAddr("fd46::1")
	hostIP6   = netip.MustParseAddr("fd46::2")
	hostLL    = netip.MustParseAddr("fe80::250:56ff:fef4:6cf2")
)

// lan is interface 1, the router's LAN side.
var lan = Link{
	Index: 1,
	MAC:   routerMAC,
	Ours:  func(a netip.Addr) bool { return a == routerIP4 || a == routerIP6 },
}

func pkt(s string) []byte { return []byte(s) }

func solicit(ip netip.Addr, unicast MAC) call {
	return call{kind: "solicit", iface: 1, ip: ip, mac: unicast}
}

func flush(mac MAC, pkts ...[]byte) call {
	return call{kind: "flush", iface: 1, mac: mac, pkts: pkts}
}

func fail(ip netip.Addr, pkts ...[]byte) call {
	return call{kind: "fail", iface: 1, ip: ip, pkts: pkts}
}

// arpFrom is an ARP packet from sender to target.
func arpFrom(op header.ARPOp, smac MAC, sip netip.Addr, tmac MAC, tip netip.Addr) []byte {
	b := make([]byte, header.ARPSize)
	arp{op: op, senderMAC: smac, senderIP: sip, targetMAC: tmac, targetIP: tip}.put(b)
	return b
}

// na is a Neighbor Advertisement from a host, with the flags given and
// a Target Link-Layer Address option unless tlla is zero.
func na(src, dst, target netip.Addr, tlla MAC, solicited, override bool) []byte {
	var opts header.NDPOptionsSerializer
	if tlla != (MAC{}) {
		opts = append(opts, header.NDPTargetLinkLayerAddressOption(tlla.link()))
	}
	b := make([]byte, 128)
	n := putICMPv6(b, src, dst, header.ICMPv6NeighborAdvert, header.NDPNAMinimumSize+opts.Length(), func(body []byte) {
		m := header.NDPNeighborAdvert(body)
		m.SetSolicitedFlag(solicited)
		m.SetOverrideFlag(override)
		m.SetTargetAddress(toTcpip(target))
		m.Options().Serialize(opts)
	})
	return b[:n]
}

// rs is a Router Solicitation, with a Source Link-Layer Address option
// unless slla is zero.
func rs(src MAC, from netip.Addr, slla MAC) []byte {
	var opts header.NDPOptionsSerializer
	if slla != (MAC{}) {
		opts = append(opts, header.NDPSourceLinkLayerAddressOption(slla.link()))
	}
	b := make([]byte, 128)
	n := putICMPv6(b, from, netip.MustParseAddr("ff02::2"), header.ICMPv6RouterSolicit, header.NDPRSMinimumSize+opts.Length(), func(body []byte) {
		header.NDPRouterSolicit(body).Options().Serialize(opts)
	})
	return b[:n]
}

// ns is a Neighbor Solicitation from a host for target.
func ns(mac MAC, src, target netip.Addr, unicast MAC) []byte {
	b := make([]byte, 128)
	return b[:BuildNS(b, mac, src, target, unicast).N]
}

// resum recomputes the ICMPv6 checksum of an IPv6 packet after a test
// changed it.
func resum(pkt []byte) []byte {
	ip := header.IPv6(pkt)
	icmp := header.ICMPv6(ip.Payload())
	icmp.SetChecksum(0)
	icmp.SetChecksum(header.ICMPv6Checksum(header.ICMPv6ChecksumParams{
		Header: icmp, Src: ip.SourceAddress(), Dst: ip.DestinationAddress(),
	}))
	return pkt
}
