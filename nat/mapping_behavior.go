package nat

import "net/netip"

// A MappingBehavior decides which outbound flows of one internal endpoint
// share a mapping: the NAT "Address and Port Mapping" behaviour of RFC 4787
// §4.1. It only reduces the remote endpoint of a new flow to the part that
// selects the mapping; the Table does the rest. The set is closed: pick one
// by name with MappingBehaviorByName, or use the variables below.
type MappingBehavior interface {
	// String is the behaviour's name in the config file.
	String() string
	// remoteKey is the part of remote that, with the protocol and the
	// internal endpoint, names the mapping a flow to remote uses.
	remoteKey(remote netip.AddrPort) netip.AddrPort
}

// The three mapping behaviours of RFC 4787 §4.1.
var (
	// EndpointIndependentMapping: "The NAT reuses the port mapping for
	// subsequent packets sent from the same internal IP address and port
	// (X:x) to any external IP address and port." REQ-1 makes it a MUST
	// (RFC 5382 REQ-1 for TCP); the others exist to emulate other NATs.
	EndpointIndependentMapping MappingBehavior = endpointIndependentMapping{}
	// AddressDependentMapping: "... to the same external IP address,
	// regardless of the external port."
	AddressDependentMapping MappingBehavior = addressDependentMapping{}
	// AddressAndPortDependentMapping: "... to the same external IP address
	// and port while the mapping is still active." (a "symmetric" NAT)
	AddressAndPortDependentMapping MappingBehavior = addressAndPortDependentMapping{}
)

type endpointIndependentMapping struct{}

func (endpointIndependentMapping) String() string { return "endpoint-independent" }

func (endpointIndependentMapping) remoteKey(netip.AddrPort) netip.AddrPort {
	return netip.AddrPort{}
}

type addressDependentMapping struct{}

func (addressDependentMapping) String() string { return "address-dependent" }

func (addressDependentMapping) remoteKey(remote netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(remote.Addr(), 0)
}

type addressAndPortDependentMapping struct{}

func (addressAndPortDependentMapping) String() string { return "address-and-port-dependent" }

func (addressAndPortDependentMapping) remoteKey(remote netip.AddrPort) netip.AddrPort {
	return remote
}

var mappingBehaviors = byName(
	EndpointIndependentMapping,
	AddressDependentMapping,
	AddressAndPortDependentMapping,
)

// MappingBehaviorByName returns the mapping behaviour the config file calls
// name.
func MappingBehaviorByName(name string) (MappingBehavior, error) {
	return lookup(mappingBehaviors, "mapping", name)
}

// MappingBehaviorNames lists the names MappingBehaviorByName knows, sorted.
func MappingBehaviorNames() []string { return names(mappingBehaviors) }
