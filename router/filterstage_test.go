package router

import (
	"bytes"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
)

// gatewayConfig is natConfig behind a home gateway's filter: rules, then
// the one that drops new and invalid packets from the WAN.
func gatewayConfig(action string, rules ...config.FilterRule) *config.Config {
	cfg := natConfig(config.EndpointIndependent)
	cfg.Pipeline.Stages = []string{"validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"}
	cfg.Filter = config.Filter{Policy: config.FilterAccept, Rules: append(rules, config.FilterRule{
		In: "wan0", Proto: -1, States: []string{"new", "invalid"}, Action: action,
	})}
	return cfg
}

func filterStats(t *testing.T, tr *testRouter) []FilterRuleStats {
	t.Helper()
	return tr.Stats().Filter
}

// TestFilterHomeGateway: the LAN goes out and its answers come back
// (established); the WAN cannot open a connection to a LAN address (new),
// nor send a segment of no connection (invalid); an ICMP error about a
// LAN flow comes in (related). The counters say which rule did what, the
// fast stage's packets included.
func TestFilterHomeGateway(t *testing.T) {
	tr := startRouter(t, gatewayConfig(config.FilterDrop), nil)
	out := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}
	reply := udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}
	for range 3 {
		tr.devs["lan0"].Inject(out.bytes())
		tr.expect(t, "wan0")
		tr.devs["wan0"].Inject(reply.bytes())
		tr.expect(t, "lan0")
	}
	// New, and invalid, from the WAN.
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 4000, "192.168.46.2", 22))
	tr.devs["wan0"].Inject(tcp4("198.18.0.1", 4000, "192.168.46.2", 22, header.TCPFlagAck, 5, 5))
	tr.expectNone(t, "lan0")
	// Related: a router beyond reports the LAN flow's packet expired.
	quote := udp4{src: "198.18.0.8", dst: "198.18.0.1", ttl: 1, payload: 8, sport: 5000, dpt: 53}.bytes()
	tr.devs["wan0"].Inject(icmpError4("198.18.0.1", "198.18.0.8", header.ICMPv4TimeExceeded, 0, quote))
	if in := header.IPv4(tr.expect(t, "lan0")); in.Protocol() != uint8(header.ICMPv4ProtocolNumber) {
		t.Errorf("the related ICMP error did not come in: %v", in.Protocol())
	}

	st := filterStats(t, tr)
	if len(st) != 2 {
		t.Fatalf("filter stats %+v", st)
	}
	// Policy: 3 out, 3 replies (established), the related error.
	if st[0].Packets != 7 || st[1].Packets != 2 || tr.Stats().Drops["filtered"] != 2 {
		t.Errorf("policy matched %d packets (want 7), the drop rule %d (want 2), filtered drops %d", st[0].Packets, st[1].Packets, tr.Stats().Drops["filtered"])
	}
}

// TestFilterReject: reject refuses a new TCP connection from the WAN with
// a reset, and anything else with ICMP 3/13.
func TestFilterReject(t *testing.T) {
	tr := startRouter(t, gatewayConfig(config.FilterReject), nil)
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 4000, "192.168.46.2", 22))
	src, dst, flags := tcpOf(t, tr.expect(t, "wan0"))
	if src.String() != "192.168.46.2:22" || dst.String() != "198.18.0.1:4000" || flags != header.TCPFlagRst|header.TCPFlagAck {
		t.Errorf("got %s -> %s %v, want a RST/ACK from 192.168.46.2:22", src, dst, flags)
	}
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "192.168.46.2", ttl: 64, payload: 8, sport: 1, dpt: 53}.bytes())
	icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4DstUnreachable, header.ICMPv4AdminProhibited)
}

