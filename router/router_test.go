package router

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
)

func prefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, p := range s {
		out[i] = netip.MustParsePrefix(p)
	}
	return out
}

// testConfig is a LAN and a WAN interface (WAN MTU 1400) and one static
// route beyond the WAN gateway 198.18.0.1.
func testConfig() *config.Config {
	return &config.Config{
		File: "test.toml",
		Interface: []config.Interface{
			{Name: "lan0", Kind: config.KindTUN, Addresses: prefixes("192.168.46.1/24", "fd46::1/64"), MTU: 1500, FD: -1, Queues: 1},
			{Name: "wan0", Kind: config.KindTUN, Addresses: prefixes("198.18.0.8/24", "fd18::8/64"), MTU: 1400, FD: -1, Queues: 1},
		},
		Route: []config.Route{
			{To: netip.MustParsePrefix("203.0.113.0/24"), Via: netip.MustParseAddr("198.18.0.1"), Dev: "wan0"},
			{To: netip.MustParsePrefix("2001:db8::/32"), Via: netip.MustParseAddr("fd18::1"), Dev: "wan0"},
		},
		Pipeline: config.Pipeline{Stages: slices.Clone(config.DefaultStages)},
	}
}

// testRouter is a running Router on in-memory devices.
type testRouter struct {
	*Router
	devs map[string]*link.Memory
}

