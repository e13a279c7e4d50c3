package xlate

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// errKind is one ICMP error type of a family, with a builder for its
// message around a quote.
type errKind struct {
	name string
	msg  func(quote []byte) []byte
}

func errKinds4() []errKind {
	return []errKind{
		{"dest-unreachable/port", func(q []byte) []byte {
			return icmpErr4(header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable, [4]byte{}, q)
		}},
		{"dest-unreachable/frag-needed", func(q []byte) []byte {
			return icmpErr4(header.ICMPv4DstUnreachable, header.ICMPv4FragmentationNeeded, [4]byte{0, 0, 0x05, 0x78}, q)
		}},
		{"time-exceeded", func(q []byte) []byte {
			return icmpErr4(header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded, [4]byte{}, q)
		}},
		{"parameter-problem", func(q []byte) []byte {
			return icmpErr4(header.ICMPv4ParamProblem, 0, [4]byte{8}, q)
		}},
	}
}

func errKinds6() []errKind {
	return []errKind{
		{"dest-unreachable/port", func(q []byte) []byte {
			return icmpErr6(header.ICMPv6DstUnreachable, header.ICMPv6PortUnreachable, 0, q)
		}},
		{"packet-too-big", func(q []byte) []byte { return icmpErr6(header.ICMPv6PacketTooBig, 0, 1280, q) }},
		{"time-exceeded", func(q []byte) []byte {
			return icmpErr6(header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceeded, 0, q)
		}},
		{"parameter-problem", func(q []byte) []byte {
			return icmpErr6(header.ICMPv6ParamProblem, header.ICMPv6ErroneousHeader, 7, q)
		}},
	}
}

func (f family) errKinds() []errKind {
	if f.icmp == icmp {
		return errKinds4()
	}
	return errKinds6()
}

// ipHeaderLen is the length of the IP header of a whole test packet
// without IPv4 options or IPv6 extension headers.
func ipHeaderLen(a netip.Addr) int {
	if a.Is4() {
		return header.IPv4MinimumSize
	}
	return header.IPv6MinimumSize
}

