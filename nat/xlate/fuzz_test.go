package xlate

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// Harness switches: the fuzzer mostly makes bytes no checksum check lets
// through, so the harness can fix the sums it is not testing.
const (
	fixOuterSum  = 1 << iota // compute the outer checksum(s) from scratch
	fixInnerSum              // compute a quoted IPv4 header's checksum, or the transport checksum
	useAddrsOnly             // FuzzRewrite: call RewriteAddrs instead of Rewrite
)

// FuzzParseError feeds ICMP messages, errors or not, to ParseError inside
// a valid outer IP header of either family. ParseError must never panic
// nor change the packet. When it accepts one, TranslateError must accept
// it too and leave valid checksums, the type and code, and every byte
// after the quoted packet; parsing the result must give the translated
// endpoints; and translating back must restore the packet, up to the two
// representations of a zero checksum.
func FuzzParseError(f *testing.F) {
	for _, tc := range translateCases() {
		p := parse(f, tc.in)
		f.Add(p.Version == header.IPv6Version, uint8(fixOuterSum|fixInnerSum), bytes.Clone(p.Data()[p.HeaderLen:]), uint16(40000))
	}
	// ICMP in ICMP: errors quoting errors, whole and cut.
	for _, fam := range families {
		k := fam.errKinds()[2].msg
		inner := ipOf(fam.hop, fam.public, fam.icmp, k(ipOf(fam.public, fam.remote, udp, udpDgram(50000, 53, payload))))
		for _, n := range []int{len(inner), ipHeaderLen(fam.public) + 8, ipHeaderLen(fam.public) + 4} {
			f.Add(fam.icmp == icmp6, uint8(fixOuterSum|fixInnerSum), k(inner[:n]), uint16(1))
		}
	}
	f.Fuzz(func(t *testing.T, v6 bool, fix uint8, msg []byte, port uint16) {
		msg = bytes.Clone(msg)
		fam := families[0]
		if v6 {
			fam = families[1]
		}
		if fix&fixInnerSum != 0 && !v6 && len(msg) >= header.ICMPv4MinimumSize {
			resealIPv4Header(msg[header.ICMPv4MinimumSize:])
		}
		pkt := ipOf(fam.hop, fam.public, fam.icmp, msg) // the ICMP checksum from scratch
		if fix&fixOuterSum == 0 {
			copy(pkt[ipHeaderLen(fam.public):], msg)
		}
		p := &packet.Packet{Buf: pkt, Len: len(pkt)}
		if p.Parse() != packet.ReasonNone {
			return // too long for IPv4, or empty for IPv6
		}
		orig, v := bytes.Clone(p.Data()), view(p)
		e, ok := ParseError(p)
		if !bytes.Equal(p.Data(), orig) || view(p) != v {
			t.Fatal("ParseError changed the packet")
		}
		if !ok {
			return
		}
		checkEmbedded(t, p, e)

		outerSrc, outerDst := fam.hop, fam.inside
		innerSrc, innerDst := ap(fam.inside, port), ap(fam.remote, port^0x5555)
		if !TranslateError(p, e, outerSrc, outerDst, innerSrc, innerDst) {
			t.Fatal("TranslateError refused what ParseError accepted")
		}
		out := p.Data()
		if !transportValid(p) {
			t.Fatal("ICMP checksum does not verify")
		}
		if !bytes.Equal(out[p.HeaderLen:p.HeaderLen+2], orig[p.HeaderLen:p.HeaderLen+2]) {
			t.Fatal("type or code changed")
		}
		if !bytes.Equal(out[e.end:], orig[e.end:]) {
			t.Fatal("bytes after the quoted packet changed")
		}
		if v.Version == header.IPv4Version && (!header.IPv4(out).IsChecksumValid() || !header.IPv4(out[e.ip:]).IsChecksumValid()) {
			t.Fatal("an IPv4 header checksum does not verify")
		}
		if p.Src != outerSrc || p.Dst != outerDst {
			t.Fatalf("parsed view %v -> %v, want %v -> %v", p.Src, p.Dst, outerSrc, outerDst)
		}

		e2, ok := ParseError(p)
		if !ok {
			t.Fatal("the translated error does not parse")
		}
		want := e
		want.Src, want.Dst = ap(innerSrc.Addr(), 0), ap(innerDst.Addr(), 0)
		if e.HasPorts {
			sp, dp := innerSrc.Port(), innerDst.Port()
			if e.Proto == protoICMPv4 || e.Proto == protoICMPv6 {
				id := echoIdentOf(out[e.l4:], e.Proto, innerSrc, innerDst)
				sp, dp = id, id
			}
			want.Src, want.Dst = ap(innerSrc.Addr(), sp), ap(innerDst.Addr(), dp)
		}
		if e2 != want {
			t.Fatalf("translated error quotes\n %+v\nwant\n %+v", e2, want)
		}

		if !TranslateError(p, e2, v.Src, v.Dst, e.Src, e.Dst) {
			t.Fatal("TranslateError refused to translate back")
		}
		if err := sameUpToZeroSums(p.Data(), orig); err != "" {
			t.Fatalf("translating back: %s", err)
		}
	})
}