func startRouter(t *testing.T, cfg *config.Config, now func() time.Time) *testRouter {
	t.Helper()
	tr := &testRouter{devs: map[string]*link.Memory{}}
	r, err := New(cfg, Options{Now: now, OpenDevice: func(ic config.Interface) ([]Device, error) {
		m := link.NewMemory(ic.Name, 64)
		tr.devs[ic.Name] = m
		return []Device{m}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr.Router = r
	r.Start()
	t.Cleanup(func() { r.Close() })
	return tr
}

// expect waits for the next packet written to iface.
func (tr *testRouter) expect(t *testing.T, iface string) []byte {
	t.Helper()
	select {
	case pkt := <-tr.devs[iface].Written():
		return pkt
	case <-time.After(2 * time.Second):
		t.Fatalf("nothing written to %s", iface)
		return nil
	}
}

// expectNone checks nothing is written to iface for a short while.
func (tr *testRouter) expectNone(t *testing.T, iface string) {
	t.Helper()
	select {
	case pkt := <-tr.devs[iface].Written():
		t.Fatalf("unexpected packet on %s: % x", iface, pkt[:min(len(pkt), 40)])
	case <-time.After(100 * time.Millisecond):
	}
}

// icmp4 checks pkt is a valid IPv4 ICMP message from src to dst of the
// given type and code, and returns the ICMP header.
func icmp4(t *testing.T, pkt []byte, src, dst string, typ header.ICMPv4Type, code header.ICMPv4Code) header.ICMPv4 {
	t.Helper()
	ip := header.IPv4(pkt)
	if !ip.IsValid(len(pkt)) || !ip.IsChecksumValid() {
		t.Fatalf("invalid IPv4 packet % x", pkt)
	}
	if got := netip.AddrFrom4(ip.SourceAddress().As4()); got.String() != src {
		t.Errorf("source %s, want %s", got, src)
	}
	if got := netip.AddrFrom4(ip.DestinationAddress().As4()); got.String() != dst {
		t.Errorf("destination %s, want %s", got, dst)
	}
	if ip.Protocol() != uint8(header.ICMPv4ProtocolNumber) {
		t.Fatalf("protocol %d, want ICMP", ip.Protocol())
	}
	icmp := header.ICMPv4(ip.Payload())
	if icmp.Type() != typ || icmp.Code() != code {
		t.Errorf("ICMP %d/%d, want %d/%d", icmp.Type(), icmp.Code(), typ, code)
	}
	if checksum.Checksum(icmp, 0) != 0xffff {
		t.Error("bad ICMP checksum")
	}
	return icmp
}

// icmp6 checks pkt is a valid ICMPv6 message from src to dst of the given
// type and code.
func icmp6(t *testing.T, pkt []byte, src, dst string, typ header.ICMPv6Type, code header.ICMPv6Code) header.ICMPv6 {
	t.Helper()
	ip := header.IPv6(pkt)
	if !ip.IsValid(len(pkt)) || ip.NextHeader() != uint8(header.ICMPv6ProtocolNumber) {
		t.Fatalf("not an ICMPv6 packet % x", pkt[:min(len(pkt), 60)])
	}
	if got := netip.AddrFrom16(ip.SourceAddress().As16()); got.String() != src {
		t.Errorf("source %s, want %s", got, src)
	}
	if got := netip.AddrFrom16(ip.DestinationAddress().As16()); got.String() != dst {
		t.Errorf("destination %s, want %s", got, dst)
	}
	icmp := header.ICMPv6(ip.Payload())
	if icmp.Type() != typ || icmp.Code() != code {
		t.Errorf("ICMPv6 %d/%d, want %d/%d", icmp.Type(), icmp.Code(), typ, code)
	}
	xsum := header.PseudoHeaderChecksum(header.ICMPv6ProtocolNumber, ip.SourceAddress(), ip.DestinationAddress(), uint16(len(icmp)))
	if checksum.Checksum(icmp, xsum) != 0xffff {
		t.Error("bad ICMPv6 checksum")
	}
	return icmp
}

func TestPipeline(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		pkt   []byte
		out   string
		check func(t *testing.T, got []byte)
	}{{
		name: "IPv4 transit decrements the TTL",
		in:   "lan0", pkt: udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 100}.bytes(), out: "wan0",
		check: func(t *testing.T, got []byte) {
			ip := header.IPv4(got)
			if ip.TTL() != 63 || !ip.IsChecksumValid() {
				t.Errorf("TTL %d, checksum valid %v", ip.TTL(), ip.IsChecksumValid())
			}
		},
	}, {
		name: "IPv4 by a static route",
		in:   "lan0", pkt: udp4{src: "192.168.46.2", dst: "203.0.113.9", ttl: 9, payload: 10}.bytes(), out: "wan0",
		check: func(t *testing.T, got []byte) {
			if ttl := header.IPv4(got).TTL(); ttl != 8 {
				t.Errorf("TTL %d", ttl)
			}
		},
	}, {
		name: "IPv6 transit decrements the hop limit",
		in:   "wan0", pkt: udp6{src: "2001:db8::1", dst: "fd46::2", hops: 2, payload: 30}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			if h := header.IPv6(got).HopLimit(); h != 1 {
				t.Errorf("hop limit %d", h)
			}
		},
	}, {
		name: "TTL 1: Time Exceeded from the ingress address",
		in:   "lan0", pkt: udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 1, payload: 100}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp4(t, got, "192.168.46.1", "192.168.46.2", header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
		},
	}, {
		name: "hop limit 1: ICMPv6 Time Exceeded",
		in:   "lan0", pkt: udp6{src: "fd46::2", dst: "fd18::1", hops: 1}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp6(t, got, "fd46::1", "fd46::2", header.ICMPv6TimeExceeded, header.ICMPv6HopLimitExceeded)
		},
	}, {
		name: "no route: Destination Net Unreachable",
		in:   "lan0", pkt: udp4{src: "192.168.46.2", dst: "100.64.0.1", ttl: 64}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp4(t, got, "192.168.46.1", "192.168.46.2", header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable)
		},
	}, {
		name: "no IPv6 route: no route to destination",
		in:   "lan0", pkt: udp6{src: "fd46::2", dst: "3fff::1", hops: 64}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp6(t, got, "fd46::1", "fd46::2", header.ICMPv6DstUnreachable, header.ICMPv6NetworkUnreachable)
		},
	}, {
		name: "DF and too big: Fragmentation Needed with the next-hop MTU",
		in:   "lan0", pkt: udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 1450, dontFrag: true}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp := icmp4(t, got, "192.168.46.1", "192.168.46.2", header.ICMPv4DstUnreachable, header.ICMPv4FragmentationNeeded)
			if mtu := icmp.MTU(); mtu != 1400 {
				t.Errorf("MTU %d, want 1400", mtu)
			}
		},
	}, {
		name: "IPv6 too big: Packet Too Big with the MTU",
		in:   "lan0", pkt: udp6{src: "fd46::2", dst: "fd18::1", hops: 64, payload: 1400}.bytes(), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp := icmp6(t, got, "fd46::1", "fd46::2", header.ICMPv6PacketTooBig, 0)
			if mtu := icmp.MTU(); mtu != 1400 {
				t.Errorf("MTU %d, want 1400", mtu)
			}
		},
	}, {
		name: "ping to the router's WAN address is answered from it",
		in:   "lan0", pkt: echo4("192.168.46.2", "198.18.0.8", 64), out: "lan0",
		check: func(t *testing.T, got []byte) {
			icmp4(t, got, "198.18.0.8", "192.168.46.2", header.ICMPv4EchoReply, 0)
		},
	}}
	tr := startRouter(t, testConfig(), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr.devs[tc.in].Inject(tc.pkt)
			tc.check(t, tr.expect(t, tc.out))
		})
	}
}

