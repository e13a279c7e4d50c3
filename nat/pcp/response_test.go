package pcp

import (
	"bytes"
	"net/netip"
	"testing"
)

func TestAppendResponse(t *testing.T) {
	const epoch = 86400
	var zero [12]byte
	assigned4 := netip.MustParseAddrPort("198.51.100.7:61000")
	assigned6 := netip.MustParseAddrPort("[2001:db8::7]:443")
	udpMap := mapRequest(3600, client4, protoUDP, 5000, suggested4)
	preferFailure := udpMap
	preferFailure.PreferFailure = true
	natpmpUDP := Request{Version: natpmpVersion, Opcode: Map, Lifetime: 7200, Proto: protoUDP, InternalPort: 5000,
		External: netip.AddrPortFrom(netip.IPv4Unspecified(), 6000)}
	natpmpTCP := natpmpUDP
	natpmpTCP.Proto = protoTCP

	for _, tc := range []struct {
		name string
		req  Request
		rep  Reply
		want []byte
	}{
		{
			name: "PCP MAP success",
			req:  udpMap,
			rep:  Reply{Result: Success, Epoch: epoch, Lifetime: 1800, External: assigned4},
			want: pcpResponse(byte(Map), Success, 1800, epoch, zero, mapData(protoUDP, 5000, assigned4)),
		},
		{
			name: "PCP MAP success, IPv6",
			req:  mapRequest(3600, client6, protoTCP, 443, noSuggestion6),
			rep:  Reply{Result: Success, Epoch: epoch, Lifetime: 3600, External: assigned6},
			want: pcpResponse(byte(Map), Success, 3600, epoch, zero, mapData(protoTCP, 443, assigned6)),
		},
		{
			name: "PCP MAP error echoes the suggestion",
			req:  udpMap,
			rep:  Reply{Result: NoResources, Epoch: epoch, Lifetime: 30, External: assigned4},
			want: pcpResponse(byte(Map), NoResources, 30, epoch, zero, mapData(protoUDP, 5000, suggested4)),
		},
		{
			name: "PCP MAP with PREFER_FAILURE",
			req:  preferFailure,
			rep:  Reply{Result: CannotProvideExternal, Epoch: epoch, Lifetime: 30},
			want: pcpResponse(byte(Map), CannotProvideExternal, 30, epoch, zero, mapData(protoUDP, 5000, suggested4), option(optPreferFailure)),
		},
		{
			name: "PCP MAP not parsed, IPv4 client",
			req:  mapRequest(3600, client4, 0, 80, noSuggestion4),
			rep:  Reply{Result: MalformedRequest, Epoch: epoch, Lifetime: 600},
			want: pcpResponse(byte(Map), MalformedRequest, 600, epoch, lastBits96(client4), mapData(0, 80, noSuggestion4)),
		},
		{
			name: "PCP MAP not parsed, IPv6 client",
			req:  mapRequest(3600, client6, protoUDP, 5000, noSuggestion6),
			rep:  Reply{Result: UnsuppOption, Epoch: epoch, Lifetime: 600},
			want: pcpResponse(byte(Map), UnsuppOption, 600, epoch, lastBits96(client6), mapData(protoUDP, 5000, noSuggestion6)),
		},
		{
			name: "PCP shorter than header",
			req:  Request{Version: pcpVersion, Opcode: Map},
			rep:  Reply{Result: MalformedRequest, Epoch: epoch, Lifetime: 600},
			want: pcpResponse(byte(Map), MalformedRequest, 600, epoch, zero, make([]byte, mapLen)),
		},
		{
			name: "ANNOUNCE",
			req:  Request{Version: pcpVersion, Opcode: Announce, Lifetime: 99, Client: client4},
			rep:  Reply{Result: Success, Epoch: epoch, Lifetime: 99},
			want: pcpResponse(byte(Announce), Success, 0, epoch, zero),
		},
		{
			name: "ANNOUNCE error",
			req:  Request{Version: pcpVersion, Opcode: Announce, Client: client4},
			rep:  Reply{Result: UnsuppOption, Epoch: epoch, Lifetime: 600},
			want: pcpResponse(byte(Announce), UnsuppOption, 600, epoch, lastBits96(client4)),
		},
		{
			name: "PEER",
			req:  Request{Version: pcpVersion, Opcode: Peer, Lifetime: 3600, Client: client4},
			rep:  Reply{Result: UnsuppOpcode, Epoch: epoch, Lifetime: 600},
			want: pcpResponse(byte(Peer), UnsuppOpcode, 600, epoch, lastBits96(client4)),
		},
		{
			name: "UNSUPP_VERSION",
			req:  Request{Version: 1, Opcode: Map},
			rep:  Reply{Result: UnsuppVersion, Epoch: epoch, Lifetime: 1800},
			want: pcpResponse(byte(Map), UnsuppVersion, 1800, epoch, zero),
		},
		{
			name: "NAT-PMP public address",
			req:  Request{Version: natpmpVersion, Opcode: Announce},
			rep:  Reply{Result: Success, Epoch: epoch, External: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.5"), 0)},
			want: natpmpResponse(0, 0, epoch, []byte{203, 0, 113, 5}),
		},
		{
			name: "NAT-PMP public address, IPv4-mapped",
			req:  Request{Version: natpmpVersion, Opcode: Announce},
			rep:  Reply{Result: Success, Epoch: epoch, External: netip.AddrPortFrom(netip.MustParseAddr("::ffff:203.0.113.5"), 0)},
			want: natpmpResponse(0, 0, epoch, []byte{203, 0, 113, 5}),
		},
		{
			name: "NAT-PMP public address error",
			req:  Request{Version: natpmpVersion, Opcode: Announce},
			rep:  Reply{Result: NetworkFailure, Epoch: epoch, External: netip.AddrPortFrom(netip.MustParseAddr("203.0.113.5"), 0)},
			want: natpmpResponse(0, 3, epoch, []byte{0, 0, 0, 0}),
		},
		{
			name: "NAT-PMP map UDP",
			req:  natpmpUDP,
			rep:  Reply{Result: Success, Epoch: epoch, Lifetime: 3600, External: assigned4},
			want: natpmpResponse(natpmpMapUDP, 0, epoch, be.AppendUint16(nil, 5000), be.AppendUint16(nil, 61000), be.AppendUint32(nil, 3600)),
		},
		{
			name: "NAT-PMP map TCP",
			req:  natpmpTCP,
			rep:  Reply{Result: Success, Epoch: epoch, Lifetime: 3600, External: assigned4},
			want: natpmpResponse(natpmpMapTCP, 0, epoch, be.AppendUint16(nil, 5000), be.AppendUint16(nil, 61000), be.AppendUint32(nil, 3600)),
		},
		{
			name: "NAT-PMP map error",
			req:  natpmpTCP,
			rep:  Reply{Result: NoResources, Epoch: epoch},
			want: natpmpResponse(natpmpMapTCP, 4, epoch, be.AppendUint16(nil, 5000), []byte{0, 0}, []byte{0, 0, 0, 0}),
		},
		{
			name: "NAT-PMP unsupported opcode",
			req:  Request{Version: natpmpVersion, Opcode: 3},
			rep:  Reply{Result: UnsuppOpcode, Epoch: epoch},
			want: natpmpResponse(3, 5, epoch),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte("prefix")
			got := AppendResponse(bytes.Clone(prefix), tc.req, tc.rep)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("AppendResponse lost dst: % x", got)
			}
			if got = got[len(prefix):]; !bytes.Equal(got, tc.want) {
				t.Errorf("AppendResponse\n got % x\nwant % x", got, tc.want)
			}
		})
	}
}

