// Package nat holds the address-and-port translation state of one
// `[[snat]]` rule: which external ip:port an inside endpoint is given, and
// which outside endpoints may send to it. It sees no packet bytes; the
// header rewriting lives in nat/xlate and the flow table in conntrack.
//
// # Mappings and flows
//
// A mapping (RFC 4787 §4.1) binds an internal endpoint X:x to an external
// endpoint X':x' for one protocol. A flow is one conversation (a 5-tuple)
// in the connection tracker. Many flows share one mapping: under
// endpoint-independent mapping, every flow from X:x uses the same X':x'.
//
//	first outbound packet of a flow, no conntrack entry:
//	    Table.Outbound(proto, X:x, Y:y)  finds or makes the mapping, marks
//	                                     Y:y as contacted, and takes one
//	                                     flow reference for the new flow
//	first inbound packet to X':x', no conntrack entry:
//	    Table.Inbound(proto, X':x', Y:y) the mapping, and whether the
//	                                     filtering behaviour admits Y:y
//	    Table.Acquire(m, Y:y)            if admitted: a reference for the
//	                                     flow this packet starts
//	flow ends (timeout, RST, reload):
//	    Table.Release(m, Y:y)            drops that reference
//
// The connection tracker holds exactly one reference per flow: one from
// each successful Outbound or Acquire, given back by one Release. When the
// last reference goes, the mapping is removed at once; its external port
// then stays reserved for Rule.ReuseDelay (RFC 6888 REQ-8) and only the
// same internal endpoint may take it back in that time. Established flows
// never consult this package again: their translation is in their
// conntrack entry.
//
// # Behaviours
//
// Mapping and filtering are two separate strategies, chosen by name
// (MappingBehaviorByName, FilteringBehaviorByName). Each one only reduces
// a remote endpoint to what it cares about: a mapping behaviour to the part
// of the remote that selects a mapping (nothing, the address, or address
// and port: RFC 4787 §4.1), a filtering behaviour to the part a mapping
// remembers and checks inbound packets against (nothing, the address, or
// address and port: RFC 4787 §5). A mapping remembers the remotes of its
// live flows, and up to Rule.MaxIdleRemotes more whose flows have ended,
// while it lives.
//
// # Ports
//
// External ports are chosen per external address and protocol, and one
// port is held by at most one mapping: no port overloading (RFC 4787
// REQ-3) and no port overlapping (RFC 7857 §3 allows it, this NAT does not;
// see Table.Outbound). ICMP echo identifiers are ports of protocol ICMP.
// All mappings of one internal address use one external address ("paired"
// pooling, RFC 4787 REQ-2, RFC 6888 REQ-2). When no port can be given, the
// new flow is refused with ErrQuota or ErrExhausted and nothing that
// exists is disturbed (RFC 6888 REQ-11).
//
// # Concurrency
//
// A Table is safe for concurrent use. Outbound, Acquire and Release take
// its lock for writing; they run for new and ending flows only. Inbound
// takes it for reading and allocates nothing.
package nat
