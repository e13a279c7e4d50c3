package nat

import (
	"errors"
	"net/netip"
	"time"
)

// ErrPortTaken: an explicit mapping was asked for with its suggested
// external port or none (PCP's PREFER_FAILURE), and that port is not to be
// had.
var ErrPortTaken = errors.New("nat: the suggested external port is not available")

// Explicit makes, or renews, the explicit mapping of internal for proto
// that an inside host asked for by a mapping-control protocol (PCP, RFC
// 6887 §11; NAT-PMP, RFC 6886 §3.3): RFC 6888 REQ-9 wants one. It lives
// for lifetime from now, with or without flows, and lets new flows in from
// any remote: a MAP request without a FILTER option asks for a mapping any
// remote endpoint may reach (RFC 6887 §11, §13.3), whatever the rule's
// filtering does for mappings made by traffic. It is the mapping an
// endpoint-independent mapping rule gives
// the endpoint's outbound flows too, so an inside server's replies and its
// own outbound traffic leave from the port it announced.
//
// A new mapping takes the suggested port when it is non-zero and free, as
// RFC 6887 §11.3 asks; with exact, a suggestion that cannot be met is
// ErrPortTaken rather than another port. An existing mapping keeps its
// port. The mapping counts against Rule.MaxPortsPerHost like any other.
func (t *Table) Explicit(proto uint8, internal netip.AddrPort, suggested uint16, exact bool, lifetime time.Duration) (*Mapping, error) {
	key := keyOf(proto, internal, netip.AddrPort{})
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.held.expire(now, t.unhold)
	m := t.byKey[key]
	if m == nil {
		wish := portWish{internal.Port(), t.rule.PortPreservation}
		if suggested != 0 {
			wish = portWish{suggested, true}
		}
		_, wasHeld := t.held.byKey[key]
		var err error
		if m, err = t.create(key, internal, netip.AddrPort{}, wish, now); err != nil {
			return nil, err
		}
		if exact && suggested != 0 && m.external.Port() != suggested {
			// A new port is freed at once: nobody can have learned it. One
			// the endpoint's last mapping left goes back on hold.
			delay := time.Duration(-1)
			if wasHeld {
				delay = t.rule.ReuseDelay
			}
			t.remove(m, delay)
			return nil, ErrPortTaken
		}
	} else if exact && suggested != 0 && m.external.Port() != suggested {
		return nil, ErrPortTaken
	}
	if m.until.IsZero() {
		m.flows++ // the mapping's own reference, while its lifetime lasts
		t.explicit[key] = m
	}
	m.until = now.Add(lifetime)
	return m, nil
}

// Unmap ends the explicit mappings of internal for proto before their
// lifetime does (a PCP request with lifetime 0, RFC 6887 §15); port 0 ends
// all of internal's address. The mappings themselves go with the last of
// their flows. It reports how many it ended.
func (t *Table) Unmap(proto uint8, internal netip.AddrPort) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for key, m := range t.explicit {
		if m.proto == proto && m.internal.Addr() == internal.Addr() && (internal.Port() == 0 || m.internal.Port() == internal.Port()) {
			t.unpin(key, m)
			n++
		}
	}
	return n
}

// ExpireExplicit ends the explicit mappings whose lifetime is over. The
// router calls it on its housekeeping tick.
func (t *Table) ExpireExplicit() {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for key, m := range t.explicit {
		if !now.Before(m.until) {
			t.unpin(key, m)
		}
	}
}

// unpin drops an explicit mapping's own reference. t.mu is held.
func (t *Table) unpin(key mappingKey, m *Mapping) {
	delete(t.explicit, key)
	m.until = time.Time{}
	if m.flows--; m.flows == 0 {
		t.remove(m, t.rule.ReuseDelay)
	}
}

// Lifetime is how long an explicit mapping has left at now, or 0 for a
// mapping made by traffic.
func (t *Table) Lifetime(m *Mapping) time.Duration {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if m.until.IsZero() {
		return 0
	}
	return max(m.until.Sub(t.now()), 0)
}

// Epoch is how long the table has kept its mappings: a PCP or NAT-PMP
// server's epoch time (RFC 6887 §8.5), by which clients notice a restart
// that lost their mappings.
func (t *Table) Epoch() time.Duration { return t.now().Sub(t.born) }

// ExternalAddr is the external address the mappings of internal use, or
// would use: NAT-PMP's public address (RFC 6886 §3.2). It is false when
// the pool has no address of internal's family.
func (t *Table) ExternalAddr(internal netip.Addr) (netip.Addr, bool) {
	hk := keyOf(0, netip.AddrPortFrom(internal, 0), netip.AddrPort{}).host()
	t.mu.RLock()
	defer t.mu.RUnlock()
	if h := t.hosts[hk]; h != nil {
		return h.ext.addr, true
	}
	pool := t.v4
	if !internal.Is4() {
		pool = t.v6
	}
	if len(pool) == 0 {
		return netip.Addr{}, false
	}
	return pool[pairFirst(hk.addr, len(pool))].addr, true
}