// echoIdentOf is the identifier the quoted echo message l4 of protocol
// proto must carry after translation to src and dst, read without the
// code under test.
func echoIdentOf(l4 []byte, proto uint8, src, dst netip.AddrPort) uint16 {
	if proto == protoICMPv4 && header.ICMPv4(l4).Type() == header.ICMPv4Echo ||
		proto == protoICMPv6 && header.ICMPv6(l4).Type() == header.ICMPv6EchoRequest {
		return src.Port()
	}
	return dst.Port()
}

// checkEmbedded checks what ParseError returned against p.
func checkEmbedded(t *testing.T, p *packet.Packet, e Embedded) {
	t.Helper()
	if e.ip != p.HeaderLen+header.ICMPv4MinimumSize || e.ip > e.l4 || e.l4 > e.end || e.end > p.Len {
		t.Fatalf("offsets ip %d l4 %d end %d in a packet of %d", e.ip, e.l4, e.end, p.Len)
	}
	if e.Src.Addr().Is4() != (p.Version == header.IPv4Version) || e.Dst.Addr().Is4() != e.Src.Addr().Is4() {
		t.Fatalf("quoted %v -> %v in an IPv%d error", e.Src, e.Dst, p.Version)
	}
	if !e.HasPorts {
		if e.Src.Port() != 0 || e.Dst.Port() != 0 {
			t.Fatal("ports without HasPorts")
		}
		return
	}
	if e.end-e.l4 < header.UDPMinimumSize {
		t.Fatalf("HasPorts with %d transport bytes", e.end-e.l4)
	}
	switch e.Proto {
	case protoTCP, protoUDP:
	case protoICMPv4, protoICMPv6:
		if e.Src.Port() != e.Dst.Port() {
			t.Fatal("echo with two identifiers")
		}
	default:
		t.Fatalf("HasPorts for protocol %d", e.Proto)
	}
}

// resealIPv4Header computes the checksum of the IPv4 header at the start
// of b from scratch, if b holds one.
func resealIPv4Header(b []byte) {
	if len(b) < header.IPv4MinimumSize || header.IPVersion(b) != header.IPv4Version {
		return
	}
	ip := header.IPv4(b)
	if hl := int(ip.HeaderLength()); hl < header.IPv4MinimumSize || hl > len(b) {
		return
	}
	ip.SetChecksum(0)
	ip.SetChecksum(^ip.CalculateChecksum())
}

// sameUpToZeroSums reports how got differs from want other than in
// 16-bit words, at even offsets, where one holds 0x0000 and the other
// 0xffff: the two one's complement zeros, which incremental update and
// recomputation may trade for each other in a checksum field.
func sameUpToZeroSums(got, want []byte) string {
	if len(got) != len(want) {
		return "length changed"
	}
	for i := 0; i+1 < len(got); i += 2 {
		g, w := binary.BigEndian.Uint16(got[i:]), binary.BigEndian.Uint16(want[i:])
		if g != w && !(g == 0 && w == 0xffff || g == 0xffff && w == 0) {
			return diff(got, want)
		}
	}
	if len(got)%2 == 1 && got[len(got)-1] != want[len(want)-1] {
		return diff(got, want)
	}
	return ""
}

