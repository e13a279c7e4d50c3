package conntrack

import (
	"errors"
	"iter"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tungate/tungate/router/packet"
)

// Config bounds the table and sets its idle timeouts; the `[conntrack]`
// table of the config file. A zero field takes its default. Timeouts
// count in whole seconds, rounded up.
type Config struct {
	// Max bounds the flows in the table. When it is reached a new flow
	// is refused, never made room for: RFC 6888 REQ-11, a CGN "MUST NOT
	// delete existing mappings to make room".
	Max int

	// TCPEstablished is the idle timeout of an established TCP flow,
	// half-closed ones included (RFC 6146 keeps the established lifetime
	// until a FIN has gone each way). RFC 5382 REQ-5: "the value of the
	// 'established connection idle-timeout' MUST NOT be less than 2
	// hours 4 minutes."
	TCPEstablished time.Duration
	// TCPOpening and TCPClosing are the transitory timeouts: of a TCP
	// flow that has not seen a SYN from both sides, and of one that has
	// seen a FIN from both sides or a RST. RFC 5382 REQ-5: "The value of
	// the 'transitory connection idle-timeout' MUST NOT be less than 4
	// minutes." RFC 7857 §2.1: "a NAT SHOULD provide different
	// configurable parameters for configuring the open and closing idle
	// timeouts", and a default of at least 4 minutes is RECOMMENDED.
	TCPOpening time.Duration
	TCPClosing time.Duration
	// UDP is the idle timeout of a UDP flow. RFC 4787 REQ-5: the mapping
	// timer "MUST NOT expire in less than two minutes"; REQ-5c recommends
	// a default of five minutes or more.
	UDP time.Duration
	// ICMP is the idle timeout of an ICMP or ICMPv6 query (echo) flow.
	// RFC 5508 REQ-2: the query session timer "MUST NOT expire in less
	// than 60 seconds".
	ICMP time.Duration
	// Other is the idle timeout of every other protocol. No RFC sets
	// one. The default is Linux's generic timeout (10 minutes): such
	// flows have no ports, so each is a whole tunnel (GRE, ESP, IPIP)
	// between two hosts, few in number and often quiet between sparse
	// keepalives, which the UDP timeout would cut.
	Other time.Duration
}

// Defaults of Config.
const (
	DefaultMax            = 262144
	DefaultTCPEstablished = 2*time.Hour + 4*time.Minute
	DefaultTCPOpening     = 4 * time.Minute
	DefaultTCPClosing     = 4 * time.Minute
	DefaultUDP            = 5 * time.Minute
	DefaultICMP           = time.Minute
	DefaultOther          = 10 * time.Minute
)

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.Max <= 0 {
		c.Max = DefaultMax
	}
	def(&c.TCPEstablished, DefaultTCPEstablished)
	def(&c.TCPOpening, DefaultTCPOpening)
	def(&c.TCPClosing, DefaultTCPClosing)
	def(&c.UDP, DefaultUDP)
	def(&c.ICMP, DefaultICMP)
	def(&c.Other, DefaultOther)
	return c
}

// Errors of Insert.
var (
	ErrFull   = errors.New("conntrack: table full")
	ErrExists = errors.New("conntrack: key in use by another flow")
)

// Stats counts what the table did since it was made.
type Stats struct {
	Entries     int    `json:"entries"`      // flows in the table, expired ones not yet reaped included
	Inserted    uint64 `json:"inserted"`     // flows Insert added
	RefusedFull uint64 `json:"refused_full"` // Inserts refused with ErrFull
	Expired     uint64 `json:"expired"`      // flows removed because their idle timeout passed
}

