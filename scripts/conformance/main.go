// Command conformance writes CONFORMANCE.md, tungate's RFC conformance
// table, from the output of `go test -json` and a mapping of checklist
// rows to tests (requirements.txt). Each row's result comes from the run:
// a row passes only when every test mapped to it ran and passed; a
// skipped test (the e2e tests without root) makes its row "skipped", never
// "pass". Rows the mapping marks "not tested" or "not implemented" say so.
//
// Usage, normally through scripts/conformance/run:
//
//	go test -json -count=1 PACKAGES | conformance -map requirements.txt -out CONFORMANCE.md
//	conformance -map requirements.txt -packages   # the PACKAGES the mapping names
//
// It exits 1 when a mapped test failed (or its package did not build), 2
// on a usage or mapping error or when no test ran, 0 otherwise.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("conformance", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mapFile := fs.String("map", "scripts/conformance/requirements.txt", "the mapping of checklist rows to tests")
	out := fs.String("out", "-", "where to write the Markdown table (- for stdout)")
	module := fs.String("module", "", "the module path the mapping's packages are relative to (default: from ./go.mod)")
	command := fs.String("command", "", "the command that produced the input, for the header")
	rev := fs.String("rev", "", "the source revision tested, for the header")
	packages := fs.Bool("packages", false, "print the packages the mapping names, as ./dir arguments for go test, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "conformance: unexpected arguments %q\n", fs.Args())
		return 2
	}
	f, err := os.Open(*mapFile)
	if err != nil {
		fmt.Fprintln(stderr, "conformance:", err)
		return 2
	}
	m, err := parseMapping(*mapFile, f)
	f.Close()
	if err != nil {
		fmt.Fprintln(stderr, "conformance:", err)
		return 2
	}
	if *packages {
		for _, p := range m.packages() {
			fmt.Fprintln(stdout, "./"+strings.TrimPrefix(p, "."))
		}
		return 0
	}
	if *module == "" {
		if *module, err = modulePath("go.mod"); err != nil {
			fmt.Fprintln(stderr, "conformance: -module not given and", err)
			return 2
		}
	}
	rn, err := readRun(stdin)
	if err == nil && len(rn.Pkgs) == 0 {
		err = errors.New("no test events on stdin")
	}
	if err != nil {
		fmt.Fprintln(stderr, "conformance: reading go test -json:", err)
		return 2
	}
	rep := evaluate(m, rn, *module)
	rep.Header = header{Map: *mapFile, Command: *command, Rev: *rev, Go: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH}

	w := stdout
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(stderr, "conformance:", err)
			return 2
		}
		defer file.Close()
		w = file
	}
	bw := bufio.NewWriter(w)
	render(bw, rep)
	if err := bw.Flush(); err != nil {
		fmt.Fprintln(stderr, "conformance:", err)
		return 2
	}
	for _, msg := range rep.warnings() {
		fmt.Fprintln(stderr, "conformance: warning:", msg)
	}
	for _, pkg := range rep.Map.packages() {
		if p := rep.Run.Pkgs[rep.importPath(pkg)]; p != nil && p.Build != "" {
			fmt.Fprintf(stderr, "--- FAIL %s: build failed\n", pkg)
			for _, line := range rep.Run.BuildOutput[p.Build] {
				fmt.Fprint(stderr, "    ", line)
			}
		}
	}
	for _, t := range rep.failedTests() {
		fmt.Fprintf(stderr, "--- FAIL %s %s\n", t.pkg, t.name)
		for _, line := range t.output {
			fmt.Fprint(stderr, "    ", line)
		}
	}
	fmt.Fprintln(stderr, "conformance:", rep.summary())
	if rep.anyFailed() {
		return 1
	}
	return 0
}

// modulePath reads the module path from a go.mod file.
func modulePath(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module "); ok {
			return strings.Trim(strings.TrimSpace(rest), `"`), nil
		}
	}
	return "", fmt.Errorf("%s: no module line", name)
}

