package conntrack

import (
	"math/bits"
	"sync"
	"sync/atomic"
)

// The index maps each key of each flow to the flow: an open-addressing
// hash table in the manner of Swiss tables, split into shards that grow
// and shrink on their own.
//
// A group is one cache line: a control word and seven slots. Control
// byte i describes slot i:
//
//	0x80        empty
//	0xFE        deleted (a tombstone); also the unused eighth byte
//	0b0dtttttt  full: t is six bits of the key's hash, d the Dir of the
//	            key the slot holds
//
// A lookup walks the groups of its probe sequence (triangular, so that
// it reaches every group), compares the key with each slot whose tag
// matches, and stops at the first group with an empty slot.
//
// Readers take no lock: they load control words and slot pointers
// atomically and compare against the flow's keys, which never change. A
// writer holds the shard's mutex. It fills a slot pointer first and then
// its control byte, and empties the control byte first and then the
// pointer, so a reader that sees a tag sees a flow (or nil). A slot a
// reader matched may have been refilled by another flow since: the key
// comparison against that flow then decides, which is right either way.
// A deletion leaves a tombstone unless the group already has an empty
// slot (then no probe sequence ever went past the group). When a shard
// needs room or has too many tombstones, it is rebuilt into a new index
// that replaces the old one in one atomic store; readers still walking
// the old one see it as it was at that moment, which it stays.

const (
	shardBits = 8
	nShards   = 1 << shardBits
	minGroups = 1 // per shard

	groupSlots = 7

	ctrlEmpty   = 0x80
	ctrlDeleted = 0xFE
	ctrlDir     = 0x40
	tagBits     = 6

	// Per-byte constants over the seven slot bytes; the eighth byte is
	// never a slot.
	lsb7 = 0x0001010101010101
	msb7 = 0x0080808080808080
	dir7 = 0x0040404040404040

	emptyGroup = uint64(ctrlDeleted)<<56 | ctrlEmpty*lsb7
)

type group struct {
	ctrl  atomic.Uint64
	slots [groupSlots]atomic.Pointer[Flow]
}

type index struct {
	groups []group
	mask   uint64 // len(groups)-1, a power of two less one
}

func newIndex(n uint64) *index {
	ix := &index{groups: make([]group, n), mask: n - 1}
	for i := range ix.groups {
		ix.groups[i].ctrl.Store(emptyGroup)
	}
	return ix
}

func (ix *index) capacity() int { return len(ix.groups) * groupSlots }

// The hash picks the shard from its top bits, the tag from the six below
// them, and the first group from its low bits.
func shardOf(h uint64) uint64 { return h >> (64 - shardBits) }
func tagOf(h uint64) uint64   { return h >> (64 - shardBits - tagBits) & (1<<tagBits - 1) }

// matchTag has the top bit set in each slot byte of c that may hold tag
// (either Dir). It may report a few false matches; never a false miss.
func matchTag(c, tag uint64) uint64 {
	x := c&^dir7 ^ tag*lsb7
	return (x - lsb7) &^ x & msb7
}

func matchEmpty(c uint64) uint64          { return c &^ (c << 6) & msb7 }
func matchEmptyOrDeleted(c uint64) uint64 { return c & msb7 }

// matchOrig selects the full slots holding Original keys: top bit and dir
// bit clear.
func matchOrig(c uint64) uint64 { return ^c &^ (c << 1) & msb7 }

func slotOf(m uint64) int { return bits.TrailingZeros64(m) >> 3 }

func dirOf(c uint64, slot int) Dir { return Dir(c >> (8*slot + 6) & 1) }

func setCtrl(g *group, slot int, b uint64) {
	c := g.ctrl.Load()
	g.ctrl.Store(c&^(0xff<<(8*slot)) | b<<(8*slot))
}

// shard is one part of the index. idx is read by every lookup; the rest
// only by writers, so it sits in its own cache line.
type shard struct {
	idx atomic.Pointer[index]
	_   [56]byte

	mu   sync.Mutex
	live int // full slots
	used int // full and deleted slots
	_    [40]byte
}

// groupsFor is the size of an index for n keys: at most half full, so a
// rebuilt shard has room to grow before the next rebuild.
func groupsFor(n int) uint64 {
	g := uint64(2*n+groupSlots-1) / groupSlots
	if g <= minGroups {
		return minGroups
	}
	return 1 << bits.Len64(g-1)
}

// insert adds the key of f in direction d, hashed to h. The caller holds
// s.mu and has checked that no live flow holds the key.
func (s *shard) insert(t *Table, f *Flow, d Dir, h uint64) {
	ix := s.idx.Load()
	if (s.used+1)*8 > ix.capacity()*7 {
		ix = s.rebuild(t, groupsFor(s.live+1))
	}
	if ix.put(f, d, h) {
		s.used++
	}
	s.live++
}

// put stores f in the first free slot of h's probe sequence and reports
// whether that slot was empty rather than a tombstone.
func (ix *index) put(f *Flow, d Dir, h uint64) bool {
	g := h & ix.mask
	for i := uint64(1); ; i++ {
		grp := &ix.groups[g]
		c := grp.ctrl.Load()
		if m := matchEmptyOrDeleted(c); m != 0 {
			slot := slotOf(m)
			wasEmpty := c>>(8*slot)&0xff == ctrlEmpty
			grp.slots[slot].Store(f)
			setCtrl(grp, slot, tagOf(h)|uint64(d)*ctrlDir)
			return wasEmpty
		}
		g = (g + i) & ix.mask
	}
}

// remove takes out the slot holding f's key in direction d, hashed to h,
// if it is there (Flush may have dropped it with the whole index). The
// caller holds s.mu.
func (s *shard) remove(t *Table, f *Flow, d Dir, h uint64) {
	ix := s.idx.Load()
	want := tagOf(h) | uint64(d)*ctrlDir
	g := h & ix.mask
	for i := uint64(1); ; i++ {
		grp := &ix.groups[g]
		c := grp.ctrl.Load()
		for m := matchTag(c, tagOf(h)); m != 0; m &= m - 1 {
			slot := slotOf(m)
			if c>>(8*slot)&0xff != want || grp.slots[slot].Load() != f {
				continue
			}
			if matchEmpty(c) != 0 {
				setCtrl(grp, slot, ctrlEmpty)
				s.used--
			} else {
				setCtrl(grp, slot, ctrlDeleted)
			}
			grp.slots[slot].Store(nil)
			s.live--
			if len(ix.groups) > minGroups && s.live*16 < ix.capacity() {
				s.rebuild(t, groupsFor(s.live))
			}
			return
		}
		if matchEmpty(c) != 0 {
			return
		}
		g = (g + i) & ix.mask
	}
}

// rebuild moves the shard's keys into a new index of n groups, leaving
// out tombstones and the keys of dead flows (their removers find nothing
// to do), and publishes it. The caller holds s.mu.
func (s *shard) rebuild(t *Table, n uint64) *index {
	old := s.idx.Load()
	ix := newIndex(n)
	live := 0
	for g := range old.groups {
		grp := &old.groups[g]
		c := grp.ctrl.Load()
		for m := ^c & msb7; m != 0; m &= m - 1 {
			slot := slotOf(m)
			f := grp.slots[slot].Load()
			if f.word.Load()&dead != 0 {
				continue
			}
			d := dirOf(c, slot)
			k := f.ckey(d)
			ix.put(f, d, k.hash(&t.seed))
			live++
		}
	}
	s.live, s.used = live, live
	s.idx.Store(ix)
	return ix
}
