//go:build race

package caps

// raceEnabled: the race detector links cgo, and Keep must say so.
const raceEnabled = true
