package xlate

import (
	"bytes"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// family is the test network of one IP version.
type family struct {
	name                                 string
	inside, insideB, public, remote, hop netip.Addr
	icmp                                 uint8
	echoReq, echoRep                     func(id uint16, payload []byte) []byte
}

var families = []family{
	{
		name: "v4", inside: inside4, insideB: inside4b, public: public4, remote: remote4, hop: hop4, icmp: icmp,
		echoReq: func(id uint16, pl []byte) []byte { return echo4(header.ICMPv4Echo, id, pl) },
		echoRep: func(id uint16, pl []byte) []byte { return echo4(header.ICMPv4EchoReply, id, pl) },
	},
	{
		name: "v6", inside: inside6, insideB: inside6b, public: public6, remote: remote6, hop: hop6, icmp: icmp6,
		echoReq: func(id uint16, pl []byte) []byte { return echo6(header.ICMPv6EchoRequest, id, pl) },
		echoRep: func(id uint16, pl []byte) []byte { return echo6(header.ICMPv6EchoReply, id, pl) },
	},
}

// payload has an odd length, so the sums end on half a word.
var payload = []byte("hello, world!")

type rewriteCase struct {
	name     string
	in       []byte
	src, dst netip.AddrPort
	// want is the packet built from scratch with the new endpoints: every
	// checksum in it was computed over the whole packet, so a byte-exact
	// match shows the incremental updates give what RFC 1624 promises.
	want []byte
}

func rewriteCases() []rewriteCase {
	var cases []rewriteCase
	for _, f := range families {
		add := func(name string, in []byte, src, dst netip.AddrPort, want []byte) {
			cases = append(cases, rewriteCase{f.name + "/" + name, in, src, dst, want})
		}
		for _, s := range []struct {
			name  string
			proto uint8
			l4    func(sp, dp uint16) []byte
		}{
			{"tcp", tcp, func(sp, dp uint16) []byte { return tcpSeg(sp, dp, payload) }},
			{"udp", udp, func(sp, dp uint16) []byte { return udpDgram(sp, dp, payload) }},
		} {
			// Outbound through source NAT: the source changes.
			add(s.name+"/snat", ipOf(f.inside, f.remote, s.proto, s.l4(40000, 443)),
				ap(f.public, 50000), ap(f.remote, 443),
				ipOf(f.public, f.remote, s.proto, s.l4(50000, 443)))
			// Its reply: the destination changes back.
			add(s.name+"/reply", ipOf(f.remote, f.public, s.proto, s.l4(443, 50000)),
				ap(f.remote, 443), ap(f.inside, 40000),
				ipOf(f.remote, f.inside, s.proto, s.l4(443, 40000)))
			// Hairpinned through a port forward: both change.
			add(s.name+"/hairpin", ipOf(f.inside, f.public, s.proto, s.l4(40000, 8080)),
				ap(f.public, 50000), ap(f.insideB, 80),
				ipOf(f.public, f.insideB, s.proto, s.l4(50000, 80)))
			// Only a port changes.
			add(s.name+"/port-only", ipOf(f.inside, f.remote, s.proto, s.l4(40000, 443)),
				ap(f.inside, 40001), ap(f.remote, 443),
				ipOf(f.inside, f.remote, s.proto, s.l4(40001, 443)))
		}
		// RFC 768: no checksum stays no checksum.
		add("udp/zero-checksum", zeroUDP(ipOf(f.inside, f.remote, udp, udpDgram(40000, 53, payload))),
			ap(f.public, 50000), ap(f.remote, 53),
			zeroUDP(ipOf(f.public, f.remote, udp, udpDgram(50000, 53, payload))))
		// Echo: a request takes the new source's port as identifier, a
		// reply the new destination's; the other port is not used.
		add("echo-request", ipOf(f.inside, f.remote, f.icmp, f.echoReq(7, payload)),
			ap(f.public, 3000), ap(f.remote, 9999),
			ipOf(f.public, f.remote, f.icmp, f.echoReq(3000, payload)))
		add("echo-reply", ipOf(f.remote, f.public, f.icmp, f.echoRep(3000, payload)),
			ap(f.remote, 1234), ap(f.inside, 7),
			ipOf(f.remote, f.inside, f.icmp, f.echoRep(7, payload)))
		add("echo-request/ident-only", ipOf(f.inside, f.remote, f.icmp, f.echoReq(7, payload)),
			ap(f.inside, 8), ap(f.remote, 8),
			ipOf(f.inside, f.remote, f.icmp, f.echoReq(8, payload)))
		// 0xffff and 0 are both zero to a one's complement sum: the
		// checksum stays, the field must change all the same.
		add("echo-reply/ident-0xffff-to-0", ipOf(f.remote, f.inside, f.icmp, f.echoRep(0xffff, payload)),
			ap(f.remote, 0), ap(f.inside, 0),
			ipOf(f.remote, f.inside, f.icmp, f.echoRep(0, payload)))
		add("echo-request/ident-0-to-0xffff", ipOf(f.inside, f.remote, f.icmp, f.echoReq(0, payload)),
			ap(f.inside, 0xffff), ap(f.remote, 0xffff),
			ipOf(f.inside, f.remote, f.icmp, f.echoReq(0xffff, payload)))
		for _, s := range []struct {
			name  string
			proto uint8
			l4    func(sp, dp uint16) []byte
		}{
			{"tcp", tcp, func(sp, dp uint16) []byte { return tcpSeg(sp, dp, payload) }},
			{"udp", udp, func(sp, dp uint16) []byte { return udpDgram(sp, dp, payload) }},
		} {
			add(s.name+"/port-0xffff-to-0", ipOf(f.inside, f.remote, s.proto, s.l4(0xffff, 443)),
				ap(f.inside, 0), ap(f.remote, 443),
				ipOf(f.inside, f.remote, s.proto, s.l4(0, 443)))
		}
	}
	// The transport header after IPv4 options and IPv6 extension headers.
	opts := ip4Opts{options: header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}, &header.IPv4SerializableNOPOption{}}}
	hbh := header.IPv6ExtHdrSerializer{header.IPv6SerializableHopByHopExtHdr{&header.IPv6RouterAlertOption{}}}
	cases = append(cases,
		rewriteCase{"v4/tcp/options",
			ip4(inside4, remote4, tcp, tcpSeg(40000, 443, payload), opts), ap(public4, 50000), ap(remote4, 443),
			ip4(public4, remote4, tcp, tcpSeg(50000, 443, payload), opts)},
		rewriteCase{"v6/udp/hop-by-hop",
			ip6(inside6, remote6, udp, udpDgram(40000, 53, payload), hbh), ap(public6, 50000), ap(remote6, 53),
			ip6(public6, remote6, udp, udpDgram(50000, 53, payload), hbh)},
		// A first fragment: the UDP checksum covers the whole datagram,
		// which incremental update does not need.
		rewriteCase{"v4/udp/first-fragment",
			firstFragment(ip4(inside4, remote4, udp, udpDgram(40000, 53, bytes.Repeat(payload, 8)), ip4Opts{}), 16),
			ap(public4, 50000), ap(remote4, 53),
			firstFragment(ip4(public4, remote4, udp, udpDgram(50000, 53, bytes.Repeat(payload, 8)), ip4Opts{}), 16)},
	)
	return cases
}

