package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// table is one TOML table as BurntSushi/toml decoded it into maps, with the
// positions of its keys from locate. The decoders read every key they know
// through it, present or not; whatever is left in the map is an unknown key.
//
// A nil *table is an absent table: it has no keys and reports nothing, so
// an omitted [router] decodes to the defaults like an empty one.
type table struct {
	errs  *errorList
	name  string // how messages name it: `router`, `interface "lan0"`, `route 2`; "" at the root
	path  string // its dotted key from the root, as headers write it: `service.health`; "" at the root
	m     map[string]any
	pos   *node
	known []string // the keys a decoder asked for
}

// item is one string of an array, with its own line.
type item struct {
	s    string
	line int
}

func (t *table) get(key string) (any, bool) {
	if t == nil {
		return nil, false
	}
	t.known = append(t.known, key)
	v, ok := t.m[key]
	return v, ok
}

func (t *table) has(key string) bool {
	_, ok := t.get(key)
	return ok
}

// line is where key was defined, or the table's own line if the scan did
// not find it.
func (t *table) line(key string) int {
	if n := t.pos.key(key); n != nil {
		return n.line
	}
	return t.pos.at()
}

// errorf records a problem at line, prefixed with the table's name.
func (t *table) errorf(line int, format string, args ...any) {
	if t.name != "" {
		format = t.name + ": " + format
	}
	t.errs.errorf(line, format, args...)
}

func (t *table) str(key string) (string, bool) {
	v, ok := t.get(key)
	if !ok {
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		t.errorf(t.line(key), "%s must be a string, not %s", key, describe(v))
	}
	return s, ok
}

func (t *table) boolean(key string) (bool, bool) {
	v, ok := t.get(key)
	if !ok {
		return false, false
	}
	b, ok := v.(bool)
	if !ok {
		t.errorf(t.line(key), "%s must be true or false, not %s", key, describe(v))
	}
	return b, ok
}

// integer returns the value of key if it is an integer in lo..hi.
func (t *table) integer(key string, lo, hi int64) (int64, bool) {
	v, ok := t.get(key)
	if !ok {
		return 0, false
	}
	n, ok := v.(int64)
	switch {
	case !ok:
		t.errorf(t.line(key), "%s must be an integer, not %s", key, describe(v))
	case n < lo || n > hi:
		t.errorf(t.line(key), "%s %d is out of range %d..%d", key, n, lo, hi)
		ok = false
	}
	return n, ok
}

// duration returns the value of key, a Go duration string, if it is more
// than 0.
func (t *table) duration(key string) (Duration, bool) {
	s, d, ok := t.anyDuration(key)
	if ok && d <= 0 {
		t.errorf(t.line(key), "%s %q must be more than 0", key, s)
		return 0, false
	}
	return d, ok
}

// durationOrZero returns the value of key, a Go duration string, if it is
// 0 or more: for a window where 0 turns the feature off.
func (t *table) durationOrZero(key string) (Duration, bool) {
	s, d, ok := t.anyDuration(key)
	if ok && d < 0 {
		t.errorf(t.line(key), `%s %q must not be negative; "0s" turns it off`, key, s)
		return 0, false
	}
	return d, ok
}

// anyDuration returns the value of key, as written and parsed, if it is a
// Go duration string.
func (t *table) anyDuration(key string) (string, Duration, bool) {
	s, ok := t.str(key)
	if !ok {
		return "", 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.errorf(t.line(key), `%s %q is not a duration%s; write it like "30s" or "2h4m"`, key, s, durationReason(err))
		return s, 0, false
	}
	return s, d, true
}

// durationReason keeps what time.ParseDuration's error adds to our
// message: `: missing unit` from `time: missing unit in duration "30"`.
func durationReason(err error) string {
	msg, _, ok := strings.Cut(strings.TrimPrefix(err.Error(), "time: "), " in duration ")
	if !ok {
		return "" // `invalid duration "x"` says nothing more
	}
	return ": " + msg
}

// mac returns the value of key if it is a host's Ethernet address.
func (t *table) mac(key string) (MAC, bool) {
	s, ok := t.str(key)
	if !ok {
		return MAC{}, false
	}
	m, err := parseMAC(s)
	if err != nil {
		t.errorf(t.line(key), "%s %v", key, err)
		return MAC{}, false
	}
	return m, true
}