// Table is the flow table. It is safe for concurrent use: Lookup, Seen
// and Flows take no lock, and Lookup and Seen allocate nothing; Insert,
// Delete, Flush and Expire lock a shard or two of the index at a time,
// briefly.
type Table struct {
	shards [nShards]shard

	// Read by every lookup, written only by New.
	seed                         [4]uint64
	since                        func() time.Duration
	max                          int64
	tcpTime                      [tcpFlagBits + 1]uint64 // seconds, by the TCP flags of a word
	udpTime, icmpTime, otherTime uint64
	_                            [64]byte

	count     atomic.Int64  // flows in the table
	cursor    atomic.Uint64 // where the expiry sweep goes on
	reclaimed atomic.Uint64 // 1 + the second a full Insert last swept
	inserted  atomic.Uint64
	refused   atomic.Uint64
	expired   atomic.Uint64

	// Flows that Insert reclaimed after their timeout, waiting for the
	// next Expire to call their owners (Insert never calls an owner: its
	// caller may hold the owner's lock).
	pendingMu sync.Mutex
	pending   []*Flow
}

// New makes an empty table. since is its only clock, the time since an
// epoch of the caller's choosing (the start of the process, say); it must
// not go back. Seen, Insert and Expire read it once each, Lookup once when
// it finds a flow, so on the packet path it should be cheap: an atomic
// load of a time kept by a ticker, rather than time.Now per packet.
func New(cfg Config, since func() time.Duration) *Table {
	cfg = cfg.withDefaults()
	t := &Table{since: since, max: int64(cfg.Max)}
	for i := range t.seed {
		t.seed[i] = rand.Uint64() | 1
	}
	secs := func(d time.Duration) uint64 { return uint64((d + time.Second - 1) / time.Second) }
	for w := range t.tcpTime {
		switch tcpState(uint64(w)) {
		case Established, FinWait, CloseWait:
			t.tcpTime[w] = secs(cfg.TCPEstablished)
		case TimeWait, Closed:
			t.tcpTime[w] = secs(cfg.TCPClosing)
		default:
			t.tcpTime[w] = secs(cfg.TCPOpening)
		}
	}
	t.udpTime, t.icmpTime, t.otherTime = secs(cfg.UDP), secs(cfg.ICMP), secs(cfg.Other)
	for i := range t.shards {
		t.shards[i].idx.Store(newIndex(minGroups))
	}
	return t
}

// elapsed is the time since the clock's epoch.
func (t *Table) elapsed() time.Duration { return max(t.since(), 0) }

// second is the current whole second, for judging expiry: rounding down
// here and up for last-seen times, a flow never expires early.
func (t *Table) second() uint64 { return uint64(t.elapsed() / time.Second) }

func (t *Table) timeout(w uint64) uint64 {
	switch protoOf(w) {
	case protoTCP:
		return t.tcpTime[w&tcpFlagBits]
	case protoUDP:
		return t.udpTime
	case protoICMP, protoICMPv6:
		return t.icmpTime
	}
	return t.otherTime
}

// live reports whether a flow whose word is w is in the table and within
// its timeout at second now.
func (t *Table) live(w, now uint64) bool {
	return w&(dead|hidden) == 0 && now < seenOf(w)+t.timeout(w)
}

// Lookup finds the live flow one of whose keys is k, and which of them.
// A flow past its timeout is not found even before Expire reaps it. The
// Dir is meaningless when the flow is nil.
func (t *Table) Lookup(k Key) (*Flow, Dir) {
	var ck ckey
	ck.set(&k)
	h := ck.hash(&t.seed)
	ix := t.shards[shardOf(h)].idx.Load()
	tag := tagOf(h)
	g := h & ix.mask
	for i := uint64(1); ; i++ {
		grp := &ix.groups[g]
		c := grp.ctrl.Load()
		for m := matchTag(c, tag); m != 0; m &= m - 1 {
			slot := slotOf(m)
			f := grp.slots[slot].Load()
			if f == nil {
				continue
			}
			d := dirOf(c, slot)
			if w := f.word.Load(); f.matches(d, w, &ck) && t.live(w, t.second()) {
				return f, d
			}
		}
		if matchEmpty(c) != 0 {
			return nil, Original
		}
		g = (g + i) & ix.mask
	}
}

