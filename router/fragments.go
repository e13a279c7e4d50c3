package router

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/tungate/tungate/nat/xlate"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/packet"
)

// Fragments through the NAT. Only a datagram's first fragment carries the
// ports that find its flow; the later ones must be translated the same
// way. RFC 4787 REQ-14: "A NAT MUST support receiving in-order and
// out-of-order fragments, so it MUST have a mechanism for holding
// fragments until all of the fragments required for translation are
// received." The tracker remembers, per datagram, how its first fragment
// was translated; later fragments that come first wait for it.
const (
	fragTimeout    = 30 * time.Second // Linux's ipfrag_time
	maxFragEntries = 4096
	maxFragHeld    = 1024 // fragments waiting, all datagrams together
	// maxFragHeldFrom bounds what one source may have waiting, so that a
	// host sending fragments whose first never comes cannot take every
	// other host's room.
	maxFragHeldFrom = 64
)

// fragKey is a datagram as its fragments arrive (RFC 791: source,
// destination, protocol and Identification name it).
type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

func fragKeyOf(p *packet.Packet) fragKey {
	return fragKey{p.Src, p.Dst, p.FragID, p.Proto}
}

// fragEntry is one datagram: unknown until its first fragment passed, then
// how it was translated (or that it went to the router's own stack).
type fragEntry struct {
	until    time.Time
	known    bool
	local    bool
	src, dst netip.Addr // the first fragment's addresses after translation
	held     []heldFragment
}

type heldFragment struct {
	pkt []byte
	in  int
}

type fragTracker struct {
	mu      sync.Mutex
	entries map[fragKey]*fragEntry
	held    int
	from    map[netip.Addr]int // fragments waiting, by source
}

// later handles a fragment after the first: translated like its first
// fragment (Continue; local when that one went to the router's own
// stack), or held until that one comes (Taken).
func (t *fragTracker) later(p *packet.Packet, now time.Time, mayNeedNAT bool) (v packet.Verdict, local bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[fragKeyOf(p)]
	switch {
	case e != nil && e.known:
		if e.src != p.Src || e.dst != p.Dst {
			xlate.RewriteAddrs(p, e.src, e.dst)
		}
		p.Reassociated = true
		return packet.Continue, e.local
	case e == nil && !mayNeedNAT:
		return packet.Continue, false
	}
	if e == nil {
		if len(t.entries) >= maxFragEntries {
			return packet.Drop(packet.ReasonFragmentTimeout), false
		}
		e = &fragEntry{until: now.Add(fragTimeout)}
		t.entries[fragKeyOf(p)] = e
	}
	if t.held >= maxFragHeld || t.from[p.Src] >= maxFragHeldFrom {
		return packet.Drop(packet.ReasonFragmentTimeout), false
	}
	e.held = append(e.held, heldFragment{slices.Clone(p.Data()), p.In})
	t.unheld(p.Src, -1)
	return packet.Taken, false
}

// first records how a datagram's first fragment, which arrived as key,
// left (src, dst), and returns the fragments that waited for it.
func (t *fragTracker) first(key fragKey, src, dst netip.Addr, local bool, now time.Time) []heldFragment {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		if len(t.entries) >= maxFragEntries {
			return nil
		}
		e = &fragEntry{}
		t.entries[key] = e
	}
	e.until, e.known, e.local, e.src, e.dst = now.Add(fragTimeout), true, local, src, dst
	held := e.held
	e.held = nil
	t.unheld(key.src, len(held))
	return held
}

// unheld counts n fragments from src that no longer wait (negative: that
// wait now).
func (t *fragTracker) unheld(src netip.Addr, n int) {
	t.held -= n
	if t.from[src] -= n; t.from[src] <= 0 {
		delete(t.from, src)
	}
}

// expire forgets datagrams not completed within fragTimeout, and drops
// what waited for them; it returns how many fragments it dropped.
func (t *fragTracker) expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	dropped := 0
	for k, e := range t.entries {
		if now.After(e.until) {
			dropped += len(e.held)
			t.unheld(k.src, len(e.held))
			delete(t.entries, k)
		}
	}
	return dropped
}

// expireFragments drops the fragments whose first never came, counted.
func (r *Router) expireFragments() {
	r.output.drops[packet.ReasonFragmentTimeout].Add(uint64(r.frags.expire(r.now())))
}

// mayNeedNAT reports whether a later fragment whose first fragment has not
// been seen could belong to a translated datagram: sent by a host a
// source NAT rule covers, or to one of the router's addresses.
func (s *snapshot) mayNeedNAT(p *packet.Packet) bool {
	return s.own[p.Dst] || s.nat.insideRule(p.Src) != nil
}

// firstFragment records a first fragment that is leaving the pipeline,
// translated or not, and hands back the later fragments that waited.
func (r *Router) firstFragment(p *packet.Packet) []heldFragment {
	if !p.Fragment || p.NonFirstFragment {
		return nil
	}
	return r.frags.first(arrivedAs(p), p.Src, p.Dst, false, r.now())
}

// arrivedAs is the datagram p belongs to as its fragments arrive, before
// the NAT changed its addresses.
func arrivedAs(p *packet.Packet) fragKey {
	k := fragKeyOf(p)
	if f, ok := p.Flow.(*conntrack.Flow); ok {
		key := f.Orig()
		if conntrack.Dir(p.FlowDir) == conntrack.Reply {
			key = f.Reply()
		}
		k.src, k.dst = key.Src, key.Dst
	} else if nf, ok := p.NewFlow.(*newFlow); ok {
		k.src, k.dst = nf.orig.Src, nf.orig.Dst
	}
	return k
}