func TestParseError(t *testing.T) {
	type tc struct {
		name string
		pkt  []byte
		ok   bool
		want Embedded // offsets not compared
	}
	var tests []tc
	for _, f := range families {
		hl := ipHeaderLen(f.public)
		udpSent := ipOf(f.public, f.remote, udp, udpDgram(50000, 53, payload))
		tcpSent := ipOf(f.public, f.remote, tcp, tcpSeg(50000, 443, payload))
		echoSent := ipOf(f.public, f.remote, f.icmp, f.echoReq(3000, payload))
		replySent := ipOf(f.public, f.remote, f.icmp, f.echoRep(3000, payload))
		udpWant := Embedded{Proto: udp, Src: ap(f.public, 50000), Dst: ap(f.remote, 53), HasPorts: true}
		tcpWant := Embedded{Proto: tcp, Src: ap(f.public, 50000), Dst: ap(f.remote, 443), HasPorts: true}
		echoWant := Embedded{Proto: f.icmp, Src: ap(f.public, 3000), Dst: ap(f.remote, 3000), HasPorts: true}
		add := func(name string, pkt []byte, ok bool, want Embedded) {
			tests = append(tests, tc{f.name + "/" + name, pkt, ok, want})
		}
		for _, k := range f.errKinds() {
			errOf := func(q []byte) []byte { return ipOf(f.hop, f.public, f.icmp, k.msg(q)) }
			add(k.name+"/udp", errOf(udpSent), true, udpWant)
			add(k.name+"/tcp", errOf(tcpSent), true, tcpWant)
			add(k.name+"/echo-request", errOf(echoSent), true, echoWant)
			add(k.name+"/echo-reply", errOf(replySent), true, echoWant)
		}
		errOf := func(q []byte) []byte { return ipOf(f.hop, f.public, f.icmp, f.errKinds()[2].msg(q)) }
		// RFC 792: the header and the first 64 bits hold the ports.
		add("truncated/8-bytes", errOf(tcpSent[:hl+8]), true, tcpWant)
		add("truncated/4-bytes", errOf(tcpSent[:hl+4]), true,
			Embedded{Proto: tcp, Src: ap(f.public, 0), Dst: ap(f.remote, 0)})
		add("truncated/no-transport", errOf(tcpSent[:hl]), true,
			Embedded{Proto: tcp, Src: ap(f.public, 0), Dst: ap(f.remote, 0)})
		add("truncated/echo-4-bytes", errOf(echoSent[:hl+4]), true,
			Embedded{Proto: f.icmp, Src: ap(f.public, 0), Dst: ap(f.remote, 0)})
		add("truncated/ip-header", errOf(tcpSent[:hl-1]), false, Embedded{})
		add("empty quote", errOf(nil), false, Embedded{})
		add("no ports: GRE", errOf(ipOf(f.public, f.remote, gre, payload)), true,
			Embedded{Proto: gre, Src: ap(f.public, 0), Dst: ap(f.remote, 0)})

		// REQ-3: a bad ICMP checksum drops the error.
		bad := errOf(udpSent)
		bad[len(bad)-1] ^= 0x40
		add("bad ICMP checksum", bad, false, Embedded{})

		// An error about an error, and errors of the wrong family.
		add("error about an error", errOf(errOf(udpSent)[:hl+header.ICMPv4MinimumSize+hl+8]), false, Embedded{})
		add("error about an error, 1 byte", errOf(errOf(udpSent)[:hl+1]), false, Embedded{})
		var other []byte
		if f.icmp == icmp {
			other = ipOf(public6, remote6, udp, udpDgram(1, 2, nil))
		} else {
			other = ipOf(public4, remote4, udp, udpDgram(1, 2, nil))
		}
		add("quote of the other family", errOf(other), false, Embedded{})
		add("not an error: echo request", ipOf(f.hop, f.public, f.icmp, f.echoReq(1, udpSent)), false, Embedded{})
		add("not ICMP", ipOf(f.hop, f.public, udp, udpDgram(1, 2, udpSent)), false, Embedded{})
		add("ICMP header cut", ipOf(f.hop, f.public, f.icmp, errOf(udpSent)[hl:hl+4]), false, Embedded{})
		add("truncated/echo-no-transport", errOf(echoSent[:hl]), true,
			Embedded{Proto: f.icmp, Src: ap(f.public, 0), Dst: ap(f.remote, 0)})
	}

	v4 := func(name string, pkt []byte, ok bool, want Embedded) {
		tests = append(tests, tc{"v4/" + name, pkt, ok, want})
	}
	te4 := func(q []byte) []byte {
		return ip4(hop4, public4, icmp, icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{}, q), ip4Opts{})
	}
	udpSent4 := ip4(public4, remote4, udp, udpDgram(50000, 53, payload), ip4Opts{})
	udpWant4 := Embedded{Proto: udp, Src: ap(public4, 50000), Dst: ap(remote4, 53), HasPorts: true}
	for _, typ := range []header.ICMPv4Type{header.ICMPv4SrcQuench, header.ICMPv4Redirect, header.ICMPv4Timestamp, header.ICMPv4InfoRequest} {
		v4(fmt.Sprintf("type %d", typ), ip4(hop4, public4, icmp, icmpErr4(typ, 0, [4]byte{}, udpSent4), ip4Opts{}), false, Embedded{})
	}
	// REQ-3a: a bad embedded IPv4 header checksum drops the error.
	badHeader := bytes.Clone(udpSent4)
	header.IPv4(badHeader).SetTTL(63)
	v4("bad embedded IP header checksum", te4(badHeader), false, Embedded{})
	// REQ-3b: IPv4 options in the quote are walked past.
	opts := ip4Opts{options: header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}, &header.IPv4SerializableNOPOption{}}}
	v4("embedded IP options", te4(ip4(public4, remote4, udp, udpDgram(50000, 53, payload), opts)), true, udpWant4)
	withOpts := ip4(public4, remote4, udp, udpDgram(50000, 53, payload), opts)
	v4("embedded IP options, 8 bytes", te4(withOpts[:header.IPv4MinimumSize+int(opts.options.Length())+8]), true, udpWant4)
	badIHL := bytes.Clone(udpSent4)
	header.IPv4(badIHL).SetHeaderLength(16)
	v4("embedded IHL below 5", te4(badIHL), false, Embedded{})
	v4("embedded IHL past the quote", te4(ip4(public4, remote4, udp, nil, opts)[:22]), false, Embedded{})
	badTotal := bytes.Clone(udpSent4)
	header.IPv4(badTotal).SetTotalLength(19)
	header.IPv4(badTotal).SetChecksum(0)
	header.IPv4(badTotal).SetChecksum(^header.IPv4(badTotal).CalculateChecksum())
	v4("embedded total length below header", te4(badTotal), false, Embedded{})
	// A quoted non-first fragment has no transport header.
	v4("embedded non-first fragment", te4(ip4(public4, remote4, udp, payload, ip4Opts{offset: 8})), true,
		Embedded{Proto: udp, Src: ap(public4, 0), Dst: ap(remote4, 0)})
	v4("embedded first fragment", te4(firstFragment(ip4(public4, remote4, udp, udpDgram(50000, 53, bytes.Repeat(payload, 4)), ip4Opts{}), 16)), true, udpWant4)
	// A fragmented error cannot have its checksum checked.
	fragged := te4(udpSent4)
	header.IPv4(fragged).SetFlagsFragmentOffset(header.IPv4FlagMoreFragments, 0)
	header.IPv4(fragged).SetChecksum(0)
	header.IPv4(fragged).SetChecksum(^header.IPv4(fragged).CalculateChecksum())
	v4("fragmented error", fragged, false, Embedded{})
	// REQ-3d: RFC 4884 extensions are not part of the quoted packet.
	v4("RFC 4884 extension", ip4(hop4, public4, icmp, withExtension4(header.ICMPv4TimeExceeded, udpSent4), ip4Opts{}), true, udpWant4)

	v6 := func(name string, pkt []byte, ok bool, want Embedded) {
		tests = append(tests, tc{"v6/" + name, pkt, ok, want})
	}
	te6 := func(q []byte) []byte {
		return ip6(hop6, public6, icmp6, icmpErr6(header.ICMPv6TimeExceeded, 0, 0, q), nil)
	}
	udpSent6 := ip6(public6, remote6, udp, udpDgram(50000, 53, payload), nil)
	udpWant6 := Embedded{Proto: udp, Src: ap(public6, 50000), Dst: ap(remote6, 53), HasPorts: true}
	for _, typ := range []header.ICMPv6Type{0, 5, 127, header.ICMPv6RouterAdvert, header.ICMPv6NeighborSolicit} {
		v6(fmt.Sprintf("type %d", typ), ip6(hop6, public6, icmp6, icmpErr6(typ, 0, 0, udpSent6), nil), false, Embedded{})
	}
	// REQ-3: the ICMPv6 checksum covers the pseudo-header.
	moved := te6(udpSent6)
	header.IPv6(moved).SetSourceAddress(addr(remote6))
	v6("bad ICMPv6 checksum: pseudo-header", moved, false, Embedded{})
	// Extension headers in the quote are walked past.
	hbh := header.IPv6SerializableHopByHopExtHdr{&header.IPv6RouterAlertOption{}}
	frag0 := &header.IPv6SerializableFragmentExtHdr{FragmentOffset: 0, M: true, Identification: 1}
	frag1 := &header.IPv6SerializableFragmentExtHdr{FragmentOffset: 1, Identification: 1}
	withExt := ip6(public6, remote6, udp, udpDgram(50000, 53, payload), header.IPv6ExtHdrSerializer{hbh, frag0})
	v6("embedded extension headers", te6(withExt), true, udpWant6)
	v6("embedded extension headers, 8 bytes", te6(withExt[:40+8+8+8]), true, udpWant6)
	v6("embedded extension headers cut", te6(withExt[:40+8+4]), false, Embedded{})
	v6("embedded extension headers cut at the length", te6(withExt[:40+1]), false, Embedded{})
	v6("embedded extension headers cut in the first", te6(withExt[:40+4]), false, Embedded{})
	// RFC 4302 §2: Next Header, Payload Len (in 32-bit words, minus 2),
	// reserved, SPI, sequence number, and here a 4-byte ICV.
	ah := []byte{udp, 16/4 - 2, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0xa, 0xb, 0xc, 0xd}
	withAH := ip6(public6, remote6, uint8(header.IPv6AuthenticationExtHdrIdentifier), append(ah, udpDgram(50000, 53, payload)...), nil)
	v6("embedded authentication header", te6(withAH), true, udpWant6)
	v6("embedded authentication header cut", te6(withAH[:40+1]), false, Embedded{})
	v6("embedded non-first fragment", te6(ip6(public6, remote6, udp, payload, header.IPv6ExtHdrSerializer{frag1})), true,
		Embedded{Proto: udp, Src: ap(public6, 0), Dst: ap(remote6, 0)})
	v6("embedded ESP", te6(ip6(public6, remote6, 50, payload, nil)), true,
		Embedded{Proto: 50, Src: ap(public6, 0), Dst: ap(remote6, 0)})
	deep := make(header.IPv6ExtHdrSerializer, maxExtensionHeaders+1)
	for i := range deep {
		deep[i] = header.IPv6SerializableHopByHopExtHdr{}
	}
	v6("embedded extension header chain too long", te6(ip6(public6, remote6, udp, udpDgram(1, 2, nil), deep)), false, Embedded{})
	v6("RFC 4884 extension", ip6(hop6, public6, icmp6, withExtension6(header.ICMPv6DstUnreachable, udpSent6), nil), true, udpWant6)

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.pkt)
			before, v := bytes.Clone(p.Data()), view(p)
			e, ok := ParseError(p)
			if !bytes.Equal(p.Data(), before) || view(p) != v {
				t.Fatal("ParseError changed the packet")
			}
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			e.ip, e.l4, e.end = 0, 0, 0
			if e != tc.want {
				t.Fatalf("embedded\n got  %+v\n want %+v", e, tc.want)
			}
		})
	}
}