// TestNATPMPResultCodes pins the mapping of PCP results to NAT-PMP's.
func TestNATPMPResultCodes(t *testing.T) {
	want := map[Result]uint16{
		Success:               0,
		UnsuppVersion:         1,
		NotAuthorized:         2,
		MalformedRequest:      2,
		UnsuppOpcode:          5,
		UnsuppOption:          2,
		MalformedOption:       2,
		NetworkFailure:        3,
		NoResources:           4,
		UnsuppProtocol:        2,
		UserExQuota:           4,
		CannotProvideExternal: 2,
		AddressMismatch:       2,
		ExcessiveRemotePeers:  2,
	}
	req := Request{Version: natpmpVersion, Opcode: Map, Proto: protoUDP, InternalPort: 5000}
	for r, code := range want {
		got := AppendResponse(nil, req, Reply{Result: r})
		if c := be.Uint16(got[2:]); c != code {
			t.Errorf("%v: NAT-PMP result code %d, want %d", r, c, code)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	in := pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, suggested4), option(200, 1, 2, 3), option(optPreferFailure))
	req, res, ok := Parse(in)
	if !ok || res != Success {
		t.Fatalf("Parse = %v, %v", res, ok)
	}
	if n := testing.AllocsPerRun(1000, func() { req, res, ok = Parse(in) }); n != 0 {
		t.Errorf("Parse: %v allocations", n)
	}
	rep := Reply{Result: Success, Epoch: 1, Lifetime: 3600, External: suggested4}
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(1000, func() { buf = AppendResponse(buf[:0], req, rep) }); n != 0 {
		t.Errorf("AppendResponse: %v allocations", n)
	}
	if len(buf) != 64 {
		t.Errorf("response of %d bytes, want 64", len(buf))
	}
}