// FuzzRewrite feeds packets that parse to Rewrite (or RewriteAddrs) with
// arbitrary new endpoints of the packet's family. It must never panic; it
// refuses exactly what it documents to refuse, leaving the packet alone;
// otherwise the new addresses and ports are in the headers and the parsed
// view, the IPv4 header checksum verifies, the transport checksum
// verifies if and only if it did before (exactly equal to one computed
// from scratch when the harness made all sums canonical), and
// translating back restores the packet.
func FuzzRewrite(f *testing.F) {
	for _, tc := range rewriteCases() {
		f.Add(tc.in, uint8(0), tc.src.Addr().AsSlice(), tc.src.Port(), tc.dst.Port())
		f.Add(tc.in, uint8(fixOuterSum|fixInnerSum|useAddrsOnly), tc.dst.Addr().AsSlice(), tc.dst.Port(), tc.src.Port())
	}
	f.Fuzz(func(t *testing.T, raw []byte, fix uint8, addrs []byte, sp, dp uint16) {
		b := bytes.Clone(raw)
		if fix&fixOuterSum != 0 {
			resealIPv4Header(b)
		}
		if len(b) == 0 {
			return
		}
		p := &packet.Packet{Buf: b, Len: len(b)}
		if p.Parse() != packet.ReasonNone {
			return
		}
		if fix&fixInnerSum != 0 && !p.Fragment {
			seal(p.Data()[p.HeaderLen:], p.Proto, addr(p.Src), addr(p.Dst))
		}
		canonical := fix&(fixOuterSum|fixInnerSum) == fixOuterSum|fixInnerSum && !p.Fragment
		src, dst := fuzzAddrs(p.Version, addrs)
		orig, v := bytes.Clone(p.Data()), view(p)
		validBefore := !p.Fragment && transportValid(p)

		var ok, want bool
		if fix&useAddrsOnly != 0 {
			want = addrsOnlyAllowed(p)
			ok = RewriteAddrs(p, src, dst)
			sp, dp = v.SrcPort, v.DstPort
		} else {
			want = p.HasPorts
			ok = Rewrite(p, ap(src, sp), ap(dst, dp))
		}
		if ok != want {
			t.Fatalf("ok = %v, want %v", ok, want)
		}
		if !ok {
			if !bytes.Equal(p.Data(), orig) || view(p) != v {
				t.Fatal("refused but changed the packet")
			}
			return
		}

		out := p.Data()
		if v.Version == header.IPv4Version {
			ip := header.IPv4(out)
			if !ip.IsChecksumValid() {
				t.Fatal("IPv4 header checksum does not verify")
			}
			if netip.AddrFrom4([4]byte(ip.SourceAddressSlice())) != src || netip.AddrFrom4([4]byte(ip.DestinationAddressSlice())) != dst {
				t.Fatal("addresses not written")
			}
		} else {
			ip := header.IPv6(out)
			if netip.AddrFrom16([16]byte(ip.SourceAddressSlice())) != src || netip.AddrFrom16([16]byte(ip.DestinationAddressSlice())) != dst {
				t.Fatal("addresses not written")
			}
		}
		if p.HasPorts && fix&useAddrsOnly == 0 {
			if v.Proto == protoICMPv4 || v.Proto == protoICMPv6 {
				id := echoIdentOf(out[p.HeaderLen:], v.Proto, ap(src, sp), ap(dst, dp))
				sp, dp = id, id
			}
			// TCP and UDP keep the ports first, ICMP echo the identifier
			// at the offset header.ICMPv4.Ident reads.
			l4 := out[p.HeaderLen:]
			got := [2]uint16{header.UDP(l4).SourcePort(), header.UDP(l4).DestinationPort()}
			if v.Proto == protoICMPv4 || v.Proto == protoICMPv6 {
				got = [2]uint16{header.ICMPv4(l4).Ident(), header.ICMPv4(l4).Ident()}
			}
			if got != [2]uint16{sp, dp} {
				t.Fatalf("ports %v, want %v", got, [2]uint16{sp, dp})
			}
		}
		wantView := v
		wantView.Src, wantView.Dst, wantView.SrcPort, wantView.DstPort = src, dst, sp, dp
		if view(p) != wantView {
			t.Fatalf("parsed view\n got  %+v\n want %+v", view(p), wantView)
		}
		if !p.Fragment && transportValid(p) != validBefore {
			t.Fatalf("transport checksum valid before: %v, after: %v", validBefore, !validBefore)
		}
		if canonical {
			want := bytes.Clone(out)
			resealIPv4Header(want)
			seal(want[p.HeaderLen:], p.Proto, addr(src), addr(dst))
			if d := diff(out, want); d != "" {
				t.Fatalf("sums differ from ones computed from scratch: %s", d)
			}
		}
		reparsed := &packet.Packet{Buf: bytes.Clone(out), Len: len(out)}
		if reparsed.Parse() == packet.ReasonNone && view(reparsed) != view(p) {
			t.Fatalf("parsed view\n got  %+v\n parse gives %+v", view(p), view(reparsed))
		}

		if fix&useAddrsOnly != 0 {
			ok = RewriteAddrs(p, v.Src, v.Dst)
		} else {
			ok = Rewrite(p, ap(v.Src, v.SrcPort), ap(v.Dst, v.DstPort))
		}
		if !ok {
			t.Fatal("refused to translate back")
		}
		if d := sameUpToZeroSums(p.Data(), orig); d != "" {
			t.Fatalf("translating back: %s", d)
		}
		if view(p) != v {
			t.Fatal("translating back: parsed view differs")
		}
	})
}

// fuzzAddrs makes a source and a destination address of IP version v
// from b, padded with fixed bytes.
func fuzzAddrs(v uint8, b []byte) (src, dst netip.Addr) {
	var buf [32]byte
	copy(buf[:], public6.AsSlice())
	copy(buf[16:], remote6.AsSlice())
	copy(buf[:], b)
	if v == header.IPv4Version {
		return netip.AddrFrom4([4]byte(buf[:4])), netip.AddrFrom4([4]byte(buf[4:8]))
	}
	return netip.AddrFrom16([16]byte(buf[:16])), netip.AddrFrom16([16]byte(buf[16:]))
}

// addrsOnlyAllowed is whether RewriteAddrs may translate p: not when the
// packet starts a TCP, UDP or ICMPv6 message too short for its checksum.
func addrsOnlyAllowed(p *packet.Packet) bool {
	if p.NonFirstFragment {
		return true
	}
	switch p.Proto {
	case protoTCP, protoUDP:
		return p.HasPorts
	case protoICMPv6:
		return p.Len-p.HeaderLen >= header.ICMPv6MinimumSize
	}
	return true
}