// firstFragment cuts the whole IPv4 packet b to its first fragment, with
// n bytes of payload (a multiple of 8).
func firstFragment(b []byte, n int) []byte {
	ip := header.IPv4(b)
	hl := int(ip.HeaderLength())
	b = b[:hl+n]
	ip = header.IPv4(b)
	ip.SetTotalLength(uint16(len(b)))
	ip.SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

// parsedView is the parsed view of a packet.Packet, comparable.
type parsedView struct {
	Len                        int
	Version                    uint8
	HeaderLen                  int
	Proto                      uint8
	Src, Dst                   netip.Addr
	Fragment, NonFirstFragment bool
	HasPorts                   bool
	SrcPort, DstPort           uint16
	TCPFlags, ICMPType         uint8
}

func view(p *packet.Packet) parsedView {
	return parsedView{p.Len, p.Version, p.HeaderLen, p.Proto, p.Src, p.Dst, p.Fragment, p.NonFirstFragment,
		p.HasPorts, p.SrcPort, p.DstPort, p.TCPFlags, p.ICMPType}
}

func TestRewrite(t *testing.T) {
	for _, tc := range rewriteCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			if !Rewrite(p, tc.src, tc.dst) {
				t.Fatal("Rewrite refused")
			}
			if d := diff(p.Data(), tc.want); d != "" {
				t.Fatalf("packet differs from one built from scratch: %s", d)
			}
			// Full recomputation, spelled out: the IPv4 header checksum
			// and the transport checksum over the pseudo-header verify.
			if p.Version == header.IPv4Version && !header.IPv4(p.Data()).IsChecksumValid() {
				t.Error("IPv4 header checksum does not verify")
			}
			if !p.Fragment && !transportValid(p) {
				t.Error("transport checksum does not verify")
			}
			// The parsed view is what parsing the result gives.
			if got, want := view(p), view(parse(t, tc.want)); got != want {
				t.Errorf("parsed view\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

// TestRewriteUnchanged: translating to the endpoints a packet already has
// leaves every byte alone, checksums included.
func TestRewriteUnchanged(t *testing.T) {
	for _, tc := range rewriteCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			before := bytes.Clone(p.Data())
			if !Rewrite(p, ap(p.Src, p.SrcPort), ap(p.Dst, p.DstPort)) {
				t.Fatal("Rewrite refused")
			}
			if d := diff(p.Data(), before); d != "" {
				t.Fatal(d)
			}
		})
	}
}

// TestRewriteRoundTrip: translating there and back restores the packet.
func TestRewriteRoundTrip(t *testing.T) {
	for _, tc := range rewriteCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			src, dst := ap(p.Src, p.SrcPort), ap(p.Dst, p.DstPort)
			if !Rewrite(p, tc.src, tc.dst) || !Rewrite(p, src, dst) {
				t.Fatal("Rewrite refused")
			}
			if d := diff(p.Data(), tc.in); d != "" {
				t.Fatal(d)
			}
		})
	}
}

