package router

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
)

// natRouter masquerades the LAN out of wan0 with the given filtering, on
// a clock the test moves.
func natRouter(t *testing.T, filtering config.Behavior) (*testRouter, *atomic.Int64) {
	return natRouterWith(t, natConfig(filtering))
}

// natConfig is the config of natRouter.
func natConfig(filtering config.Behavior) *config.Config {
	cfg := testConfig()
	cfg.Pipeline.Stages = slices.Clone(config.DefaultStages)
	cfg.SNAT = []config.SNAT{{
		Out: "wan0", From: prefixes("192.168.46.0/24"), Masquerade: true, Ports: config.DefaultSNATPorts,
		Mapping: config.EndpointIndependent, Filtering: filtering, PortPreservation: true, Hairpin: true,
		UnsolicitedSYN: config.SYNICMP,
	}}
	return cfg
}

func natRouterWith(t *testing.T, cfg *config.Config) (*testRouter, *atomic.Int64) {
	var clock atomic.Int64
	clock.Store(time.Unix(1e9, 0).UnixNano())
	tr := startRouter(t, cfg, func() time.Time { return time.Unix(0, clock.Load()) })
	return tr, &clock
}

func TestMasquerade(t *testing.T) {
	tr, _ := natRouter(t, config.EndpointIndependent)
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes())
	out := header.IPv4(tr.expect(t, "wan0"))
	udp := header.UDP(out.Payload())
	if src := out.SourceAddress().String(); src != "198.18.0.8" || udp.SourcePort() != 5000 || !out.IsChecksumValid() {
		t.Fatalf("out as %s:%d (checksum valid %v), want 198.18.0.8:5000", src, udp.SourcePort(), out.IsChecksumValid())
	}
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}.bytes())
	in := header.IPv4(tr.expect(t, "lan0"))
	if dst := in.DestinationAddress().String(); dst != "192.168.46.2" || header.UDP(in.Payload()).DestinationPort() != 5000 {
		t.Errorf("reply in to %s:%d, want 192.168.46.2:5000", dst, header.UDP(in.Payload()).DestinationPort())
	}
	if flows := tr.Conntrack(); len(flows) != 1 || flows[0].Inside.String() != "192.168.46.2:5000" || flows[0].Outside.String() != "198.18.0.8:5000" {
		t.Errorf("tungate nat: %+v", flows)
	}
}

// TestSNATExemptionAndPool: a to = "none" rule leaves its destinations
// untranslated (RFC 6888 REQ-6) while the rule after it translates the
// rest into a pool of addresses that is not contiguous (RFC 6888 REQ-3).
func TestSNATExemptionAndPool(t *testing.T) {
	cfg := testConfig()
	cfg.Pipeline.Stages = slices.Clone(config.DefaultStages)
	pool := []netip.Addr{netip.MustParseAddr("198.18.0.20"), netip.MustParseAddr("198.18.0.30")}
	cfg.SNAT = []config.SNAT{{
		Out: "wan0", From: prefixes("192.168.46.0/24"), Exempt: true,
		Dest: prefixes("198.18.0.0/24"), DPorts: config.PortSet{{Lo: 53, Hi: 53}, {Lo: 100, Hi: 200}},
	}, {
		Out: "wan0", From: prefixes("192.168.46.0/24"), Addresses: pool, Ports: config.DefaultSNATPorts,
		Mapping: config.EndpointIndependent, Filtering: config.EndpointIndependent, PortPreservation: true,
	}}
	tr := startRouter(t, cfg, nil)
	for _, tt := range []struct {
		dst        string
		dport      uint16
		translated bool
	}{
		{"198.18.0.1", 53, false},
		{"198.18.0.1", 150, false},
		{"198.18.0.1", 54, true},  // port outside dport
		{"203.0.113.1", 53, true}, // address outside dest
	} {
		tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: tt.dst, ttl: 64, payload: 8, sport: 5000, dpt: tt.dport}.bytes())
		out := header.IPv4(tr.expect(t, "wan0"))
		src := netip.AddrFrom4(out.SourceAddress().As4())
		if got := src != netip.MustParseAddr("192.168.46.2"); got != tt.translated || got && !slices.Contains(pool, src) {
			t.Errorf("to %s:%d: left as %s, want translated %v into %v", tt.dst, tt.dport, src, tt.translated, pool)
		}
	}
	if flows := tr.Conntrack(); len(flows) != 2 {
		t.Errorf("tungate nat: %+v, want the two translated flows", flows)
	}
}

