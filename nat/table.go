package nat

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"
)

// Errors of Outbound: the new flow cannot have a mapping and is to be
// dropped (RFC 6888 REQ-11; RFC 5508 REQ-8 asks for an ICMP Destination
// Unreachable, code 13, to the sender). Existing mappings are untouched.
var (
	// ErrQuota: the internal address holds Rule.MaxPortsPerHost ports.
	ErrQuota = errors.New("nat: per-host port quota reached")
	// ErrExhausted: the paired external address has no free port in the
	// range the flow needs.
	ErrExhausted = errors.New("nat: no free external port")
	// ErrNoAddress: the pool has no external address of the internal
	// endpoint's family.
	ErrNoAddress = errors.New("nat: no external address of this family")
)

// Protocol numbers with identifiers rather than ports.
const (
	protoICMP   = 1
	protoICMPv6 = 58
)

func isICMP(proto uint8) bool { return proto == protoICMP || proto == protoICMPv6 }

// A Table is the NAT state of one `[[snat]]` rule: its mappings, the
// external ports they and ReuseDelay hold, and the hosts behind them.
type Table struct {
	rule Rule
	now  func() time.Time
	rand rand.Source

	mu     sync.RWMutex
	byKey  map[mappingKey]*Mapping // outbound: which mapping a flow uses
	byExt  map[extKey]*Mapping     // inbound: which mapping owns a port
	v4, v6 []*extAddr
	hosts  map[hostKey]*host
	held   holds
	// explicit are the mappings made by Explicit, while their lifetime
	// lasts.
	explicit map[mappingKey]*Mapping
	born     time.Time // when the table began, for Epoch
	refused
}

// New makes the table for rule. now is the clock (time.Now when nil);
// random drives the port choice (a runtime-seeded generator when nil, so
// ports are hard to guess: RFC 6888 REQ-15).
func New(rule Rule, now func() time.Time, random rand.Source) (*Table, error) {
	rule, err := rule.withDefaults()
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	if random == nil {
		random = runtimeSource{}
	}
	t := &Table{
		rule:  rule,
		now:   now,
		rand:  random,
		byKey: make(map[mappingKey]*Mapping),
		byExt: make(map[extKey]*Mapping),
		hosts: make(map[hostKey]*host),
		held:  holds{byKey: make(map[mappingKey]heldPort)},

		explicit: make(map[mappingKey]*Mapping),
		born:     now(),
	}
	for _, a := range rule.External {
		e := &extAddr{addr: a, ports: make(map[uint8]*portSet)}
		if a.Is4() {
			t.v4 = append(t.v4, e)
		} else {
			t.v6 = append(t.v6, e)
		}
	}
	return t, nil
}

// runtimeSource is the runtime's random generator, safe for concurrent
// use.
type runtimeSource struct{}

func (runtimeSource) Uint64() uint64 { return rand.Uint64() }

