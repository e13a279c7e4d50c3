package neigh

import (
	"net/netip"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// checkARP parses b with gVisor's header and checks every field.
func checkARP(t *testing.T, b []byte, op header.ARPOp, smac MAC, sip netip.Addr, tmac MAC, tip netip.Addr) {
	t.Helper()
	h := header.ARP(b)
	if len(b) != header.ARPSize || !h.IsValid() {
		t.Fatalf("invalid ARP packet %x", b)
	}
	if h.Op() != op || MAC(h.HardwareAddressSender()) != smac || MAC(h.HardwareAddressTarget()) != tmac ||
		netip.AddrFrom4([4]byte(h.ProtocolAddressSender())) != sip || netip.AddrFrom4([4]byte(h.ProtocolAddressTarget())) != tip {
		t.Fatalf("ARP op %d %x %v → %x %v, want op %d %v %v → %v %v", h.Op(),
			h.HardwareAddressSender(), h.ProtocolAddressSender(), h.HardwareAddressTarget(), h.ProtocolAddressTarget(),
			op, smac, sip, tmac, tip)
	}
}

// TestARPRequestForUs: answered per RFC 826, and the sender is learned
// STALE (heard of, not confirmed).
func TestARPRequestForUs(t *testing.T) {
	e := newEnv(t, Config{})
	out := make([]byte, header.ARPSize)
	r := e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4), out)
	if r.Dst != hostMAC {
		t.Fatalf("reply to %v, want %v", r.Dst, hostMAC)
	}
	checkARP(t, out[:r.N], header.ARPReply, routerMAC, routerIP4, hostMAC, hostIP4)
	e.want(hostIP4, Stale, hostMAC)
}

// TestARPMergeRule: RFC 826 updates an entry it has whatever the target,
// and adds one only when the target is us.
func TestARPMergeRule(t *testing.T) {
	e := newEnv(t, Config{})
	out := make([]byte, header.ARPSize)
	// A request for someone else from an unknown sender: nothing.
	if r := e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, otherIP4), out); r.N != 0 {
		t.Fatal("answered a request for someone else")
	}
	e.want(hostIP4, 0, MAC{})
	// Known sender, new MAC, request for someone else: merged.
	e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4), out)
	reachableNow(e)
	e.c.HandleARP(lan, arpFrom(header.ARPRequest, otherMAC, hostIP4, MAC{}, otherIP4), out)
	e.want(hostIP4, Stale, otherMAC)
	// A gratuitous ARP (sender = target) updates too.
	e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, hostIP4), out)
	e.want(hostIP4, Stale, hostMAC)
	// Same MAC again: nothing to change.
	e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, hostIP4, Broadcast, hostIP4), out)
	e.want(hostIP4, Stale, hostMAC)
}

// reachableNow confirms hostIP4 with a reply to our request.
func reachableNow(e *env) {
	e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, hostIP4, routerMAC, routerIP4), make([]byte, header.ARPSize))
	e.want(hostIP4, Reachable, hostMAC)
}

// TestARPResolution: a request goes out, the reply resolves the queue.
func TestARPResolution(t *testing.T) {
	e := newEnv(t, Config{})
	e.c.Enqueue(1, hostIP4, pkt("p1"))
	e.wantCalls(solicit(hostIP4, MAC{}))

	out := make([]byte, 64)
	r := BuildARPRequest(out, routerMAC, routerIP4, hostIP4, MAC{})
	if r.Dst != Broadcast {
		t.Fatalf("request to %v", r.Dst)
	}
	checkARP(t, out[:r.N], header.ARPRequest, routerMAC, routerIP4, MAC{}, hostIP4)
	r = BuildARPRequest(out, routerMAC, routerIP4, hostIP4, hostMAC)
	if r.Dst != hostMAC || r.N != header.ARPSize {
		t.Fatalf("unicast probe to %v, %d bytes", r.Dst, r.N)
	}

	// What a host sends back: it answers us.
	if r := e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, hostIP4, routerMAC, routerIP4), out); r.N != 0 {
		t.Fatal("answered a reply")
	}
	e.want(hostIP4, Reachable, hostMAC)
	e.wantCalls(flush(hostMAC, pkt("p1")))
}

// TestARPUnsolicitedReply: a reply we did not ask for, addressed to us,
// adds the sender (RFC 826) but proves nothing: STALE.
func TestARPUnsolicitedReply(t *testing.T) {
	e := newEnv(t, Config{})
	e.c.HandleARP(lan, arpFrom(header.ARPReply, hostMAC, hostIP4, routerMAC, routerIP4), make([]byte, header.ARPSize))
	e.want(hostIP4, Stale, hostMAC)
}

