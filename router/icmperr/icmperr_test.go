package icmperr

import (
	"bytes"
	"math"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

type buildCase struct {
	name  string
	pkt   []byte
	kind  Kind
	mtu   uint32
	src   netip.Addr
	tight bool // the buffer ends where the packet does

	// buildOnly marks a packet Allowed to be answered that Build still
	// refuses (bad router address, no room).
	buildOnly bool

	ok        bool
	typ, code uint8
	second    uint32 // the ICMP header's second word
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func v4Cases() []buildCase {
	udp4 := v4(hostA4, hostB4, header.UDPProtocolNumber, udp(100), ipv4Opts{})
	big4 := v4(hostA4, hostB4, header.UDPProtocolNumber, udp(1472), ipv4Opts{})
	const icmp = header.ICMPv4ProtocolNumber
	from := func(src netip.Addr) []byte { return v4(src, hostB4, header.UDPProtocolNumber, udp(8), ipv4Opts{}) }
	to := func(dst netip.Addr) []byte { return v4(hostA4, dst, header.UDPProtocolNumber, udp(8), ipv4Opts{}) }
	echo := func(t header.ICMPv4Type) []byte { return v4(hostA4, hostB4, icmp, icmp4(t, 0), ipv4Opts{}) }
	return []buildCase{
		{name: "udp time exceeded", pkt: udp4, kind: TimeExceeded, src: router4, ok: true, typ: 11, code: 0},
		{name: "tcp net unreachable", pkt: v4(hostA4, hostB4, header.TCPProtocolNumber, tcp(), ipv4Opts{}), kind: NetUnreachable, src: router4, ok: true, typ: 3, code: 0},
		{name: "host unreachable", pkt: udp4, kind: HostUnreachable, src: router4, ok: true, typ: 3, code: 1},
		{name: "frag needed truncated to 576", pkt: v4(hostA4, hostB4, header.UDPProtocolNumber, udp(1472), ipv4Opts{flags: header.IPv4FlagDontFragment}), kind: FragNeeded, mtu: 1400, src: router4, ok: true, typ: 3, code: 4, second: 1400},
		{name: "frag needed mtu clamped to 16 bits", pkt: udp4, kind: FragNeeded, mtu: 1 << 20, src: router4, ok: true, typ: 3, code: 4, second: math.MaxUint16},
		{name: "packet too big is frag needed", pkt: udp4, kind: PacketTooBig, mtu: 1280, src: router4, ok: true, typ: 3, code: 4, second: 1280},
		{name: "mtu ignored for other kinds", pkt: udp4, kind: TimeExceeded, mtu: 1400, src: router4, ok: true, typ: 11},
		{name: "admin prohibited", pkt: big4, kind: AdminProhibited, src: router4, ok: true, typ: 3, code: 13},
		{name: "port unreachable", pkt: udp4, kind: PortUnreachable, src: router4, ok: true, typ: 3, code: 3},
		{name: "options embedded intact", pkt: v4(hostA4, hostB4, header.UDPProtocolNumber, udp(40), ipv4Opts{options: header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}}}), kind: TimeExceeded, src: router4, ok: true, typ: 11},
		{name: "first fragment", pkt: v4(hostA4, hostB4, header.UDPProtocolNumber, udp(64), ipv4Opts{flags: header.IPv4FlagMoreFragments}), kind: TimeExceeded, src: router4, ok: true, typ: 11},
		{name: "bare header grows into capacity", pkt: v4(hostA4, hostB4, 253, nil, ipv4Opts{}), kind: NetUnreachable, src: router4, ok: true, typ: 3},
		{name: "4in6 source unmapped", pkt: udp4, kind: TimeExceeded, src: netip.AddrFrom16(router4.As16()), ok: true, typ: 11},

		{name: "echo request", pkt: echo(header.ICMPv4Echo), kind: TimeExceeded, src: router4, ok: true, typ: 11},
		{name: "echo reply", pkt: echo(header.ICMPv4EchoReply), kind: NetUnreachable, src: router4, ok: true, typ: 3},
		{name: "timestamp", pkt: echo(header.ICMPv4Timestamp), kind: TimeExceeded, src: router4, ok: true, typ: 11},
		{name: "about dest unreachable", pkt: echo(header.ICMPv4DstUnreachable), kind: TimeExceeded, src: router4},
		{name: "about source quench", pkt: echo(header.ICMPv4SrcQuench), kind: TimeExceeded, src: router4},
		{name: "about redirect", pkt: echo(header.ICMPv4Redirect), kind: TimeExceeded, src: router4},
		{name: "about time exceeded", pkt: echo(header.ICMPv4TimeExceeded), kind: TimeExceeded, src: router4},
		{name: "about parameter problem", pkt: echo(header.ICMPv4ParamProblem), kind: NetUnreachable, src: router4},
		{name: "icmp too short to tell", pkt: v4(hostA4, hostB4, icmp, []byte{8, 0, 0, 0}, ipv4Opts{}), kind: TimeExceeded, src: router4},
		{name: "non-first fragment", pkt: v4(hostA4, hostB4, header.UDPProtocolNumber, udp(64), ipv4Opts{offset: 1480}), kind: TimeExceeded, src: router4},
		{name: "last fragment", pkt: v4(hostA4, hostB4, header.UDPProtocolNumber, udp(64), ipv4Opts{offset: 8}), kind: FragNeeded, mtu: 1400, src: router4},
		{name: "multicast dst", pkt: to(mustAddr("224.0.0.5")), kind: TimeExceeded, src: router4},
		{name: "multicast dst too big", pkt: to(mustAddr("239.1.2.3")), kind: FragNeeded, mtu: 1400, src: router4},
		{name: "limited broadcast dst", pkt: to(mustAddr("255.255.255.255")), kind: PortUnreachable, src: router4},
		{name: "src 0.0.0.0", pkt: from(mustAddr("0.0.0.0")), kind: TimeExceeded, src: router4},
		{name: "src this network", pkt: from(mustAddr("0.1.2.3")), kind: TimeExceeded, src: router4},
		{name: "src loopback", pkt: from(mustAddr("127.0.0.1")), kind: TimeExceeded, src: router4},
		{name: "src multicast", pkt: from(mustAddr("224.0.0.1")), kind: TimeExceeded, src: router4},
		{name: "src class E", pkt: from(mustAddr("240.0.0.1")), kind: TimeExceeded, src: router4},
		{name: "src broadcast", pkt: from(mustAddr("255.255.255.255")), kind: TimeExceeded, src: router4},
		{name: "no kind", pkt: udp4, kind: 0, src: router4},
		{name: "unknown kind", pkt: udp4, kind: numKinds, src: router4},
		{name: "v6 router address", pkt: udp4, kind: TimeExceeded, src: router6, buildOnly: true},
		{name: "invalid router address", pkt: udp4, kind: TimeExceeded, buildOnly: true},
		{name: "no room in buffer", pkt: v4(hostA4, hostB4, 253, nil, ipv4Opts{}), kind: NetUnreachable, src: router4, tight: true, buildOnly: true},
	}
}

