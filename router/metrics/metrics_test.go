package metrics

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/neigh"
)

// fakeSource is a router frozen at fixed counters.
type fakeSource struct{}

func (fakeSource) Stats() router.Stats {
	return router.Stats{
		Interfaces: []router.InterfaceStats{
			{Name: "lan0", RxPackets: 10, RxBytes: 1000, TxPackets: 9, TxBytes: 900, TxErrors: 1},
			{Name: "wan0", RxPackets: 20, RxBytes: 2000, TxPackets: 19, TxBytes: 1900},
		},
		Stages: []router.StageStats{
			{Name: "link", Packets: 4, Taken: 4, Drops: map[string]uint64{}},
			{Name: "validate", Packets: 30, Drops: map[string]uint64{"bad_checksum": 2}},
			{Name: "fast", Packets: 28, Skipped: 7, Drops: map[string]uint64{}},
			{Name: "ttl", Packets: 21, Replies: 3, Drops: map[string]uint64{"ttl_exceeded": 3}},
			{Name: "output", Drops: map[string]uint64{"tx_error": 1}},
		},
		Drops:     map[string]uint64{"bad_checksum": 2, "ttl_exceeded": 3, "tx_error": 1},
		ICMP:      router.ICMPStats{Sent: 3, RateLimited: 5},
		Neighbors: neigh.Stats{Entries: 2, QueueDrops: 6, Refused: 7, Failed: 8, Invalid: 9},
		Conntrack: conntrack.Stats{Entries: 12, Inserted: 40, RefusedFull: 11, Expired: 28},
		NAT: []router.NATRuleStats{{
			Rule: 1, Out: "wan0", Mappings: 5, Hosts: 2, Held: 1,
			Ports: []router.NATPortStats{
				{Addr: netip.MustParseAddr("198.18.0.8"), Proto: "tcp", Live: 3, Held: 1},
				{Addr: netip.MustParseAddr("198.18.0.8"), Proto: "udp", Live: 2},
			},
			RefusedQuota: 13, RefusedExhausted: 14, RefusedNoAddress: 15,
		}},
	}
}

func (fakeSource) Services() []router.ServiceInfo {
	backend := func(addr string, weight int, health string, n uint64) router.BackendInfo {
		return router.BackendInfo{
			Address: netip.MustParseAddrPort(addr), Weight: weight, Health: health, ActiveConn: int(n), InActConn: int(n + 1),
			Counters: router.Counters{Conns: n * 10, InPkts: n * 100, OutPkts: n * 200, InBytes: n * 1000, OutBytes: n * 2000},
		}
	}
	return []router.ServiceInfo{
		{Name: "dns", Proto: "udp", Backends: []router.BackendInfo{backend("10.9.0.53:53", 1, "-", 4)}},
		{Name: "web", Proto: "tcp", Backends: []router.BackendInfo{
			backend("192.168.46.11:80", 2, "up", 1),
			backend("[fd46::12]:80", 3, "down", 2),
		}},
	}
}

// scrape fetches url and parses its text exposition.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	checkNoDuplicates(t, string(body))
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, body)
	}
	return families
}

// checkNoDuplicates fails t if a series (name and labels) is in the text
// twice: the parser merges them silently.
func checkNoDuplicates(t *testing.T, body string) {
	t.Helper()
	seen := map[string]bool{}
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series := line[:strings.LastIndexByte(line, ' ')]
		if seen[series] {
			t.Errorf("duplicate series %s", series)
		}
		seen[series] = true
	}
}