// extensionStructure is an RFC 4884 ICMP Extension Structure: version 2,
// with its checksum, holding one object of 4 bytes.
func extensionStructure() []byte {
	// RFC 4884 §7: version (4 bits) = 2, reserved, checksum; then an
	// object header: length (16 bits), class-num, c-type.
	b := []byte{0x20, 0, 0, 0, 0, 8, 1, 1, 0xde, 0xad, 0xbe, 0xef}
	checksum.Put(b[2:], ^checksum.Checksum(b, 0))
	return b
}

// originalDatagramField pads or cuts the quoted packet q to the 128 bytes
// RFC 4884 asks for when extensions follow.
func originalDatagramField(q []byte) []byte {
	b := make([]byte, 128)
	copy(b, q)
	return b
}

// withExtension4 is an ICMPv4 error of type typ quoting q with an RFC
// 4884 extension and length attribute.
func withExtension4(typ header.ICMPv4Type, q []byte) []byte {
	field := originalDatagramField(q)
	// The length in 32-bit words, in the sixth octet.
	return icmpErr4(typ, 0, [4]byte{0, byte(len(field) / 4)}, append(field, extensionStructure()...))
}

// withExtension6 is an ICMPv6 error of type typ quoting q with an RFC
// 4884 extension and length attribute.
func withExtension6(typ header.ICMPv6Type, q []byte) []byte {
	field := originalDatagramField(q)
	// The length in 64-bit words, in the fifth octet.
	return icmpErr6(typ, 0, uint32(len(field)/8)<<24, append(field, extensionStructure()...))
}