func TestFragmentsWithoutDF(t *testing.T) {
	tr := startRouter(t, testConfig(), nil)
	pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 2000}.bytes()
	tr.devs["lan0"].Inject(pkt)
	var payload []byte
	for more := true; more; {
		frag := header.IPv4(tr.expect(t, "wan0"))
		if len(frag) > 1400 || !frag.IsChecksumValid() || frag.TTL() != 63 {
			t.Fatalf("fragment of %d bytes, TTL %d, checksum valid %v", len(frag), frag.TTL(), frag.IsChecksumValid())
		}
		if int(frag.FragmentOffset()) != len(payload) {
			t.Fatalf("offset %d, want %d", frag.FragmentOffset(), len(payload))
		}
		payload = append(payload, frag.Payload()...)
		more = frag.More()
	}
	if want := header.IPv4(pkt).Payload(); string(payload) != string(want) {
		t.Errorf("reassembled %d bytes, differ from the %d sent", len(payload), len(want))
	}
}

func TestDropsAreCountedByReason(t *testing.T) {
	good := func() []byte { return udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 40}.bytes() }
	tests := []struct {
		reason string
		pkt    []byte
	}{
		{"truncated", good()[:12]},
		{"bad_version", func() []byte { b := good(); b[0] = 0x55; return b }()},
		{"bad_header_length", func() []byte { b := good(); header.IPv4(b).SetHeaderLength(16); return b }()},
		{"bad_total_length", func() []byte { b := good(); header.IPv4(b).SetTotalLength(2000); return b }()},
		{"bad_checksum", func() []byte { b := good(); header.IPv4(b).SetChecksum(0x1234); return b }()},
		{"bad_address", udp4{src: "127.0.0.1", dst: "198.18.0.1", ttl: 64}.bytes()},
		{"ttl_exceeded", udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 1}.bytes()},
		{"no_route", udp4{src: "192.168.46.2", dst: "100.64.0.1", ttl: 64}.bytes()},
	}
	tr := startRouter(t, testConfig(), nil)
	for _, tc := range tests {
		t.Run(tc.reason, func(t *testing.T) {
			before := tr.Stats().Drops[tc.reason]
			tr.devs["lan0"].Inject(tc.pkt)
			// The router goes on forwarding after a bad packet; a good one
			// sent behind it arrives, and by then the bad one was counted.
			tr.devs["lan0"].Inject(good())
			for {
				if ip := header.IPv4(tr.expect(t, "wan0")); ip.TTL() == 63 {
					break
				}
			}
			if got := tr.Stats().Drops[tc.reason]; got != before+1 {
				t.Errorf("drops[%s] = %d, want %d", tc.reason, got, before+1)
			}
		})
	}
}

func TestICMPErrorsAreRateLimited(t *testing.T) {
	// A clock that never moves: the bucket gives its burst and no more.
	frozen := time.Unix(1e9, 0)
	tr := startRouter(t, testConfig(), func() time.Time { return frozen })
	const sent = icmpBurst + 30
	for range sent {
		tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 1}.bytes())
	}
	for range icmpBurst {
		icmp4(t, tr.expect(t, "lan0"), "192.168.46.1", "192.168.46.2", header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded)
	}
	tr.expectNone(t, "lan0")
	st := tr.Stats()
	if st.ICMP.Sent != icmpBurst || st.ICMP.RateLimited != sent-icmpBurst || st.Drops["ttl_exceeded"] != sent {
		t.Errorf("sent %d, rate limited %d, ttl_exceeded %d; want %d, %d, %d",
			st.ICMP.Sent, st.ICMP.RateLimited, st.Drops["ttl_exceeded"], icmpBurst, sent-icmpBurst, sent)
	}
}

