package nat

import (
	"errors"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// refMapping is the reference model's view of one live mapping.
type refMapping struct {
	key   refKey
	flows int
	live  map[netip.AddrPort]int // flows per filter key
	idle  []netip.AddrPort       // filter keys without flows, oldest first
}

// refKey names a mapping in the reference model.
type refKey struct {
	proto            uint8
	internal, remote netip.AddrPort
}

// refModel is a brute-force model of what a Table should answer, written
// from the RFC definitions and independent of the Table's data structures.
type refModel struct {
	rule     Rule
	maxIdle  int
	mappings map[*Mapping]*refMapping
}

// refRemoteKey reduces a remote as RFC 4787 §4.1 says for the behaviour.
func (r *refModel) refRemoteKey(proto uint8, remote netip.AddrPort) netip.AddrPort {
	name := r.rule.Mapping.String()
	if proto == icmp {
		name = "endpoint-independent"
	}
	switch name {
	case "endpoint-independent":
		return netip.AddrPort{}
	case "address-dependent":
		return netip.AddrPortFrom(remote.Addr(), 0)
	}
	return remote
}

// refFilterKey reduces a remote as RFC 4787 §5 says; ok false under EIF.
func (r *refModel) refFilterKey(proto uint8, remote netip.AddrPort) (netip.AddrPort, bool) {
	if proto == icmp {
		remote = netip.AddrPortFrom(remote.Addr(), 0)
	}
	switch r.rule.Filtering.String() {
	case "endpoint-independent":
		return netip.AddrPort{}, false
	case "address-dependent":
		return netip.AddrPortFrom(remote.Addr(), 0), true
	}
	return remote, true
}

func (r *refModel) find(key refKey) *Mapping {
	for m, rm := range r.mappings {
		if rm.key == key {
			return m
		}
	}
	return nil
}

func (r *refModel) start(m *Mapping, proto uint8, remote netip.AddrPort) {
	rm := r.mappings[m]
	rm.flows++
	if k, ok := r.refFilterKey(proto, remote); ok {
		rm.idle = slices.DeleteFunc(rm.idle, func(x netip.AddrPort) bool { return x == k })
		rm.live[k]++
	}
}

func (r *refModel) end(m *Mapping, proto uint8, remote netip.AddrPort) {
	rm := r.mappings[m]
	rm.flows--
	if k, ok := r.refFilterKey(proto, remote); ok {
		if rm.live[k]--; rm.live[k] == 0 {
			delete(rm.live, k)
			rm.idle = append(rm.idle, k)
			for len(rm.idle) > r.maxIdle {
				rm.idle = rm.idle[1:]
			}
		}
	}
	if rm.flows == 0 {
		delete(r.mappings, m)
	}
}

// inbound is the brute-force answer to Inbound: the live mapping on that
// external endpoint, and whether the filtering rule admits remote.
func (r *refModel) inbound(proto uint8, external, remote netip.AddrPort) (*Mapping, bool) {
	for m, rm := range r.mappings {
		if rm.key.proto == proto && m.External() == external {
			k, ok := r.refFilterKey(proto, remote)
			return m, !ok || rm.live[k] > 0 || slices.Contains(rm.idle, k)
		}
	}
	return nil, false
}

type flow struct {
	m      *Mapping
	proto  uint8
	remote netip.AddrPort
}

// TestProperty runs random outbound, inbound, release and clock steps on
// random rules with a tiny port range, and checks after each that no two
// live mappings share an external endpoint (RFC 4787 REQ-3), that pairing
// and quota hold, that mappings are shared exactly as the mapping
// behaviour says, and that Inbound agrees with the reference model.
func TestProperty(t *testing.T) {
	internals := []netip.AddrPort{}
	for _, h := range []string{"192.168.46.1", "192.168.46.2", "192.168.46.3"} {
		for _, p := range []uint16{1000, 1023, 1024, 1025} {
			internals = append(internals, netip.AddrPortFrom(ip(h), p))
		}
	}
	remotes := []netip.AddrPort{ap("203.0.113.1:53"), ap("203.0.113.1:54"), ap("203.0.113.2:53"), ap("203.0.113.2:54")}
	protos := []uint8{udp, tcp, icmp}
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		r := Rule{
			External:         []netip.Addr{ip("18.18.18.8"), ip("18.18.18.9")}[:1+rng.IntN(2)],
			Ports:            PortRange{1020, 1020 + uint16(rng.IntN(10))},
			Mapping:          mappingCases[rng.IntN(3)].behavior,
			Filtering:        filterCases[rng.IntN(3)].behavior,
			PortPreservation: rng.IntN(2) == 0,
			Parity:           rng.IntN(2) == 0,
			MaxPortsPerHost:  rng.IntN(5),
			ReuseDelay:       []time.Duration{-1, 0, 10 * time.Second}[rng.IntN(3)],
			MaxIdleRemotes:   []int{-1, 0, 1, 2}[rng.IntN(4)],
		}
		c := newClock()
		tab, err := New(r, c.now, rand.NewPCG(uint64(seed), 9))
		if err != nil {
			t.Fatal(err)
		}
		ref := &refModel{rule: tab.rule, maxIdle: max(tab.rule.MaxIdleRemotes, 0), mappings: map[*Mapping]*refMapping{}}
		var flows []flow
		for step := range 400 {
			proto := protos[rng.IntN(len(protos))]
			remote := remotes[rng.IntN(len(remotes))]
			switch op := rng.IntN(10); {
			case op < 4:
				internal := internals[rng.IntN(len(internals))]
				key := refKey{proto, internal, ref.refRemoteKey(proto, remote)}
				existing := ref.find(key)
				m, err := tab.Outbound(proto, internal, remote)
				switch {
				case err != nil && existing != nil:
					t.Fatalf("seed %d step %d: new flow on live mapping %v refused: %v", seed, step, key, err)
				case err != nil:
					if !errors.Is(err, ErrExhausted) && !errors.Is(err, ErrQuota) {
						t.Fatalf("seed %d step %d: %v", seed, step, err)
					}
					continue
				case existing != nil && m != existing:
					t.Fatalf("seed %d step %d: %v got a new mapping beside its live one", seed, step, key)
				case existing == nil:
					if _, ok := ref.mappings[m]; ok {
						t.Fatalf("seed %d step %d: %v shares a mapping with %v", seed, step, key, ref.mappings[m].key)
					}
					if p := m.External().Port(); p < r.Ports.Lo || p > r.Ports.Hi {
						t.Fatalf("seed %d step %d: port %d outside the range", seed, step, p)
					}
					ref.mappings[m] = &refMapping{key: key, live: map[netip.AddrPort]int{}}
				}
				ref.start(m, proto, remote)
				flows = append(flows, flow{m, proto, remote})
			case op < 7 && len(flows) > 0:
				i := rng.IntN(len(flows))
				f := flows[i]
				flows = slices.Delete(flows, i, i+1)
				tab.Release(f.m, f.remote)
				ref.end(f.m, f.proto, f.remote)
			case op < 9:
				external := netip.AddrPortFrom(r.External[rng.IntN(len(r.External))], r.Ports.Lo+uint16(rng.IntN(int(r.Ports.Hi-r.Ports.Lo)+1)))
				wantM, wantOK := ref.inbound(proto, external, remote)
				m, ok := tab.Inbound(proto, external, remote)
				if m != wantM || ok != wantOK {
					t.Fatalf("seed %d step %d: Inbound(%d, %v, %v) = %p, %v; reference %p, %v", seed, step, proto, external, remote, m, ok, wantM, wantOK)
				}
				if ok && rng.IntN(2) == 0 {
					if !tab.Acquire(m, remote) {
						t.Fatalf("seed %d step %d: Acquire on a live mapping failed", seed, step)
					}
					ref.start(m, proto, remote)
					flows = append(flows, flow{m, proto, remote})
				}
			default:
				c.advance(time.Duration(rng.IntN(8)) * time.Second)
			}
			checkConsistent(t, tab)
			checkHosts(t, tab)
		}
	}
}

// checkHosts checks paired pooling and the per-host quota: all ports a
// host holds, live or held back, are on its one external address, and
// their number is its charge.
func checkHosts(tb testing.TB, t *Table) {
	tb.Helper()
	t.mu.RLock()
	defer t.mu.RUnlock()
	count := map[hostKey]int{}
	on := func(hk hostKey, a *extAddr) {
		h := t.hosts[hk]
		if h == nil || h.ext != a {
			tb.Fatalf("host %v: a port on %v, host record %+v", hk, a.addr, h)
		}
		count[hk]++
	}
	for k, m := range t.byKey {
		on(k.host(), m.addr)
	}
	for k, e := range t.held.byKey {
		on(k.host(), e.addr)
	}
	for hk, h := range t.hosts {
		if h.ports != count[hk] {
			tb.Fatalf("host %v charged %d ports, holds %d", hk, h.ports, count[hk])
		}
		if q := t.rule.MaxPortsPerHost; q > 0 && h.ports > q {
			tb.Fatalf("host %v holds %d ports, quota %d", hk, h.ports, q)
		}
	}
}
