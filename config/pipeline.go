package config

import (
	"fmt"
	"slices"
	"strings"
)

// The way of a packet through tungate, stage by stage, in SPEC's order:
//
//	validate  check the IP header once; later stages trust the parsed view
//	local     take packets addressed to the router itself
//	dnat      rewrite the destination: port forwards, load-balanced services
//	route     look up the FIB: egress interface and next hop
//	filter    the stateful forward filter
//	ttl       decrement TTL / hop limit; ICMP Time Exceeded when it runs out
//	snat      rewrite the source: masquerade
//	neighbor  resolve the next hop's link-layer address, hand to the device
//
// stageTable and orderRules are the one place that says which stages exist,
// which this version implements, and how they may be ordered; the router
// builds its pipeline from the names that pass them.

// placement pins a stage to one end of the pipeline.
type placement int

const (
	anywhere placement = iota
	first
	last
)

type stage struct {
	name        string
	implemented bool // by this version; the others are refused for now
	required    bool
	place       placement
}

var stageTable = []stage{
	{name: "validate", implemented: true, required: true, place: first}, // nothing may read an unchecked header
	{name: "local", implemented: true},
	{name: "dnat", implemented: true},                  // [[forward]] and [[service]] need it (checkNATStages)
	{name: "route", implemented: true, required: true}, // without it nothing leaves
	{name: "filter", implemented: true},                // [filter] needs it (checkFilterStage)
	{name: "ttl", implemented: true},
	{name: "snat", implemented: true},                  // [[snat]] needs it (checkNATStages)
	{name: "neighbor", implemented: true, place: last}, // it hands the packet to the device; tap interfaces need it
}

// orderRules: when both stages are in the pipeline, before comes first.
var orderRules = []struct{ before, after string }{
	{"local", "route"},    // the router's own packets are delivered, not forwarded
	{"local", "dnat"},     // dnat sees only what the router does not take for itself
	{"dnat", "route"},     // route the translated destination, not the original
	{"route", "filter"},   // filter rules match the egress interface route chose
	{"filter", "ttl"},     // a packet the filter stops gets no Time Exceeded: traceroute learns nothing through it
	{"filter", "snat"},    // filter rules match the inside source, before masquerade replaces it
	{"route", "ttl"},      // only forwarded packets lose a hop (RFC 1812 §5.3.1)
	{"route", "snat"},     // the new source belongs to the egress interface
	{"route", "neighbor"}, // neighbor resolves the next hop route chose
}

// DefaultStages is the pipeline when [pipeline] is omitted: every stage
// this version implements, in order.
var DefaultStages = implementedStages()

func implementedStages() []string {
	var names []string
	for _, s := range stageTable {
		if s.implemented {
			names = append(names, s.name)
		}
	}
	return names
}

// decodePipeline decodes [pipeline]; without it (t is nil) or without
// stages, the pipeline is DefaultStages.
func decodePipeline(t *table) []string {
	items, ok := t.strs("stages")
	t.unknownKeys()
	if !ok {
		return slices.Clone(DefaultStages)
	}
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = it.s
	}
	for _, pr := range checkStages(names) {
		line := t.line("stages")
		if pr.index >= 0 {
			line = items[pr.index].line
		}
		t.errorf(line, "%s", pr.msg)
	}
	return names
}

// checkTapNeighbor: a packet leaving by a tap interface needs the
// neighbor stage to find its next hop's MAC address, so a pipeline without
// it cannot work with a tap. It relates two tables but is reported in
// [pipeline], at stages, where it is fixed; without stages the pipeline is
// DefaultStages, which has the stage.
func checkTapNeighbor(t *table, stages []string, ifs []Interface) {
	if t == nil || slices.Contains(stages, "neighbor") {
		return
	}
	var taps []string
	for i := range ifs {
		if ifs[i].Kind == KindTAP {
			taps = append(taps, strings.TrimPrefix(ifaceLabel(ifs, i), "interface "))
		}
	}
	switch len(taps) {
	case 0:
		return
	case 1:
		t.errorf(t.line("stages"), `stage "neighbor" is required by tap interface %s, to resolve next hops to MAC addresses`, taps[0])
	default:
		t.errorf(t.line("stages"), `stage "neighbor" is required by tap interfaces %s, to resolve next hops to MAC addresses`, strings.Join(taps, ", "))
	}
}

// checkNATStages: [[snat]] tables need the snat stage, [[forward]] and
// [[service]] tables the dnat stage, or the router would quietly not
// translate or balance. As with checkTapNeighbor, it is reported at
// stages; DefaultStages has both.
func checkNATStages(t *table, c *Config) {
	if t == nil {
		return
	}
	if len(c.SNAT) > 0 && !slices.Contains(c.Pipeline.Stages, "snat") {
		t.errorf(t.line("stages"), `stage "snat" is required by [[snat]], to translate source addresses`)
	}
	if len(c.Forward) > 0 && !slices.Contains(c.Pipeline.Stages, "dnat") {
		t.errorf(t.line("stages"), `stage "dnat" is required by [[forward]], to translate destination addresses`)
	}
	if len(c.Service) > 0 && !slices.Contains(c.Pipeline.Stages, "dnat") {
		t.errorf(t.line("stages"), `stage "dnat" is required by [[service]], to balance virtual services`)
	}
}

// stageProblem is a broken rule, at names[index], or about the whole list
// when index is -1.
type stageProblem struct {
	index int
	msg   string
}

// checkStages checks a pipeline against stageTable and orderRules.
func checkStages(names []string) []stageProblem {
	var probs []stageProblem
	add := func(i int, format string, args ...any) {
		probs = append(probs, stageProblem{i, fmt.Sprintf(format, args...)})
	}
	at := make(map[string]int) // where each known stage first appears
	for i, n := range names {
		j := slices.IndexFunc(stageTable, func(s stage) bool { return s.name == n })
		_, dup := at[n]
		switch {
		case j < 0:
			add(i, "unknown stage %q; the stages are %s", n, strings.Join(stageNames(), ", "))
		case dup:
			add(i, "stage %q is listed twice", n)
		case !stageTable[j].implemented:
			add(i, "stage %q is not supported yet by this version", n)
			at[n] = i
		default:
			at[n] = i
		}
	}
	for _, s := range stageTable {
		i, ok := at[s.name]
		switch {
		case !ok && s.required:
			add(-1, "stage %q is required", s.name)
		case ok && s.place == first && i != 0:
			add(i, "%s must come first", s.name)
		case ok && s.place == last && i != len(names)-1:
			add(i, "%s must come last", s.name)
		}
	}
	for _, r := range orderRules {
		b, okB := at[r.before]
		a, okA := at[r.after]
		if okB && okA && a < b {
			add(a, "%s must come after %s", r.after, r.before)
		}
	}
	return probs
}

func stageNames() []string {
	names := make([]string, len(stageTable))
	for i, s := range stageTable {
		names[i] = s.name
	}
	return names
}