func TestReload(t *testing.T) {
	tr := startRouter(t, testConfig(), nil)
	beyond := udp4{src: "192.168.46.2", dst: "203.0.113.9", ttl: 64}.bytes

	next := testConfig()
	next.Route = nil // the route to 203.0.113.0/24 goes
	if err := tr.Reload(next); err != nil {
		t.Fatal(err)
	}
	tr.devs["lan0"].Inject(beyond())
	icmp4(t, tr.expect(t, "lan0"), "192.168.46.1", "192.168.46.2", header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable)

	if err := tr.Reload(testConfig()); err != nil {
		t.Fatal(err)
	}
	tr.devs["lan0"].Inject(beyond())
	tr.expect(t, "wan0")

	bad := testConfig()
	bad.Interface[1].MTU = 9000
	if err := tr.Reload(bad); err == nil {
		t.Error("reload changed an interface's MTU; want it refused")
	}
	tr.devs["lan0"].Inject(beyond())
	tr.expect(t, "wan0") // the running config stayed
}

// TestReloadAddsAndRemovesInterfaces: an interface a reload adds is
// opened and routes at once; one it removes is closed, its routes go,
// and the interfaces that stay keep working and keep their flows.
func TestReloadAddsAndRemovesInterfaces(t *testing.T) {
	tr := startRouter(t, natConfig(config.EndpointIndependent), nil)
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 5000, dpt: 53}.bytes())
	tr.expect(t, "wan0")

	withLAN1 := natConfig(config.EndpointIndependent)
	withLAN1.Interface = append(withLAN1.Interface, config.Interface{
		Name: "lan1", Kind: config.KindTUN, Addresses: prefixes("192.168.47.1/24"), MTU: 1500, FD: -1, Queues: 1,
	})
	if err := tr.Reload(withLAN1); err != nil {
		t.Fatal(err)
	}
	toLAN1 := udp4{src: "198.18.0.1", dst: "192.168.47.2", ttl: 64, payload: 8, sport: 53, dpt: 7}.bytes
	tr.devs["wan0"].Inject(toLAN1())
	tr.expect(t, "lan1")
	tr.devs["lan1"].Inject(udp4{src: "192.168.47.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: 7, dpt: 53}.bytes())
	tr.expect(t, "wan0")

	lan1 := tr.devs["lan1"]
	if err := tr.Reload(natConfig(config.EndpointIndependent)); err != nil {
		t.Fatal(err)
	}
	if _, err := lan1.Write([][]byte{make([]byte, Headroom+1)}, Headroom); err == nil {
		t.Error("lan1 is still open after the reload that removed it")
	}
	tr.devs["wan0"].Inject(toLAN1())
	icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4DstUnreachable, header.ICMPv4NetUnreachable)
	// The masqueraded flow of lan0 went on through both reloads.
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 8, sport: 53, dpt: 5000}.bytes())
	if in := header.IPv4(tr.expect(t, "lan0")); in.DestinationAddress().String() != "192.168.46.2" {
		t.Errorf("the reply of the flow made before the reloads went to %s", in.DestinationAddress())
	}
	if st := tr.Stats(); len(st.Interfaces) != 2 {
		t.Errorf("stats show %d interfaces, want lan0 and wan0", len(st.Interfaces))
	}
}

// discard is a device that takes every write and never has anything to
// read, for measuring the pipeline alone.
type discard struct{ closed chan struct{} }

func (d discard) Read([][]byte, []int, int) (int, error) { <-d.closed; return 0, os.ErrClosed }
func (discard) Write(bufs [][]byte, _ int) (int, error)  { return len(bufs), nil }
func (discard) BatchSize() int                           { return 128 }
func (d discard) Close() error                           { close(d.closed); return nil }

