package pcp

import (
	"bytes"
	"net/netip"
	"testing"
)

type parseCase struct {
	name string
	in   []byte
	want Request
	res  Result
	ok   bool
}

// mapRequest is the Request Parse makes of a MAP request built with
// pcpRequest and mapData from the same values.
func mapRequest(lifetime uint32, client netip.Addr, proto uint8, internal uint16, external netip.AddrPort) Request {
	return Request{
		Version: pcpVersion, Opcode: Map, Lifetime: lifetime, Client: client,
		Nonce: nonce, Proto: proto, InternalPort: internal, External: external,
	}
}

func parseCases() []parseCase {
	announce := Request{Version: pcpVersion, Opcode: Announce, Client: client4}
	udpMap := mapRequest(3600, client4, protoUDP, 5000, noSuggestion4)
	withPreferFailure := udpMap
	withPreferFailure.PreferFailure = true
	header := Request{Version: pcpVersion, Opcode: Map, Lifetime: 3600, Client: client4}

	// An option whose length runs 4 octets past the end of the request.
	pastEnd := option(200, 1, 2, 3, 4)
	be.PutUint16(pastEnd[2:], 8)

	return []parseCase{
		// Dropped.
		{name: "empty", in: nil},
		{name: "one octet", in: []byte{pcpVersion}},
		{name: "PCP response", in: pcpRequest(rBit|byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4))},
		{name: "NAT-PMP response", in: natpmpResponse(0, 0, 7, []byte{203, 0, 113, 5})},
		{name: "NAT-PMP opcode 255", in: []byte{natpmpVersion, 255}},

		// NAT-PMP.
		{name: "NAT-PMP public address", in: []byte{natpmpVersion, 0},
			want: Request{Version: natpmpVersion, Opcode: Announce}, ok: true},
		{name: "NAT-PMP map UDP", in: natpmpMapRequest(natpmpMapUDP, 5000, 6000, 7200),
			want: Request{Version: natpmpVersion, Opcode: Map, Lifetime: 7200, Proto: protoUDP, InternalPort: 5000,
				External: netip.AddrPortFrom(netip.IPv4Unspecified(), 6000)}, ok: true},
		{name: "NAT-PMP map TCP deletion", in: natpmpMapRequest(natpmpMapTCP, 22, 0, 0),
			want: Request{Version: natpmpVersion, Opcode: Map, Proto: protoTCP, InternalPort: 22, External: noSuggestion4}, ok: true},
		{name: "NAT-PMP map too short", in: natpmpMapRequest(natpmpMapUDP, 5000, 6000, 7200)[:natpmpMapLen-1],
			want: Request{Version: natpmpVersion, Opcode: Map, Proto: protoUDP}, res: MalformedRequest, ok: true},
		{name: "NAT-PMP unknown opcode", in: []byte{natpmpVersion, 3, 0, 0},
			want: Request{Version: natpmpVersion, Opcode: 3}, res: UnsuppOpcode, ok: true},

		// Versions.
		{name: "version 1", in: versionRequest(1, byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4)),
			want: Request{Version: 1, Opcode: Map}, res: UnsuppVersion, ok: true},
		{name: "version 3, short", in: []byte{3, 0},
			want: Request{Version: 3, Opcode: Announce}, res: UnsuppVersion, ok: true},

		// PCP lengths.
		{name: "PCP shorter than header", in: []byte{pcpVersion, byte(Map), 0, 0},
			want: Request{Version: pcpVersion, Opcode: Map}, res: MalformedRequest, ok: true},
		{name: "PCP not a multiple of 4", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), []byte{0}),
			want: header, res: MalformedRequest, ok: true},
		{name: "PCP longer than 1100", in: pcpRequest(byte(Announce), 0, client4, option(200, make([]byte, maxLen-headerLen)...)),
			want: announce, res: MalformedRequest, ok: true},
		{name: "PCP of 1100", in: pcpRequest(byte(Announce), 0, client4, option(200, make([]byte, maxLen-headerLen-optHdrLen)...)),
			want: announce, ok: true},
		{name: "MAP data too short", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4)[:mapLen-4]),
			want: header, res: MalformedRequest, ok: true},

		// Opcodes.
		{name: "ANNOUNCE", in: pcpRequest(byte(Announce), 0, client4), want: announce, ok: true},
		{name: "PEER", in: pcpRequest(byte(Peer), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), make([]byte, 20)),
			want: Request{Version: pcpVersion, Opcode: Peer, Lifetime: 3600, Client: client4}, res: UnsuppOpcode, ok: true},
		{name: "unknown opcode", in: pcpRequest(5, 3600, client6),
			want: Request{Version: pcpVersion, Opcode: 5, Lifetime: 3600, Client: client6}, res: UnsuppOpcode, ok: true},

		// MAP.
		{name: "MAP, IPv4 client", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4)),
			want: udpMap, ok: true},
		{name: "MAP, IPv6 client", in: pcpRequest(byte(Map), 60, client6, mapData(protoTCP, 443, noSuggestion6)),
			want: mapRequest(60, client6, protoTCP, 443, noSuggestion6), ok: true},
		{name: "MAP, suggested IPv4 endpoint", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, suggested4)),
			want: mapRequest(3600, client4, protoUDP, 5000, suggested4), ok: true},
		{name: "MAP, suggested IPv6 endpoint", in: pcpRequest(byte(Map), 3600, client6, mapData(protoTCP, 443, suggested6)),
			want: mapRequest(3600, client6, protoTCP, 443, suggested6), ok: true},
		{name: "MAP, suggested port only", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, netip.AddrPortFrom(netip.IPv4Unspecified(), 5000))),
			want: mapRequest(3600, client4, protoUDP, 5000, netip.AddrPortFrom(netip.IPv4Unspecified(), 5000)), ok: true},
		{name: "MAP, all protocols", in: pcpRequest(byte(Map), 3600, client4, mapData(0, 0, noSuggestion4)),
			want: mapRequest(3600, client4, 0, 0, noSuggestion4), ok: true},
		{name: "MAP, all protocols with a port", in: pcpRequest(byte(Map), 3600, client4, mapData(0, 80, noSuggestion4)),
			want: mapRequest(3600, client4, 0, 80, noSuggestion4), res: MalformedRequest, ok: true},
		{name: "MAP, all ports of TCP", in: pcpRequest(byte(Map), 3600, client4, mapData(protoTCP, 0, noSuggestion4)),
			want: mapRequest(3600, client4, protoTCP, 0, noSuggestion4), ok: true},
		{name: "MAP deletion of all ports of UDP", in: pcpRequest(byte(Map), 0, client4, mapData(protoUDP, 0, noSuggestion4)),
			want: mapRequest(0, client4, protoUDP, 0, noSuggestion4), ok: true},

		// Options.
		{name: "PREFER_FAILURE", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(optPreferFailure)),
			want: withPreferFailure, ok: true},
		{name: "PREFER_FAILURE twice", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(optPreferFailure), option(optPreferFailure)),
			want: withPreferFailure, res: MalformedOption, ok: true},
		{name: "PREFER_FAILURE with data", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(optPreferFailure, 0, 0, 0, 0)),
			want: udpMap, res: MalformedOption, ok: true},
		{name: "PREFER_FAILURE in ANNOUNCE", in: pcpRequest(byte(Announce), 0, client4, option(optPreferFailure)),
			want: announce, res: MalformedRequest, ok: true},
		{name: "unknown optional option ignored", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(200, 1, 2, 3, 4, 5), option(optPreferFailure)),
			want: withPreferFailure, ok: true},
		{name: "unknown optional option in ANNOUNCE", in: pcpRequest(byte(Announce), 0, client4, option(255)),
			want: announce, ok: true},
		{name: "THIRD_PARTY", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(1, client4.AsSlice()...)),
			want: udpMap, res: UnsuppOption, ok: true},
		{name: "FILTER", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(3, make([]byte, 20)...)),
			want: udpMap, res: UnsuppOption, ok: true},
		{name: "unknown mandatory option", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(127)),
			want: udpMap, res: UnsuppOption, ok: true},
		{name: "unknown mandatory option in ANNOUNCE", in: pcpRequest(byte(Announce), 0, client4, option(0)),
			want: announce, res: UnsuppOption, ok: true},
		{name: "option past the end", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), pastEnd),
			want: udpMap, res: MalformedOption, ok: true},
		{name: "option padding past the end", in: pcpRequest(byte(Map), 3600, client4, mapData(protoUDP, 5000, noSuggestion4), option(200, 1, 2, 3, 4, 5)[:8]),
			want: udpMap, res: MalformedOption, ok: true},
	}
}

