package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDemo runs `tungate demo`, the README's first command, as a user
// does: it must succeed, show each thing it claims, and leave nothing.
func TestDemo(t *testing.T) {
	New(t) // root, or a skip (a failure under CI)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, tungateBin, "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("tungate demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		" 0% packet loss", "hello from the WAN server, 198.18.0.8:", "Packet filtered",
		"==> tungate nat", "==> tungate lb", "demo ok",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("tungate demo's output lacks %q:\n%s", want, out)
		}
	}
	// Round robin over two backends: four requests, two each.
	for _, b := range []string{"\nbackend 1\n", "\nbackend 2\n"} {
		if n := strings.Count(string(out), b); n != 2 {
			t.Errorf("%q answered %d of the 4 requests, want 2:\n%s", strings.TrimSpace(b), n, out)
		}
	}
	if ns, _ := exec.Command("ip", "netns", "list").Output(); strings.Contains(string(ns), "tgdemo-") {
		t.Errorf("the demo left namespaces behind:\n%s", ns)
	}
}