// TestOwnErrorsQuoteWhatWasSent: an ICMP error the router makes about a
// packet the NAT already translated goes to that packet's sender and
// quotes it as sent, for a port forward and for the reply direction of a
// masqueraded flow; otherwise the sender could not match it to a socket.
func TestOwnErrorsQuoteWhatWasSent(t *testing.T) {
	cfg := natConfig(config.EndpointIndependent)
	cfg.Forward = []config.Forward{{In: "wan0", Proto: uint8(header.UDPProtocolNumber),
		Listen: netip.MustParseAddrPort("198.18.0.8:8080"), To: netip.MustParseAddrPort("192.168.46.10:80")}}
	tr, _ := natRouterWith(t, cfg)
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes())
	tr.expect(t, "wan0")
	for _, tt := range []struct {
		name       string
		dst        string
		dpt, sport uint16
	}{
		{"port forward", "198.18.0.8", 8080, 7000},
		{"reply of a masqueraded flow", "198.18.0.8", 5000, 53},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: tt.dst, ttl: 1, payload: 8, sport: tt.sport, dpt: tt.dpt}.bytes())
			icmp := icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
			quote := header.IPv4(icmp.Payload())
			udp := header.UDP(quote.Payload())
			if got := netip.AddrFrom4(quote.DestinationAddress().As4()); got.String() != tt.dst || udp.DestinationPort() != tt.dpt || udp.SourcePort() != tt.sport {
				t.Errorf("quote to %s:%d from port %d, want %s:%d from %d", got, udp.DestinationPort(), udp.SourcePort(), tt.dst, tt.dpt, tt.sport)
			}
		})
	}
}

func TestUnsolicitedSYNIsAnsweredAfterSixSeconds(t *testing.T) {
	tr, clock := natRouter(t, config.AddressAndPortDependent)
	// The inside host's TCP mapping 198.18.0.8:5000, opened towards .1:80.
	tr.devs["lan0"].Inject(syn4("192.168.46.2", 5000, "198.18.0.1", 80))
	tr.expect(t, "wan0")

	// A stranger's SYN to the mapping: filtered, held, not answered yet.
	tr.devs["wan0"].Inject(syn4("198.18.0.9", 7000, "198.18.0.8", 5000))
	tr.expectNone(t, "wan0")
	clock.Add(int64(5 * time.Second))
	tr.answerHeldSYNs()
	tr.expectNone(t, "wan0")
	clock.Add(int64(time.Second))
	tr.answerHeldSYNs()
	icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.9", header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable)
}

func TestSimultaneousOpenDropsTheHeldSYN(t *testing.T) {
	tr, clock := natRouter(t, config.AddressAndPortDependent)
	tr.devs["lan0"].Inject(syn4("192.168.46.2", 5000, "198.18.0.1", 80))
	tr.expect(t, "wan0")
	// The peer's SYN arrives before the inside host's SYN to it...
	tr.devs["wan0"].Inject(syn4("198.18.0.9", 7000, "198.18.0.8", 5000))
	// ...which then goes out and makes the flow (RFC 5382 REQ-2).
	tr.devs["lan0"].Inject(syn4("192.168.46.2", 5000, "198.18.0.9", 7000))
	if out := header.IPv4(tr.expect(t, "wan0")); out.DestinationAddress().String() != "198.18.0.9" {
		t.Fatalf("outbound SYN to %s", out.DestinationAddress())
	}
	clock.Add(int64(synHoldTime))
	tr.answerHeldSYNs()
	tr.expectNone(t, "wan0")
	// The peer's retransmitted SYN now belongs to the flow and goes in.
	tr.devs["wan0"].Inject(syn4("198.18.0.9", 7000, "198.18.0.8", 5000))
	if in := header.IPv4(tr.expect(t, "lan0")); in.DestinationAddress().String() != "192.168.46.2" {
		t.Errorf("peer's SYN in to %s", in.DestinationAddress())
	}
}

// fragments splits an IPv4 packet into two fragments at a payload offset
// of 16 bytes, with gVisor's header package.
func fragments(t *testing.T, pkt []byte) (first, second []byte) {
	t.Helper()
	ip := header.IPv4(pkt)
	payload := ip.Payload()
	build := func(data []byte, offset uint16, more bool) []byte {
		b := make([]byte, header.IPv4MinimumSize+len(data))
		copy(b, pkt[:header.IPv4MinimumSize])
		copy(b[header.IPv4MinimumSize:], data)
		f := header.IPv4(b)
		f.SetTotalLength(uint16(len(b)))
		var flags uint8
		if more {
			flags = header.IPv4FlagMoreFragments
		}
		f.SetFlagsFragmentOffset(flags, offset)
		f.SetChecksum(0)
		f.SetChecksum(^f.CalculateChecksum())
		return b
	}
	return build(payload[:16], 0, true), build(payload[16:], 16, false)
}

