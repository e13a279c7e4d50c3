// Package route is the router's forwarding table (FIB): a longest-prefix
// match from a destination address to the route that carries it.
//
// A Table is built once by New and never changes; on reload the router
// builds a new Table and swaps the pointer, so Lookup takes no lock. The
// only mutable state is each Entry's Use counter, which is atomic.
//
// Addresses are looked up as given: an IPv4 destination must be the 4-byte
// form (netip.Addr.Unmap it if it came from a 16-byte source). An
// IPv4-mapped IPv6 address is an IPv6 destination and matches only IPv6
// routes, as it would on the wire.
//
// # Design
//
// New sorts a copy of the routes into display order (IPv4 first, longer
// prefix first, then address, then metric). That one sort serves three
// purposes: Routes is just a walk over the sorted slice, duplicates of a
// (prefix, metric) pair end up adjacent, and the first route of every
// prefix is the one with the lowest metric, so only that one goes into the
// LPM structure. Higher-metric routes to the same prefix are kept for
// display but are never returned by Lookup (their Use stays 0), as in the
// kernel. The LPM structures index (IPv4) or point (IPv6) into that one
// []Entry, so a lookup result is the route itself, counter included.
//
// IPv6 uses a bart.Table (github.com/gaissmai/bart), a multibit trie with
// 8-bit strides and path compression. IPv4 uses our own structure
// (poptrie.go): a direct array indexed by the top 16 bits of the address,
// 24 bits from 128Ki routes on, then Poptrie nodes of 6 bits each. With
// 24 bits, a lookup that ends at a /24 or shorter prefix, which is almost
// every route of an Internet table, is one memory access.
//
// bart was the default and lost on IPv4. Each bart level costs two
// dependent memory accesses (the node, then its sparse child slice), which
// in a table far larger than the caches are a cache miss each. Lookups in
// ns/op, random destinations inside random routes (see BenchmarkLookup),
// prefix lengths shaped like the Internet's (DFZ) or uniform in /8../32;
// ranges over runs on a 2-vCPU AMD EPYC VM shared with other jobs:
//
//	                   bart.Table  bart.Fast     own
//	IPv4   1k (DFZ)       21-23      15-17     14-18
//	IPv4 100k (DFZ)     145-180    135-160     36-52
//	IPv4   1M (DFZ)     250-300    215-245     39-56
//	IPv4   1M (uniform) 300-320    280-420   108-119
//
// Memory for 1M IPv4 (DFZ): own 66 MiB, 64 MiB of it the direct array,
// bart.Table 31 MiB; the Entry slice adds 76 MiB either way. New takes
// 0.6-0.8 s for 1M routes, most of it sorting.
//
// The same Poptrie for IPv6 (16-bit direct array, keys as two uint64s)
// was not measurably faster than bart on 100k routes of /16../64 (270-520
// against 230-390 ns/op across runs): below the direct array such tables
// are sparse, and bart's path compression skips levels that a Poptrie has
// to walk. So IPv6 stays on bart, and our code is IPv4 only, 32-bit keys.
package route

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/gaissmai/bart"
)

// Proto tells how a route came to be, as in `ip route`'s proto field.
type Proto uint8

const (
	// Connected is the prefix of one of the router's own addresses, on-link
	// on that interface.
	Connected Proto = iota + 1
	// Static is a route from the configuration file.
	Static
)

// String returns the name `ip route` would show.
func (p Proto) String() string {
	switch p {
	case Connected:
		return "kernel"
	case Static:
		return "static"
	}
	return fmt.Sprintf("Proto(%d)", uint8(p))
}

// Route is one route as given to New.
type Route struct {
	To     netip.Prefix // destination; must be masked (10.0.0.0/8, not 10.1.2.3/8)
	Via    netip.Addr   // gateway; the zero Addr means on-link: the next hop is the destination
	Dev    int          // egress interface index
	Metric uint32       // lower wins among routes with the same To
	Proto  Proto
}

