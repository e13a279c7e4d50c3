package nat

import "time"

// heldPort is an external port kept back after its mapping went (RFC 6888
// REQ-8, Rule.ReuseDelay), for the mapping key that had it.
type heldPort struct {
	key   mappingKey
	addr  *extAddr
	port  uint16
	until time.Time
}

// holds are the held ports of a Table: by key, to give a port back to its
// mapping, and in order of expiry. The delay is the same for all, so the
// order of holding is the order of expiry and a FIFO is enough.
type holds struct {
	byKey map[mappingKey]heldPort
	queue []heldPort // from head on
	head  int
}

func (h *holds) add(e heldPort) {
	h.byKey[e.key] = e
	h.queue = append(h.queue, e)
}

// take removes and returns the port held for k, if any.
func (h *holds) take(k mappingKey) (heldPort, bool) {
	e, ok := h.byKey[k]
	if ok {
		delete(h.byKey, k)
	}
	return e, ok
}

// expire removes the holds that end at or before now and passes each to
// release. Queue entries whose port was taken back, or held again later,
// are dropped without a call.
func (h *holds) expire(now time.Time, release func(heldPort)) {
	for ; h.head < len(h.queue) && !h.queue[h.head].until.After(now); h.head++ {
		e := h.queue[h.head]
		if cur, ok := h.byKey[e.key]; ok && cur == e {
			delete(h.byKey, e.key)
			release(e)
		}
	}
	// Compact once half the slice is spent: amortized O(1) a hold.
	if h.head > 0 && h.head*2 >= len(h.queue) {
		n := copy(h.queue, h.queue[h.head:])
		clear(h.queue[n:])
		h.queue, h.head = h.queue[:n], 0
	}
}

// len is the number of ports held.
func (h *holds) len() int { return len(h.byKey) }