func TestParse(t *testing.T) {
	for _, tc := range parseCases() {
		t.Run(tc.name, func(t *testing.T) {
			in := bytes.Clone(tc.in)
			req, res, ok := Parse(in)
			if ok != tc.ok || res != tc.res {
				t.Fatalf("Parse = %v, %v; want %v, %v", res, ok, tc.res, tc.ok)
			}
			if req != tc.want {
				t.Errorf("Parse request\n got %+v\nwant %+v", req, tc.want)
			}
			if !bytes.Equal(in, tc.in) {
				t.Error("Parse changed its input")
			}
		})
	}
}

func TestResultString(t *testing.T) {
	for r, want := range map[Result]string{
		Success:               "SUCCESS",
		UnsuppVersion:         "UNSUPP_VERSION",
		NotAuthorized:         "NOT_AUTHORIZED",
		MalformedRequest:      "MALFORMED_REQUEST",
		UnsuppOpcode:          "UNSUPP_OPCODE",
		UnsuppOption:          "UNSUPP_OPTION",
		MalformedOption:       "MALFORMED_OPTION",
		NetworkFailure:        "NETWORK_FAILURE",
		NoResources:           "NO_RESOURCES",
		UnsuppProtocol:        "UNSUPP_PROTOCOL",
		UserExQuota:           "USER_EX_QUOTA",
		CannotProvideExternal: "CANNOT_PROVIDE_EXTERNAL",
		AddressMismatch:       "ADDRESS_MISMATCH",
		ExcessiveRemotePeers:  "EXCESSIVE_REMOTE_PEERS",
		14:                    "Result(14)",
	} {
		if got := r.String(); got != want {
			t.Errorf("Result(%d).String() = %q, want %q", uint8(r), got, want)
		}
	}
}