// translateCase is an ICMP error as received and as it must leave the NAT,
// both built from scratch, with the translation between them.
type translateCase struct {
	name                     string
	in, want                 []byte
	outerSrc, outerDst       netip.Addr
	innerSrc, innerDst       netip.AddrPort
	embeddedSrc, embeddedDst netip.AddrPort // what ParseError must read
}

func translateCases() []translateCase {
	var cases []translateCase
	for _, f := range families {
		hl := ipHeaderLen(f.public)
		for _, k := range f.errKinds() {
			for _, s := range []struct {
				name  string
				proto uint8
				l4    func(sp, dp uint16) []byte
				cut   int // bytes of the quoted packet kept, 0 for all
			}{
				{"udp", udp, func(sp, dp uint16) []byte { return udpDgram(sp, dp, payload) }, 0},
				{"udp/8-bytes", udp, func(sp, dp uint16) []byte { return udpDgram(sp, dp, payload) }, hl + 8},
				{"tcp", tcp, func(sp, dp uint16) []byte { return tcpSeg(sp, dp, payload) }, 0},
				// The TCP checksum (offset 16) is not quoted: only the ports.
				{"tcp/8-bytes", tcp, func(sp, dp uint16) []byte { return tcpSeg(sp, dp, payload) }, hl + 8},
				// The TCP header is, but not the data its checksum covers.
				{"tcp/header", tcp, func(sp, dp uint16) []byte { return tcpSeg(sp, dp, payload) }, hl + header.TCPMinimumSize},
			} {
				cut := func(b []byte) []byte {
					if s.cut != 0 {
						return b[:s.cut]
					}
					return b
				}
				name := f.name + "/" + k.name + "/" + s.name
				// REQ-4: a router beyond the NAT reports a packet of an
				// outbound flow; the error goes back to the inside host
				// with the packet as the host sent it.
				cases = append(cases, translateCase{
					name:     name + "/outside",
					in:       ipOf(f.hop, f.public, f.icmp, k.msg(cut(ipOf(f.public, f.remote, s.proto, s.l4(50000, 443))))),
					want:     ipOf(f.hop, f.inside, f.icmp, k.msg(cut(ipOf(f.inside, f.remote, s.proto, s.l4(40000, 443))))),
					outerSrc: f.hop, outerDst: f.inside,
					innerSrc: ap(f.inside, 40000), innerDst: ap(f.remote, 443),
					embeddedSrc: ap(f.public, 50000), embeddedDst: ap(f.remote, 443),
				})
				// REQ-5: the inside host reports a packet of an inbound
				// (port-forwarded) flow; the error leaves from the public
				// address with the packet as the remote host sent it.
				cases = append(cases, translateCase{
					name:     name + "/inside",
					in:       ipOf(f.inside, f.remote, f.icmp, k.msg(cut(ipOf(f.remote, f.inside, s.proto, s.l4(5555, 8080))))),
					want:     ipOf(f.public, f.remote, f.icmp, k.msg(cut(ipOf(f.remote, f.public, s.proto, s.l4(5555, 80))))),
					outerSrc: f.public, outerDst: f.remote,
					innerSrc: ap(f.remote, 5555), innerDst: ap(f.public, 80),
					embeddedSrc: ap(f.remote, 5555), embeddedDst: ap(f.inside, 8080),
				})
				// REQ-7: hairpinned. Inside host A reached B through the
				// public address; B's error goes to A from the public
				// address, quoting the packet as A sent it. Both outer
				// addresses change.
				cases = append(cases, translateCase{
					name:     name + "/hairpin",
					in:       ipOf(f.insideB, f.public, f.icmp, k.msg(cut(ipOf(f.public, f.insideB, s.proto, s.l4(50000, 80))))),
					want:     ipOf(f.public, f.inside, f.icmp, k.msg(cut(ipOf(f.inside, f.public, s.proto, s.l4(40000, 8080))))),
					outerSrc: f.public, outerDst: f.inside,
					innerSrc: ap(f.inside, 40000), innerDst: ap(f.public, 8080),
					embeddedSrc: ap(f.public, 50000), embeddedDst: ap(f.insideB, 80),
				})
			}
			// Echo: an error about a request takes the identifier from
			// innerSrc, one about a reply from innerDst.
			cases = append(cases, translateCase{
				name:     f.name + "/" + k.name + "/echo-request/outside",
				in:       ipOf(f.hop, f.public, f.icmp, k.msg(ipOf(f.public, f.remote, f.icmp, f.echoReq(3000, payload)))),
				want:     ipOf(f.hop, f.inside, f.icmp, k.msg(ipOf(f.inside, f.remote, f.icmp, f.echoReq(7, payload)))),
				outerSrc: f.hop, outerDst: f.inside,
				innerSrc: ap(f.inside, 7), innerDst: ap(f.remote, 7),
				embeddedSrc: ap(f.public, 3000), embeddedDst: ap(f.remote, 3000),
			}, translateCase{
				name:     f.name + "/" + k.name + "/echo-reply/inside",
				in:       ipOf(f.inside, f.remote, f.icmp, k.msg(ipOf(f.remote, f.inside, f.icmp, f.echoRep(7, payload)))),
				want:     ipOf(f.public, f.remote, f.icmp, k.msg(ipOf(f.remote, f.public, f.icmp, f.echoRep(3000, payload)))),
				outerSrc: f.public, outerDst: f.remote,
				innerSrc: ap(f.remote, 3000), innerDst: ap(f.public, 3000),
				embeddedSrc: ap(f.remote, 7), embeddedDst: ap(f.inside, 7),
			})
		}
		// RFC 768: a quoted UDP checksum of zero stays zero.
		te := f.errKinds()[2].msg
		cases = append(cases, translateCase{
			name:     f.name + "/udp-zero-checksum",
			in:       ipOf(f.hop, f.public, f.icmp, te(zeroUDP(ipOf(f.public, f.remote, udp, udpDgram(50000, 53, payload))))),
			want:     ipOf(f.hop, f.inside, f.icmp, te(zeroUDP(ipOf(f.inside, f.remote, udp, udpDgram(40000, 53, payload))))),
			outerSrc: f.hop, outerDst: f.inside,
			innerSrc: ap(f.inside, 40000), innerDst: ap(f.remote, 53),
			embeddedSrc: ap(f.public, 50000), embeddedDst: ap(f.remote, 53),
		})
		// A quote without ports: addresses only, the ports are not used.
		cases = append(cases, translateCase{
			name:     f.name + "/gre",
			in:       ipOf(f.hop, f.public, f.icmp, te(ipOf(f.public, f.remote, gre, payload))),
			want:     ipOf(f.hop, f.inside, f.icmp, te(ipOf(f.inside, f.remote, gre, payload))),
			outerSrc: f.hop, outerDst: f.inside,
			innerSrc: ap(f.inside, 1), innerDst: ap(f.remote, 2),
			embeddedSrc: ap(f.public, 0), embeddedDst: ap(f.remote, 0),
		})
	}
	// Options, extension headers and RFC 4884 extensions in the quote.
	opts := ip4Opts{options: header.IPv4OptionsSerializer{&header.IPv4SerializableRouterAlertOption{}, &header.IPv4SerializableNOPOption{}}}
	te4 := func(q []byte) []byte { return icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{}, q) }
	te6 := func(q []byte) []byte { return icmpErr6(header.ICMPv6TimeExceeded, 0, 0, q) }
	ext := header.IPv6ExtHdrSerializer{
		header.IPv6SerializableHopByHopExtHdr{&header.IPv6RouterAlertOption{}},
		&header.IPv6SerializableFragmentExtHdr{M: true, Identification: 1},
	}
	big := bytes.Repeat(payload, 20)
	cases = append(cases,
		translateCase{
			name:     "v4/embedded-options",
			in:       ip4(hop4, public4, icmp, te4(ip4(public4, remote4, tcp, tcpSeg(50000, 443, payload), opts)), ip4Opts{}),
			want:     ip4(hop4, inside4, icmp, te4(ip4(inside4, remote4, tcp, tcpSeg(40000, 443, payload), opts)), ip4Opts{}),
			outerSrc: hop4, outerDst: inside4, innerSrc: ap(inside4, 40000), innerDst: ap(remote4, 443),
			embeddedSrc: ap(public4, 50000), embeddedDst: ap(remote4, 443),
		},
		translateCase{
			name:     "v6/embedded-extension-headers",
			in:       ip6(hop6, public6, icmp6, te6(ip6(public6, remote6, udp, udpDgram(50000, 53, payload), ext)), nil),
			want:     ip6(hop6, inside6, icmp6, te6(ip6(inside6, remote6, udp, udpDgram(40000, 53, payload), ext)), nil),
			outerSrc: hop6, outerDst: inside6, innerSrc: ap(inside6, 40000), innerDst: ap(remote6, 53),
			embeddedSrc: ap(public6, 50000), embeddedDst: ap(remote6, 53),
		},
		translateCase{
			name:     "v4/rfc4884-short-datagram",
			in:       ip4(hop4, public4, icmp, withExtension4(header.ICMPv4DstUnreachable, ip4(public4, remote4, udp, udpDgram(50000, 53, payload), ip4Opts{})), ip4Opts{}),
			want:     ip4(hop4, inside4, icmp, withExtension4(header.ICMPv4DstUnreachable, ip4(inside4, remote4, udp, udpDgram(40000, 53, payload), ip4Opts{})), ip4Opts{}),
			outerSrc: hop4, outerDst: inside4, innerSrc: ap(inside4, 40000), innerDst: ap(remote4, 53),
			embeddedSrc: ap(public4, 50000), embeddedDst: ap(remote4, 53),
		},
		translateCase{
			name:     "v4/rfc4884-cut-datagram",
			in:       ip4(hop4, public4, icmp, withExtension4(header.ICMPv4TimeExceeded, ip4(public4, remote4, udp, udpDgram(50000, 53, big), ip4Opts{})), ip4Opts{}),
			want:     ip4(hop4, inside4, icmp, withExtension4(header.ICMPv4TimeExceeded, ip4(inside4, remote4, udp, udpDgram(40000, 53, big), ip4Opts{})), ip4Opts{}),
			outerSrc: hop4, outerDst: inside4, innerSrc: ap(inside4, 40000), innerDst: ap(remote4, 53),
			embeddedSrc: ap(public4, 50000), embeddedDst: ap(remote4, 53),
		},
		translateCase{
			name:     "v6/rfc4884-cut-datagram",
			in:       ip6(hop6, public6, icmp6, withExtension6(header.ICMPv6TimeExceeded, ip6(public6, remote6, udp, udpDgram(50000, 53, big), nil)), nil),
			want:     ip6(hop6, inside6, icmp6, withExtension6(header.ICMPv6TimeExceeded, ip6(inside6, remote6, udp, udpDgram(40000, 53, big), nil)), nil),
			outerSrc: hop6, outerDst: inside6, innerSrc: ap(inside6, 40000), innerDst: ap(remote6, 53),
			embeddedSrc: ap(public6, 50000), embeddedDst: ap(remote6, 53),
		},
	)
	return cases
}