func TestRewriteRefuses(t *testing.T) {
	frag6 := header.IPv6ExtHdrSerializer{&header.IPv6SerializableFragmentExtHdr{FragmentOffset: 2, Identification: 9}}
	timestamp := make([]byte, 20)
	header.ICMPv4(timestamp).SetType(header.ICMPv4Timestamp)
	tests := []struct {
		name     string
		in       []byte
		src, dst netip.AddrPort
	}{
		{"v4 packet, v6 addresses", ipOf(inside4, remote4, udp, udpDgram(1, 2, nil)), ap(public6, 1), ap(remote6, 2)},
		{"v4 packet, v4-mapped addresses", ipOf(inside4, remote4, udp, udpDgram(1, 2, nil)),
			ap(netip.AddrFrom16(public4.As16()), 1), ap(netip.AddrFrom16(remote4.As16()), 2)},
		{"v6 packet, v4 addresses", ipOf(inside6, remote6, udp, udpDgram(1, 2, nil)), ap(public4, 1), ap(remote4, 2)},
		{"v6 packet, one v4 address", ipOf(inside6, remote6, udp, udpDgram(1, 2, nil)), ap(public6, 1), ap(remote4, 2)},
		{"v4 non-first fragment", ip4(inside4, remote4, udp, payload, ip4Opts{offset: 16}), ap(public4, 1), ap(remote4, 2)},
		{"v6 non-first fragment", ip6(inside6, remote6, udp, payload, frag6), ap(public6, 1), ap(remote6, 2)},
		{"no ports: GRE", ipOf(inside4, remote4, gre, payload), ap(public4, 1), ap(remote4, 2)},
		{"no ports: ICMP timestamp", ipOf(inside4, remote4, icmp, timestamp), ap(public4, 1), ap(remote4, 2)},
		{"no ports: ICMPv6 error", ipOf(inside6, remote6, icmp6, icmpErr6(header.ICMPv6DstUnreachable, 4, 0, payload)), ap(public6, 1), ap(remote6, 2)},
		{"short TCP header", ipOf(inside4, remote4, tcp, tcpSeg(1, 2, nil)[:12]), ap(public4, 1), ap(remote4, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			before, v := bytes.Clone(p.Data()), view(p)
			if Rewrite(p, tc.src, tc.dst) {
				t.Fatal("Rewrite did not refuse")
			}
			if !bytes.Equal(p.Data(), before) || view(p) != v {
				t.Fatal("Rewrite refused but changed the packet")
			}
		})
	}
}