// TestFilterPortForward: a forward stays open through an accept rule put
// before the drop; the rule sees the destination after DNAT.
func TestFilterPortForward(t *testing.T) {
	cfg := gatewayConfig(config.FilterDrop, config.FilterRule{
		In: "wan0", To: prefixes("192.168.46.10/32"), Proto: int(header.TCPProtocolNumber), DPorts: config.PortSet{{Lo: 80, Hi: 80}}, Action: config.FilterAccept,
	})
	cfg.Forward = []config.Forward{{In: "wan0", Proto: uint8(header.TCPProtocolNumber),
		Listen: netip.MustParseAddrPort("198.18.0.8:8080"), To: netip.MustParseAddrPort("192.168.46.10:80")}}
	tr := startRouter(t, cfg, nil)
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 4000, "198.18.0.8", 8080))
	if _, dst, _ := tcpOf(t, tr.expect(t, "lan0")); dst.String() != "192.168.46.10:80" {
		t.Errorf("forwarded to %s", dst)
	}
	tr.devs["wan0"].Inject(syn4("198.18.0.1", 4001, "192.168.46.10", 22))
	tr.expectNone(t, "lan0")
	if st := filterStats(t, tr); !slices.EqualFunc(st, []FilterRuleStats{{Action: "accept"}, {Rule: 1, Action: "accept", Packets: 1}, {Rule: 2, Action: "drop", Packets: 1}},
		func(a, b FilterRuleStats) bool {
			return a.Rule == b.Rule && a.Action == b.Action && a.Packets == b.Packets
		}) {
		t.Errorf("filter stats %+v", st)
	}
}

// TestFilterFastPathKeepsTheIngress: the fast stage decides for a flow's
// packets only as they came before: a packet with the flow's addresses
// arriving on another interface (a spoofed LAN source on the WAN) is
// judged by the filter again, and its anti-spoofing rule drops it.
func TestFilterFastPathKeepsTheIngress(t *testing.T) {
	cfg := gatewayConfig(config.FilterDrop, config.FilterRule{In: "wan0", From: prefixes("192.168.46.0/24"), Proto: -1, Action: config.FilterDrop})
	tr := startRouter(t, cfg, nil)
	out := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes
	tr.devs["lan0"].Inject(out())
	tr.expect(t, "wan0")
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}.bytes())
	tr.expect(t, "lan0")
	for range 2 { // established: the first learns its way, the second takes the fast stage
		tr.devs["lan0"].Inject(out())
		tr.expect(t, "wan0")
	}
	skipped := func() uint64 {
		for _, st := range tr.Stats().Stages {
			if st.Name == "fast" {
				return st.Skipped
			}
		}
		return 0
	}
	if skipped() == 0 {
		t.Fatal("the established flow's packet did not take the fast stage")
	}
	tr.devs["wan0"].Inject(out()) // the same packet, on the WAN
	tr.expectNone(t, "wan0")
	if st := tr.Stats().Filter; st[1].Packets != 1 {
		t.Errorf("the anti-spoofing rule matched %d packets, want 1", st[1].Packets)
	}
}

// TestFilterFragments: a later fragment goes with its datagram: after the
// first fragment passed, or never, if that one never comes.
func TestFilterFragments(t *testing.T) {
	tr := startRouter(t, gatewayConfig(config.FilterDrop), nil)
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes())
	tr.expect(t, "wan0")
	first, second := fragments(t, udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 40, sport: 53, dpt: 5000}.bytes())
	tr.devs["wan0"].Inject(second) // before its first: waits
	tr.expectNone(t, "lan0")
	tr.devs["wan0"].Inject(first)
	tr.expect(t, "lan0")
	tr.expect(t, "lan0")
	// An orphan: a later fragment to a LAN host whose first never comes.
	_, orphan := fragments(t, udp4{src: "198.18.0.1", dst: "192.168.46.2", ttl: 64, payload: 40, sport: 53, dpt: 7}.bytes())
	tr.devs["wan0"].Inject(orphan)
	tr.expectNone(t, "lan0")
}

