package e2e

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tungate/tungate/e2e/netns"
)

// Capturing is a tcpdump running inside a namespace.
type Capturing struct {
	t      testing.TB
	cancel context.CancelFunc
	done   chan struct{}
	out    *syncBuffer
}

// Capture starts tcpdump on iface inside the named namespace with a
// filter expression, and waits (at most 5 s) until it listens. The
// capture ends with Stop, or when the test ends.
func Capture(t testing.TB, ns, iface string, filter ...string) *Capturing {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), CommandTimeout)
	c := &Capturing{t: t, cancel: cancel, done: make(chan struct{}), out: &syncBuffer{}}
	cmd := netns.Command(ctx, ns, append([]string{"tcpdump", "-i", iface, "-n", "-l", "-U"}, filter...)...)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.Stop() })
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(c.out.String(), "listening on"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump on %s in %s did not start: %s", iface, ns, c.out)
		}
	}
	return c
}

// Stop ends the capture, after a moment for packets in flight, and
// returns what tcpdump printed.
func (c *Capturing) Stop() string {
	time.Sleep(200 * time.Millisecond)
	c.cancel()
	<-c.done
	return c.out.String()
}

// syncBuffer is a bytes.Buffer that a command writes while a test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