func v6Cases() []buildCase {
	udp6 := v6(hostA6, hostB6, header.UDPProtocolNumber, udp(100), nil)
	big6 := v6(hostA6, hostB6, header.UDPProtocolNumber, udp(1952), nil)
	const icmp = header.ICMPv6ProtocolNumber
	from := func(src netip.Addr) []byte { return v6(src, hostB6, header.UDPProtocolNumber, udp(8), nil) }
	to := func(dst netip.Addr) []byte { return v6(hostA6, dst, header.UDPProtocolNumber, udp(8), nil) }
	msg := func(t header.ICMPv6Type) []byte { return v6(hostA6, hostB6, icmp, icmp6(t), nil) }
	frag := func(proto header.ICMPv6Type, offset uint16) []byte {
		return v6(hostA6, hostB6, icmp, icmp6(proto), &header.IPv6SerializableFragmentExtHdr{FragmentOffset: offset, M: true, Identification: 9})
	}
	return []buildCase{
		{name: "udp time exceeded", pkt: udp6, kind: TimeExceeded, src: router6, ok: true, typ: 3, code: 0},
		{name: "tcp net unreachable", pkt: v6(hostA6, hostB6, header.TCPProtocolNumber, tcp(), nil), kind: NetUnreachable, src: router6, ok: true, typ: 1, code: 0},
		{name: "address unreachable", pkt: udp6, kind: HostUnreachable, src: router6, ok: true, typ: 1, code: 3},
		{name: "packet too big truncated to 1280", pkt: big6, kind: PacketTooBig, mtu: 1400, src: router6, ok: true, typ: 2, code: 0, second: 1400},
		{name: "frag needed is packet too big", pkt: udp6, kind: FragNeeded, mtu: 1 << 20, src: router6, ok: true, typ: 2, second: 1 << 20},
		{name: "admin prohibited", pkt: udp6, kind: AdminProhibited, src: router6, ok: true, typ: 1, code: 1},
		{name: "port unreachable", pkt: udp6, kind: PortUnreachable, src: router6, ok: true, typ: 1, code: 4},
		{name: "bare header grows into capacity", pkt: v6(hostA6, hostB6, 59, nil, nil), kind: NetUnreachable, src: router6, ok: true, typ: 1},

		{name: "echo request", pkt: msg(header.ICMPv6EchoRequest), kind: TimeExceeded, src: router6, ok: true, typ: 3},
		{name: "echo reply", pkt: msg(header.ICMPv6EchoReply), kind: PacketTooBig, mtu: 1280, src: router6, ok: true, typ: 2, second: 1280},
		{name: "about dest unreachable", pkt: msg(header.ICMPv6DstUnreachable), kind: TimeExceeded, src: router6},
		{name: "about packet too big", pkt: msg(header.ICMPv6PacketTooBig), kind: PacketTooBig, mtu: 1280, src: router6},
		{name: "about time exceeded", pkt: msg(header.ICMPv6TimeExceeded), kind: TimeExceeded, src: router6},
		{name: "about parameter problem", pkt: msg(header.ICMPv6ParamProblem), kind: TimeExceeded, src: router6},
		{name: "about redirect", pkt: msg(header.ICMPv6RedirectMsg), kind: TimeExceeded, src: router6},
		{name: "icmpv6 too short to tell", pkt: v6(hostA6, hostB6, icmp, []byte{128, 0, 0, 0}, nil), kind: TimeExceeded, src: router6},
		{name: "first fragment of an error", pkt: frag(header.ICMPv6DstUnreachable, 0), kind: TimeExceeded, src: router6},
		{name: "first fragment of an echo", pkt: frag(header.ICMPv6EchoRequest, 0), kind: TimeExceeded, src: router6, ok: true, typ: 3},
		{name: "non-first fragment", pkt: frag(header.ICMPv6DstUnreachable, 185), kind: PacketTooBig, mtu: 1280, src: router6, ok: true, typ: 2, second: 1280},
		{name: "multicast dst", pkt: to(mustAddr("ff02::1")), kind: TimeExceeded, src: router6},
		{name: "multicast dst unreachable", pkt: to(mustAddr("ff0e::101")), kind: NetUnreachable, src: router6},
		{name: "multicast dst packet too big", pkt: to(mustAddr("ff0e::101")), kind: PacketTooBig, mtu: 1280, src: router6, ok: true, typ: 2, second: 1280},
		{name: "src unspecified", pkt: from(mustAddr("::")), kind: TimeExceeded, src: router6},
		{name: "src multicast", pkt: from(mustAddr("ff02::1")), kind: TimeExceeded, src: router6},
		{name: "src loopback", pkt: from(mustAddr("::1")), kind: PacketTooBig, src: router6},
		{name: "v4 router address", pkt: udp6, kind: TimeExceeded, src: router4, buildOnly: true},
		{name: "4in6 router address", pkt: udp6, kind: TimeExceeded, src: netip.AddrFrom16(router4.As16()), buildOnly: true},
		{name: "multicast router address", pkt: udp6, kind: TimeExceeded, src: mustAddr("ff02::2"), buildOnly: true},
		{name: "no room in buffer", pkt: v6(hostA6, hostB6, 59, nil, nil), kind: NetUnreachable, src: router6, tight: true, buildOnly: true},
	}
}

