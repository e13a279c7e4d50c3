package nat

import (
	"net/netip"
	"time"
)

// portWish is the external port a new mapping would have: the internal
// one under port preservation, or one a PCP client suggested. When keep is
// false, or the port is taken or outside the range, a random one is taken.
type portWish struct {
	port uint16
	keep bool
}

// create makes the mapping for key (internal and remote unpacked), or
// tells why it cannot. t.mu is held.
func (t *Table) create(key mappingKey, internal, remote netip.AddrPort, wish portWish, now time.Time) (*Mapping, error) {
	// The same mapping coming back within ReuseDelay takes its old port
	// back; it was never anyone else's (Rule.ReuseDelay). Its host still
	// holds and is charged for it.
	if e, ok := t.held.take(key); ok {
		set := e.addr.portSet(key.proto)
		set.held--
		set.live++
		return t.install(key, internal, remote, e.addr, e.port, now), nil
	}
	hk := key.host()
	h := t.hosts[hk]
	if h != nil && t.rule.MaxPortsPerHost > 0 && h.ports >= t.rule.MaxPortsPerHost {
		t.refused.quota++
		return nil, ErrQuota
	}
	sp := spanFor(&t.rule, isICMP(key.proto), internal.Port())
	if h != nil {
		port, ok := t.choosePort(h.ext, key.proto, wish, sp)
		if !ok {
			t.refused.exhausted++
			return nil, ErrExhausted
		}
		h.ports++
		return t.install(key, internal, remote, h.ext, port, now), nil
	}
	pool := t.v4
	if !internal.Addr().Is4() {
		pool = t.v6
	}
	if len(pool) == 0 {
		t.refused.noAddress++
		return nil, ErrNoAddress
	}
	first := pairFirst(key.internal, len(pool))
	for i := range pool {
		a := pool[(first+i)%len(pool)]
		if port, ok := t.choosePort(a, key.proto, wish, sp); ok {
			t.hosts[hk] = &host{ext: a, ports: 1}
			return t.install(key, internal, remote, a, port, now), nil
		}
	}
	t.refused.exhausted++
	return nil, ErrExhausted
}

// choosePort takes a port of sp on a: the wished one if it is to be kept
// and can be, else a random free one.
func (t *Table) choosePort(a *extAddr, proto uint8, wish portWish, sp span) (uint16, bool) {
	set := a.portSet(proto)
	p := wish.port
	if !wish.keep || !sp.contains(p) || set.isTaken(p) {
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
func (t *Table) install(key mappingKey, internal, remote netip.AddrPort, a *extAddr, port uint16, now time.Time) *Mapping {
	m := &Mapping{
		key:      key,
		proto:    key.proto,
		internal: internal,
		remote:   remote,
		external: netip.AddrPortFrom(a.addr, port),
		addr:     a,
		created:  now,
	}
	t.byKey[key] = m
	t.byExt[extKeyOf(key.proto, m.external)] = m
	return m
}

// remove takes a mapping whose last flow went out of the table and holds
// its port back for delay (Rule.ReuseDelay; a mapping never used takes
// -1), or frees it now when that is negative.
func (t *Table) remove(m *Mapping, delay time.Duration) {
	m.removed = true
	m.first, m.remotes, m.idle = remote{}, nil, remoteList{}
	delete(t.byKey, m.key)
	delete(t.byExt, extKeyOf(m.proto, m.external))
	e := heldPort{key: m.key, addr: m.addr, port: m.external.Port()}
	set := m.addr.portSet(m.proto)
	set.live--
	set.held++
	if delay < 0 {
		t.unhold(e)
		return
	}
	e.until = t.now().Add(delay)
	t.held.add(e)
}

// unhold frees a port whose hold has ended, and the host's charge for it.
func (t *Table) unhold(e heldPort) {
	set := e.addr.portSet(e.key.proto)
	set.held--
	set.free(e.port)
	hk := e.key.host()
	if h := t.hosts[hk]; h != nil {
		if h.ports--; h.ports == 0 {
			delete(t.hosts, hk)
		}
	}
}
