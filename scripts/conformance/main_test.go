package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const module = "example.com/m"

// ev is one go test -json line: action on test (or on the package when
// test is "") of package pkg, relative to module.
func ev(action, pkg, test string) string {
	path := module
	if pkg != "." {
		path += "/" + pkg
	}
	b, err := json.Marshal(event{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Action: action, Package: path, Test: test})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// passing is the events of a package whose listed tests all pass.
func passing(pkg string, tests ...string) []string {
	var out []string
	for _, t := range tests {
		out = append(out, ev("run", pkg, t), ev("pass", pkg, t))
	}
	return append(out, ev("pass", pkg, ""))
}

func lines(groups ...[]string) string {
	var all []string
	for _, g := range groups {
		all = append(all, g...)
	}
	return strings.Join(all, "\n") + "\n"
}

// rowOf renders the table line of row id.
func rowOf(t *testing.T, rep *report, id string) string {
	t.Helper()
	for _, r := range rep.results() {
		if r.Row.ID == id {
			return r.line()
		}
	}
	t.Fatalf("no row %s", id)
	return ""
}

func evaluateText(t *testing.T, mappingText, events string) *report {
	t.Helper()
	m, err := parseMapping("map.txt", strings.NewReader("section | RFC 1 | test\n"+mappingText))
	if err != nil {
		t.Fatal(err)
	}
	rn, err := readRun(strings.NewReader(events))
	if err != nil {
		t.Fatal(err)
	}
	return evaluate(m, rn, module)
}

func TestRows(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mapping string // one row, ID A
		events  string
		want    string // its table line
		failed  bool
	}{{
		name:    "a test that passed",
		mapping: "A | REQ-1 | MUST | do it | p TestA | a note",
		events:  lines(passing("p", "TestA", "TestOther")),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: pass | pass | a note |",
	}, {
		name:    "all of several tests passed",
		mapping: "A | REQ-1 | MUST | do it | p TestA; q/r TestB/sub",
		events:  lines(passing("p", "TestA"), passing("q/r", "TestB/sub", "TestB")),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: pass<br>`q/r TestB/sub`: pass | pass |  |",
	}, {
		name:    "a test that failed",
		mapping: "A | REQ-1 | MUST | do it | p TestA; p TestB",
		events:  lines([]string{ev("run", "p", "TestA"), ev("fail", "p", "TestA"), ev("run", "p", "TestB"), ev("pass", "p", "TestB"), ev("fail", "p", "")}),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: FAIL<br>`p TestB`: pass | **FAIL** |  |",
		failed:  true,
	}, {
		name:    "a skipped test is never a pass",
		mapping: "A | REQ-1 | MUST | do it | p TestA; e2e TestB",
		events:  lines(passing("p", "TestA"), []string{ev("run", "e2e", "TestB"), ev("skip", "e2e", "TestB"), ev("pass", "e2e", "")}),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: pass<br>`e2e TestB`: skipped | skipped |  |",
	}, {
		// Without root the e2e tests skip inside t.Run; the parent passes.
		name:    "a test whose subtests skipped",
		mapping: "A | REQ-1 | MUST | do it | e2e TestB",
		events: lines([]string{
			ev("run", "e2e", "TestB"), ev("run", "e2e", "TestB/x"), ev("run", "e2e", "TestB/y"),
			ev("skip", "e2e", "TestB/x"), ev("pass", "e2e", "TestB/y"), ev("pass", "e2e", "TestB"), ev("pass", "e2e", ""),
		}),
		want: "| A | REQ-1 | MUST | do it | `e2e TestB`: skipped | skipped |  |",
	}, {
		// t.Run("v4/udp/outside") makes no TestT/v4 or TestT/v4/udp.
		name:    "a subtest name with slashes counts for its nearest parent",
		mapping: "A | REQ-1 | MUST | do it | p TestT",
		events: lines([]string{
			ev("run", "p", "TestT"), ev("run", "p", "TestT/v4/udp/outside"),
			ev("fail", "p", "TestT/v4/udp/outside"), ev("pass", "p", "TestT"), ev("fail", "p", ""),
		}),
		want:   "| A | REQ-1 | MUST | do it | `p TestT`: FAIL | **FAIL** |  |",
		failed: true,
	}, {
		name:    "a pattern matching many tests",
		mapping: "A | REQ-4 | MUST | do it | p TestT/*/outside",
		events:  lines(passing("p", "TestT/v4/udp/outside", "TestT/v4/udp/8-bytes/outside", "TestT/v4/udp/inside", "TestT/v6/tcp/outside", "TestT")),
		want:    "| A | REQ-4 | MUST | do it | `p TestT/*/outside` [3]: pass | pass |  |",
	}, {
		name:    "a pattern matching many tests, some failed",
		mapping: "A | REQ-4 | MUST | do it | p TestT/*/outside",
		events: lines([]string{
			ev("run", "p", "TestT"),
			ev("run", "p", "TestT/v4/outside"), ev("pass", "p", "TestT/v4/outside"),
			ev("run", "p", "TestT/v6/outside"), ev("fail", "p", "TestT/v6/outside"),
			ev("run", "p", "TestT/v6/x/outside"), ev("skip", "p", "TestT/v6/x/outside"),
			ev("fail", "p", "TestT"), ev("fail", "p", ""),
		}),
		want:   "| A | REQ-4 | MUST | do it | `p TestT/*/outside` [3]: 1 FAIL, 1 skipped, 1 pass | **FAIL** |  |",
		failed: true,
	}, {
		name:    "a package not in the run",
		mapping: "A | REQ-1 | MUST | do it | p TestA; e2e TestB",
		events:  lines(passing("p", "TestA")),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: pass<br>`e2e TestB`: not run (package not in the run) | not run |  |",
	}, {
		name:    "a test not in the run (renamed, or a typo in the mapping)",
		mapping: "A | REQ-1 | MUST | do it | p TestGone",
		events:  lines(passing("p", "TestA")),
		want:    "| A | REQ-1 | MUST | do it | `p TestGone`: not run (no test of that name ran) | not run |  |",
	}, {
		name:    "a package that did not build",
		mapping: "A | REQ-1 | MUST | do it | p TestA",
		events: `{"ImportPath":"example.com/m/p [example.com/m/p.test]","Action":"build-output","Output":"p/x.go:1:1: undefined: y\n"}
{"ImportPath":"example.com/m/p [example.com/m/p.test]","Action":"build-fail"}
{"Action":"start","Package":"example.com/m/p"}
{"Action":"fail","Package":"example.com/m/p","Elapsed":0,"FailedBuild":"example.com/m/p [example.com/m/p.test]"}
`,
		want:   "| A | REQ-1 | MUST | do it | `p TestA`: FAIL (package failed to build) | **FAIL** |  |",
		failed: true,
	}, {
		name:    "a test that started and never ended (a panic elsewhere, a timeout)",
		mapping: "A | REQ-1 | MUST | do it | p TestA",
		events:  lines([]string{ev("run", "p", "TestA"), ev("output", "p", "TestA"), ev("fail", "p", "")}),
		want:    "| A | REQ-1 | MUST | do it | `p TestA`: FAIL | **FAIL** |  |",
		failed:  true,
	}, {
		name:    "not tested",
		mapping: "A | REQ-12 | MUST NOT | never do it | not tested | why",
		events:  lines(passing("p", "TestA")),
		want:    "| A | REQ-12 | MUST NOT | never do it | — | not tested | why |",
	}, {
		name:    "not implemented",
		mapping: "A | REQ-9 | MUST / SHOULD | PCP | not implemented",
		events:  "",
		want:    "| A | REQ-9 | MUST / SHOULD | PCP | — | not implemented |  |",
	}, {
		name:    "the module's root package; lines that are not events",
		mapping: "A | REQ-1 | MUST | do it | . TestA",
		events:  "go: downloading something\n" + lines(passing(".", "TestA")) + "FAIL\tsomething else\n",
		want:    "| A | REQ-1 | MUST | do it | `. TestA`: pass | pass |  |",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			rep := evaluateText(t, tc.mapping+"\n", tc.events)
			if got := rowOf(t, rep, "A"); got != tc.want {
				t.Errorf("row\n got %s\nwant %s", got, tc.want)
			}
			if got := rep.anyFailed(); got != tc.failed {
				t.Errorf("anyFailed = %v, want %v", got, tc.failed)
			}
		})
	}
}