// Outbound returns the mapping for a new flow from internal to remote,
// making it if needed, and takes one reference on it for that flow: the
// caller gives it back with Release when the flow ends, or at once if the
// flow is not made after all.
//
// Which flows share a mapping is the mapping behaviour's choice, except
// that ICMP queries always map endpoint-independently (RFC 5508 REQ-1a:
// "NAT mapping of ICMP Query Identifiers SHOULD be external host
// independent"). remote is remembered for filtering while the mapping
// lives (see Rule.MaxIdleRemotes). For ICMP, internal's port is the query
// identifier and remote's port is ignored.
//
// A new mapping takes the host's paired external address and, on it, the
// internal port when Rule.PortPreservation is on and that port is free,
// else a random free one (RFC 6056 Algorithm 1) in the internal port's
// range class (RFC 4787 REQ-3a) and, with Rule.Parity, of its parity. A
// new mapping past Rule.MaxPortsPerHost gets ErrQuota, one without a free
// port ErrExhausted; both are counted in Stats. A port is held by one
// mapping only, so an inbound packet names exactly one internal endpoint.
// RFC 4787 REQ-3: "A NAT MUST NOT have a "Port assignment" behavior of
// "Port overloading"", and RFC 5382 REQ-7 the same for TCP. RFC 7857 §3
// would let endpoint-dependent mappings share a port ("If destination
// addresses and ports are different for outgoing connections started by
// local clients, a NAT MAY assign the same external port as the source
// ports for the connections"); this NAT does not: inbound lookup stays one
// exact match, and under the endpoint-independent mapping RFC 4787 REQ-1
// requires, overlapping could not apply anyway.
func (t *Table) Outbound(proto uint8, internal, remote netip.AddrPort) (*Mapping, error) {
	remote = normalize(proto, remote)
	behavior := t.rule.Mapping
	if isICMP(proto) {
		behavior = EndpointIndependentMapping
	}
	remoteKey := behavior.remoteKey(remote)
	key := keyOf(proto, internal, remoteKey)

	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	t.held.expire(now, t.unhold)
	m := t.byKey[key]
	if m == nil {
		var err error
		wish := portWish{internal.Port(), t.rule.PortPreservation}
		if m, err = t.create(key, internal, remoteKey, wish, now); err != nil {
			return nil, err
		}
	}
	t.acquire(m, remote)
	return m, nil
}

// Inbound returns the mapping that owns the external endpoint external for
// proto, or nil, and whether the filtering behaviour admits a new flow
// from remote to it. It takes no reference: to start a flow, call Acquire.
// For ICMP, external's port is the query identifier and remote's port is
// ignored. Inbound allocates nothing.
func (t *Table) Inbound(proto uint8, external, remote netip.AddrPort) (*Mapping, bool) {
	remote = normalize(proto, remote)
	t.mu.RLock()
	m := t.byExt[extKeyOf(proto, external)]
	ok := m != nil && t.admits(m, remote)
	t.mu.RUnlock()
	return m, ok
}

// admits tells whether m's filtering lets a new flow in from remote. An
// explicit mapping lets in anyone (see Explicit).
func (t *Table) admits(m *Mapping, remote netip.AddrPort) bool {
	if !m.until.IsZero() {
		return true
	}
	k, ok := t.rule.Filtering.filterKey(remote)
	if !ok {
		return true
	}
	return m.find(k) != nil
}

// Acquire takes a reference on m for a new flow with remote that an
// admitted inbound packet starts. It reports false if m has gone since
// Inbound returned it; the packet is then to be treated as unmatched.
func (t *Table) Acquire(m *Mapping, remote netip.AddrPort) bool {
	remote = normalize(m.proto, remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.removed {
		return false
	}
	t.acquire(m, remote)
	return true
}

func (t *Table) acquire(m *Mapping, remote netip.AddrPort) {
	m.flows++
	if k, ok := t.rule.Filtering.filterKey(remote); ok {
		m.remember(k)
	}
}

// Release gives back the reference a flow with remote held on m, from
// Outbound or Acquire. With the last one the mapping is removed and its
// port held back for Rule.ReuseDelay. A Release without a reference is
// ignored.
func (t *Table) Release(m *Mapping, remote netip.AddrPort) {
	remote = normalize(m.proto, remote)
	t.mu.Lock()
	defer t.mu.Unlock()
	if m.removed || m.flows == 0 {
		return
	}
	m.flows--
	if k, ok := t.rule.Filtering.filterKey(remote); ok {
		m.release(k, t.rule.MaxIdleRemotes)
	}
	if m.flows == 0 {
		t.remove(m, t.rule.ReuseDelay)
	}
}

// normalize drops what an endpoint carries that means nothing for proto:
// the remote of an ICMP query has no port.
func normalize(proto uint8, remote netip.AddrPort) netip.AddrPort {
	if isICMP(proto) {
		return netip.AddrPortFrom(remote.Addr(), 0)
	}
	return remote
}
