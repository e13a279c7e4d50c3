package conntrack

import (
	"testing"
	"time"
)

const (
	syn    = tcpSYN
	synack = tcpSYN | tcpACK
	ack    = tcpACK
	finack = tcpFIN | tcpACK
	rst    = tcpRST
	rstack = tcpRST | tcpACK
	psh    = tcpACK | 0x08
)

// The TCP timeouts of these tests differ from each other, so that each
// step shows which one applies.
var tcpConfig = Config{
	TCPEstablished: 2*time.Hour + 4*time.Minute,
	TCPOpening:     4 * time.Minute,
	TCPClosing:     5 * time.Minute,
}

const (
	est     = 2*time.Hour + 4*time.Minute
	opening = 4 * time.Minute
	closing = 5 * time.Minute
)

// step is one packet: after wait, in dir, with flags; then the flow is
// in state and expires in expires.
type step struct {
	wait    time.Duration
	dir     Dir
	flags   uint8
	state   State
	expires time.Duration
}

func TestTCPStates(t *testing.T) {
	o, r := Original, Reply
	for _, tc := range []struct {
		name  string
		steps []step
	}{{
		name: "three-way handshake, data, close from the original side",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{time.Second, r, synack, Established, est},
			{0, o, ack, Established, est},
			{time.Hour, o, psh, Established, est},
			{time.Minute, o, finack, FinWait, est},
			{0, r, ack, FinWait, est},
			{time.Second, r, finack, TimeWait, closing},
			// Once a FIN went each way only the timer ends the flow
			// (RFC 6146): the last ACK does not renew it.
			{10 * time.Second, o, ack, TimeWait, closing - 10*time.Second},
		},
	}, {
		name: "close from the reply side",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, ack, Established, est},
			{0, r, finack, CloseWait, est},
			{time.Minute, o, ack, CloseWait, est},
			{time.Minute, o, finack, TimeWait, closing},
		},
	}, {
		// RFC 5382 REQ-2a: a SYN each way, no SYN+ACK before both.
		name: "simultaneous open",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{time.Second, r, syn, Established, est},
			{0, o, synack, Established, est},
			{0, r, synack, Established, est},
			{0, o, ack, Established, est},
		},
	}, {
		// The inside host answers an inbound SYN held by the NAT (RFC
		// 5382 REQ-4) with its own: the flow is made by the outbound SYN,
		// then the peer's retransmitted SYN arrives as a reply.
		name: "simultaneous open, peer SYN retransmitted",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{3 * time.Second, o, syn, SynSent, opening},
			{3 * time.Second, r, syn, Established, est},
		},
	}, {
		name: "half-close keeps the established timeout",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, finack, FinWait, est},
			// The reply side goes on sending for hours.
			{time.Hour, r, psh, FinWait, est},
			{2 * time.Hour, r, psh, FinWait, est},
			{time.Second, r, finack, TimeWait, closing},
		},
	}, {
		name: "FIN both ways at once",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, finack, FinWait, est},
			{0, r, finack, TimeWait, closing},
			{time.Minute, o, finack, TimeWait, closing - time.Minute},
			{time.Minute, r, ack, TimeWait, closing - 2*time.Minute},
		},
	}, {
		// RFC 7857 §2.2: keep the session 4 minutes after a RST.
		name: "RST on an established flow",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, ack, Established, est},
			{time.Minute, r, rst, Closed, closing},
			// A second RST does not renew the wait.
			{time.Minute, o, rstack, Closed, closing - time.Minute},
		},
	}, {
		// RFC 6146 TRANS: a packet other than RST takes the session back
		// to ESTABLISHED (the RST was not accepted by the endpoint).
		name: "packet after a RST",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, r, rst, Closed, closing},
			{time.Minute, o, psh, Established, est},
		},
	}, {
		name: "RST answering a SYN, then a new attempt",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, rstack, Closed, closing},
			{time.Second, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
		},
	}, {
		name: "new connection on the 5-tuple of a closed one",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, finack, FinWait, est},
			{0, r, finack, TimeWait, closing},
			{time.Minute, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
		},
	}, {
		name: "SYN+ACK on a closed flow does not reopen it",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, synack, Established, est},
			{0, o, finack, FinWait, est},
			{0, r, finack, TimeWait, closing},
			{time.Minute, r, synack, TimeWait, closing - time.Minute},
		},
	}, {
		name: "picked up in the middle",
		steps: []step{
			{0, o, psh, None, opening},
			{time.Second, o, psh, None, opening},
			{0, r, ack, Established, est},
		},
	}, {
		name: "SYN from the reply side first",
		steps: []step{
			{0, r, syn, SynRecv, opening},
			{0, o, synack, Established, est},
		},
	}, {
		name: "SYN answered by plain ACKs stays opening",
		steps: []step{
			{0, o, syn, SynSent, opening},
			{0, r, ack, SynSent, opening},
			{time.Minute, o, ack, SynSent, opening},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tab, clk := newTable(t, tcpConfig)
			orig, reply := natKeys(protoTCP, 40000)
			f := mustInsert(t, tab, orig, reply, nil)
			if got := f.State(); got != None {
				t.Fatalf("new flow: state %v, want NONE", got)
			}
			for i, s := range tc.steps {
				clk.advance(s.wait)
				k := orig
				if s.dir == Reply {
					k = reply
				}
				tab.Seen(f, s.dir, pkt(k, s.flags))
				info := tab.Info(f)
				if info.State != s.state || info.Expires != s.expires {
					t.Fatalf("step %d (%v %#02x): %v, expires in %v; want %v, %v", i, s.dir, s.flags, info.State, info.Expires, s.state, s.expires)
				}
			}
		})
	}
}

// The timeout that a state selects is the one the flow expires by.
func TestTCPExpiryFollowsState(t *testing.T) {
	tab, clk := newTable(t, Config{})
	orig, reply := natKeys(protoTCP, 40000)
	f := mustInsert(t, tab, orig, reply, nil)
	tab.Seen(f, Original, pkt(orig, syn))
	tab.Seen(f, Reply, pkt(reply, synack))

	// RFC 5382 REQ-5: established idle timeout at least 2 h 4 min.
	clk.advance(DefaultTCPEstablished - time.Second)
	if g, _ := tab.Lookup(orig); g != f {
		t.Fatal("established flow gone before 2h4m")
	}
	tab.Seen(f, Reply, pkt(reply, rst))
	clk.advance(DefaultTCPClosing - time.Second)
	if g, _ := tab.Lookup(reply); g != f {
		t.Fatal("flow gone less than 4 minutes after a RST")
	}
	clk.advance(time.Second)
	if g, _ := tab.Lookup(reply); g != nil {
		t.Fatal("flow still there 4 minutes after a RST")
	}
}
