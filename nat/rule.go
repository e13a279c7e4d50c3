package nat

import (
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Rule is the translation part of one `[[snat]]` table, already resolved:
// masquerade is the egress interface's address(es) in External. A zero
// field takes its default.
type Rule struct {
	// External is the pool of external addresses: one for masquerade, or
	// a range. RFC 6888 REQ-3: any size, contiguous or not. Both families
	// may be present; a mapping takes an address of its internal
	// endpoint's family.
	External []netip.Addr
	// Ports is the external port (and ICMP identifier) range
	// (DefaultPorts). Port 0 is never given out.
	Ports PortRange
	// Mapping is the mapping behaviour (EndpointIndependentMapping). ICMP
	// queries always map endpoint-independently (see Table.Outbound).
	Mapping MappingBehavior
	// Filtering is the filtering behaviour (EndpointIndependentFiltering).
	Filtering FilteringBehavior
	// PortPreservation keeps the internal port as the external one when
	// it is free.
	PortPreservation bool
	// Parity keeps the parity of the internal port when another port has
	// to be chosen (RFC 4787 REQ-4). Off by default: RFC 7857 §8 (X8)
	// no longer recommends it, and it halves the ports a choice may take.
	Parity bool
	// MaxPortsPerHost limits the external ports (and ICMP identifiers),
	// over all protocols, that one internal address holds, counting ports
	// still held back by ReuseDelay; 0 is no limit. RFC 6888 REQ-4: "A CGN
	// MUST support limiting the number of external ports (or, equivalently,
	// "identifiers" for ICMP) that are assigned per subscriber."
	MaxPortsPerHost int
	// ReuseDelay is how long a freed external port stays reserved for the
	// internal endpoint that last had it (DefaultReuseDelay); negative
	// turns it off. RFC 6888 REQ-8: "Once an external port is deallocated,
	// it SHOULD NOT be reallocated to a new mapping until at least 120
	// seconds have passed". What the requirement guards against is a port
	// handed to someone else while the previous owner's peers still send
	// to it, so the same mapping (same internal endpoint, same remote part
	// under endpoint-dependent mapping) may take its port back at once:
	// a port-preserving client that comes back within 120 s keeps its
	// external endpoint instead of being moved elsewhere.
	ReuseDelay time.Duration
	// MaxIdleRemotes is how many remotes whose flows have all ended a
	// mapping keeps remembering for filtering (DefaultMaxIdleRemotes);
	// negative remembers none. Remotes with live flows are always
	// remembered. RFC 6888 REQ-5: "A CGN SHOULD support limiting the
	// amount of state memory allocated per mapping and per subscriber."
	MaxIdleRemotes int
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi uint16 }

// Defaults of Rule.
var (
	DefaultPorts          = PortRange{1024, 65535}
	DefaultReuseDelay     = 120 * time.Second
	DefaultMaxIdleRemotes = 16
)

// withDefaults fills the zero fields of r and checks it.
func (r Rule) withDefaults() (Rule, error) {
	if r.Ports == (PortRange{}) {
		r.Ports = DefaultPorts
	}
	if r.Mapping == nil {
		r.Mapping = EndpointIndependentMapping
	}
	if r.Filtering == nil {
		r.Filtering = EndpointIndependentFiltering
	}
	if r.ReuseDelay == 0 {
		r.ReuseDelay = DefaultReuseDelay
	}
	if r.MaxIdleRemotes == 0 {
		r.MaxIdleRemotes = DefaultMaxIdleRemotes
	}
	var errs []error
	if len(r.External) == 0 {
		errs = append(errs, errors.New("no external address"))
	}
	seen := make(map[netip.Addr]bool, len(r.External))
	for _, a := range r.External {
		switch {
		case !a.IsValid() || a.IsUnspecified():
			errs = append(errs, fmt.Errorf("external address %v is not usable", a))
		case seen[a]:
			errs = append(errs, fmt.Errorf("external address %v is listed twice", a))
		}
		seen[a] = true
	}
	if r.Ports.Lo == 0 || r.Ports.Lo > r.Ports.Hi {
		errs = append(errs, fmt.Errorf("port range %d-%d: want 1 <= low <= high", r.Ports.Lo, r.Ports.Hi))
	}
	if r.MaxPortsPerHost < 0 {
		errs = append(errs, fmt.Errorf("max ports per host %d is negative", r.MaxPortsPerHost))
	}
	return r, errors.Join(errs...)
}