func TestTranslateError(t *testing.T) {
	for _, tc := range translateCases() {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.in)
			e, ok := ParseError(p)
			if !ok {
				t.Fatal("ParseError refused")
			}
			if e.Src != tc.embeddedSrc || e.Dst != tc.embeddedDst {
				t.Fatalf("embedded %v -> %v, want %v -> %v", e.Src, e.Dst, tc.embeddedSrc, tc.embeddedDst)
			}
			msg := p.Data()[p.HeaderLen:]
			typ, code := msg[0], msg[1] // header.ICMPv4 and ICMPv6 both keep them there
			tail := bytes.Clone(p.Data()[e.end:])
			if !TranslateError(p, e, tc.outerSrc, tc.outerDst, tc.innerSrc, tc.innerDst) {
				t.Fatal("TranslateError refused")
			}
			// Byte-exact against the error built from scratch: the outer
			// IPv4 header checksum, the ICMP checksum over the message
			// (and ICMPv6 pseudo-header), the quoted IPv4 header checksum
			// and the quoted transport checksum where quoted were all
			// computed over the whole in want.
			if d := diff(p.Data(), tc.want); d != "" {
				t.Fatalf("error differs from one built from scratch: %s", d)
			}
			// The same, spelled out.
			out := p.Data()
			msg = out[p.HeaderLen:]
			if msg[0] != typ || msg[1] != code {
				t.Error("type or code changed")
			}
			if !bytes.Equal(out[e.end:], tail) {
				t.Error("bytes after the quoted packet (RFC 4884 extension) changed")
			}
			if !transportValid(p) {
				t.Error("ICMP checksum does not verify")
			}
			if p.Version == header.IPv4Version {
				if !header.IPv4(out).IsChecksumValid() {
					t.Error("outer IPv4 header checksum does not verify")
				}
				if !header.IPv4(out[e.ip:]).IsChecksumValid() {
					t.Error("quoted IPv4 header checksum does not verify")
				}
			}
			if got, want := view(p), view(parse(t, tc.want)); got != want {
				t.Errorf("parsed view\n got  %+v\n want %+v", got, want)
			}
			// Parsed again, the error quotes the translated endpoints.
			e2, ok := ParseError(p)
			if !ok {
				t.Fatal("translated error does not parse")
			}
			wantSrc, wantDst := tc.innerSrc, tc.innerDst
			if !e.HasPorts {
				wantSrc, wantDst = ap(wantSrc.Addr(), 0), ap(wantDst.Addr(), 0)
			}
			if e2.Src != wantSrc || e2.Dst != wantDst || e2.Proto != e.Proto || e2.HasPorts != e.HasPorts {
				t.Errorf("translated error quotes %+v", e2)
			}
		})
	}
}