// strs returns the strings of an array, each with its line; other elements
// are reported and left out. It is false when key is absent or not an array.
func (t *table) strs(key string) ([]item, bool) {
	v, ok := t.get(key)
	if !ok {
		return nil, false
	}
	arr, ok := v.([]any)
	if !ok {
		t.errorf(t.line(key), "%s must be an array of strings, not %s", key, describe(v))
		return nil, false
	}
	items := make([]item, 0, len(arr))
	for i, e := range arr {
		line := t.pos.key(key).elem(i).at()
		if line == 0 {
			line = t.line(key)
		}
		s, ok := e.(string)
		if !ok {
			t.errorf(line, "%s: element %d must be a string, not %s", key, i+1, describe(e))
			continue
		}
		items = append(items, item{s, line})
	}
	return items, true
}

// table returns the sub-table at key, or nil when it is absent or is not a
// table (reported).
func (t *table) table(key string) *table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.errorf(t.line(key), "%s must be a table, [%s], not %s", key, t.sub(key), describe(v))
		return nil
	}
	return &table{errs: t.errs, name: key, path: t.sub(key), m: m, pos: t.pos.key(key)}
}

// tables returns the array of tables at key, named "key 1", "key 2", …
// TOML writes it as [[key]] headers or as an array of inline tables; both
// decode alike.
func (t *table) tables(key string) []*table {
	v, ok := t.get(key)
	if !ok {
		return nil
	}
	var ms []map[string]any
	switch v := v.(type) {
	case []map[string]any:
		ms = v
	case []any:
		for i, e := range v {
			m, ok := e.(map[string]any)
			if !ok {
				t.errorf(t.line(key), "%s must be an array of tables, [[%s]]; element %d is %s", key, t.sub(key), i+1, describe(e))
				return nil
			}
			ms = append(ms, m)
		}
	default:
		t.errorf(t.line(key), "%s must be an array of tables, [[%s]], not %s", key, t.sub(key), describe(v))
		return nil
	}
	out := make([]*table, len(ms))
	for i, m := range ms {
		out[i] = &table{errs: t.errs, name: fmt.Sprintf("%s %d", key, i+1), path: t.sub(key), m: m, pos: t.pos.key(key).elem(i)}
	}
	return out
}

// sub is the dotted path of key inside t, for headers in messages:
// [[service.backend]], not [[backend]]. Keys that need quotes in a header
// are rare enough to be shown bare.
func (t *table) sub(key string) string {
	if t.path == "" {
		return key
	}
	return t.path + "." + key
}

// unknownKeys reports every key no decoder asked for. It runs last, after
// the decoders have read the table.
func (t *table) unknownKeys() {
	if t == nil {
		return
	}
	for _, k := range slices.Sorted(maps.Keys(t.m)) {
		if slices.Contains(t.known, k) {
			continue
		}
		what := "key"
		if _, ok := t.m[k].(map[string]any); ok {
			what = "table"
		}
		msg := fmt.Sprintf("unknown %s %q", what, k)
		if s := closest(k, t.known); s != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", s)
		}
		t.errorf(t.line(k), "%s", msg)
	}
}

// describe names a decoded TOML value's type for messages.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("%v", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case time.Time: // toml's local dates and times are time.Time too
		return "a date or time"
	default:
		return fmt.Sprintf("a %T", v)
	}
}

// closest returns the candidate at most two typos away from key, for a
// "did you mean" hint; "" when none is that close.
func closest(key string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := editDistance(key, c); d < bestDist && d < len(key) {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			sub := prev[j-1]
			if a[i-1] != b[j-1] {
				sub++
			}
			cur[j] = min(sub, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// decodeUnique decodes each table of an array of tables and reports, at
// the repeat, an entry whose key an earlier one has; key also describes
// the key for that message. An entry with errors of its own is left out of
// the comparison, which could only add noise to them.
func decodeUnique[T any, K comparable](ts []*table, what string, decode func(*table) T, key func(T) (K, string)) []T {
	out := make([]T, 0, len(ts))
	first := make(map[K]int)
	for i, t := range ts {
		before := len(t.errs.errs)
		v := decode(t)
		out = append(out, v)
		if len(t.errs.errs) > before {
			continue
		}
		k, desc := key(v)
		if j, dup := first[k]; dup {
			t.errorf(t.pos.at(), "same %s as %s %d", desc, what, j+1)
			continue
		}
		first[k] = i
	}
	return out
}
