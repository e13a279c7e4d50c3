package neigh

import (
	"net/netip"
	"time"
)

// news is what one received ARP or NDP message says about a neighbor,
// reduced to what RFC 4861 §7.2.3, §7.2.5 and RFC 826 decide by.
type news struct {
	mac   MAC
	noMAC bool // an NA without a Target Link-Layer Address option
	// create: the message may add an entry. RFC 826: "Am I the target
	// protocol address? Yes: If Merge_flag is false, add the triplet";
	// RFC 4861 §7.2.3 and §6.2.6: an NS or RS with a source link-layer
	// address creates a STALE entry. An NA never does (§7.2.5: "If no
	// entry exists, the advertisement SHOULD be silently discarded").
	create bool
	// confirm: an answer to our own solicitation, the proof of two-way
	// reachability (RFC 4861 §7.3.1): NA with the Solicited flag, ARP
	// reply addressed to us.
	confirm bool
	// weak: may not replace a cached address (NA with Override clear).
	weak bool
}

// learn applies news about ip on iface; an entry it resolves sends its
// queued packets.
func (c *Cache) learn(iface int, ip netip.Addr, n news) {
	k := key{iface, ip}
	s := c.shard(k)
	now := c.now()
	s.mu.Lock()
	e := s.load()[k]
	var queued [][]byte
	var mac MAC
	switch {
	case e == nil:
		c.add(s, k, n, now)
	case e.state == Incomplete:
		queued = c.complete(s, e, n, now)
		mac = e.mac
	case e.state != Permanent:
		c.update(s, e, n, now)
	}
	s.mu.Unlock()
	if len(queued) > 0 {
		c.send.Flush(iface, mac, queued)
	}
}

// add creates an entry from news, STALE: heard of, not confirmed.
func (c *Cache) add(s *shard, k key, n news, now time.Time) {
	if !n.create || n.noMAC || !c.reserve() {
		return
	}
	e := &entry{mac: n.mac}
	c.set(s, e, Stale, now)
	s.insert(k, e)
}

// complete resolves an INCOMPLETE entry and returns its queue. RFC 4861
// §7.2.5: "If the link layer has addresses and no Target Link-Layer
// Address option is included, the receiving node SHOULD silently discard
// the received advertisement. Otherwise, the receiving node performs the
// following steps: It records the link-layer address in the Neighbor
// Cache entry. If the advertisement's Solicited flag is set, the state of
// the entry is set to REACHABLE; otherwise, it is set to STALE. [...] It
// sends any packets queued for the neighbor awaiting address
// resolution." An NS, RS or ARP request from the neighbor does the same
// as an unsolicited answer (§7.2.3, Appendix C).
func (c *Cache) complete(s *shard, e *entry, n news, now time.Time) [][]byte {
	if n.noMAC {
		return nil
	}
	e.mac, e.sent = n.mac, 0
	st := Stale
	if n.confirm {
		st = Reachable
	}
	c.set(s, e, st, now)
	queued := e.queue
	e.queue = nil
	return queued
}

// update applies news to a resolved entry, per RFC 4861 §7.2.5:
//
//	"I. If the Override flag is clear and the supplied link-layer
//	address differs from that in the cache, then one of two actions
//	takes place: a. If the state of the entry is REACHABLE, set it to
//	STALE, but do not update the entry in any other way. b. Otherwise,
//	the received advertisement should be ignored [...]
//	II. If the Override flag is set, or the supplied link-layer address
//	is the same as that in the cache, or no Target Link-Layer Address
//	option was supplied, the received advertisement MUST update the
//	Neighbor Cache entry as follows: - The link-layer address in the
//	Target Link-Layer Address option MUST be inserted in the cache (if
//	one is supplied and differs from the already recorded address). -
//	If the Solicited flag is set, the state of the entry MUST be set to
//	REACHABLE. If the Solicited flag is zero and the link-layer address
//	was updated with a different address, the state MUST be set to
//	STALE. Otherwise, the entry's state remains unchanged."
//
// An NS or RS with a new source address, and RFC 826's merge ("update
// the sender hardware address field of the entry with the new
// information in the packet"), are the Override-set, unsolicited case.
func (c *Cache) update(s *shard, e *entry, n news, now time.Time) {
	differs := !n.noMAC && n.mac != e.mac
	if n.weak && differs {
		if e.state == Reachable {
			c.set(s, e, Stale, now)
		}
		return
	}
	if differs {
		e.mac = n.mac
	}
	switch {
	case n.confirm:
		e.sent = 0
		c.set(s, e, Reachable, now)
	case differs:
		c.set(s, e, Stale, now)
	}
}