// transitWorker is a worker of a router on discard devices, with a batch
// of IPv4 transit packets ready to run.
func transitWorker(t testing.TB, stages ...string) (w *worker, load func()) {
	cfg := testConfig()
	if len(stages) > 0 {
		cfg.Pipeline.Stages = stages
	}
	r, err := New(cfg, Options{OpenDevice: func(config.Interface) ([]Device, error) {
		return []Device{discard{make(chan struct{})}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w = r.newWorker(r.snap.Load().devs[0].queues[0], "lan0", 0, 0)
	pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 64}.bytes()
	load = func() {
		for i := range w.bufs {
			copy(w.bufs[i][Headroom:], pkt)
			w.sizes[i] = len(pkt)
		}
	}
	return w, load
}

func TestTransitAllocatesNothing(t *testing.T) {
	w, load := transitWorker(t)
	if allocs := testing.AllocsPerRun(100, func() { load(); w.batch(len(w.bufs)) }); allocs != 0 {
		t.Errorf("%.1f allocations per batch of %d, want 0", allocs, len(w.bufs))
	}
}

// BenchmarkTransit runs batches of 128 IPv4 packets to the output
// grouping through a router's hop (validate, local, route, ttl) and
// through the whole default pipeline (with dnat, snat and neighbor, idle
// without NAT rules and on TUN links), and reports the cost per packet.
func BenchmarkTransit(b *testing.B) {
	b.Run("hop", func(b *testing.B) { benchmarkTransit(b, "validate", "local", "route", "ttl") })
	b.Run("default", func(b *testing.B) { benchmarkTransit(b) })
}

func benchmarkTransit(b *testing.B, stages ...string) {
	w, load := transitWorker(b, stages...)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		load()
		b.StartTimer()
		w.batch(len(w.bufs))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.bufs)), "ns/packet")
}

func TestNewClosesWhatItOpenedOnError(t *testing.T) {
	var opened []*link.Memory
	cfg := testConfig()
	cfg.Pipeline.Stages = []string{"validate", "local", "nosuchstage"}
	_, err := New(cfg, Options{OpenDevice: func(ic config.Interface) ([]Device, error) {
		m := link.NewMemory(ic.Name, 1)
		opened = append(opened, m)
		return []Device{m}, nil
	}})
	if err == nil {
		t.Fatal("New accepted an unknown stage")
	}
	for _, m := range opened {
		if _, err := m.Write([][]byte{make([]byte, Headroom+1)}, Headroom); !errors.Is(err, os.ErrClosed) {
			t.Errorf("device %s left open after New failed", m.Name())
		}
	}
}

// masqueradeWorker is a worker reading lan0 of a router on discard
// devices that masquerades the LAN out of wan0, on the given clock.
func masqueradeWorker(t testing.TB, now func() time.Time, more ...func(*config.Config)) *worker {
	cfg := testConfig()
	cfg.SNAT = []config.SNAT{{
		Out: "wan0", From: prefixes("192.168.46.0/24"), Masquerade: true, Ports: config.DefaultSNATPorts,
		Mapping: config.EndpointIndependent, Filtering: config.EndpointIndependent, PortPreservation: true,
	}}
	for _, f := range more {
		f(cfg)
	}
	r, err := New(cfg, Options{Now: now, OpenDevice: func(config.Interface) ([]Device, error) {
		return []Device{discard{make(chan struct{})}}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.newWorker(r.snap.Load().devs[0].queues[0], "lan0", 0, 0)
}

// natWorker is masqueradeWorker with a batch of packets of one UDP flow
// ready to run, the flow already made by a first batch.
func natWorker(t testing.TB) (w *worker, load func(sport uint16)) {
	w = masqueradeWorker(t, nil)
	r := w.r
	pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 64, sport: 5000, dpt: 53}.bytes()
	load = func(sport uint16) {
		udp := header.UDP(pkt[header.IPv4MinimumSize:])
		udp.SetSourcePortWithChecksumUpdate(sport)
		for i := range w.bufs {
			copy(w.bufs[i][Headroom:], pkt)
			w.sizes[i] = len(pkt)
		}
	}
	load(5000)
	w.batch(1)
	if n := r.ct.Len(); n != 1 {
		t.Fatalf("%d flows after the first packet, want 1", n)
	}
	return w, load
}

func TestEstablishedNATFlowAllocatesNothing(t *testing.T) {
	w, load := natWorker(t)
	if allocs := testing.AllocsPerRun(100, func() { load(5000); w.batch(len(w.bufs)) }); allocs != 0 {
		t.Errorf("%.1f allocations per batch of an established NAT flow, want 0", allocs)
	}
}

// BenchmarkNATEstablished runs batches of 128 packets of one masqueraded
// UDP flow: conntrack lookup, source rewrite with incremental checksums,
// accounting, plus the transit stages.
func BenchmarkNATEstablished(b *testing.B) {
	w, load := natWorker(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		load(5000)
		b.StartTimer()
		w.batch(len(w.bufs))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.bufs)), "ns/packet")
}