func TestFragmentsThroughTheNAT(t *testing.T) {
	for _, order := range []string{"in order", "out of order"} {
		t.Run(order, func(t *testing.T) {
			tr, _ := natRouter(t, config.EndpointIndependent)
			first, second := fragments(t, udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 40, sport: 5000, dpt: 53}.bytes())
			if order == "in order" {
				tr.devs["lan0"].Inject(first)
				tr.devs["lan0"].Inject(second)
			} else {
				tr.devs["lan0"].Inject(second)
				tr.expectNone(t, "wan0") // held for its first fragment
				tr.devs["lan0"].Inject(first)
			}
			for range 2 {
				f := header.IPv4(tr.expect(t, "wan0"))
				if src := f.SourceAddress().String(); src != "198.18.0.8" || !f.IsChecksumValid() || f.TTL() != 63 {
					t.Errorf("fragment at %d from %s, TTL %d, checksum valid %v", f.FragmentOffset(), src, f.TTL(), f.IsChecksumValid())
				}
			}
		})
	}
}

func TestLaterFragmentWithoutItsFirstTimesOut(t *testing.T) {
	tr, clock := natRouter(t, config.EndpointIndependent)
	_, second := fragments(t, udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 40, sport: 5000, dpt: 53}.bytes())
	tr.devs["lan0"].Inject(second)
	tr.expectNone(t, "wan0")
	clock.Add(int64(fragTimeout + time.Second))
	tr.expireFragments()
	if n := tr.Stats().Drops["fragment_timeout"]; n != 1 {
		t.Errorf("fragment_timeout drops %d, want 1", n)
	}
}

// icmpError4 is an ICMPv4 error from src to dst quoting the first 28 bytes
// of quoted (its IP header and 8 bytes of transport), with gVisor's
// header package.
func icmpError4(src, dst string, typ header.ICMPv4Type, code header.ICMPv4Code, quoted []byte) []byte {
	quoted = quoted[:header.IPv4MinimumSize+8]
	total := header.IPv4MinimumSize + header.ICMPv4MinimumSize + len(quoted)
	b := make([]byte, total)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(total), TTL: 64, Protocol: uint8(header.ICMPv4ProtocolNumber),
		SrcAddr: tcpip.AddrFrom4(netip.MustParseAddr(src).As4()), DstAddr: tcpip.AddrFrom4(netip.MustParseAddr(dst).As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	m := header.ICMPv4(ip.Payload())
	m.SetType(typ)
	m.SetCode(code)
	copy(m.Payload(), quoted)
	m.SetChecksum(^checksum.Checksum(m, 0))
	return b
}

// waitIdle waits (at most 2 s of real time, for the housekeeping tick to
// read the moved clock) until conntrack sees the only flow idle for at
// least d, and returns it.
func waitIdle(t *testing.T, tr *testRouter, d time.Duration) FlowInfo {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		flows := tr.Conntrack()
		if len(flows) == 1 && flows[0].Idle >= d {
			return flows[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows %+v: want one, idle %v or more", flows, d)
		}
	}
}

// RFC 4787 REQ-12 and RFC 5382 REQ-10: receiving an ICMP message never
// ends a mapping. RFC 5508 REQ-6: an ICMP error about a query session
// neither refreshes nor deletes it.
func TestICMPErrorsNeitherEndNorRefreshFlows(t *testing.T) {
	for _, tc := range []struct {
		name     string
		out      []byte // the inside host's packet that makes the flow
		reply    []byte // a reply from the outside that must still pass
		errType  header.ICMPv4Type
		errCode  header.ICMPv4Code
		protocol string
	}{{
		name:    "UDP, port unreachable",
		out:     udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes(),
		reply:   udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}.bytes(),
		errType: header.ICMPv4DstUnreachable, errCode: header.ICMPv4PortUnreachable, protocol: "udp",
	}, {
		name:    "echo, time exceeded",
		out:     echo4("192.168.46.2", "198.18.0.1", 64),
		errType: header.ICMPv4TimeExceeded, errCode: header.ICMPv4TTLExceeded, protocol: "icmp",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tr, clock := natRouter(t, config.EndpointIndependent)
			tr.devs["lan0"].Inject(tc.out)
			sent := tr.expect(t, "wan0") // what an outside router quotes
			clock.Add(int64(30 * time.Second))
			waitIdle(t, tr, 30*time.Second)

			tr.devs["wan0"].Inject(icmpError4("198.18.0.1", "198.18.0.8", tc.errType, tc.errCode, sent))
			icmp4(t, tr.expect(t, "lan0"), "198.18.0.1", "192.168.46.2", tc.errType, tc.errCode)
			if f := waitIdle(t, tr, 30*time.Second); f.Proto != tc.protocol {
				t.Errorf("flow %+v after the error, want the %s flow still there, not refreshed", f, tc.protocol)
			}
			if tc.reply != nil {
				tr.devs["wan0"].Inject(tc.reply)
				if in := header.IPv4(tr.expect(t, "lan0")); in.DestinationAddress().String() != "192.168.46.2" {
					t.Errorf("reply after the error went to %s", in.DestinationAddress())
				}
			}
		})
	}
}

