package pcp

import "encoding/binary"

// AppendResponse appends the response to req with rep to dst and returns
// the extended slice. It does not allocate when dst has room for 64 bytes.
//
// A NAT-PMP request (Version 0) gets a NAT-PMP response: 12 bytes for the
// public address request, 16 for a mapping request, and the 8-byte common
// part for an unsupported opcode. NAT-PMP has fewer result codes than PCP;
// the others become "Not Authorized/Refused":
//
//	SUCCESS                  0 Success
//	UNSUPP_VERSION           1 Unsupported Version
//	NETWORK_FAILURE          3 Network Failure
//	NO_RESOURCES             4 Out of resources
//	USER_EX_QUOTA            4 Out of resources
//	UNSUPP_OPCODE            5 Unsupported opcode
//	any other                2 Not Authorized/Refused
//
// Any other request gets a PCP version 2 response (RFC 6887 §7.2): the
// 24-byte header, then for a MAP request of version 2 the MAP data, which
// echoes the request's and, on success, carries rep.External (§11.1), and
// the PREFER_FAILURE option if the request had it.
func AppendResponse(dst []byte, req Request, rep Reply) []byte {
	if req.Version == natpmpVersion {
		return appendNATPMP(dst, req, rep)
	}
	return appendPCP(dst, req, rep)
}

func appendPCP(dst []byte, req Request, rep Reply) []byte {
	// RFC 6887 §7.2: "Responses from servers compliant with this
	// specification MUST use version 2." That holds for the UNSUPP_VERSION
	// answer to another version too, and tells the client which to use.
	lifetime := rep.Lifetime
	if req.Opcode == Announce && rep.Result == Success {
		// §14.1: "The Requested Lifetime field of requests and Lifetime
		// field of responses are both set to 0 on transmission".
		lifetime = 0
	}
	dst = append(dst, pcpVersion, rBit|byte(req.Opcode), 0, byte(rep.Result))
	dst = binary.BigEndian.AppendUint32(dst, lifetime)
	dst = binary.BigEndian.AppendUint32(dst, rep.Epoch)

	// §7.2, the 96 reserved bits: "For requests that were not successfully
	// parsed, the server copies the last 96 bits of the PCP Client's IP
	// Address field from the request message into this corresponding
	// 96-bit field of the response." That lets a client match an error to
	// its request when the opcode's data could not be echoed. The field is
	// zero for the successfully parsed requests, and for those too short
	// to have the address.
	var reserved [12]byte
	if rep.Result.parseError() {
		client := req.Client.As16() // all zeros for the zero Addr
		copy(reserved[:], client[4:])
	}
	dst = append(dst, reserved[:]...)

	// Another version's opcode says nothing of what data would follow.
	if req.Opcode != Map || req.Version != pcpVersion {
		return dst
	}
	// §11.1: "Assigned External Port: On a success response, this is the
	// assigned external port for the mapping. On an error response, the
	// suggested external port is copied from the request." Likewise the
	// address, "encoded using IPv4-mapped IPv6 address".
	external := rep.External
	if rep.Result != Success {
		external = req.External
	}
	dst = append(dst, req.Nonce[:]...)
	dst = append(dst, req.Proto, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, req.InternalPort)
	dst = binary.BigEndian.AppendUint16(dst, external.Port())
	addr := external.Addr().As16() // IPv4-mapped for IPv4, :: for the zero Addr
	dst = append(dst, addr[:]...)
	if req.PreferFailure {
		// §13.2: it "May appear in response only if it appeared in the
		// associated request"; echoing it shows the client it was heeded.
		dst = append(dst, optPreferFailure, 0, 0, 0)
	}
	return dst
}

func appendNATPMP(dst []byte, req Request, rep Reply) []byte {
	op := byte(req.Opcode)
	if req.Opcode == Map {
		op = natpmpMapTCP
		if req.Proto == protoUDP {
			op = natpmpMapUDP
		}
	}
	dst = append(dst, natpmpVersion, rBit|op)
	dst = binary.BigEndian.AppendUint16(dst, natpmpResult(rep.Result))
	dst = binary.BigEndian.AppendUint32(dst, rep.Epoch)
	switch op {
	case 0:
		// RFC 6886 §3.2: "If the result code is non-zero, the value of the
		// External IPv4 Address field is undefined (MUST be set to zero on
		// transmission, and MUST be ignored on reception)."
		var addr [4]byte
		if a := rep.External.Addr().Unmap(); rep.Result == Success && a.Is4() {
			addr = a.As4()
		}
		return append(dst, addr[:]...)
	case natpmpMapUDP, natpmpMapTCP:
		// §3.3: internal port, mapped external port, lifetime.
		dst = binary.BigEndian.AppendUint16(dst, req.InternalPort)
		dst = binary.BigEndian.AppendUint16(dst, rep.External.Port())
		return binary.BigEndian.AppendUint32(dst, rep.Lifetime)
	}
	// §3.5 wants "the entire request" returned for an unsupported opcode,
	// with the response bit and result code 5 set in it. Its bytes are not
	// kept, so the client gets the part common to all responses instead.
	return dst
}

// natpmpResult maps a PCP result to the NAT-PMP result code (RFC 6886
// §3.5) closest in meaning; see AppendResponse.
func natpmpResult(r Result) uint16 {
	switch r {
	case Success:
		return 0
	case UnsuppVersion:
		return 1
	case NetworkFailure:
		return 3
	case NoResources, UserExQuota:
		return 4
	case UnsuppOpcode:
		return 5
	}
	return 2
}