// holders calls fn for each flow not yet dead that holds k, hashed to h,
// in the shard's current index.
func (t *Table) holders(k *ckey, h uint64, fn func(*Flow)) {
	ix := t.shards[shardOf(h)].idx.Load()
	g := h & ix.mask
	for i := uint64(1); ; i++ {
		grp := &ix.groups[g]
		c := grp.ctrl.Load()
		for m := matchTag(c, tagOf(h)); m != 0; m &= m - 1 {
			slot := slotOf(m)
			f := grp.slots[slot].Load()
			if f == nil {
				continue
			}
			if w := f.word.Load(); w&dead == 0 && f.matches(dirOf(c, slot), w, k) {
				fn(f)
			}
		}
		if matchEmpty(c) != 0 {
			return
		}
		g = (g + i) & ix.mask
	}
}

// Insert adds a flow with the given keys and owner (nil if nothing needs
// telling when it goes) and returns it; the caller then passes the packet
// that made it to Seen. orig is the key of that packet, reply the key its
// replies will arrive with (orig.Reverse() when nothing translates). Both
// keys are indexed at once: a concurrent Lookup finds the new flow by
// both or by neither, and no other Insert can take either key meanwhile.
//
// Insert fails with ErrExists when a live flow holds either key, or when
// the two keys are the same (the Dir of a packet would be ambiguous). A
// flow past its timeout that holds a key is reclaimed instead; its owner
// hears of it from the next Expire or Flush. Insert fails with ErrFull
// when the table holds Config.Max flows, counting those past their
// timeout that Expire has not reaped yet; at most once a second, a full
// Insert sweeps a few dozen flows for one to reclaim first.
func (t *Table) Insert(orig, reply Key, owner Owner) (*Flow, error) {
	var co, cr ckey
	co.set(&orig)
	cr.set(&reply)
	if co == cr {
		return nil, ErrExists
	}
	ho, hr := co.hash(&t.seed), cr.hash(&t.seed)
	el := t.elapsed()
	now := uint64(el / time.Second)

	// Settle existing holders without a lock: refuse if one is live,
	// reclaim it if it has expired. This keeps refused inserts cheap and
	// frees the room an expired holder takes up in a full table.
	live := false
	reclaim := func(f *Flow) {
		if t.claim(f, true, now) {
			t.reap(f, t.postpone)
		} else if f.word.Load()&dead == 0 {
			live = true
		}
	}
	t.holders(&co, ho, reclaim)
	t.holders(&cr, hr, reclaim)
	if live {
		return nil, ErrExists
	}

	if !t.reserve(now) {
		t.refused.Add(1)
		return nil, ErrFull
	}
	f := newFlow(&co, &cr, owner, uint64((el+time.Second-1)/time.Second))

	so, sr := &t.shards[shardOf(ho)], &t.shards[shardOf(hr)]
	lo, hi := so, sr
	if shardOf(hr) < shardOf(ho) {
		lo, hi = sr, so
	}
	lo.mu.Lock()
	if hi != lo {
		hi.mu.Lock()
	}
	// Under the locks, holders stay as they are until the flow is in. Only
	// a flow inserted since the check above can be in the way now.
	inWay := func(*Flow) { live = true }
	t.holders(&co, ho, inWay)
	t.holders(&cr, hr, inWay)
	if !live {
		so.insert(t, f, Original, ho)
		sr.insert(t, f, Reply, hr)
		f.word.And(^uint64(hidden))
	}
	if hi != lo {
		hi.mu.Unlock()
	}
	lo.mu.Unlock()
	if live {
		t.count.Add(-1)
		return nil, ErrExists
	}
	t.inserted.Add(1)
	return f, nil
}

// A full table looks for an expired flow to reclaim at most once a second
// (a flood of refused inserts must stay cheap), examining up to
// reclaimFlows flows in at most reclaimGroups index groups: one pass over
// a table of minimum size, and far more groups than a full table needs
// to show that many flows.
const (
	reclaimFlows  = 64
	reclaimGroups = nShards * minGroups
)

