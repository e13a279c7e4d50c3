package neigh

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes the cache; the `[arp]` table of the config file. A zero
// field takes its default.
type Config struct {
	// Reachable is how long a confirmed neighbor stays REACHABLE
	// (RFC 4861 REACHABLE_TIME, 30 s). A router has no upper-layer
	// hints, so only a solicited answer renews it.
	Reachable time.Duration
	// Stale is how long an unused STALE entry is kept before it is
	// removed (default 10 min).
	Stale time.Duration
	// RetryInterval is the time between solicitations (RFC 4861
	// RetransTimer, 1 s).
	RetryInterval time.Duration
	// Retries is how many solicitations are sent before resolution fails:
	// RFC 4861 MAX_MULTICAST_SOLICIT for INCOMPLETE, MAX_UNICAST_SOLICIT
	// for PROBE (both 3).
	Retries int
	// Queue bounds the packets held per unresolved neighbor (64).
	Queue int
	// MaxEntries bounds the cache (4096). Static entries always go in
	// but count towards it.
	MaxEntries int
}

// Defaults of Config.
const (
	DefaultReachable     = 30 * time.Second
	DefaultStale         = 10 * time.Minute
	DefaultRetryInterval = time.Second
	DefaultRetries       = 3
	DefaultQueue         = 64
	DefaultMaxEntries    = 4096
)

// delayFirstProbe is RFC 4861 §10 DELAY_FIRST_PROBE_TIME: how long a used
// STALE entry waits in DELAY before probing, so that a confirmation
// already on its way can arrive first.
const delayFirstProbe = 5 * time.Second

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Reachable, DefaultReachable)
	def(&c.Stale, DefaultStale)
	def(&c.RetryInterval, DefaultRetryInterval)
	if c.Retries <= 0 {
		c.Retries = DefaultRetries
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	if c.MaxEntries <= 0 {
		c.MaxEntries = DefaultMaxEntries
	}
	return c
}

// State is an entry's place in Neighbor Unreachability Detection
// (RFC 4861 §7.3.2), plus PERMANENT for static entries. There is no
// FAILED: RFC 4861 deletes an entry whose resolution failed (§7.3.3),
// so none is ever there to show.
type State uint8

// States of an entry.
const (
	// Incomplete: resolution in progress, packets queue.
	Incomplete State = iota + 1
	// Reachable: confirmed within Config.Reachable.
	Reachable
	// Stale: address known, reachability not; used as is, and the first
	// use starts verification.
	Stale
	// Delay: used while STALE; waits DELAY_FIRST_PROBE_TIME, then probes.
	Delay
	// Probe: unicast solicitations every RetryInterval until answered.
	Probe
	// Permanent: static, never aged, never changed by what is heard.
	Permanent
)

var stateNames = [...]string{
	Incomplete: "INCOMPLETE",
	Reachable:  "REACHABLE",
	Stale:      "STALE",
	Delay:      "DELAY",
	Probe:      "PROBE",
	Permanent:  "PERMANENT",
}

// String is the state's name as `ip neigh` prints it.
func (s State) String() string {
	if s == 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", uint8(s))
	}
	return stateNames[s]
}

// MarshalText writes the String form for `tungate arp --json`.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the String form back.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if name != "" && name == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("neigh: unknown state %q", b)
}

// Sender is how the cache acts on the world; the router implements it.
// The cache never calls it with a lock held, so it may call back into
// the cache.
type Sender interface {
	// Solicit sends an ARP request or a Neighbor Solicitation for target
	// out of iface: to unicast when it is not zero (a PROBE), else to the
	// broadcast or solicited-node group. BuildARPRequest and BuildNS
	// write them.
	Solicit(iface int, target netip.Addr, unicast MAC)
	// Flush sends packets that waited for the neighbor, in order, to mac.
	// They are the cache's copies; Flush owns them.
	Flush(iface int, mac MAC, pkts [][]byte)
	// Fail reports that target did not answer: the router sends ICMP
	// Destination Host Unreachable (ICMPv6 Address Unreachable) for each
	// packet that waited (RFC 4861 §7.2.2: "The sender MUST return ICMP
	// destination unreachable indications with code 3 (Address
	// Unreachable) for each packet queued awaiting address
	// resolution"). Fail owns pkts.
	Fail(iface int, target netip.Addr, pkts [][]byte)
}

