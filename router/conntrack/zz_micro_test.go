package conntrack

import "testing"

func BenchmarkZZSecond(b *testing.B) {
	tab, _ := newTable(b, Config{})
	var s uint64
	for b.Loop() {
		s += tab.second()
	}
	_ = s
}

func BenchmarkZZCompactHash(b *testing.B) {
	tab, _ := newTable(b, Config{})
	k := nthKey(5)
	var s uint64
	for b.Loop() {
		c := compact(k)
		s += c.hash(&tab.seed)
	}
	_ = s
}