// TestPortParity: with port_parity, the ports chosen for inside hosts
// that cannot keep theirs keep its parity (RFC 4787 REQ-4). Seven hosts
// share an odd port; without the setting all seven ports would come out
// odd one time in 128.
func TestPortParity(t *testing.T) {
	cfg := natConfig(config.EndpointIndependent)
	cfg.SNAT[0].PortParity = true
	tr, _ := natRouterWith(t, cfg)
	for host := 2; host < 10; host++ {
		src := netip.AddrFrom4([4]byte{192, 168, 46, byte(host)})
		tr.devs["lan0"].Inject(udp4{src: src.String(), dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5001, dpt: 53}.bytes())
		port := header.UDP(header.IPv4(tr.expect(t, "wan0")).Payload()).SourcePort()
		if port%2 != 1 {
			t.Errorf("host %s: port 5001 mapped to even %d", src, port)
		}
	}
}

// TestFastPath: from its second packet on, each direction of a flow takes
// the fast stage past local, dnat and route, translated the same; a reload
// sends the next packet the whole way again; and the ttl stage still
// answers a fast packet that cannot go on, quoting it as it was sent.
func TestFastPath(t *testing.T) {
	cfg := natConfig(config.EndpointIndependent)
	tr, _ := natRouterWith(t, cfg)
	skipped := func() uint64 {
		for _, st := range tr.Stats().Stages {
			if st.Name == "fast" {
				return st.Skipped
			}
		}
		t.Fatal("no fast stage in the stats")
		return 0
	}
	out := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}
	in := udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}
	check := func(name string, want uint64) {
		t.Helper()
		tr.devs["lan0"].Inject(out.bytes())
		o := header.IPv4(tr.expect(t, "wan0"))
		tr.devs["wan0"].Inject(in.bytes())
		i := header.IPv4(tr.expect(t, "lan0"))
		if src := netip.AddrFrom4(o.SourceAddress().As4()); src.String() != "198.18.0.8" || !o.IsChecksumValid() || o.TTL() != 63 {
			t.Errorf("%s: out from %s, TTL %d", name, src, o.TTL())
		}
		if dst := netip.AddrFrom4(i.DestinationAddress().As4()); dst.String() != "192.168.46.2" || !i.IsChecksumValid() || i.TTL() != 63 {
			t.Errorf("%s: in to %s, TTL %d", name, dst, i.TTL())
		}
		for _, pkt := range []header.IPv4{o, i} {
			udp := header.UDP(pkt.Payload())
			if !udp.IsChecksumValid(pkt.SourceAddress(), pkt.DestinationAddress(), checksum.Checksum(udp.Payload(), 0)) {
				t.Errorf("%s: bad UDP checksum from %s", name, pkt.SourceAddress())
			}
		}
		if got := skipped(); got != want {
			t.Errorf("%s: fast stage skipped %d packets, want %d", name, got, want)
		}
	}
	check("first packets", 0)
	check("second packets", 2)
	if err := tr.Reload(natConfig(config.EndpointIndependent)); err != nil {
		t.Fatal(err)
	}
	check("first packets after a reload", 2)
	check("second packets after a reload", 4)

	in.ttl = 1
	tr.devs["wan0"].Inject(in.bytes())
	icmp := icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
	if quote := header.IPv4(icmp.Payload()); netip.AddrFrom4(quote.DestinationAddress().As4()).String() != "198.18.0.8" {
		t.Errorf("Time Exceeded quotes a packet to %s, want 198.18.0.8 as sent", quote.DestinationAddress())
	}
	if got := skipped(); got != 5 {
		t.Errorf("the expiring packet did not take the fast stage: skipped %d, want 5", got)
	}
}