// Entry is one neighbor, as `tungate arp` shows it.
type Entry struct {
	Iface   int        `json:"iface"`
	IP      netip.Addr `json:"ip"`
	MAC     MAC        `json:"mac"` // zero while INCOMPLETE
	State   State      `json:"state"`
	Updated time.Time  `json:"updated"` // last change of state or address
	Queued  int        `json:"queued,omitempty"`
}

// Stats counts what the cache refused and lost.
type Stats struct {
	Entries    int    `json:"entries"`
	QueueDrops uint64 `json:"queue_drops"` // packets pushed out of a full queue
	Refused    uint64 `json:"refused"`     // new entries refused: cache full
	Failed     uint64 `json:"failed"`      // neighbors that did not answer
	Invalid    uint64 `json:"invalid"`     // ARP and NDP messages that failed validation
}

// Cache is the neighbor cache of all interfaces, for ARP and NDP alike,
// keyed by interface index and IP address.
//
// Resolve takes no lock and writes no shared memory: it loads a shard's
// map through an atomic pointer and the entry's state and MAC from one
// atomic word. That matters because the busiest key is usually a single
// one, the default gateway, which every reader goroutine looks up for
// every packet: a read lock there would be one cache line written by all
// cores. Everything that changes the cache takes the shard's mutex;
// adding or removing a key publishes a changed copy of the shard's map
// (a new neighbor is rare next to the packets sent to known ones, and
// shards stay small). Timers are deadlines that Tick checks against the
// injected clock.
type Cache struct {
	cfg  Config
	now  func() time.Time
	send Sender

	count                            atomic.Int64
	drops, refused, failed, invalids atomic.Uint64

	shards []shard
	shift  uint // a key's shard is the top bits of its hash
}

// Shards hold about shardSize entries when the cache is full, so that
// copying one to add or remove a key stays cheap.
const (
	shardSize = 64
	minShards = 16
	maxShards = 4096
)

type key struct {
	iface int
	ip    netip.Addr
}

type shard struct {
	// m is read without a lock and never changed once published.
	m  atomic.Pointer[map[key]*entry]
	mu sync.Mutex // held by all writers; guards the entries' other fields
	// next is the earliest deadline of the shard's entries (zero: none),
	// so that Tick passes a shard with nothing due without walking it.
	next time.Time
	_    [64]byte // keep neighbouring shards off one cache line
}

func (s *shard) load() map[key]*entry { return *s.m.Load() }

// insert publishes the shard's map with k added.
func (s *shard) insert(k key, e *entry) {
	m := maps.Clone(s.load())
	m[k] = e
	s.m.Store(&m)
}

// drop publishes the shard's map without keys.
func (s *shard) drop(keys ...key) {
	m := maps.Clone(s.load())
	for _, k := range keys {
		delete(m, k)
	}
	s.m.Store(&m)
}

type entry struct {
	// word is state and mac as Resolve reads them, published by set.
	word atomic.Uint64

	// The rest is the writers', under the shard's mutex.
	state    State
	mac      MAC
	updated  time.Time
	deadline time.Time // the current state's timer; zero: none
	sent     int       // solicitations sent in this INCOMPLETE or PROBE
	queue    [][]byte
}

// pack puts a state and a MAC in one word: the state in the top byte,
// the MAC in the low six.
func pack(st State, mac MAC) uint64 {
	var b [8]byte
	b[0] = byte(st)
	copy(b[2:], mac[:])
	return binary.BigEndian.Uint64(b[:])
}

func unpack(w uint64) (State, MAC) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], w)
	return State(b[0]), MAC(b[2:])
}

