package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestCapture: `tungate capture lan0 -c 10 -w FILE` while the LAN host
// pings through the router writes a pcap that tcpdump reads, holding the
// echo requests the router read on lan0 and the replies it wrote there.
func TestCapture(t *testing.T) {
	t.Parallel()
	h := newHop(t)
	file := filepath.Join(t.TempDir(), "lan0.pcap")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	capture := exec.CommandContext(ctx, tungateBin, "capture", "lan0", "-c", "10", "-w", file, "--socket", h.r.AdminSocket(t))
	out := &strings.Builder{}
	capture.Stdout, capture.Stderr = out, out
	if err := capture.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- capture.Wait() }()
	// Ping until the capture has its 10 packets: it may start listening
	// after the first pings.
	for i := 0; ; i++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("tungate capture: %v\n%s", err, out)
			}
			goto captured
		default:
		}
		if i == 20 {
			cancel()
			t.Fatalf("tungate capture did not end after 20 pings:\n%s", out)
		}
		h.lan.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")
	}
captured:
	// tcpdump prints the packets to stdout, one a line, and its own
	// notes to stderr.
	dump, err := exec.Command("tcpdump", "-nn", "-r", file).Output()
	if err != nil {
		t.Fatalf("tcpdump -r: %v\n%s", err, dump)
	}
	requests := regexp.MustCompile(`192\.168\.46\.2 > 198\.18\.0\.1: ICMP echo request`).FindAllString(string(dump), -1)
	replies := regexp.MustCompile(`198\.18\.0\.1 > 192\.168\.46\.2: ICMP echo reply`).FindAllString(string(dump), -1)
	lines := strings.Count(strings.TrimSpace(string(dump)), "\n") + 1
	if lines != 10 || len(requests) < 4 || len(replies) < 4 {
		t.Errorf("tcpdump -r shows %d packets, %d echo requests, %d replies; want 10 packets, both ways:\n%s", lines, len(requests), len(replies), dump)
	}
}