// Tick runs the timers that are due on the injected clock; the router
// calls it about every 100 ms. The transitions (RFC 4861 §7.3.3,
// Appendix C):
//
//	INCOMPLETE  every RetryInterval another solicitation; after Retries
//	            of them, resolution failed: Fail gets the queue, the
//	            entry goes
//	REACHABLE   after Reachable: STALE
//	STALE       unused for Stale: removed
//	DELAY       after DELAY_FIRST_PROBE_TIME: PROBE, first unicast probe
//	PROBE       every RetryInterval another unicast probe; after Retries
//	            unanswered, the entry goes ("retransmissions cease and
//	            the entry SHOULD be deleted")
//
// The Sender is called after the locks are released.
func (c *Cache) Tick() {
	now := c.now()
	var todo []action
	for i := range c.shards {
		todo = c.tickShard(&c.shards[i], now, todo)
	}
	for _, a := range todo {
		a.do(c.send)
	}
}

// action is a Sender call decided under a lock and made after it.
type action struct {
	iface int
	ip    netip.Addr
	mac   MAC      // unicast target of a solicitation
	fail  bool     // Fail rather than Solicit
	pkts  [][]byte // for Fail
}

func (a action) do(s Sender) {
	if a.fail {
		s.Fail(a.iface, a.ip, a.pkts)
		return
	}
	s.Solicit(a.iface, a.ip, a.mac)
}

func (c *Cache) tickShard(s *shard, now time.Time, todo []action) []action {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next.IsZero() || now.Before(s.next) {
		return todo
	}
	s.next = time.Time{}
	var gone []key
	for k, e := range s.load() {
		if !e.deadline.IsZero() && !now.Before(e.deadline) {
			var removed bool
			todo, removed = c.expire(s, k, e, now, todo)
			if removed {
				gone = append(gone, k)
				continue
			}
		}
		if !e.deadline.IsZero() {
			s.wake(e.deadline)
		}
	}
	if len(gone) > 0 {
		c.remove(s, gone...)
	}
	return todo
}

// expire runs the timer of e, which is due; removed says e is to go.
func (c *Cache) expire(s *shard, k key, e *entry, now time.Time, todo []action) (_ []action, removed bool) {
	switch e.state {
	case Reachable:
		c.set(s, e, Stale, now)
	case Stale:
		return todo, true
	case Delay:
		e.sent = 1
		c.set(s, e, Probe, now)
		todo = append(todo, action{iface: k.iface, ip: k.ip, mac: e.mac})
	case Incomplete, Probe:
		return c.retry(k, e, now, todo)
	}
	return todo, false
}

// retry sends the next solicitation of an INCOMPLETE or PROBE entry, or
// gives up after Retries.
func (c *Cache) retry(k key, e *entry, now time.Time, todo []action) (_ []action, removed bool) {
	if e.sent >= c.cfg.Retries {
		c.failed.Add(1)
		if e.state == Incomplete {
			todo = append(todo, action{iface: k.iface, ip: k.ip, fail: true, pkts: e.queue})
		}
		return todo, true
	}
	e.sent++
	// Only the timer restarts: Updated keeps the time the state began.
	e.deadline = now.Add(c.cfg.RetryInterval)
	var unicast MAC
	if e.state == Probe {
		unicast = e.mac
	}
	return append(todo, action{iface: k.iface, ip: k.ip, mac: unicast}), false
}
