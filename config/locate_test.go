package config

import (
	"testing"

	"github.com/BurntSushi/toml"
)

// find walks root by keys (string) and array indexes (int).
func find(root *node, path ...any) *node {
	n := root
	for _, p := range path {
		switch p := p.(type) {
		case string:
			n = n.key(p)
		case int:
			n = n.elem(p)
		}
	}
	return n
}

func TestLocate(t *testing.T) {
	const doc = "# comment with [fake] header and key = 1\n" + // 1
		"[a]\n" + // 2
		"s = \"\"\"\n" + // 3
		"[not.a.header]\n" + // 4
		"x = 1\n" + // 5
		"\"\"\" # end\n" + // 6
		"t = '''\n" + // 7
		"[[nope]]\n" + // 8
		"'''\n" + // 9
		"arr = [\n" + // 10
		"  \"one\",  # comment ]\n" + // 11
		"  'two',\n" + // 12
		"  [1, 2],\n" + // 13
		"  { k = \"v\" },\n" + // 14
		"]\n" + // 15
		"\"quoted key\" = 1\n" + // 16
		"'lit.key' = 2\n" + // 17
		"d.e.f = 3\n" + // 18
		"dt = 1979-05-27 07:32:00\n" + // 19
		"[[b]]\n" + // 20
		"n = 1\n" + // 21
		"[b.sub]\n" + // 22
		"m = 2\n" + // 23
		"[[b]]\n" + // 24
		"n = 2\n" + // 25
		"[[b.c]]\n" + // 26
		"z = 1\n" + // 27
		"[ a . g ]\n" + // 28
		"esc = \"a\\\"b[c]\"\n" + // 29
		"inl = { p = 1, q = { r = 2 } }\n" + // 30
		"ml = \"\"\"a\"\"\"\"\n" + // 31
		"after = 1\n" + // 32
		"multi = {\n" + // 33, TOML 1.1
		"  u = 1, # c\n" + // 34
		"  v = 2,\n" + // 35
		"}\n" + // 36
		"\"k\\u0041\" = 1\n" // 37
	var m map[string]any
	if _, err := toml.Decode(doc, &m); err != nil {
		t.Fatalf("the test document must be valid TOML: %v", err)
	}
	root := locate(doc)
	tests := []struct {
		path []any
		line int
	}{
		{[]any{"a"}, 2},
		{[]any{"a", "s"}, 3},
		{[]any{"a", "t"}, 7},
		{[]any{"a", "arr"}, 10},
		{[]any{"a", "arr", 0}, 11},
		{[]any{"a", "arr", 1}, 12},
		{[]any{"a", "arr", 2}, 13},
		{[]any{"a", "arr", 2, 1}, 13},
		{[]any{"a", "arr", 3, "k"}, 14},
		{[]any{"a", "quoted key"}, 16},
		{[]any{"a", "lit.key"}, 17},
		{[]any{"a", "d"}, 18},
		{[]any{"a", "d", "e", "f"}, 18},
		{[]any{"a", "dt"}, 19},
		{[]any{"b"}, 20},
		{[]any{"b", 0}, 20},
		{[]any{"b", 0, "n"}, 21},
		{[]any{"b", 0, "sub"}, 22},
		{[]any{"b", 0, "sub", "m"}, 23},
		{[]any{"b", 1}, 24},
		{[]any{"b", 1, "n"}, 25},
		{[]any{"b", 1, "c", 0}, 26},
		{[]any{"b", 1, "c", 0, "z"}, 27},
		{[]any{"a", "g"}, 28},
		{[]any{"a", "g", "esc"}, 29},
		{[]any{"a", "g", "inl", "q", "r"}, 30},
		{[]any{"a", "g", "ml"}, 31},
		{[]any{"a", "g", "after"}, 32},
		{[]any{"a", "g", "multi", "u"}, 34},
		{[]any{"a", "g", "multi", "v"}, 35},
		{[]any{"a", "g", "kA"}, 37},
	}
	for _, tt := range tests {
		if got := find(root, tt.path...).at(); got != tt.line {
			t.Errorf("%v: line %d, want %d", tt.path, got, tt.line)
		}
	}
	for _, absent := range [][]any{{"not"}, {"nope"}, {"x"}, {"a", "x"}, {"b", 1, "sub"}, {"b", 2}} {
		if n := find(root, absent...); n != nil {
			t.Errorf("%v: found at line %d, but it is inside a string or absent", absent, n.line)
		}
	}
}

func TestLocateLineEndings(t *testing.T) {
	root := locate("\uFEFFa = 1\r\n[b]\r\nc = \"\"\"x\r\ny\"\"\"\r\nd = 2\r\n")
	for _, tt := range []struct {
		path []any
		line int
	}{
		{[]any{"a"}, 1},
		{[]any{"b"}, 2},
		{[]any{"b", "c"}, 3},
		{[]any{"b", "d"}, 5},
	} {
		if got := find(root, tt.path...).at(); got != tt.line {
			t.Errorf("%v: line %d, want %d", tt.path, got, tt.line)
		}
	}
}

func TestStringEnd(t *testing.T) {
	for _, tt := range []struct {
		src  string
		want string // what the string is, the rest follows
	}{
		{`"a\"b" x`, `"a\"b"`},
		{`'a\' x`, `'a\'`},
		{`"" x`, `""`},
		{`"""a"b""" x`, `"""a"b"""`},
		{`"""a""""" x`, `"""a"""""`},
		{`"""a\""""" x`, `"""a\"""""`},
		{"'''a\n''' x", "'''a\n'''"},
		{`"unterminated`, `"unterminated`},
		{`"""unterminated\`, `"""unterminated\`},
	} {
		if got := tt.src[:stringEnd(tt.src, 0)]; got != tt.want {
			t.Errorf("stringEnd(%s) gives %s, want %s", tt.src, got, tt.want)
		}
	}
}