// ---- the mapping file ----

// Statuses a row may have in the mapping, besides a list of tests.
const (
	notTested      = "not tested"
	notImplemented = "not implemented"
)

// mustRowsOf starts a row's tests field that stands for other rows: the
// MUST rows of the sections named after it, comma separated ("MUST rows
// of RFC 4787, RFC 5382"). The row is what they are together: RFC 6888
// REQ-1 is "meet RFC 4787, 5382 and 5508".
const mustRowsOf = "MUST rows of "

// mapping is requirements.txt: sections (one per RFC) of rows.
type mapping struct {
	Sections []*section
}

type section struct {
	Name, Title string
	Rows        []*row
}

// row is one checklist requirement. Status is notTested, notImplemented,
// or "" when Tests shows it.
type row struct {
	Line                        int
	ID, Ref, Level, Requirement string
	Status                      string
	Tests                       []testRef
	Of                          []string // sections, for a mustRowsOf row
	Note                        string
}

// testRef is a package, relative to the module ("." for its root), and a
// pattern for test names as go test -json reports them (spaces in
// subtest names are underscores); "*" in the pattern matches any run of
// characters, slashes included.
type testRef struct {
	Pkg, Pattern string
}

func (t testRef) String() string { return t.Pkg + " " + t.Pattern }

