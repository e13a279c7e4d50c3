package e2e

import (
	"net/netip"
	"regexp"
	"testing"
	"time"
)

// TestNATPMPClientOpensAPort: natpmpc, a real NAT-PMP client, asks
// tungate for a mapping (RFC 6888 REQ-9, C9), learns the public address,
// and a WAN host's datagram to the mapped port reaches the LAN host under
// the strictest filtering, which without the mapping keeps it out. A
// lifetime of 0 takes the mapping away again.
func TestNATPMPClientOpensAPort(t *testing.T) {
	t.Parallel()
	topo := New(t)
	r := topo.Router(natConfig("filtering = \"address-and-port-dependent\"\npcp = true\n"))
	lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
	wan := topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")
	inside := udpListen(t, lan.Netns, "192.168.46.2:6000")
	outside := udpListen(t, wan.Netns, "198.18.0.1:9999")
	knock := func() bool {
		t.Helper()
		if _, err := outside.WriteToUDPAddrPort([]byte("knock"), netip.AddrPortFrom(natWAN, 7000)); err != nil {
			t.Fatal(err)
		}
		msg, _, err := udpRecv(inside, 500*time.Millisecond)
		return err == nil && msg == "knock"
	}
	if knock() {
		t.Fatal("a WAN host got in before any mapping")
	}

	out := lan.Run(t, "natpmpc", "-g", "192.168.46.1", "-a", "7000", "6000", "udp", "60")
	if !regexp.MustCompile(`Public IP address : 198\.18\.0\.8\b`).MatchString(out) ||
		// natpmpc prints "liftime" in some versions.
		!regexp.MustCompile(`Mapped public port 7000 protocol UDP to local port 6000 li\w*time 60`).MatchString(out) {
		t.Fatalf("natpmpc output:\n%s", out)
	}
	if !knock() {
		t.Error("the WAN host's datagram to the mapped port did not reach the LAN host")
	}

	lan.Run(t, "natpmpc", "-g", "192.168.46.1", "-a", "7000", "6000", "udp", "0")
	// The knock above made a flow, which keeps the mapping while it lives;
	// a stranger's datagram is filtered again.
	stranger := udpListen(t, wan.Netns, "198.18.0.1:9998")
	if _, err := stranger.WriteToUDPAddrPort([]byte("knock"), netip.AddrPortFrom(natWAN, 7000)); err != nil {
		t.Fatal(err)
	}
	if msg, _, err := udpRecv(inside, 500*time.Millisecond); err == nil {
		t.Errorf("after the mapping was deleted a new remote still got in (%q)", msg)
	}
}
