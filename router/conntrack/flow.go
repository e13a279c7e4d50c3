package conntrack

import (
	"strconv"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Dir is the direction of a packet within its flow.
type Dir uint8

const (
	Original Dir = iota // the direction of the packet that made the flow
	Reply               // the other one
)

func (d Dir) String() string {
	if d == Reply {
		return "reply"
	}
	return "original"
}

// Owner is told when a flow leaves the table, so that whoever made it can
// give back what the flow held: the NAT its port mapping, the load
// balancer its connection count. Released is called exactly once per
// flow, with no lock of the table held: by Delete and Flush on their
// caller's goroutine, and by Expire for flows that expired. Insert, which
// may reclaim an expired flow holding a key it needs, leaves that call to
// the next Expire or Flush, because its own caller may hold a lock that
// Released takes.
type Owner interface {
	Released(f *Flow)
}

// Flow is one tracked conversation. Its keys never change once the table
// holds it; its live state changes under concurrent packets without a lock.
type Flow struct {
	// The keys, laid out so that what a lookup compares for one
	// direction (its addresses, ports and meta bits) spans 48 bytes.
	orig  [2]u128   // Orig.Src, Orig.Dst
	ports [2]uint32 // by Dir: SrcPort<<16 | DstPort

	// word is the flow's state in one atomic word, so that a packet
	// updates it with one compare-and-swap and the reaper judges expiry
	// from one consistent load:
	//
	//	bits  0-7   the flags below
	//	bits  8-16  Orig's protocol and family (meta of a ckey), fixed
	//	bits 17-25  Reply's, fixed
	//	bit  26     hidden
	//	bits 32-63  last seen: whole seconds since the table's epoch,
	//	            rounded up so that a flow never expires early
	word atomic.Uint64

	reply [2]u128 // Reply.Src, Reply.Dst

	packets, bytes [2]atomic.Uint64 // by Dir

	owner Owner

	// Cache is for the router: per Dir, what it decided for this flow's
	// packets in that direction (egress, next hop, the generation they
	// were decided in), so that later packets skip the stages. Conntrack
	// never reads or writes it; a new flow starts with both empty. Every
	// value stored must have the same concrete type (atomic.Value's rule);
	// store a pointer to an immutable value and replace it whole.
	Cache [2]atomic.Value
}

// Flags in the low byte of Flow.word. For a direction d, synOrig<<d is
// that direction's SYN flag, and likewise for finOrig and seenOrig.
const (
	synOrig   = 1 << iota // a SYN went in the original direction
	synReply              // a SYN went in the reply direction
	finOrig               // a FIN went in the original direction
	finReply              // a FIN went in the reply direction
	rstSeen               // the last control packet was a RST
	seenOrig              // a packet went in the original direction
	seenReply             // a packet went in the reply direction
	dead                  // removed from the table, or being removed

	tcpFlagBits = seenReply<<1 - 1 // what tcpState reads
	finBoth     = finOrig | finReply
	synBoth     = synOrig | synReply
)

const (
	metaShift = 8
	metaBits  = 9 // protocol (8) and is4 (1)
	seenShift = 32

	// hidden marks a flow that Insert is still indexing: no lookup finds
	// it until both its keys are in.
	hidden = 1 << 26
)

func newFlow(orig, reply *ckey, owner Owner, now uint64) *Flow {
	f := &Flow{
		orig:  [2]u128{orig.src, orig.dst},
		reply: [2]u128{reply.src, reply.dst},
		ports: [2]uint32{orig.ports, reply.ports},
		owner: owner,
	}
	f.word.Store(hidden | uint64(orig.meta)<<metaShift | uint64(reply.meta)<<(metaShift+metaBits) | now<<seenShift)
	return f
}

func metaOf(w uint64, d Dir) uint32 {
	return uint32(w>>(metaShift+metaBits*uint(d))) & (1<<metaBits - 1)
}

func protoOf(w uint64) uint8 { return uint8(w >> metaShift) }

func seenOf(w uint64) uint64 { return w >> seenShift }

func (f *Flow) addrs(d Dir) *[2]u128 {
	if d == Reply {
		return &f.reply
	}
	return &f.orig
}

func (f *Flow) ckey(d Dir) ckey {
	a := f.addrs(d)
	return ckey{src: a[0], dst: a[1], ports: f.ports[d], meta: metaOf(f.word.Load(), d)}
}

// matches reports whether k is f's key in direction d; w is f's word.
func (f *Flow) matches(d Dir, w uint64, k *ckey) bool {
	a := f.addrs(d)
	return a[0] == k.src && a[1] == k.dst && f.ports[d] == k.ports && metaOf(w, d) == k.meta
}

// Orig is the key of the flow's first packet, before any translation.
func (f *Flow) Orig() Key { k := f.ckey(Original); return k.key() }

// Reply is the key that replies arrive with, before any translation: for
// an untranslated flow Orig().Reverse(), for a NATed one the reverse of
// the translated original.
func (f *Flow) Reply() Key { k := f.ckey(Reply); return k.key() }

// State is the flow's state as `tungate nat` shows it.
func (f *Flow) State() State { return stateOf(f.word.Load()) }

// State names a flow's state, after Linux's `conntrack -L`. The TCP
// states are those of RFC 7857 Figure 1, whose names are in the comments
// ("client" is the original direction, "server" the reply direction).
// None, SynSent and SynRecv time out after Config.TCPOpening;
// Established, FinWait and CloseWait after TCPEstablished; TimeWait and
// Closed after TCPClosing. Other protocols are Unreplied or Assured and
// time out after their protocol's timeout either way.
type State uint8

const (
	None        State = iota // TCP, no packet yet (CLOSED)
	SynSent                  // a SYN from the original side only (CLIENT SYN RCV)
	SynRecv                  // a SYN from the reply side only (SERVER SYN RCV)
	Established              // a SYN from both sides (ESTABLISHED)
	FinWait                  // established, then a FIN from the original side (CLIENT FIN RCV)
	CloseWait                // established, then a FIN from the reply side (SERVER FIN RCV)
	TimeWait                 // a FIN from both sides (CLIENT FIN + SERVER FIN RCV)
	Closed                   // a RST (TRANS)
	Unreplied                // not TCP, nothing came back yet
	Assured                  // not TCP, packets went both ways
)

var stateNames = [...]string{
	None:        "NONE",
	SynSent:     "SYN_SENT",
	SynRecv:     "SYN_RECV",
	Established: "ESTABLISHED",
	FinWait:     "FIN_WAIT",
	CloseWait:   "CLOSE_WAIT",
	TimeWait:    "TIME_WAIT",
	Closed:      "CLOSE",
	Unreplied:   "UNREPLIED",
	Assured:     "ASSURED",
}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

func stateOf(w uint64) State {
	if protoOf(w) != protoTCP {
		if w&seenReply != 0 {
			return Assured
		}
		return Unreplied
	}
	return tcpState(w)
}

// tcpState reads the flags as RFC 7857 Figure 1 does. RFC 7857 §2: "The
// TCP state machine depicted in Figure 1, adapted from [RFC6146], SHOULD
// be implemented by a NAT for TCP session tracking purposes." A flow is established once both sides sent a SYN, which
// covers the three-way handshake (SYN, then SYN+ACK) and simultaneous
// open (a SYN each way, RFC 5382 REQ-2: "a NAT MUST handle the TCP
// simultaneous-open mode of connection initiation"). A flow made from a
// packet without SYN, picked up in the middle (after a restart, say),
// counts as established once packets went both ways and neither side has
// sent a SYN, as Linux's nf_conntrack_tcp_loose does: otherwise an idle
// long-lived connection would be dropped after the transitory timeout.
func tcpState(w uint64) State {
	switch {
	case w&rstSeen != 0:
		return Closed
	case w&finBoth == finBoth:
		return TimeWait
	case w&synBoth == synBoth || w&synBoth == 0 && w&(seenOrig|seenReply) == seenOrig|seenReply:
		switch {
		case w&finOrig != 0:
			return FinWait
		case w&finReply != 0:
			return CloseWait
		}
		return Established
	case w&synOrig != 0:
		return SynSent
	case w&synReply != 0:
		return SynRecv
	}
	return None
}

// TCP header flags (RFC 9293 §3.1).
const (
	tcpFIN = uint8(header.TCPFlagFin)
	tcpSYN = uint8(header.TCPFlagSyn)
	tcpRST = uint8(header.TCPFlagRst)
	tcpACK = uint8(header.TCPFlagAck)
)

// advance is w after a packet in direction d carrying TCP flags fl (0 for
// other protocols) at second now.
func advance(w uint64, d Dir, fl uint8, now uint64) uint64 {
	renew := true
	if protoOf(w) == protoTCP {
		w, renew = tcpAdvance(w, d, fl)
	}
	w |= seenOrig << d
	if renew && now > seenOf(w) {
		w = w&(1<<seenShift-1) | now<<seenShift
	}
	return w
}

// tcpAdvance applies one packet's flags to the TCP flags in w and says
// whether the packet renews the flow's idle timer.
func tcpAdvance(w uint64, d Dir, fl uint8) (uint64, bool) {
	closed := w&rstSeen != 0 || w&finBoth == finBoth
	switch {
	case fl&tcpRST != 0:
		// RFC 7857 §2.2: the NAT "SHOULD wait for 4 minutes before
		// deleting the session and removing any state associated with
		// it if no packets are received during that 4-minute timeout."
		// The first RST starts that wait; further RSTs do not extend it
		// (RFC 6146 TRANS state: only a packet other than a RST takes
		// the session back).
		return w | rstSeen, w&rstSeen == 0
	case fl&(tcpSYN|tcpACK) == tcpSYN && closed:
		// A new connection on the 5-tuple of one that has closed (TCP
		// allows the reuse after TIME-WAIT, RFC 9293 §3.6.1, and earlier
		// with timestamps, RFC 6191). It starts over as opening, rather
		// than running on under the old one's closing timer.
		return w&^(synBoth|finBoth|rstSeen) | synOrig<<d, true
	}
	// RFC 6146 §3.5.2.2: once a FIN has gone each way, only the timer
	// ends the session; later packets do not renew it. A packet after a
	// RST undoes the RST (TRANS back to ESTABLISHED).
	renew := w&finBoth != finBoth || w&rstSeen != 0
	w &^= rstSeen
	if fl&tcpSYN != 0 {
		w |= synOrig << d
	}
	if fl&tcpFIN != 0 {
		w |= finOrig << d
	}
	return w, renew
}

// Replied reports whether a packet went in the reply direction.
func (f *Flow) Replied() bool { return f.word.Load()&seenReply != 0 }

// Owner is what made the flow (Table.Insert's owner).
func (f *Flow) Owner() Owner { return f.owner }

// Counters are the packets and bytes the flow has seen, by Dir.
func (f *Flow) Counters() (packets, bytes [2]uint64) {
	for d := range packets {
		packets[d], bytes[d] = f.packets[d].Load(), f.bytes[d].Load()
	}
	return packets, bytes
}
