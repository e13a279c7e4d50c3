package route

import (
	"cmp"
	"math/bits"
	"slices"
)

// This file is the LPM structure: a Poptrie (Asai and Ohara, "Poptrie: A
// Compressed Trie with Population Count for Fast and Scalable Software IP
// Routing Table Lookup", SIGCOMM 2015), one per address family.
//
// Addresses are 128-bit keys (hi, lo), IPv4 left-aligned in hi, so one
// code path serves both families. The first directBits of the key index a
// flat array; below that every node consumes the next 6 bits (a "slot",
// 0..63) so that a node's slots fit in one uint64 bitmap. Routes are
// leaf-pushed: every slot that is not a child node holds the value of the
// longest route covering it, so a lookup walks straight down and never
// backtracks. A node stores no slot array; it stores two bitmaps, and a
// popcount turns a slot into an index into the node's run of children or
// of leaves, which are contiguous in shared arrays. Equal adjacent leaves
// are stored once, which keeps sparse nodes small.
//
// A lookup is a handful of instructions per level with one memory access
// per level, none of them dependent on anything but the previous level,
// which is what makes it fast when the table does not fit in cache.

const (
	stride = 6 // log2 of the 64 bits in a node's bitmaps

	// isNode marks a direct-array value that is a node index, not a leaf.
	isNode = 1 << 31
)

// A leaf value is 0 for "no route" or 1 + the index of the route's Entry.

// directBitsFor is the width of the direct array for n routes.
var directBitsFor = func(n int) uint { return 16 }

type node struct {
	children uint64 // bit v set: slot v is a child node
	leaves   uint64 // bit v set: slot v is a leaf that differs from the leaf before it
	child0   uint32 // index in trie.nodes of the first child
	leaf0    uint32 // index in trie.leaves of the first leaf
}

type trie struct {
	direct     []uint32 // leaf value, or isNode | index in nodes
	directBits uint     // len(direct) is 1 << directBits
	nodes  []node
	leaves []uint32
}

// bitsAt returns the n bits of the key (hi, lo) that start at bit off.
// Go defines shifts by 64 or more as 0, so the three terms cover off < 64,
// off == 64 and off > 64 without branches.
func bitsAt(hi, lo uint64, off, n uint) uint64 {
	return (hi<<off | lo>>(64-off) | lo<<(off-64)) >> (64 - n)
}

// lookup returns the leaf value for the key (hi, lo).
func (t *trie) lookup(hi, lo uint64) uint32 {
	x := t.direct[bitsAt(hi, lo, 0, t.directBits)]
	for off := t.directBits; x&isNode != 0; off += stride {
		n := &t.nodes[x&^isNode]
		v := bitsAt(hi, lo, off, stride)
		upTo := uint64(2)<<v - 1 // bits 0..v; 2<<63 wraps to 0, so all bits
		if n.children>>v&1 != 0 {
			x = isNode | (n.child0 + uint32(bits.OnesCount64(n.children&upTo)) - 1)
			continue
		}
		// The leaf for slot v is the last run started at or before v.
		return t.leaves[n.leaf0+uint32(bits.OnesCount64(n.leaves&upTo))-1]
	}
	return x
}

// prefix is a route's key as the trie builder sees it.
type prefix struct {
	hi, lo uint64
	bits   uint
	leaf   uint32
}

func comparePrefixes(a, b prefix) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lo, b.lo); c != 0 {
		return c
	}
	return cmp.Compare(a.bits, b.bits)
}

// newTrie builds the trie of one family from distinct prefixes.
//
// Every step relies on ps being sorted by address, then by length: a
// route then comes after every route that contains it, so painting slots
// in that order leaves each slot with its longest match, and the routes
// below one slot form a contiguous run that starts after any route that
// ends at that slot.
func newTrie(ps []prefix) trie {
	slices.SortFunc(ps, comparePrefixes)
	d := uint(0)
	if len(ps) > 0 {
		d = directBitsFor(len(ps))
	}
	t := trie{direct: make([]uint32, 1<<d), directBits: d}
	for _, p := range ps {
		if p.bits <= d {
			v := bitsAt(p.hi, p.lo, 0, d)
			fill(t.direct[v:v+1<<(d-p.bits)], p.leaf)
		}
	}
	forEachChild(ps, 0, d, func(v uint64, below []prefix) {
		at := uint32(len(t.nodes))
		t.nodes = append(t.nodes, node{})
		t.build(at, d, t.direct[v], below)
		t.direct[v] = isNode | at
	})
	return t
}

// build fills in t.nodes[at], the node at bit offset off. ps are the
// routes below it, all longer than off; inherited is the leaf of the
// slots no route in ps covers.
func (t *trie) build(at uint32, off uint, inherited uint32, ps []prefix) {
	var slots [1 << stride]uint32
	fill(slots[:], inherited)
	var children uint64
	for _, p := range ps {
		v := bitsAt(p.hi, p.lo, off, stride)
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
	forEachChild(ps, off, stride, func(v uint64, below []prefix) {
		t.build(child, off+stride, slots[v], below)
		child++
	})
}

// forEachChild calls f, in slot order, for every slot of the width bits
// at offset off that has routes longer than off+width, with those routes.
func forEachChild(ps []prefix, off, width uint, f func(v uint64, below []prefix)) {
	for i := 0; i < len(ps); {
		if ps[i].bits <= off+width {
			i++ // ends at this level: painted into the slots
			continue
		}
		v := bitsAt(ps[i].hi, ps[i].lo, off, width)
		j := i + 1
		for j < len(ps) && bitsAt(ps[j].hi, ps[j].lo, off, width) == v {
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