// TestMustRowsOf: a row that stands for the MUST rows of other sections
// is the worst of them, and lists them.
func TestMustRowsOf(t *testing.T) {
	const mapping = `section | RFC 1 | one
M1 | REQ-1 | MUST | a | p TestM1
S1 | REQ-2 | SHOULD | b | not implemented
section | RFC 2 | two
M2 | REQ-1 | MUST NOT | c | p TestM2
section | RFC 3 | all
C1 | REQ-1 | MUST | meet RFC 1 and 2 | MUST rows of RFC 1, RFC 2 | the sum
`
	m, err := parseMapping("map.txt", strings.NewReader(mapping))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, events, result string
	}{
		{"all pass", lines(passing("p", "TestM1", "TestM2")), "pass"},
		{"one fails", lines([]string{ev("run", "p", "TestM1"), ev("pass", "p", "TestM1"), ev("run", "p", "TestM2"), ev("fail", "p", "TestM2"), ev("fail", "p", "")}), "**FAIL**"},
		{"one did not run", lines(passing("p", "TestM1")), "not run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rn, err := readRun(strings.NewReader(tc.events))
			if err != nil {
				t.Fatal(err)
			}
			want := "| C1 | REQ-1 | MUST | meet RFC 1 and 2 | the MUST rows of RFC 1, RFC 2: M1, M2 | " + tc.result + " | the sum |"
			if got := rowOf(t, evaluate(m, rn, module), "C1"); got != want {
				t.Errorf("row\n got %s\nwant %s", got, want)
			}
		})
	}
	_, err = parseMapping("map.txt", strings.NewReader("section | RFC 1 | one\nC1 | REQ-1 | MUST | x | MUST rows of RFC 1, RFC 9\n"))
	for _, want := range []string{`row C1: no section "RFC 1" to take the MUST rows of`, `row C1: no section "RFC 9"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v, want %q", err, want)
		}
	}
}

func TestSummary(t *testing.T) {
	const mapping = `M1 | REQ-1 | MUST | a | p TestM1
M2 | REQ-2 | MUST NOT | b | p TestM2
M3 | REQ-3 | SHOULD/MUST | c | e2e TestM3
M4 | REQ-4 | MUST | d | not tested
M5 | REQ-5 | MUST / SHOULD | e | not implemented
S1 | REQ-6 | SHOULD | f | p TestS1
`
	pass := func(tests ...string) []string { return passing("p", tests...) }
	skipM3 := []string{ev("run", "e2e", "TestM3"), ev("skip", "e2e", "TestM3"), ev("pass", "e2e", "")}
	passM3 := passing("e2e", "TestM3")
	for _, tc := range []struct {
		name, events, want string
	}{{
		"all pass",
		// A failing SHOULD row is no MUST failure.
		lines([]string{ev("run", "p", "TestS1"), ev("fail", "p", "TestS1")}, pass("TestM1", "TestM2"), passM3),
		"All MUSTs that are implemented and tested pass (3 rows). MUST rows without a test: M4. MUST rows not implemented: M5.",
	}, {
		"a MUST fails",
		lines([]string{ev("run", "p", "TestM2"), ev("fail", "p", "TestM2")}, pass("TestM1", "TestS1"), skipM3),
		"FAILING MUST rows: M2. Not shown by this run: M3 (skipped). 1 tested MUST rows pass. MUST rows without a test: M4. MUST rows not implemented: M5.",
	}, {
		"e2e skipped",
		lines(pass("TestM1", "TestM2", "TestS1"), skipM3),
		"No MUST row fails, but this run does not show M3 (skipped); the 2 other tested MUST rows pass. MUST rows without a test: M4. MUST rows not implemented: M5.",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			if got := evaluateText(t, mapping, tc.events).summary(); got != tc.want {
				t.Errorf("summary\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestGlob(t *testing.T) {
	for _, tc := range []struct {
		pattern, name string
		want          bool
	}{
		{"TestA", "TestA", true},
		{"TestA", "TestAB", false},
		{"TestA", "TestA/sub", false},
		{"TestA/*", "TestA/sub/deeper", true},
		{"TestA/*", "TestA", false},
		{"TestT/*/outside", "TestT/v4/time-exceeded/udp/8-bytes/outside", true},
		{"TestT/*/outside", "TestT/v4/outside/x", false},
		{"TestT/*/dest-unreachable/*/tcp/*", "TestT/v6/dest-unreachable/port/tcp/header/inside", true},
		{"TestT/*/dest-unreachable/*/tcp/*", "TestT/v6/dest-unreachable/port/udp/inside", false},
		{"TestS/*hairpin_=_true", "TestS/port_preservation_=_false,hairpin_=_true", true},
		{"TestS/*hairpin_=_true", "TestS/port_preservation_=_true,hairpin_=_false", false},
		{"TestB/*/about_*", "TestB/v4/about_redirect", true},
		{"TestT/(x)", "TestT/(x)", true},
	} {
		if got := glob(tc.pattern, tc.name); got != tc.want {
			t.Errorf("glob(%q, %q) = %v, want %v", tc.pattern, tc.name, got, tc.want)
		}
	}
}

func TestParseMappingErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text, want string
	}{
		{"row before a section", "A | r | MUST | x | p TestA\n", "map.txt:1: row A before any section line"},
		{"short section", "section | RFC 1\n", "map.txt:1: a section line is: section | name | title"},
		{"too few fields", "section | RFC 1 | t\nA | r | MUST | x\n", "map.txt:2: 4 fields; a row is: ID | ref | level | requirement | tests [| note]"},
		{"duplicate ID", "section | RFC 1 | t\nA | r | MUST | x | not tested\nA | r | MUST | y | not tested\n", "map.txt:3: row A already on line 2"},
		{"empty field", "section | RFC 1 | t\nA |  | MUST | x | not tested\n", "map.txt:2: row A: field 2 is empty"},
		{"no tests", "section | RFC 1 | t\nA | r | MUST | x |  | note\n", `map.txt:2: row A: no tests; write "not tested" or "not implemented"`},
		{"test without package", "section | RFC 1 | t\nA | r | MUST | x | TestA\n", `map.txt:2: row A: test "TestA" is not "package/path TestName[/subtest]"`},
		{"absolute package", "section | RFC 1 | t\nA | r | MUST | x | ./nat TestA\n", `map.txt:2: row A: package "./nat" is not a path relative to the module`},
		{"not a test", "section | RFC 1 | t\nA | r | MUST | x | nat helper\n", `map.txt:2: row A: "helper" does not name a Test, Fuzz or Example function`},
		{"wildcard test function", "section | RFC 1 | t\nA | r | MUST | x | nat Test*\n", `map.txt:2: row A: "Test*" does not name a Test, Fuzz or Example function`},
		{"nothing", "# only a comment\n", "map.txt: no rows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMapping("map.txt", strings.NewReader(tc.text))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestPackages(t *testing.T) {
	m, err := parseMapping("map.txt", strings.NewReader(`section | RFC 1 | t
A | r | MUST | x | router/conntrack TestA; nat TestB
B | r | MUST | y | nat TestC; e2e TestD
C | r | MUST | z | not tested
`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(m.packages(), " "), "e2e nat router/conntrack"; got != want {
		t.Errorf("packages %q, want %q", got, want)
	}
}

// TestRun runs the command on files: the Markdown it writes and its exit
// status.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	mapFile := filepath.Join(dir, "requirements.txt")
	if err := os.WriteFile(mapFile, []byte(`# a comment
section | RFC 4787 | UDP
U1 | REQ-1 | MUST | Endpoint-independent mapping | nat TestMapping | a note with a | pipe
U15 | REQ-14 | MUST | Fragments | not implemented | no reassembly

section | RFC 1812 | router
R1 | §5.3.1 | MUST | TTL | e2e TestHop
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "CONFORMANCE.md")
	args := []string{"-map", mapFile, "-out", out, "-module", module, "-command", "scripts/conformance/run", "-rev", "abc123"}

	var stdout, stderr bytes.Buffer
	skipped := lines(passing("nat", "TestMapping"), []string{ev("run", "e2e", "TestHop"), ev("skip", "e2e", "TestHop"), ev("pass", "e2e", "")})
	if code := run(args, strings.NewReader(skipped), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"# RFC conformance\n",
		"- Command: `scripts/conformance/run`\n",
		"- Test run: 2026-01-02 03:04:05 UTC, 0s\n",
		"- Revision: abc123\n",
		"**Summary:** No MUST row fails, but this run does not show R1 (skipped); the 1 other tested MUST rows pass. MUST rows not implemented: U15.\n",
		"Rows: 1 pass, 1 skipped, 1 not implemented.\n",
		"## RFC 4787 — UDP\n",
		"| U1 | REQ-1 | MUST | Endpoint-independent mapping | `nat TestMapping`: pass | pass | a note with a \\| pipe |\n",
		"| U15 | REQ-14 | MUST | Fragments | — | not implemented | no reassembly |\n",
		"## RFC 1812 — router\n",
		"| R1 | §5.3.1 | MUST | TTL | `e2e TestHop`: skipped | skipped |  |\n",
		"| `e2e` | ok (0.0 s) | 0 | 0 | 1 |  |\n",
		"| `nat` | ok (0.0 s) | 1 | 0 | 0 |  |\n",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("CONFORMANCE.md lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(stderr.String(), "conformance: No MUST row fails") {
		t.Errorf("summary not on stderr:\n%s", stderr.String())
	}

	// A mapped test fails: exit 1, its output on stderr.
	stderr.Reset()
	failing := lines([]string{
		ev("run", "nat", "TestMapping"),
		`{"Action":"output","Package":"example.com/m/nat","Test":"TestMapping","Output":"    table_test.go:9: mapping moved\n"}`,
		ev("fail", "nat", "TestMapping"), ev("fail", "nat", ""),
	}, passing("e2e", "TestHop"))
	if code := run(args, strings.NewReader(failing), &stdout, &stderr); code != 1 {
		t.Errorf("exit %d with a failed test, want 1", code)
	}
	for _, want := range []string{"--- FAIL nat TestMapping\n", "table_test.go:9: mapping moved", "FAILING MUST rows: U1."} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}

	// -packages lists what to run.
	stdout.Reset()
	if code := run([]string{"-map", mapFile, "-packages"}, nil, &stdout, &stderr); code != 0 || stdout.String() != "./e2e\n./nat\n" {
		t.Errorf("-packages: exit %d, %q", code, stdout.String())
	}

	// No events at all (go test did not start): no table.
	stderr.Reset()
	if code := run(args, strings.NewReader("go: command not found\n"), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "no test events") {
		t.Errorf("empty run: exit %d, stderr %s", code, stderr.String())
	}

	// A bad mapping is a usage error.
	if err := os.WriteFile(mapFile, []byte("section | RFC 1 | t\nA | r | MUST | x | TestA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run(args, strings.NewReader(skipped), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "requirements.txt:2: row A") {
		t.Errorf("bad mapping: exit %d, stderr %s", code, stderr.String())
	}
}

// TestMappingFile checks the real mapping parses and covers every row of
// the checklist sections it maps, once.
func TestMappingFile(t *testing.T) {
	f, err := os.Open("requirements.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := parseMapping("requirements.txt", f)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range m.Sections {
		for _, r := range s.Rows {
			ids = append(ids, r.ID)
		}
	}
	var want []string
	for _, group := range []struct {
		prefix string
		n      int
	}{{"U", 15}, {"T", 10}, {"I", 11}, {"X", 12}, {"C", 12}, {"R", 6}} {
		for i := 1; i <= group.n; i++ {
			want = append(want, group.prefix+strconv.Itoa(i))
		}
		if group.prefix == "C" {
			want = append(want, "C13–15")
		}
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("rows\n got %v\nwant %v", ids, want)
	}
}