// reserve counts a new flow in, unless the table is full of flows that
// are live as far as a short sweep can tell.
func (t *Table) reserve(now uint64) bool {
	for {
		n := t.count.Load()
		if n >= t.max {
			last := t.reclaimed.Load()
			if last == now+1 || !t.reclaimed.CompareAndSwap(last, now+1) ||
				t.sweep(reclaimGroups, reclaimFlows, 1, now, t.postpone) == 0 {
				return false
			}
			continue
		}
		if t.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// claim marks f dead, if it is not already and, with onlyExpired, if it
// has expired by second now. It reports whether this call did so: that
// caller, and only that one, then reaps f.
func (t *Table) claim(f *Flow, onlyExpired bool, now uint64) bool {
	for {
		w := f.word.Load()
		if w&(dead|hidden) != 0 || onlyExpired && t.live(w, now) {
			return false
		}
		if f.word.CompareAndSwap(w, w|dead) {
			if onlyExpired {
				t.expired.Add(1)
			}
			return true
		}
	}
}

// reap takes a claimed flow out of the index and hands it to rel for its
// owner.
func (t *Table) reap(f *Flow, rel func(*Flow)) {
	for d := Original; d <= Reply; d++ {
		k := f.ckey(d)
		h := k.hash(&t.seed)
		s := &t.shards[shardOf(h)]
		s.mu.Lock()
		s.remove(t, f, d, h)
		s.mu.Unlock()
	}
	t.count.Add(-1)
	rel(f)
}

func release(f *Flow) {
	if f.owner != nil {
		f.owner.Released(f)
	}
}

func (t *Table) postpone(f *Flow) {
	t.pendingMu.Lock()
	t.pending = append(t.pending, f)
	t.pendingMu.Unlock()
}

func (t *Table) releasePending() {
	t.pendingMu.Lock()
	pending := t.pending
	t.pending = nil
	t.pendingMu.Unlock()
	for _, f := range pending {
		release(f)
	}
}

// Seen accounts packet p, going in direction d, to its flow: counters,
// last-seen time and TCP state, which selects the timeout that applies.
// Packets of one flow may be seen concurrently. A flow that has been
// removed is left as it is.
//
// Every packet renews the idle timer, in either direction (RFC 4787
// REQ-6: outbound refresh MUST; 6a: inbound refresh MAY), except TCP
// packets after a FIN has gone each way, and RSTs after a RST. An ICMP
// error about a flow is not one of its packets: RFC 5508 REQ-6 forbids it
// to refresh the session, so it is not seen.
func (t *Table) Seen(f *Flow, d Dir, p *packet.Packet) {
	var fl uint8
	if p.HasPorts {
		fl = p.TCPFlags
	}
	now := uint64((t.elapsed() + time.Second - 1) / time.Second)
	for {
		w := f.word.Load()
		if w&dead != 0 {
			return
		}
		if nw := advance(w, d, fl, now); nw == w || f.word.CompareAndSwap(w, nw) {
			break
		}
	}
	f.packets[d].Add(1)
	f.bytes[d].Add(uint64(p.Len))
}

// Delete removes f from the table and tells its owner, unless it was
// removed already; it reports whether this call removed it.
func (t *Table) Delete(f *Flow) bool {
	if !t.claim(f, false, 0) {
		return false
	}
	t.reap(f, release)
	return true
}

// Flush removes every flow, telling each owner, and returns how many it
// removed. Flows inserted meanwhile may or may not survive. It also tells
// the owners of flows Insert reclaimed, as Expire does.
func (t *Table) Flush() int {
	t.releasePending()
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		var mine []*Flow
		s.mu.Lock()
		ix := s.idx.Load()
		for g := range ix.groups {
			grp := &ix.groups[g]
			for m := ^grp.ctrl.Load() & msb7; m != 0; m &= m - 1 {
				if f := grp.slots[slotOf(m)].Load(); t.claim(f, false, 0) {
					mine = append(mine, f)
				}
			}
		}
		s.idx.Store(newIndex(minGroups))
		s.live, s.used = 0, 0
		s.mu.Unlock()
		for _, f := range mine {
			// The whole index of this shard is gone; reap removes the
			// flow's key from the other shard, if that is another.
			t.reap(f, release)
		}
		n += len(mine)
	}
	return n
}

// expireGroups is how many index groups Expire examines per unit of
// budget.
const expireGroups = 8

// Expire removes up to budget flows whose idle timeout has passed and
// tells their owners; it also tells the owners of flows Insert
// reclaimed. It returns how many flows it removed. Each call examines at
// most 8×budget groups of the index (a group holds up to 7 keys; a flow
// has two), going on where the previous call stopped, so it never takes
// long however large the table: called every interval with budget n, it
// passes over a table of N flows about every N/(16n) intervals (with
// Expire(1024) ten times a second, a million flows in under 7 seconds).
// A flow past its timeout is already invisible to Lookup; Expire frees
// its memory and its owner's resources.
func (t *Table) Expire(budget int) int {
	t.releasePending()
	if budget <= 0 {
		return 0
	}
	return t.sweep(expireGroups*budget, math.MaxInt, budget, t.second(), release)
}

// sweep examines up to groups index groups from the shared cursor on,
// and in them up to flows flows, each at its Original key, and reaps up
// to budget of them that have expired.
func (t *Table) sweep(groups, flows, budget int, now uint64, rel func(*Flow)) int {
	n := 0
	for range groups {
		pos := t.cursor.Add(1) - 1
		ix := t.shards[pos%nShards].idx.Load()
		grp := &ix.groups[pos/nShards&ix.mask]
		for m := matchOrig(grp.ctrl.Load()); m != 0; m &= m - 1 {
			if n == budget || flows == 0 {
				return n
			}
			flows--
			if f := grp.slots[slotOf(m)].Load(); f != nil && t.claim(f, true, now) {
				t.reap(f, rel)
				n++
			}
		}
	}
	return n
}

// Len is the number of flows in the table, expired ones not yet reaped
// included.
func (t *Table) Len() int { return int(t.count.Load()) }

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	return Stats{
		Entries:     t.Len(),
		Inserted:    t.inserted.Load(),
		RefusedFull: t.refused.Load(),
		Expired:     t.expired.Load(),
	}
}

