package icmperr

import (
	"bytes"
	"math"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/packet"
)

// FuzzBuild feeds arbitrary bytes that parse as an IP header to Build. It
// must never panic, and when it answers, the answer must be a valid IP
// packet with right checksums that RFC 1812 §4.3.2.7 / RFC 4443 §2.4(e)
// allowed, checked here against gVisor's own address tests.
func FuzzBuild(f *testing.F) {
	for _, cases := range [][]buildCase{v4Cases(), v6Cases()} {
		for _, tc := range cases {
			f.Add(tc.pkt, uint8(tc.kind), tc.mtu, !tc.tight)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, kind uint8, mtu uint32, spare bool) {
		p, err := packetOf(data, spare)
		if err != nil {
			return
		}
		src := router4
		if p.Version == header.IPv6Version {
			src = router6
		}
		k := Kind(kind)
		before := *p
		orig := bytes.Clone(p.Data())
		allowed := Allowed(p, k)
		ok := Build(p, k, mtu, src)
		if ok != allowed && spare {
			t.Fatalf("Allowed = %v but Build = %v with room to spare", allowed, ok)
		}
		if !ok {
			if p.Len != before.Len || !bytes.Equal(p.Data(), orig) {
				t.Fatal("Build refused but changed the packet")
			}
			return
		}
		if reason := forbidden(before, orig, k); reason != "" {
			t.Fatalf("answered %s", reason)
		}
		w := want{src: src, dst: before.Src}
		if before.Version == header.IPv4Version {
			m := v4Messages[k]
			w.typ, w.code = uint8(m.typ), uint8(m.code)
			if k == FragNeeded {
				w.mtu = min(mtu, math.MaxUint16)
			}
		} else {
			m := v6Messages[k]
			w.typ, w.code = uint8(m.typ), uint8(m.code)
			if k == PacketTooBig {
				w.mtu = mtu
			}
		}
		if err := checkError(p, orig, w); err != nil {
			t.Fatal(err)
		}
	})
}

// forbidden says why the RFCs forbid an error of kind k about pkt, or ""
// if they do not. It reads the addresses and ICMP type with gVisor's
// header package, apart from the code under test; v is pkt's parsed view.
func forbidden(v packet.Packet, pkt []byte, k Kind) string {
	if v.Version == header.IPv4Version {
		ip := header.IPv4(pkt)
		src, dst := ip.SourceAddress(), ip.DestinationAddress()
		switch {
		case v.NonFirstFragment:
			return "a non-first fragment"
		case header.IsV4MulticastAddress(dst) || dst == header.IPv4Broadcast:
			return "a packet to multicast or broadcast"
		case header.IPv4CurrentNetworkSubnet.Contains(src) || header.IsV4LoopbackAddress(src) ||
			header.IsV4MulticastAddress(src) || src.As4()[0] >= 240:
			return "a packet from " + src.String()
		case v.Proto == uint8(header.ICMPv4ProtocolNumber):
			icmp := header.ICMPv4(pkt[v.HeaderLen:])
			if len(icmp) < header.ICMPv4MinimumSize {
				return "an ICMP message too short to tell"
			}
			switch icmp.Type() {
			case header.ICMPv4DstUnreachable, header.ICMPv4SrcQuench, header.ICMPv4Redirect,
				header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
				return "an ICMP error"
			}
		}
		return ""
	}
	ip := header.IPv6(pkt)
	src, dst := ip.SourceAddress(), ip.DestinationAddress()
	switch {
	case header.IsV6MulticastAddress(dst) && k != PacketTooBig:
		return "a packet to multicast"
	case src == header.IPv6Any || header.IsV6MulticastAddress(src) || header.IsV6LoopbackAddress(src):
		return "a packet from " + src.String()
	case v.Proto == uint8(header.ICMPv6ProtocolNumber) && !v.NonFirstFragment:
		icmp := header.ICMPv6(pkt[v.HeaderLen:])
		if len(icmp) < header.ICMPv6MinimumSize {
			return "an ICMPv6 message too short to tell"
		}
		if t := icmp.Type(); t.IsErrorType() || t == header.ICMPv6RedirectMsg {
			return "an ICMPv6 error or redirect"
		}
	}
	return ""
}

// TestForbiddenAgrees keeps the fuzz oracle honest: on the table cases it
// must refuse what Allowed refuses, for the RFC reasons.
func TestForbiddenAgrees(t *testing.T) {
	for _, cases := range [][]buildCase{v4Cases(), v6Cases()} {
		for _, tc := range cases {
			p, err := packetOf(tc.pkt, true)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.kind.valid() {
				continue
			}
			reason := forbidden(*p, p.Data(), tc.kind)
			if (reason == "") != Allowed(p, tc.kind) {
				t.Errorf("%s: oracle says %q, Allowed says %v", tc.name, reason, Allowed(p, tc.kind))
			}
		}
	}
}