// TestARPProbe: an RFC 5227 probe for our address is answered (we defend
// it) and teaches nothing.
func TestARPProbe(t *testing.T) {
	e := newEnv(t, Config{})
	out := make([]byte, header.ARPSize)
	r := e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, netip.IPv4Unspecified(), MAC{}, routerIP4), out)
	checkARP(t, out[:r.N], header.ARPReply, routerMAC, routerIP4, hostMAC, netip.IPv4Unspecified())
	if len(e.c.Entries()) != 0 {
		t.Fatalf("learned from a probe: %+v", e.c.Entries())
	}
}

func TestGratuitousARP(t *testing.T) {
	out := make([]byte, header.ARPSize)
	r := BuildGratuitousARP(out, routerMAC, routerIP4)
	if r.Dst != Broadcast {
		t.Fatalf("to %v", r.Dst)
	}
	checkARP(t, out[:r.N], header.ARPRequest, routerMAC, routerIP4, MAC{}, routerIP4)
}

// TestARPIgnored: what must not be learned or answered.
func TestARPIgnored(t *testing.T) {
	tests := []struct {
		name    string
		pkt     []byte
		invalid bool
	}{
		{"truncated", arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4)[:27], true},
		{"bad opcode", arpFrom(3, hostMAC, hostIP4, MAC{}, routerIP4), true},
		{"broadcast sender MAC", arpFrom(header.ARPRequest, Broadcast, hostIP4, MAC{}, routerIP4), true},
		{"multicast sender MAC", arpFrom(header.ARPRequest, MAC{0x01, 0, 0x5e, 0, 0, 1}, hostIP4, MAC{}, routerIP4), true},
		{"zero sender MAC", arpFrom(header.ARPRequest, MAC{}, hostIP4, MAC{}, routerIP4), true},
		{"looped back", arpFrom(header.ARPRequest, routerMAC, routerIP4, MAC{}, routerIP4), false},
		{"claims our address", arpFrom(header.ARPReply, hostMAC, routerIP4, routerMAC, routerIP4), false},
		{"multicast sender IP", arpFrom(header.ARPRequest, hostMAC, netip.MustParseAddr("224.0.0.1"), MAC{}, routerIP4), true},
		{"broadcast sender IP", arpFrom(header.ARPRequest, hostMAC, limitedBroadcast, MAC{}, routerIP4), true},
		{"loopback sender IP", arpFrom(header.ARPRequest, hostMAC, netip.MustParseAddr("127.0.0.1"), MAC{}, routerIP4), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, Config{})
			out := make([]byte, header.ARPSize)
			if r := e.c.HandleARP(lan, tt.pkt, out); r.N != 0 {
				t.Fatalf("answered: %+v", r)
			}
			if n := len(e.c.Entries()); n != 0 {
				t.Fatalf("learned %+v", e.c.Entries())
			}
			if got := e.c.Stats().Invalid; got != map[bool]uint64{true: 1}[tt.invalid] {
				t.Fatalf("Invalid = %d", got)
			}
		})
	}
}

// TestARPWrongHardware: only Ethernet/IPv4 ARP is ARP to us.
func TestARPWrongHardware(t *testing.T) {
	e := newEnv(t, Config{})
	b := arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4)
	b[1] = 6 // IEEE 802 hardware type, not Ethernet: corrupt ar$hrd on purpose
	if r := e.c.HandleARP(lan, b, make([]byte, header.ARPSize)); r.N != 0 || e.c.Stats().Invalid != 1 {
		t.Fatalf("accepted hardware type 6: %+v", r)
	}
}

func TestARPShortBuffer(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.c.HandleARP(lan, arpFrom(header.ARPRequest, hostMAC, hostIP4, MAC{}, routerIP4), make([]byte, 10))
	if r.N != 0 {
		t.Fatalf("wrote %d bytes into 10", r.N)
	}
	if r := BuildARPRequest(make([]byte, 10), routerMAC, routerIP4, hostIP4, MAC{}); r.N != 0 {
		t.Fatal("wrote into a short buffer")
	}
	if r := BuildARPRequest(make([]byte, 64), routerMAC, routerIP6, hostIP6, MAC{}); r.N != 0 {
		t.Fatal("wrote an ARP request for IPv6")
	}
}