// TestFilterLog: a rule with log = true logs what it matches, a line a
// second at most.
func TestFilterLog(t *testing.T) {
	cfg := gatewayConfig(config.FilterDrop)
	cfg.Filter.Rules[0].Log = true
	var logs bytes.Buffer
	devs := map[string]*link.Memory{}
	// A clock that stands still: all three matches fall in one second.
	now := time.Unix(1e9, 0)
	r, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }, OpenDevice: func(ic config.Interface) ([]Device, error) {
		devs[ic.Name] = link.NewMemory(ic.Name, 64)
		return []Device{devs[ic.Name]}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w := r.newWorker(devs["wan0"], "wan0", 1, 0)
	for port := range uint16(3) {
		pkt := syn4("198.18.0.1", 4000+port, "192.168.46.2", 22)
		w.sizes[0] = copy(w.bufs[0][Headroom:], pkt)
		w.batch(1)
	}
	if n := strings.Count(logs.String(), "filter rule matched"); n != 1 || !strings.Contains(logs.String(), "action=drop") || !strings.Contains(logs.String(), "state=new") {
		t.Errorf("3 matches within a second logged %d lines, want 1 naming the action and state:\n%s", n, logs.String())
	}
	if st := r.Stats().Filter; st[1].Packets != 3 {
		t.Errorf("the rule counted %d packets, want 3", st[1].Packets)
	}
}

// TestFilterFragmentFollowsItsFirst: a later fragment, which has no port,
// follows its first fragment through a rule that matched on the port.
func TestFilterFragmentFollowsItsFirst(t *testing.T) {
	cfg := natConfig(config.EndpointIndependent)
	cfg.Pipeline.Stages = []string{"validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"}
	cfg.Filter = config.Filter{Policy: config.FilterAccept, Rules: []config.FilterRule{
		{In: "lan0", Proto: int(header.UDPProtocolNumber), DPorts: config.PortSet{{Lo: 53, Hi: 53}}, Action: config.FilterAccept},
		{In: "lan0", Proto: -1, Action: config.FilterDrop},
	}}
	tr := startRouter(t, cfg, nil)
	first, second := fragments(t, udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 40, sport: 5000, dpt: 53}.bytes())
	tr.devs["lan0"].Inject(first)
	tr.devs["lan0"].Inject(second)
	for range 2 {
		if out := header.IPv4(tr.expect(t, "wan0")); out.SourceAddress().String() != "198.18.0.8" {
			t.Errorf("fragment left from %s", out.SourceAddress())
		}
	}
}

// TestFilterFragmentsBoundedPerSource: a host's orphan fragments wait up
// to maxFragHeldFrom; past that they are dropped, and another host's
// still wait their turn.
func TestFilterFragmentsBoundedPerSource(t *testing.T) {
	tr := startRouter(t, gatewayConfig(config.FilterDrop), nil)
	orphan := func(src string, id uint16) []byte {
		_, second := fragments(t, udp4{src: src, dst: "192.168.46.2", ttl: 64, payload: 40, sport: 53, dpt: 7}.bytes())
		ip := header.IPv4(second)
		ip.SetID(id)
		ip.SetChecksum(0)
		ip.SetChecksum(^ip.CalculateChecksum())
		return second
	}
	for id := range uint16(maxFragHeldFrom + 10) {
		tr.devs["wan0"].Inject(orphan("198.18.0.1", id))
	}
	tr.devs["wan0"].Inject(orphan("198.18.0.2", 1))
	tr.expectNone(t, "lan0")
	tr.frags.mu.Lock()
	from1, from2 := tr.frags.from[netip.MustParseAddr("198.18.0.1")], tr.frags.from[netip.MustParseAddr("198.18.0.2")]
	tr.frags.mu.Unlock()
	if from1 != maxFragHeldFrom || from2 != 1 || tr.Stats().Drops["fragment_timeout"] != 10 {
		t.Errorf("waiting: %d from the first host (want %d), %d from the second (want 1); %d dropped (want 10)",
			from1, maxFragHeldFrom, from2, tr.Stats().Drops["fragment_timeout"])
	}
}
