// Package metrics serves the router's counters in the Prometheus text
// format (SPEC: metrics_listen).
//
// The counters stay the router's own atomics; nothing here touches the
// packet path. At each scrape a collector takes one snapshot of
// Stats and Services and turns it into constant metrics, so a scrape costs
// what `tungate stats` and `tungate lb` cost, and an idle exporter costs
// nothing.
package metrics

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/packet"
)

// Source is what the metrics read at each scrape; *router.Router is one.
type Source interface {
	Stats() router.Stats
	Services() []router.ServiceInfo
}

// NewHandler returns the /metrics handler for src, on a registry of its
// own rather than the global one, so that nothing else in the process can
// add series to it.
//
// Besides the router's metrics it carries the standard Go runtime and
// process collectors: they are what every Go exporter exposes (memory,
// GC, goroutines, CPU, open file descriptors), the usual dashboards expect
// them, and they too are read only at scrape time, from the runtime and
// /proc/self.
func NewHandler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collector{src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// Services walks the whole flow table; a few scrapers (an HA
		// pair of Prometheus servers, a person with curl) are normal,
		// a pile-up of them is not worth answering.
		MaxRequestsInFlight: 4,
	})
}

// Serve listens on addr (ip:port) and serves /metrics until ctx ends. It
// returns once listening, with the listener's address (useful with port
// 0), or the listen error.
func Serve(ctx context.Context, addr string, src Source) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", NewHandler(src))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	go func() {
		<-ctx.Done()
		// A scrape cut short is retried at the next interval; there is
		// nothing to drain.
		srv.Close()
	}()
	// Serve returns when ctx closes the server; the listen error, the
	// one a caller can act on, was returned above.
	go srv.Serve(ln)
	return ln.Addr(), nil
}

// descs are every metric the collector makes, for Describe: describing
// them lets the registry check each scrape's metrics against their
// declared names and labels.
var descs []*prometheus.Desc

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	d := prometheus.NewDesc("tungate_"+name, help, labels, nil)
	descs = append(descs, d)
	return d
}

var (
	ifRxPackets = newDesc("interface_receive_packets_total", "Packets the router read from the interface.", "interface")
	ifRxBytes   = newDesc("interface_receive_bytes_total", "Bytes of the packets the router read from the interface.", "interface")
	ifTxPackets = newDesc("interface_transmit_packets_total", "Packets the router wrote to the interface.", "interface")
	ifTxBytes   = newDesc("interface_transmit_bytes_total", "Bytes of the packets the router wrote to the interface.", "interface")
	ifTxErrors  = newDesc("interface_transmit_errors_total", "Writes to the interface that failed.", "interface")

	stagePackets = newDesc("stage_packets_total", "Packets the pipeline stage saw; the link pseudo-stage counts ARP and NDP messages.", "stage")
	stageTaken   = newDesc("stage_taken_total", "Packets the stage kept (delivered to the router's own stack, queued for neighbor resolution).", "stage")
	stageReplies = newDesc("stage_replies_total", "Packets the stage turned into an ICMP error of the router's own.", "stage")
	stageSkipped = newDesc("stage_skipped_total", "Packets the stage sent past the stages after it (the fast stage's known flows).", "stage")
	stageDrops   = newDesc("stage_drops_total", "Packets the stage dropped, by reason.", "stage", "reason")
	drops        = newDesc("drops_total", "Packets dropped anywhere in the router, by reason.", "reason")

	icmpSent        = newDesc("icmp_errors_sent_total", "ICMP errors the router sent.")
	icmpRateLimited = newDesc("icmp_errors_rate_limited_total", "ICMP errors the router did not send because of the rate limit.")

	neighEntries    = newDesc("neighbor_entries", "Entries in the neighbor (ARP and NDP) cache.")
	neighQueueDrops = newDesc("neighbor_queue_drops_total", "Packets pushed out of a full queue while waiting for a neighbor to answer.")
	neighRefused    = newDesc("neighbor_refused_total", "New neighbor entries refused because the cache was full.")
	neighFailed     = newDesc("neighbor_failed_total", "Neighbors that did not answer resolution.")
	neighInvalid    = newDesc("neighbor_invalid_total", "ARP and NDP messages that failed validation.")

	ctEntries  = newDesc("conntrack_entries", "Flows in the connection tracking table, expired ones not yet reaped included.")
	ctInserted = newDesc("conntrack_inserted_total", "Flows added to the connection tracking table.")
	ctRefused  = newDesc("conntrack_refused_total", "New flows refused because the connection tracking table was full.")
	ctExpired  = newDesc("conntrack_expired_total", "Flows removed from the connection tracking table because their idle timeout passed.")

	natMappings = newDesc("nat_mappings", "Live mappings of the [[snat]] rule.", "rule", "out")
	natHosts    = newDesc("nat_hosts", "Inside hosts holding ports of the [[snat]] rule.", "rule", "out")
	natInUse    = newDesc("nat_ports_in_use", "Ports of the external address in use by live mappings, by protocol.", "rule", "out", "address", "proto")
	natHeld     = newDesc("nat_ports_held", "Ports of the external address held back after their mapping ended (RFC 6888 REQ-8), by protocol.", "rule", "out", "address", "proto")
	natRefused  = newDesc("nat_refused_total", "New flows the [[snat]] rule could not map, by cause: quota (the host's port quota), exhausted (no free port), no_address (no external address of the family).", "rule", "out", "cause")

	filterPackets = newDesc("filter_rule_packets_total", "Packets the [[filter.rule]] matched (rule 0: the policy, what no rule matched).", "rule", "action")
	filterBytes   = newDesc("filter_rule_bytes_total", "Bytes of the packets the [[filter.rule]] matched (rule 0: the policy).", "rule", "action")

	lbConns     = newDesc("lb_backend_connections_total", "Flows the load balancer gave the backend.", "service", "backend")
	lbInPkts    = newDesc("lb_backend_in_packets_total", "Packets from clients to the backend.", "service", "backend")
	lbOutPkts   = newDesc("lb_backend_out_packets_total", "Packets from the backend to clients.", "service", "backend")
	lbInBytes   = newDesc("lb_backend_in_bytes_total", "Bytes from clients to the backend.", "service", "backend")
	lbOutBytes  = newDesc("lb_backend_out_bytes_total", "Bytes from the backend to clients.", "service", "backend")
	lbActive    = newDesc("lb_backend_active_connections", "Established TCP flows to the backend.", "service", "backend")
	lbInactive  = newDesc("lb_backend_inactive_connections", "Flows to the backend other than established TCP ones.", "service", "backend")
	lbWeight    = newDesc("lb_backend_weight", "The backend's current scheduling weight.", "service", "backend")
	lbBackendUp = newDesc("lb_backend_up", "1 if the backend passes its health checks, 0 if not; absent for services without checks.", "service", "backend")
)

