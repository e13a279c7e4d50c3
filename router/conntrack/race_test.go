//go:build race

package conntrack

// raceEnabled skips what the race detector only slows down.
const raceEnabled = true