func TestRewriteAddrs(t *testing.T) {
	frag6 := header.IPv6ExtHdrSerializer{&header.IPv6SerializableFragmentExtHdr{FragmentOffset: 2, Identification: 9}}
	tests := []struct {
		name     string
		in       []byte
		src, dst netip.Addr
		want     []byte
	}{
		{"v4 non-first fragment", ip4(inside4, remote4, udp, payload, ip4Opts{offset: 16}), public4, remote4,
			ip4(public4, remote4, udp, payload, ip4Opts{offset: 16})},
		{"v6 non-first fragment", ip6(inside6, remote6, udp, payload, frag6), public6, remote6,
			ip6(public6, remote6, udp, payload, frag6)},
		{"v4 GRE", ipOf(inside4, remote4, gre, payload), public4, remote4, ipOf(public4, remote4, gre, payload)},
		{"v6 GRE", ipOf(inside6, remote6, gre, payload), public6, remote6, ipOf(public6, remote6, gre, payload)},
		{"v4 TCP keeps ports", ipOf(remote4, public4, tcp, tcpSeg(443, 50000, payload)), remote4, inside4,
			ipOf(remote4, inside4, tcp, tcpSeg(443, 50000, payload))},
		{"v6 UDP keeps ports", ipOf(inside6, remote6, udp, udpDgram(40000, 53, payload)), public6, remote6,
			ipOf(public6, remote6, udp, udpDgram(40000, 53, payload))},
		{"v4 UDP zero checksum", zeroUDP(ipOf(inside4, remote4, udp, udpDgram(40000, 53, payload))), public4, remote4,
			zeroUDP(ipOf(public4, remote4, udp, udpDgram(40000, 53, payload)))},
		{"v4 ICMP echo: no pseudo-header", ipOf(inside4, remote4, icmp, echo4(header.ICMPv4Echo, 7, payload)), public4, remote4,
			ipOf(public4, remote4, icmp, echo4(header.ICMPv4Echo, 7, payload))},
		{"v6 ICMPv6 echo: pseudo-header", ipOf(inside6, remote6, icmp6, echo6(header.ICMPv6EchoRequest, 7, payload)), public6, remote6,
			ipOf(public6, remote6, icmp6, echo6(header.ICMPv6EchoRequest, 7, payload))},
		{"v4 UDP first fragment",
			firstFragment(ip4(inside4, remote4, udp, udpDgram(40000, 53, bytes.Repeat(payload, 8)), ip4Opts{}), 16), public4, remote4,
			firstFragment(ip4(public4, remote4, udp, udpDgram(40000, 53, bytes.Repeat(payload, 8)), ip4Opts{}), 16)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			if !RewriteAddrs(p, tc.src, tc.dst) {
				t.Fatal("RewriteAddrs refused")
			}
			if d := diff(p.Data(), tc.want); d != "" {
				t.Fatalf("packet differs from one built from scratch: %s", d)
			}
			if got, want := view(p), view(parse(t, tc.want)); got != want {
				t.Errorf("parsed view\n got  %+v\n want %+v", got, want)
			}
		})
	}
}