// New returns an empty cache. now is its only clock; s receives what the
// cache decides to send.
func New(cfg Config, now func() time.Time, s Sender) *Cache {
	c := &Cache{cfg: cfg.withDefaults(), now: now, send: s}
	n := minShards
	for n < maxShards && n*shardSize < c.cfg.MaxEntries {
		n *= 2
	}
	c.shards = make([]shard, n)
	c.shift = uint(64 - bits.TrailingZeros(uint(n)))
	for i := range c.shards {
		c.shards[i].m.Store(&map[key]*entry{})
	}
	return c
}

func (c *Cache) shard(k key) *shard {
	// The low 64 bits hold all of an IPv4 address and the interface
	// identifier of an IPv6 one: the bits that differ between neighbors.
	a := k.ip.As16()
	lo := binary.BigEndian.Uint64(a[8:])
	h := (lo ^ uint64(k.iface)<<32) * 0x9e3779b97f4a7c15 // Fibonacci hashing
	return &c.shards[h>>c.shift]
}

// Resolve is the hot path: the MAC of ip on iface if the cache has one
// usable. REACHABLE, STALE, DELAY and PROBE entries are all used (RFC
// 4861 §7.3.3: a node keeps sending to the cached address while it
// verifies it); a STALE entry used moves to DELAY to start that
// verification. false: call Enqueue.
func (c *Cache) Resolve(iface int, ip netip.Addr) (MAC, bool) {
	k := key{iface, ip}
	s := c.shard(k)
	e := s.load()[k]
	if e == nil {
		return MAC{}, false
	}
	st, mac := unpack(e.word.Load())
	switch st {
	case Reachable, Delay, Probe, Permanent:
		return mac, true
	case Stale:
		c.used(s, k)
		return mac, true
	}
	return MAC{}, false
}

// used moves a STALE entry to DELAY. RFC 4861 §7.3.3: "The first time a
// node sends a packet to a neighbor whose entry is STALE, the sender
// changes the state to DELAY and sets a timer to expire in
// DELAY_FIRST_PROBE_TIME seconds."
func (c *Cache) used(s *shard, k key) {
	s.mu.Lock()
	if e := s.load()[k]; e != nil && e.state == Stale {
		c.set(s, e, Delay, c.now())
	}
	s.mu.Unlock()
}

// Enqueue takes a packet for ip that Resolve could not place. It copies
// pkt, so the caller keeps its buffer. A new neighbor gets an INCOMPLETE
// entry and a first solicitation at once; the packet then waits, and
// leaves by Sender.Flush or Sender.Fail. If the neighbor resolved since
// Resolve, the packet goes straight to Flush.
//
// A full queue drops its oldest packet to make room (RFC 4861 §7.2.2:
// "When a queue overflows, the new arrival SHOULD replace the oldest
// entry"): the newest packets are the ones the sender still waits for,
// and the oldest are the likeliest to have been retransmitted already.
// Drops are counted in Stats.QueueDrops.
//
// false: the packet was not taken, because the cache holds MaxEntries
// (counted in Stats.Refused; the entries already there go on working) or
// ip is not a unicast address.
func (c *Cache) Enqueue(iface int, ip netip.Addr, pkt []byte) bool {
	if !ip.IsValid() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	k := key{iface, ip}
	s := c.shard(k)
	now := c.now()
	s.mu.Lock()
	e := s.load()[k]
	switch {
	case e == nil:
		if !c.reserve() {
			s.mu.Unlock()
			return false
		}
		e = &entry{sent: 1, queue: [][]byte{bytes.Clone(pkt)}}
		c.set(s, e, Incomplete, now)
		s.insert(k, e)
		s.mu.Unlock()
		c.send.Solicit(iface, ip, MAC{})
	case e.state == Incomplete:
		c.push(e, pkt)
		s.mu.Unlock()
	default:
		mac := e.mac
		if e.state == Stale {
			c.set(s, e, Delay, now)
		}
		s.mu.Unlock()
		c.send.Flush(iface, mac, [][]byte{bytes.Clone(pkt)})
	}
	return true
}

