// Package conntrack is the flow table: the one place where the router,
// the NAT, the load balancer and the filter keep what they decided about
// a conversation, so that its later packets, in either direction, are
// handled with one lookup. Those layers sit above this package and never
// import each other; it knows none of them.
//
// # Orig and Reply
//
// A Flow has two keys, each one direction as packets carry it on the
// wire. Orig is the key of the packet that made the flow, as it arrived,
// before any translation. Reply is the key its replies arrive with,
// before they are translated back. Without translation Reply is
// Orig.Reverse(); a NAT makes them differ, and the difference is the
// translation:
//
//	inside host 192.168.1.10:40000 talks to 198.51.100.7:443 through
//	a masquerade to 203.0.113.1:61000
//
//	Orig   tcp 192.168.1.10:40000 -> 198.51.100.7:443
//	Reply  tcp 198.51.100.7:443 -> 203.0.113.1:61000
//
// A packet found by its Orig key leaves as Reply.Reverse(); one found by
// its Reply key leaves as Orig.Reverse(). Lookup finds a flow by either
// key and says which (Dir). No two flows share a key.
//
// # Who writes what
//
//   - The keys and the Owner are set once, by whoever makes the flow
//     (the NAT, the load balancer, the router for untranslated flows),
//     through Insert. They never change, so anyone may read them.
//   - The live state (last seen, TCP state, counters) is changed by Seen
//     only, from the goroutine handling a packet, without a lock; a
//     packet touches its own flow and nothing shared.
//   - Flow.Cache is the router's alone: its per-direction fast-path
//     decision. Conntrack neither reads nor clears it.
//   - A flow leaves the table by Delete (its maker, or an administrator),
//     Flush, or expiry; then its Owner's Released runs, once. Expiry is
//     exact for lookups (a flow past its timeout is not found) and lazy
//     for memory: Expire, which the router calls periodically with a
//     budget, reaps expired flows a bounded number at a time.
//
// # Timeouts and TCP
//
// The idle timeout of a flow depends on its protocol and, for TCP, on its
// state (RFC 5382 REQ-5, RFC 7857 §2): a transitory timeout while opening
// (no SYN from both sides yet) and while closing (a FIN from both sides,
// or a RST), the established timeout otherwise, half-closed flows
// included. The states are those of RFC 7857's Figure 1, which adapts
// RFC 6146 §3.5.2; State lists them with the timeout each selects. Every
// packet renews the timer, in either direction, except where RFC 6146
// says otherwise (see Seen). Time comes from the clock given to New, and
// nothing in this package sleeps.
//
// # Memory
//
// A flow is 160 bytes (its keys in a compact form, without netip.Addr's
// zone pointer) plus its two index entries: 8-byte pointers with a
// control byte, in an index between 7/16 and 7/8 full, about 30 bytes a
// flow; 192 bytes in all at a million flows (TestMemoryPerFlow). The
// bound Config.Max is never exceeded, and no live flow is ever evicted
// to make room (RFC 6888 REQ-11).
package conntrack
