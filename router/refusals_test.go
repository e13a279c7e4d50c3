package router

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
)

// TestRefusalsLogged: a table that refuses new work says so once, and
// again only after refusalLogEvery with the count since.
func TestRefusalsLogged(t *testing.T) {
	cfg := natConfig(config.EndpointIndependent)
	cfg.Conntrack.Max = 1
	var logs bytes.Buffer
	r, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), OpenDevice: func(ic config.Interface) ([]Device, error) {
		return []Device{link.NewMemory(ic.Name, 64)}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	w := r.newWorker(r.snap.Load().devs[0].queues[0], "lan0", 0, 0)
	send := func(sport uint16) {
		pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 8, sport: sport, dpt: 53}.bytes()
		w.sizes[0] = copy(w.bufs[0][Headroom:], pkt)
		w.batch(1)
	}
	lines := func() int { return strings.Count(logs.String(), "conntrack is refusing new work") }
	start := time.Now()
	send(1000) // fills the table
	send(1001)
	r.checkRefusals(start)
	if lines() != 1 || !strings.Contains(logs.String(), "refused=1") {
		t.Fatalf("after the first refusal: %q", logs.String())
	}
	send(1002)
	r.checkRefusals(start.Add(5 * time.Second))
	if lines() != 1 {
		t.Errorf("logged again within %v: %q", refusalLogEvery, logs.String())
	}
	r.checkRefusals(start.Add(refusalLogEvery + time.Second))
	if lines() != 2 || !strings.Contains(logs.String(), "refused=1 total=2") {
		t.Errorf("after %v: %q", refusalLogEvery, logs.String())
	}
}