// BenchmarkNATNewFlow runs batches of 128 first packets of new
// masqueraded flows, each from its own inside endpoint: a new mapping and
// a new conntrack flow per packet. Every 32768 flows, with the timer
// stopped, the flows are flushed and the clock moved past the 120 s for
// which freed ports are held, so that ports never run out.
func BenchmarkNATNewFlow(b *testing.B) {
	var clock atomic.Int64
	clock.Store(time.Unix(1e9, 0).UnixNano())
	w := masqueradeWorker(b, func() time.Time { return time.Unix(0, clock.Load()) })
	pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 64, sport: 1024, dpt: 53}.bytes()
	var host, port uint16 = 2, 1024
	flows := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range w.bufs {
			ip := header.IPv4(w.bufs[i][Headroom:])
			copy(ip, pkt)
			if port++; port == 0 {
				port, host = 1024, host%250+2
			}
			ip.SetSourceAddressWithChecksumUpdate(tcpip.AddrFrom4([4]byte{192, 168, 46, byte(host)}))
			header.UDP(ip.Payload()).SetSourcePort(port) // the checksum is not checked on the way
			w.sizes[i] = len(pkt)
		}
		w.batch(len(w.bufs))
		if flows += len(w.bufs); flows >= 32768 {
			b.StopTimer()
			w.r.ct.Flush()
			clock.Add(int64(121 * time.Second))
			flows = 0
			b.StartTimer()
		}
	}
	if n := w.r.Stats().Drops; len(n) != 0 {
		b.Fatalf("drops: %v", n)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.bufs)), "ns/packet")
}

// BenchmarkFilter measures a masqueraded UDP flow's packets behind a
// filter of n rules that the packets match only at the end (each rule a
// TCP port that is not theirs): the first packets of new flows, which the
// matcher decides, and the packets of an established flow, which the
// fast stage decides without the filter, whatever n is.
func BenchmarkFilter(b *testing.B) {
	for _, n := range []int{10, 1000, 10000} {
		withRules := func(cfg *config.Config) {
			for i := range n - 1 {
				cfg.Filter.Rules = append(cfg.Filter.Rules, config.FilterRule{Proto: int(header.TCPProtocolNumber),
					DPorts: config.PortSet{{Lo: uint16(1 + i), Hi: uint16(1 + i)}}, Action: config.FilterDrop})
			}
			cfg.Filter.Rules = append(cfg.Filter.Rules, config.FilterRule{Proto: -1, States: []string{"new", "established"}, Action: config.FilterAccept})
		}
		b.Run(fmt.Sprintf("rules=%d/new", n), func(b *testing.B) {
			w := masqueradeWorker(b, nil, withRules)
			pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 64, sport: 1024, dpt: 53}.bytes()
			port := uint16(1024)
			for b.Loop() {
				for i := range w.bufs {
					port++
					ip := header.IPv4(w.bufs[i][Headroom:])
					copy(ip, pkt)
					header.UDP(ip.Payload()).SetSourcePort(port)
					w.sizes[i] = len(pkt)
				}
				w.batch(len(w.bufs))
				if port > 60000 {
					b.StopTimer()
					w.r.ct.Flush()
					port = 1024
					b.StartTimer()
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.bufs)), "ns/packet")
		})
		b.Run(fmt.Sprintf("rules=%d/established", n), func(b *testing.B) {
			w := masqueradeWorker(b, nil, withRules)
			out := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 64, sport: 5000, dpt: 53}.bytes()
			reply := udp4{src: "198.18.0.1", dst: "198.18.0.8", ttl: 64, payload: 64, sport: 53, dpt: 5000}.bytes()
			inject := func(w *worker, pkt []byte, n int) {
				for i := range n {
					w.sizes[i] = copy(w.bufs[i][Headroom:], pkt)
				}
				w.batch(n)
			}
			wan := w.r.newWorker(w.r.snap.Load().devs[1].queues[0], "wan0", 1, 0)
			inject(w, out, 1)
			inject(wan, reply, 1) // established now
			for b.Loop() {
				inject(w, out, len(w.bufs))
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(w.bufs)), "ns/packet")
		})
	}
}
