package nat

import (
	"net/netip"
	"time"
)

// mappingKey names a mapping: the protocol, the internal endpoint and the
// part of the remote the mapping behaviour keeps (MappingBehavior).
type mappingKey struct {
	proto    uint8
	internal netip.AddrPort
	remote   netip.AddrPort
}

// A Mapping binds an internal endpoint to an external one for one protocol
// (RFC 4787 §4.1). Its endpoints never change; everything else is the
// Table's, guarded by its lock.
type Mapping struct {
	key      mappingKey
	external netip.AddrPort
	addr     *extAddr
	created  time.Time

	flows   int  // references held by conntrack flows
	removed bool // the last flow went; the Table no longer knows it
	// remotes is what this mapping remembers of the remotes it has had
	// flows with, reduced by the filtering behaviour; nil under
	// endpoint-independent filtering.
	remotes map[netip.AddrPort]*remote
	idle    remoteList // remotes without flows, least recently used first
}

// Proto is the IP protocol number of the mapping.
func (m *Mapping) Proto() uint8 { return m.key.proto }

// Internal is the inside endpoint: address and port, or ICMP identifier.
func (m *Mapping) Internal() netip.AddrPort { return m.key.internal }

// External is the outside endpoint the internal one is translated to.
func (m *Mapping) External() netip.AddrPort { return m.external }

// remote is one remembered remote of a mapping.
type remote struct {
	key        netip.AddrPort
	flows      int
	prev, next *remote // in the idle list while flows == 0
}

// remember counts a new flow with the remote whose filter key is k.
func (m *Mapping) remember(k netip.AddrPort) {
	r := m.remotes[k]
	switch {
	case r == nil:
		if m.remotes == nil {
			m.remotes = make(map[netip.AddrPort]*remote, 1)
		}
		r = &remote{key: k}
		m.remotes[k] = r
	case r.flows == 0:
		m.idle.remove(r)
	}
	r.flows++
}

// release counts the end of a flow with the remote whose filter key is k.
// A remote without flows is remembered while fewer than maxIdle others are
// idle; past that the least recently used idle one is forgotten.
func (m *Mapping) release(k netip.AddrPort, maxIdle int) {
	r := m.remotes[k]
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
		delete(m.remotes, old.key)
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
