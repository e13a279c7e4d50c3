package config

import (
	"fmt"
	"math"
	"time"
)

// decodeConntrack decodes [conntrack]; t is nil when the file has none.
func decodeConntrack(t *table) Conntrack {
	c := DefaultConntrack
	if n, ok := t.integer("max", 1, math.MaxInt32); ok {
		c.Max = int(n)
	}
	if d, ok := t.duration("tcp_established"); ok {
		c.TCPEstablished = d
	}
	if d, ok := t.duration("tcp_transitory"); ok {
		c.TCPOpening, c.TCPClosing = d, d
	}
	if d, ok := t.duration("tcp_opening"); ok {
		c.TCPOpening = d
	}
	if d, ok := t.duration("tcp_closing"); ok {
		c.TCPClosing = d
	}
	if d, ok := t.duration("udp"); ok {
		c.UDP = d
	}
	if d, ok := t.duration("icmp"); ok {
		c.ICMP = d
	}
	t.unknownKeys()
	return c
}

// rfcMinimums are the shortest idle timeouts the RFCs allow a NAT, by key.
var rfcMinimums = []struct {
	key string
	get func(Conntrack) Duration
	min Duration
	ref string
}{
	{"tcp_established", func(c Conntrack) Duration { return c.TCPEstablished }, 2*time.Hour + 4*time.Minute, "RFC 5382 REQ-5"},
	{"tcp_opening", func(c Conntrack) Duration { return c.TCPOpening }, 4 * time.Minute, "RFC 5382 REQ-5"},
	{"tcp_closing", func(c Conntrack) Duration { return c.TCPClosing }, 4 * time.Minute, "RFC 5382 REQ-5"},
	{"udp", func(c Conntrack) Duration { return c.UDP }, 2 * time.Minute, "RFC 4787 REQ-5"},
	{"icmp", func(c Conntrack) Duration { return c.ICMP }, 60 * time.Second, "RFC 5508 REQ-2"},
}

// BelowRFC lists the timeouts shorter than the RFCs allow, one message
// each in the file's terms ("udp 30s is below 2m0s, the minimum of RFC 4787
// REQ-5"), for `tungate check` to warn about; nil when there are none.
// Parse accepts them: tests and harnesses need quick expiry.
func (c Conntrack) BelowRFC() []string {
	var msgs []string
	for _, m := range rfcMinimums {
		if d := m.get(c); d < m.min {
			msgs = append(msgs, fmt.Sprintf("%s %s is below %s, the minimum of %s", m.key, d, m.min, m.ref))
		}
	}
	return msgs
}