func TestTranslateErrorRefuses(t *testing.T) {
	in := ipOf(hop4, public4, icmp, icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{}, ipOf(public4, remote4, udp, udpDgram(1, 2, nil))))
	tests := []struct {
		name               string
		zero               bool
		outerSrc, outerDst netip.Addr
		innerSrc, innerDst netip.AddrPort
	}{
		{"zero Embedded", true, hop4, inside4, ap(inside4, 1), ap(remote4, 2)},
		{"outer family", false, hop6, inside6, ap(inside4, 1), ap(remote4, 2)},
		{"inner family", false, hop4, inside4, ap(inside6, 1), ap(remote4, 2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, in)
			e, ok := ParseError(p)
			if !ok {
				t.Fatal("ParseError refused")
			}
			if tc.zero {
				e = Embedded{}
			}
			before, v := bytes.Clone(p.Data()), view(p)
			if TranslateError(p, e, tc.outerSrc, tc.outerDst, tc.innerSrc, tc.innerDst) {
				t.Fatal("TranslateError did not refuse")
			}
			if !bytes.Equal(p.Data(), before) || view(p) != v {
				t.Fatal("TranslateError refused but changed the packet")
			}
		})
	}
}

func TestErrorAllocs(t *testing.T) {
	for _, f := range families {
		p := parse(t, ipOf(f.hop, f.public, f.icmp, f.errKinds()[0].msg(ipOf(f.public, f.remote, tcp, tcpSeg(50000, 443, payload)))))
		outer := [2]netip.Addr{f.public, f.inside}
		inner := [2]netip.AddrPort{ap(f.public, 50000), ap(f.inside, 40000)}
		i := 0
		allocs := testing.AllocsPerRun(1000, func() {
			e, ok := ParseError(p)
			i ^= 1
			if !ok || !TranslateError(p, e, f.hop, outer[i], inner[i], ap(f.remote, 443)) {
				t.Fatal("refused")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per ParseError and TranslateError", f.name, allocs)
		}
	}
}

// BenchmarkTranslateError parses and translates one error back and forth.
func BenchmarkTranslateError(b *testing.B) {
	for _, f := range families {
		b.Run(f.name, func(b *testing.B) {
			// An error as large as routers send: the quote fills 576 bytes
			// for IPv4, 1280 for IPv6.
			size := 576
			if f.icmp == icmp6 {
				size = 1280
			}
			hl := ipHeaderLen(f.public)
			quote := ipOf(f.public, f.remote, udp, udpDgram(50000, 53, make([]byte, size)))[:size-2*hl]
			p := parse(b, ipOf(f.hop, f.public, f.icmp, f.errKinds()[2].msg(quote)))
			outer := [2]netip.Addr{f.public, f.inside}
			inner := [2]netip.AddrPort{ap(f.public, 50000), ap(f.inside, 40000)}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				e, _ := ParseError(p)
				i ^= 1
				TranslateError(p, e, f.hop, outer[i], inner[i], ap(f.remote, 53))
			}
		})
	}
}

// TestParseErrorQuoteBounds: the quoted packet ends where its own length
// or an RFC 4884 length attribute says, so padding and extensions are
// never taken for it (RFC 5508 REQ-3d).
func TestParseErrorQuoteBounds(t *testing.T) {
	short4 := ip4(public4, remote4, udp, udpDgram(50000, 53, payload), ip4Opts{})
	long4 := ip4(public4, remote4, udp, udpDgram(50000, 53, bytes.Repeat(payload, 20)), ip4Opts{})
	long6 := ip6(public6, remote6, udp, udpDgram(50000, 53, bytes.Repeat(payload, 20)), nil)
	// A sender that appends an extension without a length attribute, as
	// RFC 4884 says some MPLS-aware implementations do.
	legacy := icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{}, append(originalDatagramField(short4), extensionStructure()...))
	// A length attribute past the end of the message.
	overlong := icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{0, 255}, long4[:100])
	tests := []struct {
		name  string
		pkt   []byte
		quote int
	}{
		{"v4 datagram shorter than 128 bytes", ip4(hop4, public4, icmp, withExtension4(header.ICMPv4TimeExceeded, short4), ip4Opts{}), len(short4)},
		{"v4 datagram cut at 128 bytes", ip4(hop4, public4, icmp, withExtension4(header.ICMPv4TimeExceeded, long4), ip4Opts{}), 128},
		{"v6 datagram cut at 128 bytes", ip6(hop6, public6, icmp6, withExtension6(header.ICMPv6DstUnreachable, long6), nil), 128},
		{"v4 extension without length attribute", ip4(hop4, public4, icmp, legacy, ip4Opts{}), len(short4)},
		{"v4 length attribute past the end", ip4(hop4, public4, icmp, overlong, ip4Opts{}), 100},
		{"v4 no extension", ip4(hop4, public4, icmp, icmpErr4(header.ICMPv4TimeExceeded, 0, [4]byte{}, long4), ip4Opts{}), len(long4)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(t, tc.pkt)
			e, ok := ParseError(p)
			if !ok {
				t.Fatal("ParseError refused")
			}
			if got := e.end - e.ip; got != tc.quote {
				t.Fatalf("quoted packet of %d bytes, want %d", got, tc.quote)
			}
		})
	}
}
