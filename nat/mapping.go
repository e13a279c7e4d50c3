package nat

import (
	"net/netip"
	"time"
)

// A Mapping binds an internal endpoint to an external one for one protocol
// (RFC 4787 §4.1). Its endpoints never change; everything else is the
// Table's, guarded by its lock.
type Mapping struct {
	key      mappingKey
	proto    uint8
	internal netip.AddrPort
	remote   netip.AddrPort // the part of the remote the mapping is for
	external netip.AddrPort
	addr     *extAddr
	created  time.Time

	flows   int  // references held by conntrack flows, and one while until is set
	removed bool // the last flow went; the Table no longer knows it
	// until is the end of an explicit mapping's lifetime (Table.Explicit);
	// zero for a mapping made by traffic.
	until time.Time
	// first and remotes are what this mapping remembers of the remotes it
	// has had flows with, reduced by the filtering behaviour: the first
	// one inline, since most mappings only ever have one, the others in
	// the map. Nothing under endpoint-independent filtering.
	first   remote
	remotes map[netip.AddrPort]*remote
	idle    remoteList // remotes without flows, least recently used first
}

// Proto is the IP protocol number of the mapping.
func (m *Mapping) Proto() uint8 { return m.proto }

// Internal is the inside endpoint: address and port, or ICMP identifier.
func (m *Mapping) Internal() netip.AddrPort { return m.internal }

// External is the outside endpoint the internal one is translated to.
func (m *Mapping) External() netip.AddrPort { return m.external }

// remote is one remembered remote of a mapping.
type remote struct {
	key        netip.AddrPort
	known      bool // in use (for Mapping.first)
	flows      int
	prev, next *remote // in the idle list while flows == 0
}

// find returns the remembered remote with filter key k, or nil.
func (m *Mapping) find(k netip.AddrPort) *remote {
	if m.first.known && m.first.key == k {
		return &m.first
	}
	return m.remotes[k]
}

func (m *Mapping) add(k netip.AddrPort) *remote {
	if !m.first.known {
		m.first = remote{key: k, known: true}
		return &m.first
	}
	if m.remotes == nil {
		m.remotes = make(map[netip.AddrPort]*remote)
	}
	r := &remote{key: k, known: true}
	m.remotes[k] = r
	return r
}

func (m *Mapping) drop(r *remote) {
	if r == &m.first {
		m.first = remote{}
		return
	}
	delete(m.remotes, r.key)
}

// remembered is how many remotes the mapping remembers.
func (m *Mapping) remembered() int {
	n := len(m.remotes)
	if m.first.known {
		n++
	}
	return n
}

// remember counts a new flow with the remote whose filter key is k.
func (m *Mapping) remember(k netip.AddrPort) {
	r := m.find(k)
	switch {
	case r == nil:
		r = m.add(k)
	case r.flows == 0:
		m.idle.remove(r)
	}
	r.flows++
}

// release counts the end of a flow with the remote whose filter key is k.
// A remote without flows is remembered while fewer than maxIdle others are
// idle; past that the least recently used idle one is forgotten.
func (m *Mapping) release(k netip.AddrPort, maxIdle int) {
	r := m.find(k)
	if r == nil || r.flows == 0 {
		return
	}
	if r.flows--; r.flows > 0 {
		return
	}
	m.idle.pushBack(r)
	for m.idle.n > max(maxIdle, 0) {
		old := m.idle.head
		m.idle.remove(old)
		m.drop(old)
	}
}

// remoteList is an intrusive doubly linked list of remotes.
type remoteList struct {
	head, tail *remote
	n          int
}

func (l *remoteList) pushBack(r *remote) {
	r.prev, r.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = r
	} else {
		l.head = r
	}
	l.tail = r
	l.n++
}

func (l *remoteList) remove(r *remote) {
	if r.prev != nil {
		r.prev.next = r.next
	} else {
		l.head = r.next
	}
	if r.next != nil {
		r.next.prev = r.prev
	} else {
		l.tail = r.prev
	}
	r.prev, r.next = nil, nil
	l.n--
}
