package icmperr

import (
	"math"
	"sync/atomic"
	"time"
)

// Limiter caps the rate of ICMP errors, as RFC 1812 §4.3.2.8 asks: "A
// router SHOULD also be able to limit the rate at which it sends other
// sorts of ICMP error messages (Destination Unreachable, Redirect, Time
// Exceeded, Parameter Problem). The rate limit parameters SHOULD be
// settable as part of the configuration of the router. How the limits are
// applied (e.g., per router or per interface) is left to the implementor's
// discretion." RFC 4443 §2.4(f) makes it a MUST for ICMPv6 and names the
// method used here: "A recommended method for implementing the
// rate-limiting function is a token bucket, limiting the average rate of
// transmission to N, where N can be either packets/second or a fraction of
// the attached link's bandwidth, but allowing up to B error messages to be
// transmitted in a burst, as long as the long-term average is not
// exceeded."
//
// The bucket holds burst tokens refilled at rate per second, kept
// as one atomic "theoretical arrival time" (the generic cell rate
// algorithm): the bucket is full when that time is not after now, and
// each error pushes it one interval later. Allow is lock-free and may be
// called from any number of goroutines.
type Limiter struct {
	now   func() time.Time
	epoch time.Time
	// interval is the time one token takes to refill, in nanoseconds;
	// zero means no limit.
	interval int64
	// depth is how far ahead of now the arrival time may run: burst
	// intervals.
	depth int64
	// tat is the theoretical arrival time, nanoseconds since epoch.
	tat atomic.Int64

	sent, suppressed atomic.Uint64
}

// NewLimiter returns a limiter that lets burst errors through at once and
// rate per second after that. A rate of zero or less means no limit; a
// burst below one is one. now is the clock (time.Now when nil); tests pass
// a fake one.
func NewLimiter(rate float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, epoch: now()}
	if rate <= 0 {
		return l
	}
	l.interval = max(1, int64(float64(time.Second)/rate))
	// Bound depth so that arrival time plus an interval cannot overflow.
	l.depth = min(int64(max(burst, 1)), math.MaxInt64/4/l.interval) * l.interval
	return l
}

// Allow reports whether one more error may be sent now, taking a token if
// so, and counts the answer.
func (l *Limiter) Allow() bool {
	if l.interval == 0 {
		l.sent.Add(1)
		return true
	}
	now := int64(l.now().Sub(l.epoch))
	for {
		tat := l.tat.Load()
		next := max(tat, now) + l.interval
		if next-now > l.depth {
			l.suppressed.Add(1)
			return false
		}
		if l.tat.CompareAndSwap(tat, next) {
			l.sent.Add(1)
			return true
		}
	}
}

// Sent is how many times Allow said yes.
func (l *Limiter) Sent() uint64 { return l.sent.Load() }

// Suppressed is how many times Allow said no.
func (l *Limiter) Suppressed() uint64 { return l.suppressed.Load() }