func (c *Cache) push(e *entry, pkt []byte) {
	if len(e.queue) < c.cfg.Queue {
		e.queue = append(e.queue, bytes.Clone(pkt))
		return
	}
	oldest := e.queue[0]
	copy(e.queue, e.queue[1:])
	e.queue[len(e.queue)-1] = append(oldest[:0], pkt...)
	c.drops.Add(1)
}

// reserve counts a new entry in, or refuses it when the cache is full.
// The SPEC's rule for every table: "when full, new work is refused and
// counted, old work goes on" — so no entry is evicted to make room.
func (c *Cache) reserve() bool {
	if c.count.Add(1) > int64(c.cfg.MaxEntries) {
		c.count.Add(-1)
		c.refused.Add(1)
		return false
	}
	return true
}

func (c *Cache) remove(s *shard, keys ...key) {
	s.drop(keys...)
	c.count.Add(-int64(len(keys)))
}

// set moves e to state st at now, starts that state's timer and
// publishes the state with e's MAC to Resolve.
func (c *Cache) set(s *shard, e *entry, st State, now time.Time) {
	e.state, e.updated = st, now
	e.word.Store(pack(st, e.mac))
	e.deadline = time.Time{}
	if d := c.timeout(st); d > 0 {
		e.deadline = now.Add(d)
		s.wake(e.deadline)
	}
}

func (c *Cache) timeout(st State) time.Duration {
	switch st {
	case Incomplete, Probe:
		return c.cfg.RetryInterval
	case Reachable:
		return c.cfg.Reachable
	case Stale:
		return c.cfg.Stale
	case Delay:
		return delayFirstProbe
	}
	return 0
}

func (s *shard) wake(t time.Time) {
	if s.next.IsZero() || t.Before(s.next) {
		s.next = t
	}
}

// AddStatic installs a PERMANENT entry (`[[neighbor]]`), replacing
// whatever the cache had; packets waiting for ip leave for mac. Static
// entries are never aged and never changed by what is heard, and go in
// even when the cache is full: the operator asked for them.
func (c *Cache) AddStatic(iface int, ip netip.Addr, mac MAC) {
	k := key{iface, ip}
	s := c.shard(k)
	s.mu.Lock()
	e := s.load()[k]
	fresh := e == nil
	if fresh {
		c.count.Add(1)
		e = &entry{}
	}
	queued := e.queue
	e.queue, e.mac, e.sent = nil, mac, 0
	c.set(s, e, Permanent, c.now())
	if fresh {
		s.insert(k, e) // published complete, as every new entry is
	}
	s.mu.Unlock()
	if len(queued) > 0 {
		c.send.Flush(iface, mac, queued)
	}
}

// RemoveStatic deletes a PERMANENT entry, for a reload that dropped it
// from the config; other entries are left alone. It reports whether
// there was one.
func (c *Cache) RemoveStatic(iface int, ip netip.Addr) bool {
	k := key{iface, ip}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.load()[k]; e == nil || e.state != Permanent {
		return false
	}
	c.remove(s, k)
	return true
}

// ForgetLink drops every entry of iface, static ones too, with the packets
// they hold: the interface is gone.
func (c *Cache) ForgetLink(iface int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		var keys []key
		for k := range s.load() {
			if k.iface == iface {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			c.remove(s, keys...)
		}
		s.mu.Unlock()
	}
}

// Entries is the cache's content sorted by interface and address.
func (c *Cache) Entries() []Entry {
	var out []Entry
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, e := range s.load() {
			out = append(out, Entry{
				Iface: k.iface, IP: k.ip, MAC: e.mac, State: e.state,
				Updated: e.updated, Queued: len(e.queue),
			})
		}
		s.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Iface, b.Iface), a.IP.Compare(b.IP))
	})
	return out
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	return Stats{
		Entries:    int(c.count.Load()),
		QueueDrops: c.drops.Load(),
		Refused:    c.refused.Load(),
		Failed:     c.failed.Load(),
		Invalid:    c.invalids.Load(),
	}
}
