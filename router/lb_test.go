package router

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
)

// lbConfig is testConfig with a TCP service on 198.18.0.100:80 (wan0's
// link) over backends on the LAN, round robin, without health checks.
func lbConfig(method string, backends ...string) *config.Config {
	cfg := testConfig()
	svc := config.Service{
		Name: "web", VIP: netip.MustParseAddrPort("198.18.0.100:80"), Proto: uint8(header.TCPProtocolNumber),
		Scheduler: "rr", Forward: method, Health: config.Health{Check: config.CheckNone, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 1},
	}
	for _, b := range backends {
		svc.Backends = append(svc.Backends, config.Backend{Address: netip.MustParseAddrPort(b), Weight: 1})
	}
	cfg.Service = []config.Service{svc}
	return cfg
}

// tcpOf splits an IPv4 TCP packet into its endpoints and flags.
func tcpOf(t *testing.T, pkt []byte) (src, dst netip.AddrPort, flags header.TCPFlags) {
	t.Helper()
	ip := header.IPv4(pkt)
	if !ip.IsValid(len(pkt)) || ip.Protocol() != uint8(header.TCPProtocolNumber) || !ip.IsChecksumValid() {
		t.Fatalf("not a valid IPv4 TCP packet: % x", pkt[:min(len(pkt), 40)])
	}
	tcp := header.TCP(ip.Payload())
	s, d := netip.AddrFrom4(ip.SourceAddress().As4()), netip.AddrFrom4(ip.DestinationAddress().As4())
	return netip.AddrPortFrom(s, tcp.SourcePort()), netip.AddrPortFrom(d, tcp.DestinationPort()), tcp.Flags()
}

// TestServiceNAT: new flows to the VIP alternate between the backends
// (rr), reach them at their own port, and replies leave from the VIP; a
// drained backend gets no new flow; tungate lb counts it all.
func TestServiceNAT(t *testing.T) {
	tr := startRouter(t, lbConfig(config.ForwardNAT, "192.168.46.11:8080", "192.168.46.12:8080"), nil)
	var got []string
	for port := uint16(1000); port < 1004; port++ {
		tr.devs["wan0"].Inject(syn4("198.18.0.1", port, "198.18.0.100", 80))
		_, dst, _ := tcpOf(t, tr.expect(t, "lan0"))
		got = append(got, dst.String())
	}
	want := []string{"192.168.46.11:8080", "192.168.46.12:8080", "192.168.46.11:8080", "192.168.46.12:8080"}
	if !slices.Equal(got, want) {
		t.Errorf("flows went to %v, want %v", got, want)
	}
	tr.devs["lan0"].Inject(tcp4("192.168.46.11", 8080, "198.18.0.1", 1000, header.TCPFlagSyn|header.TCPFlagAck, 9, 2))
	if src, dst, _ := tcpOf(t, tr.expect(t, "wan0")); src.String() != "198.18.0.100:80" || dst.String() != "198.18.0.1:1000" {
		t.Errorf("reply %s -> %s, want from the VIP 198.18.0.100:80 to 198.18.0.1:1000", src, dst)
	}

	if err := tr.SetWeight("web", netip.MustParseAddrPort("192.168.46.11:8080"), 0); err != nil {
		t.Fatal(err)
	}
	for port := uint16(2000); port < 2003; port++ {
		tr.devs["wan0"].Inject(syn4("198.18.0.1", port, "198.18.0.100", 80))
		if _, dst, _ := tcpOf(t, tr.expect(t, "lan0")); dst.String() != "192.168.46.12:8080" {
			t.Errorf("a new flow went to drained %s", dst)
		}
	}
	// The drained backend's flow goes on.
	tr.devs["wan0"].Inject(tcp4("198.18.0.1", 1000, "198.18.0.100", 80, header.TCPFlagAck, 2, 10))
	if _, dst, _ := tcpOf(t, tr.expect(t, "lan0")); dst.String() != "192.168.46.11:8080" {
		t.Errorf("the drained backend's flow went to %s", dst)
	}

	svcs := tr.Services()
	if len(svcs) != 1 || len(svcs[0].Backends) != 2 {
		t.Fatalf("Services() = %+v", svcs)
	}
	b11, b12 := svcs[0].Backends[0], svcs[0].Backends[1]
	if b11.Weight != 0 || b11.Conns != 2 || b12.Conns != 5 || svcs[0].Conns != 7 {
		t.Errorf("weights/conns: .11 %d/%d, .12 %d/%d, service %d; want 0/2, 1/5, 7", b11.Weight, b11.Conns, b12.Weight, b12.Conns, svcs[0].Conns)
	}
	// Port 1000's flow saw SYN, SYN-ACK and ACK: established, active.
	if b11.InPkts != 3 || b11.OutPkts != 1 || b11.ActiveConn != 1 || b11.InActConn != 1 || b11.Health != "-" {
		t.Errorf(".11: %+v; want 3 packets in, 1 out, 1 active and 1 inactive flow, no health checks", b11)
	}
}

// TestServicePersistence: within the persistence window a client's new
// flows go to the backend its first one got, whatever rr would say.
func TestServicePersistence(t *testing.T) {
	cfg := lbConfig(config.ForwardNAT, "192.168.46.11:8080", "192.168.46.12:8080")
	cfg.Service[0].Persistence = time.Minute
	tr := startRouter(t, cfg, nil)
	for _, client := range []string{"198.18.0.1", "198.18.0.2"} {
		var first netip.AddrPort
		for port := uint16(1000); port < 1003; port++ {
			tr.devs["wan0"].Inject(syn4(client, port, "198.18.0.100", 80))
			_, dst, _ := tcpOf(t, tr.expect(t, "lan0"))
			if port == 1000 {
				first = dst
			} else if dst != first {
				t.Errorf("client %s: flow from port %d went to %s, its first to %s", client, port, dst, first)
			}
		}
	}
}