// Flows yields each live flow once, without locking: flows inserted or
// removed meanwhile may or may not be yielded.
func (t *Table) Flows() iter.Seq[*Flow] {
	return func(yield func(*Flow) bool) {
		now := t.second()
		for i := range t.shards {
			ix := t.shards[i].idx.Load()
			for g := range ix.groups {
				grp := &ix.groups[g]
				for m := matchOrig(grp.ctrl.Load()); m != 0; m &= m - 1 {
					f := grp.slots[slotOf(m)].Load()
					if f != nil && t.live(f.word.Load(), now) && !yield(f) {
						return
					}
				}
			}
		}
	}
}

// Info is a flow as `tungate nat` shows it, at one moment.
type Info struct {
	Orig, Reply    Key
	State          State
	Idle           time.Duration // since the last packet that renewed the timer
	Expires        time.Duration // until the flow expires unless renewed
	Packets, Bytes [2]uint64     // by Dir
}

// Info describes f.
func (t *Table) Info(f *Flow) Info {
	w := f.word.Load()
	el := t.elapsed()
	seen := time.Duration(seenOf(w)) * time.Second
	return Info{
		Orig:    f.Orig(),
		Reply:   f.Reply(),
		State:   stateOf(w),
		Idle:    max(el-seen, 0),
		Expires: max(seen+time.Duration(t.timeout(w))*time.Second-el, 0),
		Packets: [2]uint64{f.packets[0].Load(), f.packets[1].Load()},
		Bytes:   [2]uint64{f.bytes[0].Load(), f.bytes[1].Load()},
	}
}
