package route

import (
	"cmp"
	"math/bits"
	"slices"
)

// This file is the IPv4 LPM structure: a direct array indexed by the top
// bits of the address, and below it a Poptrie (Asai and Ohara, "Poptrie: A
// Compressed Trie with Population Count for Fast and Scalable Software IP
// Routing Table Lookup", SIGCOMM 2015).
//
// Every node consumes the next 6 bits of the address, a "slot" (0..63), so
// that a node's slots fit in one uint64 bitmap. Routes are leaf-pushed:
// every slot that is not a child node holds the longest route covering it,
// so a lookup walks straight down and never backtracks. A node does not
// store its 64 slots; it stores two bitmaps, and a popcount turns a slot
// into an index into the node's run of children or of leaves, which are
// contiguous in shared arrays. Equal adjacent leaves are stored once, which
// keeps sparse nodes small. A lookup is one memory access per level and a
// few instructions, without pointers for the garbage collector to follow.

const (
	stride = 6 // log2 of the 64 bits in a node's bitmaps

	// isNode marks a direct-array value that is a node index, not a leaf.
	isNode = 1 << 31
)

// bigTable is the number of routes from which the direct array covers 24
// bits (64 MiB, at most 256 bytes per route) instead of 16 (256 KiB). With
// 24 bits, the /24 and shorter prefixes that make up almost all of a large
// (Internet) table are found in one memory access: in our 1M-route
// benchmark that takes a lookup from 165-200 ns to 40-55 ns. From 100k to
// 250k routes the two widths were about even. It is a variable so that
// tests can cover both widths with small tables.
var bigTable = 1 << 17

// A leaf value is 0 for "no route" or 1 + the index of the route's Entry.

type node struct {
	children uint64 // bit v set: slot v is a child node
	leaves   uint64 // bit v set: slot v is a leaf that differs from the leaf before it
	child0   uint32 // index in trie.nodes of the first child
	leaf0    uint32 // index in trie.leaves of the first leaf
}

type trie struct {
	direct []uint32 // leaf value, or isNode | index in nodes
	shift  uint     // 32 - log2(len(direct)): a>>shift indexes direct; a>>32 is 0
	nodes  []node
	leaves []uint32
}

// descend returns the leaf value for the address a below the direct-array
// value x, which is a node. Table.Lookup reads the direct array itself and
// calls this for the rest.
func (t *trie) descend(x, a uint32) uint32 {
	i := x &^ isNode
	for off := 32 - t.shift; ; off += stride {
		n := &t.nodes[i]
		// Past bit 32 the shift brings in zeros, as the builder assumes.
		v := a << off >> (32 - stride)
		upTo := uint64(2)<<v - 1 // bits 0..v; 2<<63 wraps to 0, so all bits
		if n.children>>v&1 == 0 {
			// The leaf for slot v is the last run started at or before v.
			return t.leaves[n.leaf0+uint32(bits.OnesCount64(n.leaves&upTo))-1]
		}
		i = n.child0 + uint32(bits.OnesCount64(n.children&upTo)) - 1
	}
}

// prefix is a route as the trie builder sees it.
type prefix struct {
	addr uint32
	bits uint
	leaf uint32
}

// slot returns the width bits of p's address starting at bit off.
func (p prefix) slot(off, width uint) uint32 {
	return p.addr << off >> (32 - width)
}

// newTrie builds the trie of distinct prefixes.
//
// Every step relies on ps being sorted by address, then by length: a route
// then comes after every route that contains it, so filling slots in that
// order leaves each slot with its longest match; and the routes below one
// slot form a contiguous run that starts after any route ending at that
// slot.
func newTrie(ps []prefix) trie {
	slices.SortFunc(ps, func(a, b prefix) int {
		return cmp.Or(cmp.Compare(a.addr, b.addr), cmp.Compare(a.bits, b.bits))
	})
	var d uint
	switch {
	case len(ps) >= bigTable:
		d = 24
	case len(ps) > 0:
		d = 16
	}
	t := trie{direct: make([]uint32, 1<<d), shift: 32 - d}
	for _, p := range ps {
		if p.bits <= d {
			v := p.slot(0, d)
			fill(t.direct[v:v+1<<(d-p.bits)], p.leaf)
		}
	}
	forEachChild(ps, 0, d, func(v uint32, below []prefix) {
		at := uint32(len(t.nodes))
		t.nodes = append(t.nodes, node{})
		t.build(at, d, t.direct[v], below)
		t.direct[v] = isNode | at
	})
	return t
}

// build fills in t.nodes[at], the node at bit offset off. ps are the
// routes below it, all longer than off; inherited is the leaf of the slots
// no route in ps covers.
func (t *trie) build(at uint32, off uint, inherited uint32, ps []prefix) {
	var slots [1 << stride]uint32
	fill(slots[:], inherited)
	var children uint64
	for _, p := range ps {
		v := p.slot(off, stride)
		if p.bits <= off+stride {
			fill(slots[v:v+1<<(off+stride-p.bits)], p.leaf)
		} else {
			children |= 1 << v
		}
	}

	n := node{children: children, child0: uint32(len(t.nodes)), leaf0: uint32(len(t.leaves))}
	for v, leaf := range slots {
		if children>>v&1 != 0 {
			continue
		}
		if n.leaves == 0 || leaf != t.leaves[len(t.leaves)-1] {
			n.leaves |= 1 << v
			t.leaves = append(t.leaves, leaf)
		}
	}
	t.nodes[at] = n

	// Children are allocated together so that child0 + rank finds them.
	t.nodes = append(t.nodes, make([]node, bits.OnesCount64(children))...)
	child := n.child0
	forEachChild(ps, off, stride, func(v uint32, below []prefix) {
		t.build(child, off+stride, slots[v], below)
		child++
	})
}

// forEachChild calls f, in slot order, for every slot of the width bits at
// offset off that has routes longer than off+width, with those routes.
func forEachChild(ps []prefix, off, width uint, f func(v uint32, below []prefix)) {
	for i := 0; i < len(ps); {
		if ps[i].bits <= off+width {
			i++ // ends at this level: filled into the slots
			continue
		}
		v := ps[i].slot(off, width)
		j := i + 1
		for j < len(ps) && ps[j].slot(off, width) == v {
			j++
		}
		f(v, ps[i:j])
		i = j
	}
}

func fill(s []uint32, v uint32) {
	for i := range s {
		s[i] = v
	}
}