// collector makes the metrics from one snapshot of a Source per scrape.
type collector struct{ src Source }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	for _, ifc := range st.Interfaces {
		counter(ifRxPackets, ifc.RxPackets, ifc.Name)
		counter(ifRxBytes, ifc.RxBytes, ifc.Name)
		counter(ifTxPackets, ifc.TxPackets, ifc.Name)
		counter(ifTxBytes, ifc.TxBytes, ifc.Name)
		counter(ifTxErrors, ifc.TxErrors, ifc.Name)
	}

	for _, s := range st.Stages {
		counter(stagePackets, s.Packets, s.Name)
		counter(stageTaken, s.Taken, s.Name)
		counter(stageReplies, s.Replies, s.Name)
		counter(stageSkipped, s.Skipped, s.Name)
		// Only the reasons a stage has met: most are impossible in most
		// stages, and zeros for all would be hundreds of idle series.
		for reason, n := range s.Drops {
			counter(stageDrops, n, s.Name, reason)
		}
	}
	// Every reason, zeros included, so a rate or an alert on a reason
	// works from its first drop rather than from its second scrape.
	for r := range packet.NumReasons {
		if r != packet.ReasonNone {
			counter(drops, st.Drops[r.String()], r.String())
		}
	}

	counter(icmpSent, st.ICMP.Sent)
	counter(icmpRateLimited, st.ICMP.RateLimited)

	gauge(neighEntries, float64(st.Neighbors.Entries))
	counter(neighQueueDrops, st.Neighbors.QueueDrops)
	counter(neighRefused, st.Neighbors.Refused)
	counter(neighFailed, st.Neighbors.Failed)
	counter(neighInvalid, st.Neighbors.Invalid)

	gauge(ctEntries, float64(st.Conntrack.Entries))
	counter(ctInserted, st.Conntrack.Inserted)
	counter(ctRefused, st.Conntrack.RefusedFull)
	counter(ctExpired, st.Conntrack.Expired)

	for _, n := range st.NAT {
		rule := strconv.Itoa(n.Rule)
		gauge(natMappings, float64(n.Mappings), rule, n.Out)
		gauge(natHosts, float64(n.Hosts), rule, n.Out)
		for _, p := range n.Ports {
			gauge(natInUse, float64(p.Live), rule, n.Out, p.Addr.String(), p.Proto)
			gauge(natHeld, float64(p.Held), rule, n.Out, p.Addr.String(), p.Proto)
		}
		counter(natRefused, n.RefusedQuota, rule, n.Out, "quota")
		counter(natRefused, n.RefusedExhausted, rule, n.Out, "exhausted")
		counter(natRefused, n.RefusedNoAddress, rule, n.Out, "no_address")
	}

	for _, f := range st.Filter {
		rule := strconv.Itoa(f.Rule)
		counter(filterPackets, f.Packets, rule, f.Action)
		counter(filterBytes, f.Bytes, rule, f.Action)
	}

	for _, svc := range c.src.Services() {
		for _, b := range svc.Backends {
			l := []string{svc.Name, b.Address.String()}
			counter(lbConns, b.Conns, l...)
			counter(lbInPkts, b.InPkts, l...)
			counter(lbOutPkts, b.OutPkts, l...)
			counter(lbInBytes, b.InBytes, l...)
			counter(lbOutBytes, b.OutBytes, l...)
			gauge(lbActive, float64(b.ActiveConn), l...)
			gauge(lbInactive, float64(b.InActConn), l...)
			gauge(lbWeight, float64(b.Weight), l...)
			switch b.Health {
			case "up":
				gauge(lbBackendUp, 1, l...)
			case "down":
				gauge(lbBackendUp, 0, l...)
			}
		}
	}
}
