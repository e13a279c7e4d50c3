package lb

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// backendAddr is a distinct address for backend i.
func backendAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 47, byte(i >> 8), byte(i)}), 80)
}

// newBackends makes one healthy backend per weight.
func newBackends(weights ...int) []*Backend {
	bs := make([]*Backend, len(weights))
	for i, w := range weights {
		bs[i] = NewBackend(backendAddr(i), w)
	}
	return bs
}

// equalBackends makes n healthy backends of weight 1.
func equalBackends(n int) []*Backend {
	bs := make([]*Backend, n)
	for i := range bs {
		bs[i] = NewBackend(backendAddr(i), 1)
	}
	return bs
}

func mustNew(tb testing.TB, name string, bs []*Backend) Scheduler {
	tb.Helper()
	s, err := New(name, bs)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// clientFlow is a TCP flow from client number i, port port.
func clientFlow(i int, port uint16) FlowKey {
	a := netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
	return FlowKey{Client: netip.AddrPortFrom(a, port), Proto: 6}
}

// indexOf maps b to its index in bs, -1 for nil.
func indexOf(bs []*Backend, b *Backend) int {
	for i, c := range bs {
		if c == b {
			return i
		}
	}
	if b != nil {
		panic("backend not in set")
	}
	return -1
}

// sequence picks n times for one flow and spells the choices as indices,
// "-" for nil.
func sequence(s Scheduler, bs []*Backend, n int) string {
	var out []string
	for range n {
		if i := indexOf(bs, s.Pick(clientFlow(1, 1000))); i >= 0 {
			out = append(out, fmt.Sprint(i))
		} else {
			out = append(out, "-")
		}
	}
	return strings.Join(out, " ")
}

// counts picks n times, one flow each, and counts the choices per index.
func counts(s Scheduler, bs []*Backend, n int) []int {
	c := make([]int, len(bs))
	for i := range n {
		if b := s.Pick(clientFlow(i, uint16(i))); b != nil {
			c[indexOf(bs, b)]++
		}
	}
	return c
}
