package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml decodes values but keeps the position of each key private
// (NOTES-DEPS.md), and its MetaData.Undecoded() cannot tell [[interface]]
// number 2 from number 1. So we scan the text a second time, after toml has
// accepted it, and record the line of every key, table header and array
// element in a tree shaped like the decoded document. The scan assumes valid
// TOML (toml checked it) and only has to find where things start; it never
// interprets values.

// node is where one key, table or array element of the file was defined.
type node struct {
	line  int
	keys  map[string]*node // the keys of a table
	elems []*node          // the elements of an array or array of tables, in order
}

// key returns the child node for k, or nil. A nil node has no children.
func (n *node) key(k string) *node {
	if n == nil {
		return nil
	}
	return n.keys[k]
}

// elem returns the i'th array element, or nil.
func (n *node) elem(i int) *node {
	if n == nil || i >= len(n.elems) {
		return nil
	}
	return n.elems[i]
}

// at is the node's line, 0 for a nil node.
func (n *node) at() int {
	if n == nil {
		return 0
	}
	return n.line
}

// ensure returns the child for k, creating it at line if it is new, so a
// key keeps the line where it first appeared.
func (n *node) ensure(k string, line int) *node {
	if c := n.keys[k]; c != nil {
		return c
	}
	if n.keys == nil {
		n.keys = make(map[string]*node)
	}
	c := &node{line: line}
	n.keys[k] = c
	return c
}

// scanner walks the file text, keeping the current line up to date.
type scanner struct {
	src  string
	i    int
	line int
}

// locate returns the positions of everything defined in src, a valid TOML
// document. The root node has line 0.
func locate(src string) *node {
	// toml skips a UTF-8 byte order mark too; it is not on a line of its own.
	s := &scanner{src: strings.TrimPrefix(src, "\uFEFF"), line: 1}
	root := &node{}
	cur := root
	for s.skipTrivia(); !s.eof(); s.skipTrivia() {
		if s.src[s.i] == '[' {
			cur = s.header(root)
		} else {
			s.keyval(cur)
		}
	}
	return root
}

func (s *scanner) eof() bool { return s.i >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.i]
}

// advance moves to offset j, counting the newlines it passes.
func (s *scanner) advance(j int) {
	j = min(j, len(s.src))
	s.line += strings.Count(s.src[s.i:j], "\n")
	s.i = j
}

// skipSpace skips blanks within a line.
func (s *scanner) skipSpace() {
	j := s.i
	for j < len(s.src) && (s.src[j] == ' ' || s.src[j] == '\t') {
		j++
	}
	s.advance(j)
}

// skipTrivia skips blanks, newlines and comments.
func (s *scanner) skipTrivia() {
	j := s.i
	for j < len(s.src) {
		switch s.src[j] {
		case ' ', '\t', '\r', '\n':
			j++
		case '#':
			if k := strings.IndexByte(s.src[j:], '\n'); k >= 0 {
				j += k
			} else {
				j = len(s.src)
			}
		default:
			s.advance(j)
			return
		}
	}
	s.advance(j)
}

// header reads a [table] or [[array]] header and returns the node that
// the keys below it belong to.
func (s *scanner) header(root *node) *node {
	line := s.line
	s.advance(s.i + 1)
	array := s.peek() == '['
	if array {
		s.advance(s.i + 1)
	}
	path := s.keyPath()
	s.skipSpace()
	for s.peek() == ']' {
		s.advance(s.i + 1)
	}
	parent := root
	for _, k := range path[:len(path)-1] {
		parent = parent.ensure(k, line)
		// [a.b] after [[a]] extends the latest element of a.
		if n := len(parent.elems); n > 0 {
			parent = parent.elems[n-1]
		}
	}
	n := parent.ensure(path[len(path)-1], line)
	if array {
		e := &node{line: line}
		n.elems = append(n.elems, e)
		return e
	}
	// [a] after [a.b] defines a table that a.b created implicitly; the
	// header is where the user will look for it.
	n.line = line
	return n
}

// keyval reads key = value into table t; dotted keys create sub-tables.
func (s *scanner) keyval(t *node) {
	line := s.line
	n := t
	for _, k := range s.keyPath() {
		n = n.ensure(k, line)
	}
	s.skipSpace()
	if s.peek() != '=' {
		return
	}
	s.advance(s.i + 1)
	s.skipSpace()
	s.value(n)
}

// keyPath reads a possibly dotted key. It always consumes something unless
// at the end of the text, so the scan cannot stall; the path is never empty.
func (s *scanner) keyPath() []string {
	var path []string
	for {
		s.skipSpace()
		path = append(path, s.simpleKey())
		s.skipSpace()
		if s.peek() != '.' {
			return path
		}
		s.advance(s.i + 1)
	}
}

