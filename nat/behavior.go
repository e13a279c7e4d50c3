package nat

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// byName registers strategies under their String, the name the config file
// uses (STYLE §9: small named strategies).
func byName[T fmt.Stringer](all ...T) map[string]T {
	m := make(map[string]T, len(all))
	for _, s := range all {
		m[s.String()] = s
	}
	return m
}

func names[T any](m map[string]T) []string { return slices.Sorted(maps.Keys(m)) }

func lookup[T any](m map[string]T, kind, name string) (T, error) {
	if s, ok := m[name]; ok {
		return s, nil
	}
	var zero T
	return zero, fmt.Errorf("unknown %s behaviour %q; the behaviours are %s",
		kind, name, strings.Join(names(m), ", "))
}
