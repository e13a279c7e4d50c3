// Package neigh is the router's neighbor cache: the link-layer address of
// each next hop on an Ethernet (TAP) interface, found by ARP for IPv4
// (RFC 826) and Neighbor Discovery for IPv6 (RFC 4861), in one table.
//
// The way of a packet to a neighbor:
//
//	route stage          gives the egress interface and the next-hop IP
//	neighbor stage       Cache.Resolve: the MAC, or false
//	  unresolved         Cache.Enqueue: the packet is copied into the
//	                     entry's bounded queue; a new entry is INCOMPLETE
//	                     and Sender.Solicit sends the first ARP request or
//	                     Neighbor Solicitation at once
//	link layer (TAP)     hands received ARP to Cache.HandleARP and NDP to
//	                     Cache.HandleNDP; they learn, and answer requests
//	                     for the router's own addresses
//	  resolved           Sender.Flush sends the queue, in order
//	Cache.Tick           every ~100 ms on the injected clock: retransmits,
//	                     ages REACHABLE to STALE, probes DELAY entries,
//	                     gives up with Sender.Fail (the router answers each
//	                     queued packet with ICMP Host/Address Unreachable)
//
// Entries follow the Neighbor Unreachability Detection states of RFC 4861
// §7.3 for both families; ARP merely has no flags, so what an ARP packet
// says is mapped onto the same rules (see HandleARP). Static entries are
// PERMANENT.
//
// The Build functions write the messages the router originates: ARP
// requests and announcements, Neighbor Solicitations and Advertisements,
// Router Advertisements. Every header is read and written with gVisor's
// pkg/tcpip/header; the IPv6 ones come out complete, checksummed, for the
// caller to put in an Ethernet frame to Msg.Dst.
package neigh