// sample finds the sample of name whose labels are exactly labels
// ("k=v" each); ok is false if there is none.
func sample(families map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	mf := families[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		var got []string
		for _, lp := range m.GetLabel() {
			got = append(got, lp.GetName()+"="+lp.GetValue())
		}
		if !slices.Equal(got, slices.Sorted(slices.Values(labels))) {
			continue
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(NewHandler(fakeSource{}))
	defer srv.Close()
	families := scrape(t, srv.URL)

	web1 := []string{"service=web", "backend=192.168.46.11:80"}
	web2 := []string{"service=web", "backend=[fd46::12]:80"}
	dns := []string{"service=dns", "backend=10.9.0.53:53"}
	nat := []string{"rule=1", "out=wan0"}
	tcpPorts := append([]string{"address=198.18.0.8", "proto=tcp"}, nat...)
	tests := []struct {
		name   string
		labels []string
		typ    dto.MetricType
		want   float64
	}{
		{"tungate_interface_receive_packets_total", []string{"interface=lan0"}, dto.MetricType_COUNTER, 10},
		{"tungate_interface_receive_bytes_total", []string{"interface=wan0"}, dto.MetricType_COUNTER, 2000},
		{"tungate_interface_transmit_packets_total", []string{"interface=lan0"}, dto.MetricType_COUNTER, 9},
		{"tungate_interface_transmit_bytes_total", []string{"interface=wan0"}, dto.MetricType_COUNTER, 1900},
		{"tungate_interface_transmit_errors_total", []string{"interface=lan0"}, dto.MetricType_COUNTER, 1},
		{"tungate_interface_transmit_errors_total", []string{"interface=wan0"}, dto.MetricType_COUNTER, 0},

		{"tungate_stage_packets_total", []string{"stage=validate"}, dto.MetricType_COUNTER, 30},
		{"tungate_stage_taken_total", []string{"stage=link"}, dto.MetricType_COUNTER, 4},
		{"tungate_stage_replies_total", []string{"stage=ttl"}, dto.MetricType_COUNTER, 3},
		{"tungate_stage_skipped_total", []string{"stage=fast"}, dto.MetricType_COUNTER, 7},
		{"tungate_stage_drops_total", []string{"stage=validate", "reason=bad_checksum"}, dto.MetricType_COUNTER, 2},
		{"tungate_stage_drops_total", []string{"stage=output", "reason=tx_error"}, dto.MetricType_COUNTER, 1},
		{"tungate_drops_total", []string{"reason=ttl_exceeded"}, dto.MetricType_COUNTER, 3},
		{"tungate_drops_total", []string{"reason=no_route"}, dto.MetricType_COUNTER, 0}, // every reason, from zero

		{"tungate_icmp_errors_sent_total", nil, dto.MetricType_COUNTER, 3},
		{"tungate_icmp_errors_rate_limited_total", nil, dto.MetricType_COUNTER, 5},

		{"tungate_neighbor_entries", nil, dto.MetricType_GAUGE, 2},
		{"tungate_neighbor_queue_drops_total", nil, dto.MetricType_COUNTER, 6},
		{"tungate_neighbor_refused_total", nil, dto.MetricType_COUNTER, 7},
		{"tungate_neighbor_failed_total", nil, dto.MetricType_COUNTER, 8},
		{"tungate_neighbor_invalid_total", nil, dto.MetricType_COUNTER, 9},

		{"tungate_conntrack_entries", nil, dto.MetricType_GAUGE, 12},
		{"tungate_conntrack_inserted_total", nil, dto.MetricType_COUNTER, 40},
		{"tungate_conntrack_refused_total", nil, dto.MetricType_COUNTER, 11},
		{"tungate_conntrack_expired_total", nil, dto.MetricType_COUNTER, 28},

		{"tungate_nat_mappings", nat, dto.MetricType_GAUGE, 5},
		{"tungate_nat_hosts", nat, dto.MetricType_GAUGE, 2},
		{"tungate_nat_ports_in_use", tcpPorts, dto.MetricType_GAUGE, 3},
		{"tungate_nat_ports_held", tcpPorts, dto.MetricType_GAUGE, 1},
		{"tungate_nat_ports_in_use", append([]string{"address=198.18.0.8", "proto=udp"}, nat...), dto.MetricType_GAUGE, 2},
		{"tungate_nat_refused_total", append([]string{"cause=quota"}, nat...), dto.MetricType_COUNTER, 13},
		{"tungate_nat_refused_total", append([]string{"cause=exhausted"}, nat...), dto.MetricType_COUNTER, 14},
		{"tungate_nat_refused_total", append([]string{"cause=no_address"}, nat...), dto.MetricType_COUNTER, 15},

		{"tungate_lb_backend_connections_total", web1, dto.MetricType_COUNTER, 10},
		{"tungate_lb_backend_in_packets_total", web2, dto.MetricType_COUNTER, 200},
		{"tungate_lb_backend_out_packets_total", web2, dto.MetricType_COUNTER, 400},
		{"tungate_lb_backend_in_bytes_total", dns, dto.MetricType_COUNTER, 4000},
		{"tungate_lb_backend_out_bytes_total", dns, dto.MetricType_COUNTER, 8000},
		{"tungate_lb_backend_active_connections", web2, dto.MetricType_GAUGE, 2},
		{"tungate_lb_backend_inactive_connections", web2, dto.MetricType_GAUGE, 3},
		{"tungate_lb_backend_weight", web2, dto.MetricType_GAUGE, 3},
		{"tungate_lb_backend_up", web1, dto.MetricType_GAUGE, 1},
		{"tungate_lb_backend_up", web2, dto.MetricType_GAUGE, 0},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s%v", tc.name, tc.labels), func(t *testing.T) {
			if typ := families[tc.name].GetType(); families[tc.name] != nil && typ != tc.typ {
				t.Errorf("type %v, want %v", typ, tc.typ)
			}
			if help := families[tc.name].GetHelp(); families[tc.name] != nil && help == "" {
				t.Error("no HELP")
			}
			got, ok := sample(families, tc.name, tc.labels...)
			if !ok {
				t.Fatalf("no sample %s%v", tc.name, tc.labels)
			}
			if got != tc.want {
				t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
			}
		})
	}

	t.Run("no health series without checks", func(t *testing.T) {
		if v, ok := sample(families, "tungate_lb_backend_up", dns...); ok {
			t.Errorf("tungate_lb_backend_up%v = %v, want no series", dns, v)
		}
	})
	t.Run("no zero-filled stage drops", func(t *testing.T) {
		if n := len(families["tungate_stage_drops_total"].GetMetric()); n != 3 {
			t.Errorf("%d tungate_stage_drops_total series, want the 3 nonzero ones", n)
		}
	})
	t.Run("runtime and process metrics", func(t *testing.T) {
		for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
			if families[name] == nil {
				t.Errorf("no %s", name)
			}
		}
	})
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := Serve(ctx, "127.0.0.1:0", fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	families := scrape(t, "http://"+addr.String()+"/metrics")
	if v, ok := sample(families, "tungate_conntrack_entries"); !ok || v != 12 {
		t.Errorf("tungate_conntrack_entries = %v (present %v), want 12", v, ok)
	}

	// Only /metrics is served.
	resp, err := http.Get("http://" + addr.String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /: %s, want 404", resp.Status)
	}

	// Once ctx ends, the port is closed.
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + addr.String() + "/metrics")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("still serving 5s after ctx ended")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A port in use is an error from Serve, not a server that never
	// serves.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Serve(context.Background(), ln.Addr().String(), fakeSource{}); err == nil {
		t.Errorf("Serve on %s, a port in use: no error", ln.Addr())
	}
}