func TestRewriteAddrsRefuses(t *testing.T) {
	// A first fragment cut inside the TCP header, before the checksum
	// (RFC 1858's tiny fragment): the checksum cannot be fixed.
	tiny := ip4(inside4, remote4, tcp, tcpSeg(40000, 443, nil)[:8], ip4Opts{flags: header.IPv4FlagMoreFragments})
	tests := []struct {
		name     string
		in       []byte
		src, dst netip.Addr
	}{
		{"family", ipOf(inside4, remote4, udp, udpDgram(1, 2, nil)), public6, remote6},
		{"tiny first fragment", tiny, public4, remote4},
		{"short ICMPv6", ipOf(inside6, remote6, icmp6, []byte{128, 0, 0, 0}), public6, remote6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			before, v := bytes.Clone(p.Data()), view(p)
			if RewriteAddrs(p, tc.src, tc.dst) {
				t.Fatal("RewriteAddrs did not refuse")
			}
			if !bytes.Equal(p.Data(), before) || view(p) != v {
				t.Fatal("RewriteAddrs refused but changed the packet")
			}
		})
	}
}

// TestRewriteUDPZeroResult: when the updated UDP checksum comes out as
// zero it is sent as all ones (RFC 768), never as "no checksum".
func TestRewriteUDPZeroResult(t *testing.T) {
	// Search for a new source port that makes the computed checksum zero.
	in := ipOf(inside4, remote4, udp, udpDgram(40000, 53, payload))
	for port := range uint16(0xffff) {
		want := ipOf(public4, remote4, udp, udpDgram(port, 53, payload))
		if header.UDP(want[header.IPv4MinimumSize:]).Checksum() != 0xffff {
			continue
		}
		p := parse(t, in)
		if !Rewrite(p, ap(public4, port), ap(remote4, 53)) {
			t.Fatal("Rewrite refused")
		}
		if d := diff(p.Data(), want); d != "" {
			t.Fatal(d)
		}
		return
	}
	t.Fatal("no port gives a computed checksum of zero")
}

func TestRewriteAllocs(t *testing.T) {
	for _, f := range families {
		p := parse(t, ipOf(f.inside, f.remote, tcp, tcpSeg(40000, 443, payload)))
		a := [2]netip.AddrPort{ap(f.inside, 40000), ap(f.public, 50000)}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			i ^= 1
			Rewrite(p, a[i], ap(f.remote, 443))
			RewriteAddrs(p, a[i^1].Addr(), f.remote)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Rewrite and RewriteAddrs", f.name, allocs)
		}
	}
}

// BenchmarkRewrite translates one packet back and forth: each operation
// rewrites the source address and port and fixes the checksums.
func BenchmarkRewrite(b *testing.B) {
	for _, f := range families {
		for _, s := range []struct {
			name string
			pkt  []byte
		}{
			{"tcp", ipOf(f.inside, f.remote, tcp, tcpSeg(40000, 443, make([]byte, 1400)))},
			{"udp", ipOf(f.inside, f.remote, udp, udpDgram(40000, 443, make([]byte, 1400)))},
			{"echo", ipOf(f.inside, f.remote, f.icmp, f.echoReq(40000, make([]byte, 56)))},
		} {
			b.Run(f.name+"/"+s.name, func(b *testing.B) {
				p := parse(b, s.pkt)
				a := [2]netip.AddrPort{ap(f.inside, 40000), ap(f.public, 50000)}
				dst := ap(f.remote, 443)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					i ^= 1
					Rewrite(p, a[i], dst)
				}
			})
		}
	}
}
