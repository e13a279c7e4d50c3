package router

import (
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// RFC 5382 REQ-4: "A NAT MUST NOT respond to an unsolicited inbound SYN
// packet for at least 6 seconds after the packet is received. If during
// this interval the NAT receives and translates an outbound SYN for the
// connection the NAT MUST silently drop the original unsolicited inbound
// SYN packet. Otherwise, the NAT SHOULD send an ICMP Port Unreachable
// error (Type 3, Code 3) for the original SYN, unless REQ-4a applies."
const (
	synHoldTime = 6 * time.Second
	maxHeldSYNs = 1024 // a SYN flood holds no more than this many copies
)

// synHold keeps copies of unsolicited inbound SYNs until they may be
// answered, in arrival order.
type synHold struct {
	mu   sync.Mutex
	held []heldSYN
}

type heldSYN struct {
	until time.Time
	pkt   []byte
	in    int
}

// isSYN reports whether p opens a TCP connection: SYN without ACK.
func isSYN(p *packet.Packet) bool {
	return p.Proto == uint8(header.TCPProtocolNumber) && p.HasPorts &&
		header.TCPFlags(p.TCPFlags)&(header.TCPFlagSyn|header.TCPFlagAck) == header.TCPFlagSyn
}

// hold keeps a copy of the unsolicited SYN p, if there is room.
func (h *synHold) hold(p *packet.Packet, now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.held) < maxHeldSYNs {
		h.held = append(h.held, heldSYN{now.Add(synHoldTime), append([]byte(nil), p.Data()...), p.In})
	}
}

// due takes the SYNs whose hold is over.
func (h *synHold) due(now time.Time) []heldSYN {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for n < len(h.held) && !now.Before(h.held[n].until) {
		n++
	}
	out := h.held[:n:n]
	h.held = h.held[n:]
	return out
}

// answerHeldSYNs answers each SYN held for 6 s with ICMP Port
// Unreachable, unless the inside host opened the connection meanwhile:
// then the flow exists and the SYN is dropped silently.
func (r *Router) answerHeldSYNs() {
	s := r.snap.Load()
	for _, h := range r.syns.due(r.now()) {
		buf := make([]byte, Headroom+max(len(h.pkt), header.IPv6MinimumMTU))
		copy(buf[Headroom:], h.pkt)
		p := &packet.Packet{Buf: buf, Start: Headroom, Len: len(h.pkt), In: h.in, Out: packet.NoInterface}
		if p.Parse() != packet.ReasonNone {
			continue
		}
		if f, _ := r.ct.Lookup(conntrack.KeyOf(p)); f != nil {
			continue
		}
		if r.answer(s, p, icmperr.PortUnreachable, 0, packet.ReasonNATFiltered).IsReply() {
			r.origin.Inject(p.Data())
		}
	}
}