// parseMapping reads the mapping. Lines are blank, comments (#),
// sections or rows, their fields separated by "|":
//
//	section | RFC 4787 | title
//	ID | ref | level | requirement | tests | note
//
// tests is "not tested", "not implemented", "MUST rows of" sections, or
// "pkg Pattern" entries separated by ";". The note is optional and may
// hold "|".
func parseMapping(name string, r io.Reader) (*mapping, error) {
	m := &mapping{}
	ids := map[string]int{}
	var errs []error
	fail := func(line int, format string, a ...any) {
		errs = append(errs, fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...)))
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		f := strings.SplitN(line, "|", 6) // the note may hold "|"
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		if f[0] == "section" {
			if len(f) != 3 || f[1] == "" || f[2] == "" {
				fail(n, "a section line is: section | name | title")
				continue
			}
			m.Sections = append(m.Sections, &section{Name: f[1], Title: f[2]})
			continue
		}
		if len(f) < 5 {
			fail(n, "%d fields; a row is: ID | ref | level | requirement | tests [| note]", len(f))
			continue
		}
		if len(m.Sections) == 0 {
			fail(n, "row %s before any section line", f[0])
			continue
		}
		rw := &row{Line: n, ID: f[0], Ref: f[1], Level: f[2], Requirement: f[3]}
		if len(f) == 6 {
			rw.Note = f[5]
		}
		for i, v := range f[:4] {
			if v == "" {
				fail(n, "row %s: field %d is empty", rw.ID, i+1)
			}
		}
		if prev, ok := ids[rw.ID]; ok {
			fail(n, "row %s already on line %d", rw.ID, prev)
		}
		ids[rw.ID] = n
		of, isOf := strings.CutPrefix(f[4], mustRowsOf)
		switch {
		case f[4] == notTested || f[4] == notImplemented:
			rw.Status = f[4]
		case f[4] == "":
			fail(n, "row %s: no tests; write %q or %q", rw.ID, notTested, notImplemented)
		case isOf:
			for name := range strings.SplitSeq(of, ",") {
				rw.Of = append(rw.Of, strings.TrimSpace(name))
			}
		default:
			for entry := range strings.SplitSeq(f[4], ";") {
				entry = strings.TrimSpace(entry)
				pkg, pat, ok := strings.Cut(entry, " ")
				pat = strings.TrimSpace(pat)
				switch {
				case !ok || pkg == "" || pat == "" || strings.ContainsAny(pat, " \t"):
					fail(n, "row %s: test %q is not \"package/path TestName[/subtest]\"", rw.ID, entry)
				case !validPackage(pkg):
					fail(n, "row %s: package %q is not a path relative to the module", rw.ID, pkg)
				case !validTestName(pat):
					fail(n, "row %s: %q does not name a Test, Fuzz or Example function", rw.ID, pat)
				default:
					rw.Tests = append(rw.Tests, testRef{pkg, pat})
				}
			}
		}
		s := m.Sections[len(m.Sections)-1]
		s.Rows = append(s.Rows, rw)
	}
	for _, s := range m.Sections {
		for _, rw := range s.Rows {
			for _, name := range rw.Of {
				if !slices.ContainsFunc(m.Sections, func(o *section) bool { return o.Name == name && o != s }) {
					fail(rw.Line, "row %s: no section %q to take the MUST rows of (its own does not count)", rw.ID, name)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(errs) == 0 && len(ids) == 0 {
		errs = append(errs, fmt.Errorf("%s: no rows", name))
	}
	return m, errors.Join(errs...)
}

func validPackage(p string) bool {
	if p == "." {
		return true
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.HasPrefix(p, "./") {
		return false
	}
	for part := range strings.SplitSeq(p, "/") {
		if part == "" || part == "." || part == ".." {
			return false
		}
	}
	return true
}

func validTestName(pat string) bool {
	top, _, _ := strings.Cut(pat, "/")
	for _, prefix := range []string{"Test", "Fuzz", "Example"} {
		if strings.HasPrefix(top, prefix) && !strings.Contains(top, "*") {
			return true
		}
	}
	return false
}

// packages lists the packages the mapping names, sorted.
func (m *mapping) packages() []string {
	var out []string
	for _, s := range m.Sections {
		for _, r := range s.Rows {
			for _, t := range r.Tests {
				out = append(out, t.Pkg)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ---- the test run ----

// event is one line of go test -json (cmd/test2json), with the build
// events go1.24 added.
type event struct {
	Time        time.Time
	Action      string
	Package     string
	Test        string
	Output      string
	Elapsed     float64
	ImportPath  string
	FailedBuild string
}

// testRun is what a go test -json stream says about each package.
type testRun struct {
	Pkgs        map[string]*pkgRun
	First, Last time.Time
	NotJSON     int                 // lines that were not test2json events
	BuildOutput map[string][]string // compiler output by the ImportPath of the failed build
}

type pkgRun struct {
	Path    string
	Action  string // pass, fail or skip; "" if the stream ended first
	Build   string // what failed to build (test2json's FailedBuild), if it did
	Elapsed float64
	Tests   map[string]*testResult
}

type testResult struct {
	Action string   // pass, fail, skip, or run when it never ended
	Output []string // the test's own output, the last maxOutput lines
}

const maxOutput = 40

func readRun(r io.Reader) (*testRun, error) {
	rn := &testRun{Pkgs: map[string]*pkgRun{}, BuildOutput: map[string][]string{}}
	pkg := func(path string) *pkgRun {
		p := rn.Pkgs[path]
		if p == nil {
			p = &pkgRun{Path: path, Tests: map[string]*testResult{}}
			rn.Pkgs[path] = p
		}
		return p
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			rn.NotJSON++
			continue
		}
		if !e.Time.IsZero() {
			if rn.First.IsZero() || e.Time.Before(rn.First) {
				rn.First = e.Time
			}
			if e.Time.After(rn.Last) {
				rn.Last = e.Time
			}
		}
		if e.Package == "" {
			// build-output and build-fail; the package's fail event
			// names the build in FailedBuild.
			if e.Action == "build-output" && e.ImportPath != "" {
				rn.BuildOutput[e.ImportPath] = append(rn.BuildOutput[e.ImportPath], e.Output)
			}
			continue
		}
		p := pkg(e.Package)
		if e.Test == "" {
			switch e.Action {
			case "pass", "fail", "skip":
				p.Action, p.Elapsed = e.Action, e.Elapsed
				if e.FailedBuild != "" {
					p.Build = e.FailedBuild
				}
			}
			continue
		}
		t := p.Tests[e.Test]
		if t == nil {
			t = &testResult{Action: "run"}
			p.Tests[e.Test] = t
		}
		switch e.Action {
		case "pass", "fail", "skip":
			t.Action = e.Action
		case "output":
			if len(t.Output) == maxOutput {
				t.Output = slices.Delete(t.Output, 0, 1)
			}
			t.Output = append(t.Output, e.Output)
		}
	}
	return rn, sc.Err()
}

// ---- results ----

// outcome is a test's result, from best to worst.
type outcome int

const (
	passed outcome = iota
	skipped
	notRun
	failed
)

func (o outcome) String() string {
	return [...]string{"pass", "skipped", "not run", "FAIL"}[o]
}

func outcomeOf(action string) outcome {
	switch action {
	case "pass":
		return passed
	case "skip":
		return skipped
	}
	return failed // fail, or started and never ended (panic, timeout, killed)
}

// effective gives each test of p its own result made worse by any of its
// subtests': a test whose subtests skipped did not show what it covers.
func (p *pkgRun) effective() map[string]outcome {
	eff := make(map[string]outcome, len(p.Tests))
	names := make([]string, 0, len(p.Tests))
	for n, t := range p.Tests {
		eff[n] = outcomeOf(t.Action)
		names = append(names, n)
	}
	// Deepest first, each into its nearest recorded ancestor (a t.Run name
	// may hold a slash, so not every prefix is a test).
	slices.SortFunc(names, func(a, b string) int {
		return cmp.Or(cmp.Compare(strings.Count(b, "/"), strings.Count(a, "/")), cmp.Compare(a, b))
	})
	for _, n := range names {
		for anc := n; ; {
			i := strings.LastIndexByte(anc, '/')
			if i < 0 {
				break
			}
			anc = anc[:i]
			if o, ok := eff[anc]; ok {
				eff[anc] = max(o, eff[n])
				break
			}
		}
	}
	return eff
}

// match is what the run says about one testRef of a row.
type match struct {
	Ref     testRef
	Outcome outcome
	Counts  [failed + 1]int // matched tests by outcome
	Why     string          // for not run, or a failure without a test
	Failed  []string        // names of the failed tests matched
}

func (m match) total() int {
	n := 0
	for _, c := range m.Counts {
		n += c
	}
	return n
}

type rowResult struct {
	Row     *row
	Result  string // pass, FAIL, skipped, not run, not tested, not implemented
	Matches []match
	Of      []*rowResult // the rows a mustRowsOf row stands for
}

type header struct {
	Map, Command, Rev, Go string
}

type report struct {
	Header header
	Run    *testRun
	Module string
	Map    *mapping
	Rows   map[*row]*rowResult
	effs   map[string]map[string]outcome
}

func evaluate(m *mapping, rn *testRun, module string) *report {
	rep := &report{Run: rn, Module: module, Map: m, Rows: map[*row]*rowResult{}, effs: map[string]map[string]outcome{}}
	for _, s := range m.Sections {
		for _, r := range s.Rows {
			res := &rowResult{Row: r}
			rep.Rows[r] = res
			if r.Status != "" {
				res.Result = r.Status
				continue
			}
			worst := passed
			for _, t := range r.Tests {
				mt := rep.match(t)
				res.Matches = append(res.Matches, mt)
				worst = max(worst, mt.Outcome)
			}
			res.Result = worst.String()
		}
	}
	for _, s := range m.Sections {
		for _, r := range s.Rows {
			if len(r.Of) > 0 {
				rep.combine(rep.Rows[r])
			}
		}
	}
	return rep
}

// combine gives a mustRowsOf row the result of its rows together: the
// worst of them, where a row not implemented or not tested is worse than
// anything but a failure.
func (rep *report) combine(res *rowResult) {
	rank := func(result string) int {
		switch result {
		case failed.String():
			return 5
		case notImplemented:
			return 4
		case notTested:
			return 3
		case notRun.String():
			return 2
		case skipped.String():
			return 1
		}
		return 0
	}
	res.Result = passed.String()
	for _, s := range rep.Map.Sections {
		if !slices.Contains(res.Row.Of, s.Name) {
			continue
		}
		for _, r := range s.Rows {
			if other := rep.Rows[r]; isMust(r.Level) && len(r.Of) == 0 {
				res.Of = append(res.Of, other)
				if rank(other.Result) > rank(res.Result) {
					res.Result = other.Result
				}
			}
		}
	}
}

func (rep *report) importPath(pkg string) string {
	if pkg == "." {
		return rep.Module
	}
	return rep.Module + "/" + pkg
}

func (rep *report) match(t testRef) match {
	mt := match{Ref: t}
	p := rep.Run.Pkgs[rep.importPath(t.Pkg)]
	if p == nil {
		mt.Outcome, mt.Why = notRun, "package not in the run"
		return mt
	}
	eff := rep.effs[p.Path]
	if eff == nil {
		eff = p.effective()
		rep.effs[p.Path] = eff
	}
	for name, o := range eff {
		if glob(t.Pattern, name) {
			mt.Counts[o]++
			mt.Outcome = max(mt.Outcome, o)
			if o == failed {
				mt.Failed = append(mt.Failed, name)
			}
		}
	}
	slices.Sort(mt.Failed)
	if mt.total() > 0 {
		return mt
	}
	switch {
	case p.Build != "":
		mt.Outcome, mt.Why = failed, "package failed to build"
	case p.Action == "fail":
		mt.Outcome, mt.Why = failed, "package failed before the test ran"
	case p.Action == "":
		mt.Outcome, mt.Why = notRun, "package did not finish"
	default:
		mt.Outcome, mt.Why = notRun, "no test of that name ran"
	}
	return mt
}

// glob reports whether name matches pattern, where "*" matches any run
// of characters, slashes included, and everything else itself.
func glob(pattern, name string) bool {
	first, rest, star := strings.Cut(pattern, "*")
	if !star {
		return pattern == name
	}
	if !strings.HasPrefix(name, first) {
		return false
	}
	name = name[len(first):]
	for i := 0; i <= len(name); i++ {
		if glob(rest, name[i:]) {
			return true
		}
	}
	return false
}

func (rep *report) results() []*rowResult {
	var out []*rowResult
	for _, s := range rep.Map.Sections {
		for _, r := range s.Rows {
			out = append(out, rep.Rows[r])
		}
	}
	return out
}

func isMust(level string) bool { return strings.Contains(strings.ToUpper(level), "MUST") }

func (rep *report) anyFailed() bool {
	for _, r := range rep.results() {
		if r.Result == failed.String() {
			return true
		}
	}
	return false
}

// summary is the one-line verdict on the MUST rows.
func (rep *report) summary() string {
	var tested, fail, unshown, untested, unimpl []string
	for _, r := range rep.results() {
		if !isMust(r.Row.Level) {
			continue
		}
		switch r.Result {
		case passed.String():
			tested = append(tested, r.Row.ID)
		case failed.String():
			fail = append(fail, r.Row.ID)
		case skipped.String(), notRun.String():
			unshown = append(unshown, r.Row.ID+" ("+r.Result+")")
		case notTested:
			untested = append(untested, r.Row.ID)
		case notImplemented:
			unimpl = append(unimpl, r.Row.ID)
		}
	}
	var b strings.Builder
	switch {
	case len(fail) > 0:
		fmt.Fprintf(&b, "FAILING MUST rows: %s.", strings.Join(fail, ", "))
		if len(unshown) > 0 {
			fmt.Fprintf(&b, " Not shown by this run: %s.", strings.Join(unshown, ", "))
		}
		fmt.Fprintf(&b, " %d tested MUST rows pass.", len(tested))
	case len(unshown) > 0:
		fmt.Fprintf(&b, "No MUST row fails, but this run does not show %s; the %d other tested MUST rows pass.", strings.Join(unshown, ", "), len(tested))
	default:
		fmt.Fprintf(&b, "All MUSTs that are implemented and tested pass (%d rows).", len(tested))
	}
	if len(untested) > 0 {
		fmt.Fprintf(&b, " MUST rows without a test: %s.", strings.Join(untested, ", "))
	}
	if len(unimpl) > 0 {
		fmt.Fprintf(&b, " MUST rows not implemented: %s.", strings.Join(unimpl, ", "))
	}
	return b.String()
}

// warnings are mapped tests that did not run although their package did:
// a renamed test, or a typo in the mapping.
func (rep *report) warnings() []string {
	var out []string
	absent := map[string]int{}
	for _, r := range rep.results() {
		for _, m := range r.Matches {
			switch {
			case m.Outcome != notRun:
			case rep.Run.Pkgs[rep.importPath(m.Ref.Pkg)] == nil:
				absent[m.Ref.Pkg]++
			default:
				out = append(out, fmt.Sprintf("%s (line %d): %s: %s", r.Row.ID, r.Row.Line, m.Ref, m.Why))
			}
		}
	}
	for _, pkg := range rep.Map.packages() {
		if n := absent[pkg]; n > 0 {
			out = append(out, fmt.Sprintf("package %s is not in the run: %d mapped tests not run", pkg, n))
		}
	}
	return out
}

type failedTest struct {
	pkg, name string
	output    []string
}

// failedTests are the mapped tests that failed, each once, with their
// output.
func (rep *report) failedTests() []failedTest {
	var out []failedTest
	seen := map[string]bool{}
	for _, r := range rep.results() {
		for _, m := range r.Matches {
			path := rep.importPath(m.Ref.Pkg)
			for _, name := range m.Failed {
				if seen[path+" "+name] {
					continue
				}
				seen[path+" "+name] = true
				var output []string
				if t := rep.Run.Pkgs[path].Tests[name]; t != nil {
					output = t.Output
				}
				out = append(out, failedTest{m.Ref.Pkg, name, output})
			}
		}
	}
	return out
}

// ---- Markdown ----

func render(w io.Writer, rep *report) {
	h := rep.Header
	fmt.Fprintln(w, "# RFC conformance")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "<!-- Generated by scripts/conformance; do not edit. Rerun scripts/conformance/run (as root) to update. -->")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Generated from a test run by `scripts/conformance` from the mapping `%s`, which ties each row of `../shared/RFC-CHECKLIST.md` to the tests that show it. ", h.Map)
	fmt.Fprintln(w, "A row passes only if every test mapped to it ran and passed; a skipped test (the end-to-end tests need root) leaves its row \"skipped\".")
	fmt.Fprintln(w)
	if h.Command != "" {
		fmt.Fprintf(w, "- Command: `%s`\n", h.Command)
	}
	if rn := rep.Run; !rn.First.IsZero() {
		fmt.Fprintf(w, "- Test run: %s, %s\n", rn.First.UTC().Format("2006-01-02 15:04:05 UTC"), rn.Last.Sub(rn.First).Round(time.Second))
	} else {
		fmt.Fprintln(w, "- Test run: no events (nothing ran)")
	}
	if h.Rev != "" {
		fmt.Fprintf(w, "- Revision: %s\n", h.Rev)
	}
	if h.Go != "" {
		fmt.Fprintf(w, "- Go: %s\n", h.Go)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "**Summary:** %s\n", rep.summary())
	fmt.Fprintln(w)
	counts := map[string]int{}
	for _, r := range rep.results() {
		counts[r.Result]++
	}
	var parts []string
	for _, k := range []string{"pass", "FAIL", "skipped", "not run", notTested, notImplemented} {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	fmt.Fprintf(w, "Rows: %s.\n", strings.Join(parts, ", "))
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Results: **pass**: every mapped test ran and passed. **FAIL**: a mapped test failed (or its package did not build). "+
		"**skipped**: a mapped test was skipped. **not run**: a mapped test is not in the run. "+
		"**not tested**: implemented, but no test shows it. **not implemented**: tungate does not do it. "+
		"In the test column, `package Test/sub` names a test with its subtests; `*` matches any part of a name; the number in brackets is how many tests matched.")

	for _, s := range rep.Map.Sections {
		fmt.Fprintln(w)
		fmt.Fprintf(w, "## %s — %s\n", s.Name, s.Title)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "| ID | Ref | Level | Requirement | Test(s) | Result | Notes |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
		for _, r := range s.Rows {
			fmt.Fprintln(w, rep.Rows[r].line())
		}
	}

	fmt.Fprintln(w)
	fmt.Fprintln(w, "## Packages in the run")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "All tests of these packages run, mapped or not; a failure outside the mapped tests shows only here.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| Package | Result | Tests passed | failed | skipped | Failed tests |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, pkg := range rep.Map.packages() {
		path := rep.importPath(pkg)
		p := rep.Run.Pkgs[path]
		if p == nil {
			fmt.Fprintf(w, "| `%s` | not run | | | | |\n", pkg)
			continue
		}
		var n [failed + 1]int
		var fails []string
		for name, t := range p.Tests {
			o := outcomeOf(t.Action)
			n[o]++
			if o == failed {
				fails = append(fails, name)
			}
		}
		slices.Sort(fails)
		if len(fails) > 10 {
			fails = append(fails[:10], fmt.Sprintf("… %d more", len(fails)-10))
		}
		result := map[string]string{"pass": "ok", "fail": "**FAIL**", "skip": "no tests", "": "did not finish"}[p.Action]
		if p.Build != "" {
			result = "**FAIL** (build)"
		}
		if p.Action != "" {
			result += fmt.Sprintf(" (%.1f s)", p.Elapsed)
		}
		fmt.Fprintf(w, "| `%s` | %s | %d | %d | %d | %s |\n", pkg, result, n[passed], n[failed], n[skipped], cell(strings.Join(fails, ", ")))
	}
}

// line is the row's line of its section's table.
func (r *rowResult) line() string {
	rw := r.Row
	var tests []string
	for _, m := range r.Matches {
		tests = append(tests, m.cell())
	}
	if len(rw.Of) > 0 {
		ids := make([]string, len(r.Of))
		for i, o := range r.Of {
			ids[i] = o.Row.ID
		}
		tests = []string{fmt.Sprintf("the MUST rows of %s: %s", strings.Join(rw.Of, ", "), strings.Join(ids, ", "))}
	}
	if len(tests) == 0 {
		tests = []string{"—"}
	}
	result := r.Result
	if result == failed.String() {
		result = "**FAIL**"
	}
	return fmt.Sprintf("| %s | %s | %s | %s | %s | %s | %s |",
		cell(rw.ID), cell(rw.Ref), cell(rw.Level), cell(rw.Requirement), strings.Join(tests, "<br>"), result, cell(rw.Note))
}

// cell is one test reference with what the run said of it.
func (m match) cell() string {
	ref := "`" + strings.ReplaceAll(m.Ref.Pkg+" "+m.Ref.Pattern, "|", `\|`) + "`"
	n := m.total()
	switch {
	case n == 0:
		return fmt.Sprintf("%s: %s (%s)", ref, m.Outcome, m.Why)
	case n == 1:
		return fmt.Sprintf("%s: %s", ref, m.Outcome)
	case m.Counts[m.Outcome] == n:
		return fmt.Sprintf("%s [%d]: %s", ref, n, m.Outcome)
	}
	var parts []string
	for o := failed; o >= passed; o-- {
		if m.Counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", m.Counts[o], o))
		}
	}
	return fmt.Sprintf("%s [%d]: %s", ref, n, strings.Join(parts, ", "))
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
