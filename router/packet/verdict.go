package packet

// Verdict is what a stage decides about a packet. It is a small value so
// returning it costs nothing: the kind in the high byte, the reason in the
// low byte.
type Verdict uint16

// Kinds of verdict.
const (
	// Continue passes the packet to the next stage.
	Continue Verdict = 0
	// Taken means the stage owns the packet now (delivered to the router's
	// own stack, queued for neighbor resolution). The pipeline forgets it.
	Taken     Verdict = 1 << 8
	kindDrop          = 2 << 8
	kindReply         = 3 << 8
	// Skip means the stage did for the packet what the stages after it
	// up to the pipeline's resume point would have done (the fast path of
	// a known flow); the packet goes on from there.
	Skip Verdict = 4 << 8
)

// Drop discards the packet, counted under the reason.
func Drop(r Reason) Verdict { return kindDrop | Verdict(r) }

// Reply means the stage rewrote the packet in place into a packet of the
// router's own (an ICMP error about the original, which is counted as
// dropped for the reason). The pipeline sends it on from the route stage,
// with Origin Local.
func Reply(r Reason) Verdict { return kindReply | Verdict(r) }

// IsDrop reports whether v discards the packet.
func (v Verdict) IsDrop() bool { return v&0xff00 == kindDrop }

// IsReply reports whether v replaced the packet with the router's answer.
func (v Verdict) IsReply() bool { return v&0xff00 == kindReply }

// Reason is why a packet was dropped (or answered instead of forwarded).
func (v Verdict) Reason() Reason { return Reason(v & 0xff) }

// Reason is one of a closed set of causes for dropping a packet. Each has a
// counter; `tungate stats` shows them by name.
type Reason uint8

const (
	ReasonNone Reason = iota
	// validate
	ReasonTruncated       // shorter than its headers, or than the length they claim
	ReasonBadVersion      // neither IPv4 nor IPv6
	ReasonBadHeaderLength // IPv4 IHL below 5 or past the packet
	ReasonBadTotalLength  // IPv4 total length / IPv6 payload length disagrees with the packet
	ReasonBadChecksum     // IPv4 header checksum
	ReasonBadAddress      // martian source or destination (RFC 1812 §5.3.7)
	ReasonLinkScope       // link-local or multicast: not forwarded between links
	// link layer (TAP)
	ReasonOtherHost // an Ethernet frame for another host's MAC
	ReasonEtherType // an Ethernet frame of a protocol the router does not speak
	// local
	ReasonLocalQueueFull // the router's own stack could not take it
	ReasonPCPRefused     // a PCP or NAT-PMP request from outside, or from a host no pcp rule serves
	// dnat, snat
	ReasonNATFiltered    // to an external mapping from an endpoint its filtering refuses (RFC 4787 §5)
	ReasonNATUnsupported // needs translating but has no ports to translate (other protocols, later fragments)
	ReasonNATExhausted   // no external port left for a new mapping, or the host's quota is used up
	ReasonConntrackFull  // conntrack holds its maximum of flows: a new one is refused
	ReasonFlowRace       // another reader made the same new flow first; the next packet finds it
	ReasonLBNoBackend    // a new flow to a service none of whose backends may take it (ICMP Port Unreachable sent)
	ReasonLBBackendGone  // a packet of a flow whose backend a reload removed (TCP: a reset sent)
	// filter
	ReasonFiltered // a filter rule (or the policy) dropped or rejected it
	// route
	ReasonNoRoute // no route to the destination (ICMP Destination Unreachable sent)
	// ttl
	ReasonTTLExceeded // TTL / hop limit reached zero (ICMP Time Exceeded sent)
	ReasonTooBig      // larger than the egress MTU with DF set, or IPv6 (ICMP sent)
	// neighbor
	ReasonNeighborRefused // the neighbor cache is full: no room to resolve another next hop
	ReasonNeighborFailed  // the next hop did not answer ARP / NDP (ICMP Host Unreachable sent)
	// device output
	ReasonFragmentFailed  // could not be fragmented for the egress MTU
	ReasonFragmentTimeout // a later fragment whose first never came (or no room to hold it)
	ReasonTxError         // the device refused the write
	ReasonLoop            // the router's own answer could not be routed
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:            "none",
	ReasonTruncated:       "truncated",
	ReasonBadVersion:      "bad_version",
	ReasonBadHeaderLength: "bad_header_length",
	ReasonBadTotalLength:  "bad_total_length",
	ReasonBadChecksum:     "bad_checksum",
	ReasonBadAddress:      "bad_address",
	ReasonLinkScope:       "link_scope",
	ReasonOtherHost:       "other_host",
	ReasonEtherType:       "unknown_ethertype",
	ReasonLocalQueueFull:  "local_queue_full",
	ReasonPCPRefused:      "pcp_refused",
	ReasonNATFiltered:     "nat_filtered",
	ReasonNATUnsupported:  "nat_unsupported",
	ReasonNATExhausted:    "nat_exhausted",
	ReasonConntrackFull:   "conntrack_full",
	ReasonFlowRace:        "flow_race",
	ReasonLBNoBackend:     "lb_no_backend",
	ReasonLBBackendGone:   "lb_backend_gone",
	ReasonFiltered:        "filtered",
	ReasonNoRoute:         "no_route",
	ReasonTTLExceeded:     "ttl_exceeded",
	ReasonTooBig:          "too_big",
	ReasonNeighborRefused: "neighbor_refused",
	ReasonNeighborFailed:  "neighbor_failed",
	ReasonFragmentFailed:  "fragment_failed",
	ReasonFragmentTimeout: "fragment_timeout",
	ReasonTxError:         "tx_error",
	ReasonLoop:            "loop",
}

// String is the reason's name as shown by `tungate stats`.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