func TestBuild(t *testing.T) {
	for family, cases := range map[string][]buildCase{"v4": v4Cases(), "v6": v6Cases()} {
		for _, tc := range cases {
			t.Run(family+"/"+tc.name, func(t *testing.T) {
				p, err := packetOf(tc.pkt, !tc.tight)
				if err != nil {
					t.Fatal(err)
				}
				before, buf := *p, bytes.Clone(p.Buf)
				if got := Allowed(p, tc.kind); got != (tc.ok || tc.buildOnly) {
					t.Errorf("Allowed = %v, want %v", got, tc.ok || tc.buildOnly)
				}
				if got := Build(p, tc.kind, tc.mtu, tc.src); got != tc.ok {
					t.Fatalf("Build = %v, want %v", got, tc.ok)
				}
				if !tc.ok {
					if p.Start != before.Start || p.Len != before.Len || p.Src != before.Src || p.Origin != before.Origin || !bytes.Equal(p.Buf, buf) {
						t.Fatalf("Build refused but changed the packet")
					}
					return
				}
				w := want{src: tc.src.Unmap(), dst: before.Src, typ: tc.typ, code: tc.code, mtu: tc.second}
				if err := checkError(p, tc.pkt, w); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(p.Buf[:headroom], buf[:headroom]) {
					t.Errorf("headroom changed")
				}
			})
		}
	}
}