func (s *scanner) simpleKey() string {
	if c := s.peek(); c == '"' || c == '\'' {
		raw := s.src[s.i:stringEnd(s.src, s.i)]
		s.advance(s.i + len(raw))
		return unquoteKey(raw)
	}
	j := s.i
	for j < len(s.src) && isBareKeyChar(s.src[j]) {
		j++
	}
	if j == s.i && !s.eof() {
		j++ // not a key character: step over it, there is nothing to record
	}
	k := s.src[s.i:j]
	s.advance(j)
	return k
}

func isBareKeyChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// unquoteKey decodes a quoted key, so that it matches the decoded map's.
// A key that does not decode keeps its quotes; it is then not found and
// its messages fall back to its table's line.
func unquoteKey(raw string) string {
	if len(raw) < 2 || raw[len(raw)-1] != raw[0] {
		return raw
	}
	if raw[0] == '\'' {
		return raw[1 : len(raw)-1]
	}
	if k, ok := unescape(raw[1 : len(raw)-1]); ok {
		return k
	}
	return raw
}

// escapes maps TOML's one-letter escapes (TOML 1.1 added \e) to their byte.
var escapes = map[byte]byte{'b': '\b', 't': '\t', 'n': '\n', 'f': '\f', 'r': '\r', 'e': 0x1b, '"': '"', '\\': '\\'}

// hexEscapes maps TOML's escapes by code point to their count of hex
// digits: \xHH (TOML 1.1), \uHHHH, \UHHHHHHHH.
var hexEscapes = map[byte]int{'x': 2, 'u': 4, 'U': 8}

// unescape decodes the escapes of a TOML basic string's content.
func unescape(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", false
		}
		if c, ok := escapes[s[i]]; ok {
			b.WriteByte(c)
			continue
		}
		n := hexEscapes[s[i]]
		if n == 0 || i+n >= len(s) {
			return "", false
		}
		r, err := strconv.ParseUint(s[i+1:i+1+n], 16, 32)
		if err != nil {
			return "", false
		}
		b.WriteRune(rune(r))
		i += n
	}
	return b.String(), true
}

// value skips one value, recording array elements and inline-table keys
// under n.
func (s *scanner) value(n *node) {
	switch s.peek() {
	case '"', '\'':
		s.advance(stringEnd(s.src, s.i))
	case '[':
		s.array(n)
	case '{':
		s.inlineTable(n)
	default:
		s.scalar()
	}
}

func (s *scanner) array(n *node) {
	s.advance(s.i + 1)
	for s.skipTrivia(); !s.eof() && s.peek() != ']'; s.skipTrivia() {
		if s.peek() == ',' {
			s.advance(s.i + 1)
			continue
		}
		e := &node{line: s.line}
		n.elems = append(n.elems, e)
		s.value(e)
	}
	s.advance(s.i + 1)
}

// inlineTable also accepts TOML 1.1's newlines, comments and trailing comma.
func (s *scanner) inlineTable(n *node) {
	s.advance(s.i + 1)
	for s.skipTrivia(); !s.eof() && s.peek() != '}'; s.skipTrivia() {
		if s.peek() == ',' {
			s.advance(s.i + 1)
			continue
		}
		s.keyval(n)
	}
	s.advance(s.i + 1)
}

// scalar skips a number, boolean or date-time. A local date-time may hold a
// space ("1979-05-27 07:32:00"), so only these bytes end it. It consumes at
// least one byte so that a stray delimiter cannot stall the scan.
func (s *scanner) scalar() {
	j := s.i + 1
	for j < len(s.src) && !strings.ContainsRune(",]}#\r\n", rune(s.src[j])) {
		j++
	}
	s.advance(j)
}

// stringEnd returns the offset just past the string that starts at src[i],
// one of TOML's four kinds: basic ("..."), literal ('...'), and the
// multi-line forms of both, between three quotes.
func stringEnd(src string, i int) int {
	q := src[i]
	escapes := q == '"' // literal strings have no escapes
	if delim := strings.Repeat(string(q), 3); strings.HasPrefix(src[i:], delim) {
		for j := i + 3; j < len(src); j++ {
			switch {
			case escapes && src[j] == '\\':
				j++
			case strings.HasPrefix(src[j:], delim):
				j += 3
				// Up to two more quotes belong to the content: """a""""" is `a""`.
				for k := 0; k < 2 && j < len(src) && src[j] == q; k++ {
					j++
				}
				return j
			}
		}
		return len(src)
	}
	for j := i + 1; j < len(src) && src[j] != '\n'; j++ {
		switch {
		case escapes && src[j] == '\\':
			j++
		case src[j] == q:
			return j + 1
		}
	}
	return len(src)
}
