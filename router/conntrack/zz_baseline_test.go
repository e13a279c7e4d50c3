package conntrack

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func BenchmarkZZMapBaseline(b *testing.B) {
	for _, n := range []int{1000, 1 << 16, 1 << 18, 1 << 20} {
		m := make(map[Key]*Flow, 2*n)
		keys := make([]Key, n)
		for i := range keys {
			keys[i] = nthKey(i)
			f := &Flow{}
			m[keys[i]] = f
			m[nthReply(i)] = f
		}
		rand.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		var mu sync.RWMutex
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			i := 0
			for b.Loop() {
				mu.RLock()
				f := m[keys[i]]
				mu.RUnlock()
				if f == nil || f.word.Load() == 1 {
					b.Fatal("miss")
				}
				if i++; i == len(keys) {
					i = 0
				}
			}
		})
	}
}