// TestServiceBackendRemovedByReload: the open flow of a backend that a
// reload removes ends with a reset to the client, not a blackhole.
func TestServiceBackendRemovedByReload(t *testing.T) {
	tr := startRouter(t, lbConfig(config.ForwardNAT, "192.168.46.11:8080", "192.168.46.12:8080"), nil)
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 1000, "198.18.0.100", 80))
	tr.expect(t, "lan0")
	if err := tr.Reload(lbConfig(config.ForwardNAT, "192.168.46.12:8080")); err != nil {
		t.Fatal(err)
	}
	tr.devs["wan0"].Inject(tcp4("198.18.0.1", 1000, "198.18.0.100", 80, header.TCPFlagAck, 2, 10))
	src, dst, flags := tcpOf(t, tr.expect(t, "wan0"))
	if src.String() != "198.18.0.100:80" || dst.String() != "198.18.0.1:1000" || flags != header.TCPFlagRst {
		t.Errorf("got %s -> %s flags %v, want a RST from the VIP to the client", src, dst, flags)
	}
	if n := tr.Stats().Drops["lb_backend_gone"]; n != 1 {
		t.Errorf("lb_backend_gone = %d, want 1", n)
	}
	// The client's next SYN is a new flow, to the backend that is left.
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 1000, "198.18.0.100", 80))
	if _, dst, _ := tcpOf(t, tr.expect(t, "lan0")); dst.String() != "192.168.46.12:8080" {
		t.Errorf("new flow to %s", dst)
	}
}

// TestServiceTunnel: a tunnel service wraps the packet, untouched, in an
// IPv4 header from the router's LAN address to the backend (RFC 2003), and
// refuses a DF packet that would not fit then with Fragmentation Needed
// for 20 bytes less.
func TestServiceTunnel(t *testing.T) {
	tr := startRouter(t, lbConfig(config.ForwardTunnel, "192.168.46.11:80"), nil)
	syn := syn4("198.18.0.1", 1000, "198.18.0.100", 80)
	tr.devs["wan0"].Inject(syn)
	outer := header.IPv4(tr.expect(t, "lan0"))
	if !outer.IsChecksumValid() || outer.Protocol() != 4 || outer.SourceAddress().String() != "192.168.46.1" ||
		outer.DestinationAddress().String() != "192.168.46.11" || int(outer.TotalLength()) != len(syn)+20 {
		t.Fatalf("outer header %s -> %s proto %d length %d", outer.SourceAddress(), outer.DestinationAddress(), outer.Protocol(), outer.TotalLength())
	}
	if inner := outer.Payload(); string(inner[header.IPv4MinimumSize:]) != string(syn[header.IPv4MinimumSize:]) ||
		header.IPv4(inner).DestinationAddress().String() != "198.18.0.100" {
		t.Errorf("inner packet changed: % x", inner[:40])
	}

	big := udp4{src: "198.18.0.1", dst: "198.18.0.100", ttl: 64, payload: 1500 - 28, dontFrag: true, sport: 1, dpt: 80}.bytes()
	tcpOnly := lbConfig(config.ForwardTunnel, "192.168.46.11:80")
	tcpOnly.Service[0].Proto = uint8(header.UDPProtocolNumber)
	if err := tr.Reload(tcpOnly); err != nil {
		t.Fatal(err)
	}
	tr.devs["wan0"].Inject(big)
	icmp := icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4DstUnreachable, header.ICMPv4FragmentationNeeded)
	if mtu := icmp.MTU(); mtu != 1480 {
		t.Errorf("Fragmentation Needed for MTU %d, want 1480 (1500 less the outer header)", mtu)
	}
}

// TestServiceWithoutBackendsRefuses: no backend may take a flow, so the
// client hears Port Unreachable at once, as from a closed port.
func TestServiceWithoutBackendsRefuses(t *testing.T) {
	tr := startRouter(t, lbConfig(config.ForwardNAT), nil)
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 1000, "198.18.0.100", 80))
	icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable)
	if n := tr.Stats().Drops["lb_no_backend"]; n != 1 {
		t.Errorf("lb_no_backend = %d, want 1", n)
	}
}

// TestServiceTunnelBehindTheFilter: the filter judges a tunnel service's
// packets as the client sent them; the ttl stage wraps them after.
func TestServiceTunnelBehindTheFilter(t *testing.T) {
	cfg := lbConfig(config.ForwardTunnel, "192.168.46.11:80")
	cfg.Pipeline.Stages = []string{"validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"}
	cfg.Filter = config.Filter{Policy: config.FilterDrop, Rules: []config.FilterRule{
		{In: "wan0", Proto: int(header.TCPProtocolNumber), DPorts: config.PortSet{{Lo: 80, Hi: 80}}, Action: config.FilterAccept},
	}}
	tr := startRouter(t, cfg, nil)
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 1000, "198.18.0.100", 80))
	if outer := header.IPv4(tr.expect(t, "lan0")); outer.Protocol() != 4 || outer.TTL() != 63 {
		t.Errorf("want the SYN wrapped in IP-in-IP (TTL 63 after the hop), got protocol %d TTL %d", outer.Protocol(), outer.TTL())
	}
	if st := tr.Stats().Filter; st[1].Packets != 1 {
		t.Errorf("the accept rule matched %d packets, want 1", st[1].Packets)
	}
}
