package router

import (
	"fmt"
	"time"

	"github.com/tungate/tungate/router/packet"
)

// refusalLogEvery is the least time between two log lines about one table
// refusing work: a flood must not become a flood of log lines too.
const refusalLogEvery = 10 * time.Second

// refusalLog notices, on the housekeeping tick, when a bounded table has
// started refusing new work, and says so in the log at most every
// refusalLogEvery per table, with how much it refused since the last line.
type refusalLog struct {
	checked time.Time
	seen    map[string]uint64    // the counter's value at the last line
	logged  map[string]time.Time // when that line was
}

// refusalCheckEvery spaces the checks: reading the tables' counters takes
// their locks.
const refusalCheckEvery = time.Second

// check logs the tables whose refusal counter grew, rate limited.
func (r *Router) checkRefusals(now time.Time) {
	l := &r.refusals
	if now.Sub(l.checked) < refusalCheckEvery {
		return
	}
	l.checked = now
	if l.seen == nil {
		l.seen, l.logged = map[string]uint64{}, map[string]time.Time{}
	}
	st := r.Stats()
	counters := map[string]uint64{
		// New flows are refused before they reach the table while it is
		// full (roomForFlow); Insert refuses the ones that raced there.
		"conntrack":      st.Conntrack.RefusedFull + st.Drops[packet.ReasonConntrackFull.String()],
		"neighbor cache": st.Neighbors.Refused,
	}
	for _, n := range st.NAT {
		counters[fmt.Sprintf("nat rule %d", n.Rule)] = n.RefusedQuota + n.RefusedExhausted + n.RefusedNoAddress
	}
	for table, count := range counters {
		if count <= l.seen[table] || now.Sub(l.logged[table]) < refusalLogEvery {
			continue
		}
		r.log.Warn(table+" is refusing new work", "refused", count-l.seen[table], "total", count)
		l.seen[table], l.logged[table] = count, now
	}
}
