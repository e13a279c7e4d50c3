package lb

// A slotTable maps a hash to a backend through slots filled in proportion
// to weight: sh's buckets and maglev's lookup table.
type slotTable struct {
	backends []*Backend
	slots    []int32 // indices into backends
}

// rehashes is how many more slots lookup tries when a key's own slot
// holds an ineligible backend.
const rehashes = 16

// lookup returns the backend of h's slot if it is eligible. Otherwise it
// rehashes h with the attempt number and tries again, so the keys of a
// failed backend spread over the others in proportion to their slots while
// every other key stays where it was. (IPVS's sh-fallback walks the table
// from the slot instead, ip_vs_sh_get_fallback, which hands a failed
// backend's keys to its neighbours in the table.) After rehashes misses,
// when most of the table is down, it takes the first eligible backend in
// list order from h; nil when there is none.
func (t *slotTable) lookup(h uint64) *Backend {
	n := uint64(len(t.slots))
	if n == 0 {
		return nil
	}
	if b := t.backends[t.slots[h%n]]; b.Eligible() {
		return b
	}
	for k := uint64(1); k <= rehashes; k++ {
		if b := t.backends[t.slots[mix64(h+k*seedRehash)%n]]; b.Eligible() {
			return b
		}
	}
	m := uint64(len(t.backends))
	for k := range m {
		if b := t.backends[(h+k)%m]; b.Eligible() {
			return b
		}
	}
	return nil
}
