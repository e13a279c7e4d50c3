package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tungate/tungate/router/metrics"
)

// scrapeMetrics fetches url with curl, as a monitoring system outside the
// test would, and parses the text exposition.
func scrapeMetrics(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "curl", "-sS", "--fail", "--max-time", "5", url).Output()
	if err != nil {
		t.Fatalf("curl %s: %v", url, err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("parsing %s: %v\n%s", url, err, out)
	}
	return families
}

// metricValues are the values of name's series, keyed by their labels as
// `k="v",...` in the exposition's order (by label name).
func metricValues(families map[string]*dto.MetricFamily, name string) map[string]float64 {
	vals := map[string]float64{}
	for _, m := range families[name].GetMetric() {
		var labels []string
		for _, lp := range m.GetLabel() {
			labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
		}
		v := m.GetGauge().GetValue()
		if m.Counter != nil {
			v = m.GetCounter().GetValue()
		}
		vals[strings.Join(labels, ",")] = v
	}
	return vals
}

func TestMetrics(t *testing.T) {
	topo := New(t)
	r := topo.Router(natConfig("")) // masquerade, so the NAT metrics have a rule to show
	lan := topo.Host("lan", r.Interface("lan0"), "192.168.46.2/24")
	topo.Host("wan", r.Interface("wan0"), "198.18.0.1/24")

	// The test runs in the machine's own namespace: the exporter is on
	// its loopback, as metrics_listen = "127.0.0.1:..." would be.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, err := metrics.Serve(ctx, "127.0.0.1:0", r.Router)
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + addr.String() + "/metrics"

	grown := []struct{ name, labels string }{
		{"tungate_interface_receive_packets_total", `interface="lan0"`},
		{"tungate_stage_packets_total", `stage="validate"`},
	}
	before := scrapeMetrics(t, url)
	lan.Run(t, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.1")
	after := scrapeMetrics(t, url)

	for _, g := range grown {
		was, ok := metricValues(before, g.name)[g.labels]
		if !ok {
			t.Errorf("no %s{%s} before the pings", g.name, g.labels)
			continue
		}
		is := metricValues(after, g.name)[g.labels]
		if is < was+3 {
			t.Errorf("%s{%s} went from %v to %v over 3 pings, want a growth of 3 or more", g.name, g.labels, was, is)
		}
	}

	if v, ok := metricValues(after, "tungate_conntrack_entries")[""]; !ok || v < 1 {
		t.Errorf("tungate_conntrack_entries = %v (present: %v) after the pings, want 1 or more", v, ok)
	}
	inUse := metricValues(after, "tungate_nat_ports_in_use")
	found := false
	for labels, v := range inUse {
		if strings.Contains(labels, `out="wan0"`) && strings.Contains(labels, `address="198.18.0.8"`) && v >= 1 {
			found = true
		}
	}
	if !found {
		t.Errorf("no tungate_nat_ports_in_use series for 198.18.0.8 on wan0 with a port in use: %v", inUse)
	}
}
