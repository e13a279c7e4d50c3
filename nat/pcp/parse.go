package pcp

import (
	"encoding/binary"
	"net/netip"
)

// Wire constants shared by requests and responses.
const (
	natpmpVersion = 0
	pcpVersion    = 2

	// rBit marks a response in the opcode octet. RFC 6887 §7.1: "R:
	// Indicates Request (0) or Response (1)." NAT-PMP sets the same bit:
	// its response opcodes are 128 + the request's.
	rBit = 0x80

	headerLen = 24   // PCP common request and response header
	mapLen    = 36   // PCP MAP request and response data
	maxLen    = 1100 // RFC 6887 §7: the largest PCP message
	optHdrLen = 4    // option code, reserved, option length

	optPreferFailure = 2
	optOptional      = 0x80 // option codes 128-255 are optional to process

	natpmpMapUDP = 1 // NAT-PMP opcodes of its mapping requests
	natpmpMapTCP = 2
	natpmpMapLen = 12 // NAT-PMP mapping request

	protoTCP = 6
	protoUDP = 17
)

// Parse decodes one request datagram. ok is false when the datagram must
// be silently dropped: shorter than the two octets of version and opcode,
// or a response. Otherwise res is Success or the error result to answer
// with (AppendResponse with that result):
//
//   - UnsuppVersion for versions other than 0 and 2;
//   - MalformedRequest for a PCP request not a multiple of 4 octets long,
//     shorter than 24 or longer than 1100, a request too short for its
//     opcode, a MAP for all protocols (Proto 0) with an internal port, or
//     a PREFER_FAILURE option outside MAP;
//   - UnsuppOpcode for PEER and opcodes neither protocol defines;
//   - UnsuppOption for a mandatory-to-process option (codes 0-127) other
//     than PREFER_FAILURE: THIRD_PARTY, FILTER, unknown ones;
//   - MalformedOption for an option running past the end of the request,
//     or a PREFER_FAILURE option that has data or comes twice.
//
// The fields of req are filled as far as parsing got, so that an error
// response can echo them.
func Parse(b []byte) (req Request, res Result, ok bool) {
	// The R bit doubles as NAT-PMP's response opcodes. RFC 6886 §3.5: "If
	// the opcode in the request is 128 or greater, then this is not a
	// request; it's a response, and the NAT-PMP server MUST silently ignore
	// it." RFC 6887 §8.3 drops PCP responses and requests under 2 octets.
	if len(b) < 2 || b[1]&rBit != 0 {
		return req, Success, false
	}
	req.Version, req.Opcode = b[0], Opcode(b[1])
	switch req.Version {
	case natpmpVersion:
		return req, parseNATPMP(b, &req), true
	case pcpVersion:
		return req, parsePCP(b, &req), true
	}
	return req, UnsuppVersion, true
}

// parseNATPMP decodes the NAT-PMP request b (RFC 6886 §3.2, §3.3) into req.
func parseNATPMP(b []byte, req *Request) Result {
	switch b[1] {
	case 0:
		req.Opcode = Announce
		return Success
	case natpmpMapUDP, natpmpMapTCP:
		req.Opcode, req.Proto = Map, protoUDP
		if b[1] == natpmpMapTCP {
			req.Proto = protoTCP
		}
		if len(b) < natpmpMapLen {
			return MalformedRequest
		}
		// Octets 2-3 are reserved.
		req.InternalPort = binary.BigEndian.Uint16(b[4:])
		req.External = netip.AddrPortFrom(netip.IPv4Unspecified(), binary.BigEndian.Uint16(b[6:]))
		req.Lifetime = binary.BigEndian.Uint32(b[8:])
		return Success
	}
	return UnsuppOpcode
}

// parsePCP decodes the PCP request b (RFC 6887 §7.1) into req.
func parsePCP(b []byte, req *Request) Result {
	// Octets 2-3 are reserved: "MUST be zero on transmission and MUST be
	// ignored on reception."
	if len(b) >= headerLen {
		req.Lifetime = binary.BigEndian.Uint32(b[4:])
		req.Client = addr16(b[8:headerLen])
	}
	if len(b) < headerLen || len(b) > maxLen || len(b)%4 != 0 {
		return MalformedRequest
	}
	opts := b[headerLen:]
	switch req.Opcode {
	case Announce:
		// RFC 6887 §14.1: ANNOUNCE has no opcode-specific data.
	case Map:
		if len(opts) < mapLen {
			return MalformedRequest
		}
		m := opts[:mapLen]
		copy(req.Nonce[:], m)
		req.Proto = m[12]
		// Octets 13-15 are reserved.
		req.InternalPort = binary.BigEndian.Uint16(m[16:])
		req.External = netip.AddrPortFrom(addr16(m[20:]), binary.BigEndian.Uint16(m[18:]))
		opts = opts[mapLen:]
	default:
		return UnsuppOpcode
	}
	if res := parseOptions(opts, req); res != Success {
		return res
	}
	// RFC 6887 §11.1: "If the protocol is zero (meaning 'all protocols'),
	// then internal port MUST be zero on transmission". A request breaking
	// that is refused rather than read as all ports, so that the client
	// learns of its mistake instead of getting more than it asked for.
	if req.Opcode == Map && req.Proto == 0 && req.InternalPort != 0 {
		return MalformedRequest
	}
	return Success
}

// parseOptions decodes the options b that follow the opcode-specific data
// of req (RFC 6887 §7.3). len(b) is a multiple of 4, as the request's
// length and the data before are.
func parseOptions(b []byte, req *Request) Result {
	for len(b) >= optHdrLen {
		code, n := b[0], int(binary.BigEndian.Uint16(b[2:]))
		// "Options that are not a multiple of 4 octets long are followed by
		// one, two, or three 0 octets to pad their effective length in the
		// packet to be a multiple of 4 octets. The Option Length reflects
		// the semantic length of the option, not including any padding
		// octets." The padding must be there too, but need not be zero.
		padded := (n + 3) &^ 3
		if padded > len(b)-optHdrLen {
			return MalformedOption
		}
		switch {
		case code == optPreferFailure:
			// RFC 6887 §13.2: "Valid for Opcodes: MAP", "Length: 0",
			// "Maximum occurrences: 1". In PEER, §12 says, a server
			// receiving it "MUST return a MALFORMED_REQUEST error
			// response"; in ANNOUNCE likewise. MALFORMED_OPTION is for an
			// option that "appears too many times" or has an "invalid
			// length".
			if req.Opcode != Map {
				return MalformedRequest
			}
			if n != 0 || req.PreferFailure {
				return MalformedOption
			}
			req.PreferFailure = true
		case code < optOptional:
			// "Its most significant bit indicates if this option is
			// mandatory (0) or optional (1) to process." UNSUPP_OPTION
			// "only occurs if the option is in the mandatory-to-process
			// range"; optional ones not understood are skipped.
			return UnsuppOption
		}
		b = b[optHdrLen+padded:]
	}
	return Success
}

// addr16 decodes a 128-bit PCP address field. RFC 6887 §5: IPv4 addresses
// are carried as IPv4-mapped IPv6 addresses, so they are unmapped.
func addr16(b []byte) netip.Addr {
	return netip.AddrFrom16([16]byte(b[:16])).Unmap()
}
