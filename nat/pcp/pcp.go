// Package pcp is the wire format of the Port Control Protocol (PCP,
// RFC 6887) version 2 and of its predecessor NAT-PMP (RFC 6886, version 0),
// which a PCP server answers on the same port (RFC 6887 Appendix A). It
// decodes request datagrams and encodes the responses; deciding what to
// grant is the caller's business.
//
//	req, res, ok := pcp.Parse(datagram)
//	if !ok {
//		return // silently dropped
//	}
//	rep := pcp.Reply{Result: res, Epoch: epoch, Lifetime: errorLifetime}
//	if res == pcp.Success {
//		rep = decide(req, epoch) // Result, Epoch, Lifetime, External
//	}
//	out = pcp.AppendResponse(out[:0], req, rep)
//
// Supported are the PCP ANNOUNCE and MAP opcodes with the PREFER_FAILURE
// option, and NAT-PMP's public address request and UDP and TCP mapping
// requests. Everything else is refused: UNSUPP_VERSION for versions other
// than 0 and 2, UNSUPP_OPCODE for PEER and unknown opcodes, and
// UNSUPP_OPTION for THIRD_PARTY, FILTER and any other mandatory-to-process
// option. Unknown optional options are ignored.
package pcp

import (
	"net/netip"
	"strconv"
)

// Port is the UDP port PCP and NAT-PMP servers listen on.
const Port = 5351

// Opcode is a PCP opcode. NAT-PMP requests are given the PCP opcode that
// does the same: its public address request (opcode 0) is Announce, its
// UDP and TCP mapping requests (opcodes 1 and 2) are Map. An opcode
// neither protocol supports keeps its number.
type Opcode uint8

// The PCP opcodes (RFC 6887 §11, §12, §14).
const (
	Announce Opcode = 0
	Map      Opcode = 1
	Peer     Opcode = 2
)

// Result is a PCP result code (RFC 6887 §7.4).
type Result uint8

// The PCP result codes.
const (
	Success               Result = 0
	UnsuppVersion         Result = 1
	NotAuthorized         Result = 2
	MalformedRequest      Result = 3
	UnsuppOpcode          Result = 4
	UnsuppOption          Result = 5
	MalformedOption       Result = 6
	NetworkFailure        Result = 7
	NoResources           Result = 8
	UnsuppProtocol        Result = 9
	UserExQuota           Result = 10
	CannotProvideExternal Result = 11
	AddressMismatch       Result = 12
	ExcessiveRemotePeers  Result = 13
)

var resultNames = [...]string{
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
}

// String returns the RFC 6887 name of the result code.
func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "Result(" + strconv.Itoa(int(r)) + ")"
}

// parseError reports whether r is one of the errors Parse finds, that is
// whether a request answered with r was not successfully parsed.
func (r Result) parseError() bool {
	switch r {
	case UnsuppVersion, MalformedRequest, UnsuppOpcode, UnsuppOption, MalformedOption:
		return true
	}
	return false
}

// Request is a decoded request.
type Request struct {
	Version uint8  // 2 for PCP, 0 for NAT-PMP; any other is answered UnsuppVersion
	Opcode  Opcode // see Opcode for NAT-PMP's
	// Lifetime is the requested lifetime in seconds; 0 deletes a mapping.
	// A PCP server ignores it in ANNOUNCE requests (RFC 6887 §14.1).
	Lifetime uint32
	// Client is the PCP Client's IP Address field, an IPv4 address unmapped.
	// It is the zero Addr for NAT-PMP, for other versions, and for PCP
	// requests too short to hold it.
	Client netip.Addr
	Nonce  [12]byte // PCP MAP's mapping nonce
	// Proto is MAP's IP protocol number, 0 meaning all protocols; NAT-PMP
	// requests are 17 (UDP) or 6 (TCP).
	Proto uint8
	// InternalPort is MAP's internal port. 0 means all ports: with Proto 0
	// always, with another protocol for a deletion or for a request to map
	// all of that protocol's ports, which Parse accepts and leaves to the
	// caller to grant or refuse (RFC 6887 §11.1).
	InternalPort uint16
	// External is the suggested external endpoint of a MAP request. Port 0
	// means no port is suggested, an unspecified address (0.0.0.0 or ::) no
	// address; the unspecified address still names the family the client
	// wants its external address in (RFC 6887 §11.1). PCP addresses are
	// kept as sent, IPv4 unmapped. NAT-PMP, which knows IPv4 only, gives
	// 0.0.0.0 and the suggested port. Zero for other requests, and when
	// the MAP data could not be read.
	External netip.AddrPort
	// PreferFailure is set when a PCP MAP request carries the PREFER_FAILURE
	// option: the client wants an error rather than an endpoint other than
	// the suggested one.
	PreferFailure bool
}

// Reply is what the server decided for a request.
type Reply struct {
	Result Result
	// Epoch is the seconds since the server's mapping state began
	// (RFC 6887 §8.5, RFC 6886 §3.6).
	Epoch uint32
	// Lifetime is the granted lifetime in seconds. For an error it is how
	// long the client should expect the same answer to the same request
	// (RFC 6887 §7.2, §15). Successful PCP ANNOUNCE responses carry 0
	// whatever it is.
	Lifetime uint32
	// External is, on success, the external endpoint assigned to a MAP
	// request, or the address of a NAT-PMP public address request. PCP MAP
	// error responses echo the request's suggestion instead.
	External netip.AddrPort
}