// Entry is a route installed in a Table. Its Route must not be modified.
type Entry struct {
	Route

	// Use counts the packets forwarded by this route (route -n's Use
	// column). The Table does not touch it: Lookup also serves callers
	// that must not count (e.g. source checks), so counting is the
	// forwarding path's call, one atomic add.
	Use atomic.Uint64
}

// Table is an immutable forwarding table, made by New.
type Table struct {
	// entries holds every route in display order. The IPv4 trie's leaves
	// index it and the IPv6 table points into it, so it is never resized.
	entries []Entry

	// The lowest-metric entry of each prefix, by family.
	v4 trie
	v6 bart.Table[*Entry]
}

// New builds a Table from routes. It fails on an invalid or unmasked
// prefix, an unknown Proto, or two routes with the same To and Metric.
// routes is not retained.
func New(routes []Route) (*Table, error) {
	sorted := make([]Route, len(routes))
	for i, r := range routes {
		if !r.To.IsValid() {
			return nil, fmt.Errorf("route %d: invalid prefix %v", i, r.To)
		}
		if r.To != r.To.Masked() {
			return nil, fmt.Errorf("route %d: prefix %v has host bits set (did you mean %v?)", i, r.To, r.To.Masked())
		}
		if r.Proto != Connected && r.Proto != Static {
			return nil, fmt.Errorf("route %d (%v): unknown proto %d", i, r.To, r.Proto)
		}
		if r.To.Addr().Is4() {
			// The gateway of an IPv4 route is resolved with ARP, which
			// needs the 4-byte form even if it was written as ::ffff:a.b.c.d.
			r.Via = r.Via.Unmap()
		}
		sorted[i] = r
	}
	slices.SortFunc(sorted, compareRoutes)

	t := &Table{entries: make([]Entry, len(sorted))}
	var v4 []prefix
	for i, r := range sorted {
		e := &t.entries[i]
		e.Route = r
		if i > 0 && sorted[i-1].To == r.To {
			if sorted[i-1].Metric == r.Metric {
				return nil, fmt.Errorf("duplicate route %v metric %d", r.To, r.Metric)
			}
			continue // shadowed by the lower metric just before
		}
		if a := r.To.Addr(); a.Is4() {
			v4 = append(v4, prefix{addr: uint32v4(a), bits: uint(r.To.Bits()), leaf: uint32(i) + 1})
		} else {
			t.v6.Insert(r.To, e)
		}
	}
	t.v4 = newTrie(v4)
	return t, nil
}

func uint32v4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// compareRoutes orders routes for display: IPv4 before IPv6, longer prefix
// first, then by address, then lowest metric first.
func compareRoutes(a, b Route) int {
	if c := cmp.Compare(a.To.Addr().BitLen(), b.To.Addr().BitLen()); c != 0 {
		return c
	}
	if c := cmp.Compare(b.To.Bits(), a.To.Bits()); c != 0 {
		return c
	}
	if c := a.To.Addr().Compare(b.To.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Metric, b.Metric)
}

// Lookup returns the route to dst: the longest matching prefix and, among
// routes to that prefix, the lowest metric. It returns nil if no route
// matches. It does not allocate and is safe for concurrent use.
func (t *Table) Lookup(dst netip.Addr) *Entry {
	if dst.Is4() {
		// The direct array is read here, not in a trie method: in a big
		// table it answers most lookups, which then cost no call, and
		// fewer instructions per lookup let the CPU overlap more of the
		// cache misses of consecutive lookups.
		a := uint32v4(dst)
		leaf := t.v4.direct[a>>t.v4.shift]
		if leaf&isNode != 0 {
			leaf = t.v4.descend(leaf, a)
		}
		if leaf == 0 {
			return nil
		}
		return &t.entries[leaf-1]
	}
	e, _ := t.v6.Lookup(dst) // nil for the zero Addr
	return e
}

// Routes yields every route in display order: IPv4 first, longer prefix
// first, then by address and metric, including routes shadowed by a lower
// metric.
func (t *Table) Routes() iter.Seq[*Entry] {
	return func(yield func(*Entry) bool) {
		for i := range t.entries {
			if !yield(&t.entries[i]) {
				return
			}
		}
	}
}
