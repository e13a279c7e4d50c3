package nat

import "net/netip"

// A FilteringBehavior decides which outside endpoints may start a flow to a
// mapping: the NAT filtering behaviour of RFC 4787 §5 (RFC 5382 REQ-3 for
// TCP). It only reduces a remote endpoint to the part a mapping remembers
// of the remotes it has sent to; a packet from a remote is admitted when
// its reduction is remembered. The set is closed: pick one by name with
// FilteringBehaviorByName, or use the variables below.
type FilteringBehavior interface {
	// String is the behaviour's name in the config file.
	String() string
	// filterKey is what a mapping remembers of remote, and what an inbound
	// packet from remote is checked against. ok is false when the
	// behaviour admits everyone and remembers nothing.
	filterKey(remote netip.AddrPort) (key netip.AddrPort, ok bool)
}

// The three filtering behaviours of RFC 4787 §5. REQ-8: "If application
// transparency is most important, it is RECOMMENDED that a NAT have an
// "Endpoint-Independent Filtering" behavior. If a more stringent filtering
// behavior is most important, it is RECOMMENDED that a NAT have an
// "Address-Dependent Filtering" behavior." RFC 6888 REQ-7 recommends
// endpoint-independent filtering for a CGN.
var (
	// EndpointIndependentFiltering: "The NAT filters out only packets not
	// destined to the internal address and port X:x, regardless of the
	// external IP address and port source (Z:z)." (a "full cone")
	EndpointIndependentFiltering FilteringBehavior = endpointIndependentFiltering{}
	// AddressDependentFiltering: "... the NAT will filter out packets from
	// Y:y destined for the internal endpoint X:x if X:x has not sent
	// packets to Y previously (independently of the port used by Y)."
	AddressDependentFiltering FilteringBehavior = addressDependentFiltering{}
	// AddressAndPortDependentFiltering: "... if X:x has not sent packets
	// to Y:y previously."
	AddressAndPortDependentFiltering FilteringBehavior = addressAndPortDependentFiltering{}
)

type endpointIndependentFiltering struct{}

func (endpointIndependentFiltering) String() string { return "endpoint-independent" }

func (endpointIndependentFiltering) filterKey(netip.AddrPort) (netip.AddrPort, bool) {
	return netip.AddrPort{}, false
}

type addressDependentFiltering struct{}

func (addressDependentFiltering) String() string { return "address-dependent" }

func (addressDependentFiltering) filterKey(remote netip.AddrPort) (netip.AddrPort, bool) {
	return netip.AddrPortFrom(remote.Addr(), 0), true
}

type addressAndPortDependentFiltering struct{}

func (addressAndPortDependentFiltering) String() string { return "address-and-port-dependent" }

func (addressAndPortDependentFiltering) filterKey(remote netip.AddrPort) (netip.AddrPort, bool) {
	return remote, true
}

var filteringBehaviors = byName(
	EndpointIndependentFiltering,
	AddressDependentFiltering,
	AddressAndPortDependentFiltering,
)

// FilteringBehaviorByName returns the filtering behaviour the config file
// calls name.
func FilteringBehaviorByName(name string) (FilteringBehavior, error) {
	return lookup(filteringBehaviors, "filtering", name)
}

// FilteringBehaviorNames lists the names FilteringBehaviorByName knows,
// sorted.
func FilteringBehaviorNames() []string { return names(filteringBehaviors) }
