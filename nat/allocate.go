package nat

import (
	"net/netip"
	"time"
)

// create makes the mapping for key, or tells why it cannot. t.mu is held.
func (t *Table) create(key mappingKey, now time.Time) (*Mapping, error) {
	// The same mapping coming back within ReuseDelay takes its old port
	// back; it was never anyone else's (Rule.ReuseDelay). Its host still
	// holds and is charged for it.
	if e, ok := t.held.take(key); ok {
		set := e.addr.portSet(key.proto)
		set.held--
		set.live++
		return t.install(key, e.addr, e.port, now), nil
	}
	internal := key.internal.Addr()
	h := t.hosts[internal]
	if h != nil && t.rule.MaxPortsPerHost > 0 && h.ports >= t.rule.MaxPortsPerHost {
		t.refused.quota++
		return nil, ErrQuota
	}
	sp := spanFor(&t.rule, isICMP(key.proto), key.internal.Port())
	if h != nil {
		port, ok := t.choosePort(h.ext, key, sp)
		if !ok {
			t.refused.exhausted++
			return nil, ErrExhausted
		}
		h.ports++
		return t.install(key, h.ext, port, now), nil
	}
	pool := t.v4
	if !internal.Is4() {
		pool = t.v6
	}
	if len(pool) == 0 {
		t.refused.noAddress++
		return nil, ErrNoAddress
	}
	first := pairFirst(internal, len(pool))
	for i := range pool {
		a := pool[(first+i)%len(pool)]
		if port, ok := t.choosePort(a, key, sp); ok {
			t.hosts[internal] = &host{ext: a, ports: 1}
			return t.install(key, a, port, now), nil
		}
	}
	t.refused.exhausted++
	return nil, ErrExhausted
}

// choosePort takes a port of sp on a for key: the internal one if it is to
// be and can be preserved, else a random free one.
func (t *Table) choosePort(a *extAddr, key mappingKey, sp span) (uint16, bool) {
	set := a.portSet(key.proto)
	p := key.internal.Port()
	if !t.rule.PortPreservation || !sp.contains(p) || set.isTaken(p) {
		var ok bool
		if p, ok = set.pick(sp, t.rand); !ok {
			return 0, false
		}
	}
	set.take(p)
	set.live++
	return p, true
}

// install enters a mapping for key on port of a, already taken.
func (t *Table) install(key mappingKey, a *extAddr, port uint16, now time.Time) *Mapping {
	m := &Mapping{key: key, external: netip.AddrPortFrom(a.addr, port), addr: a, created: now}
	t.byKey[key] = m
	t.byExt[extKey{a.addr, port, key.proto}] = m
	return m
}

// remove takes a mapping whose last flow went out of the table and holds
// its port back for ReuseDelay, or frees it now when there is none.
func (t *Table) remove(m *Mapping) {
	m.removed = true
	m.remotes, m.idle = nil, remoteList{}
	delete(t.byKey, m.key)
	delete(t.byExt, extKey{m.external.Addr(), m.external.Port(), m.key.proto})
	e := heldPort{key: m.key, addr: m.addr, port: m.external.Port()}
	set := m.addr.portSet(m.key.proto)
	set.live--
	set.held++
	if t.rule.ReuseDelay < 0 {
		t.unhold(e)
		return
	}
	e.until = t.now().Add(t.rule.ReuseDelay)
	t.held.add(e)
}

// unhold frees a port whose hold has ended, and the host's charge for it.
func (t *Table) unhold(e heldPort) {
	set := e.addr.portSet(e.key.proto)
	set.held--
	set.free(e.port)
	internal := e.key.internal.Addr()
	if h := t.hosts[internal]; h != nil {
		if h.ports--; h.ports == 0 {
			delete(t.hosts, internal)
		}
	}
}