// TestTruncation pins the sizes RFC 1812 §4.3.2.3 and RFC 4443 §2.4(c)
// allow: a large original makes an error of exactly 576 / 1280 bytes.
func TestTruncation(t *testing.T) {
	for _, tc := range []struct {
		pkt  []byte
		src  netip.Addr
		want int
	}{
		{v4(hostA4, hostB4, header.UDPProtocolNumber, udp(1472), ipv4Opts{}), router4, 576},
		{v4(hostA4, hostB4, header.UDPProtocolNumber, udp(520), ipv4Opts{}), router4, 576},
		{v4(hostA4, hostB4, header.UDPProtocolNumber, udp(519), ipv4Opts{}), router4, 575},
		{v6(hostA6, hostB6, header.UDPProtocolNumber, udp(8000), nil), router6, 1280},
		{v6(hostA6, hostB6, header.UDPProtocolNumber, udp(1184), nil), router6, 1280},
		{v6(hostA6, hostB6, header.UDPProtocolNumber, udp(1183), nil), router6, 1279},
	} {
		p, err := packetOf(tc.pkt, true)
		if err != nil {
			t.Fatal(err)
		}
		if !Build(p, TimeExceeded, 0, tc.src) {
			t.Fatalf("Build refused a %d-byte packet", len(tc.pkt))
		}
		if p.Len != tc.want {
			t.Errorf("%d-byte original: error is %d bytes, want %d", len(tc.pkt), p.Len, tc.want)
		}
	}
}

// TestBuildReusesBuffer checks that Build writes into the packet's own
// buffer rather than a new one.
func TestBuildReusesBuffer(t *testing.T) {
	p, err := packetOf(v4(hostA4, hostB4, header.UDPProtocolNumber, udp(1000), ipv4Opts{}), true)
	if err != nil {
		t.Fatal(err)
	}
	first := &p.Buf[0]
	if !Build(p, TimeExceeded, 0, router4) {
		t.Fatal("Build refused")
	}
	if &p.Buf[0] != first {
		t.Error("Build replaced the buffer")
	}
}

func TestBuildAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		pkt  []byte
		kind Kind
		src  netip.Addr
	}{
		{"v4", v4(hostA4, hostB4, header.UDPProtocolNumber, udp(1000), ipv4Opts{}), FragNeeded, router4},
		{"v6", v6(hostA6, hostB6, header.UDPProtocolNumber, udp(1500), nil), PacketTooBig, router6},
	} {
		p, err := packetOf(tc.pkt, true)
		if err != nil {
			t.Fatal(err)
		}
		fresh := *p
		allocs := testing.AllocsPerRun(100, func() {
			*p = fresh
			copy(p.Data(), tc.pkt)
			if !Build(p, tc.kind, 1280, tc.src) {
				t.Fatal("Build refused")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: Build allocates %v times", tc.name, allocs)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{TimeExceeded: "time_exceeded", PacketTooBig: "frag_needed", PortUnreachable: "port_unreachable", 0: "unknown", numKinds: "unknown"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// TestAllowedBadView checks that a view that does not match its bytes is
// never answered, rather than read out of bounds.
func TestAllowedBadView(t *testing.T) {
	good := v4(hostA4, hostB4, header.ICMPv4ProtocolNumber, icmp4(header.ICMPv4Echo, 0), ipv4Opts{})
	for name, spoil := range map[string]func(*packet.Packet){
		"header past packet": func(p *packet.Packet) { p.HeaderLen = p.Len + 1 },
		"short header":       func(p *packet.Packet) { p.HeaderLen = 8 },
		"length past buffer": func(p *packet.Packet) { p.Len = len(p.Buf) },
		"version mismatch":   func(p *packet.Packet) { p.Version = 6 },
		"no version":         func(p *packet.Packet) { p.Version = 0 },
		"v6 addresses":       func(p *packet.Packet) { p.Src, p.Dst = hostA6, hostB6 },
	} {
		p, err := packetOf(good, true)
		if err != nil {
			t.Fatal(err)
		}
		spoil(p)
		if Allowed(p, TimeExceeded) || Build(p, TimeExceeded, 0, router4) {
			t.Errorf("%s: answered", name)
		}
	}
}
