package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// filterProtos are the protocols a filter rule names; any other is
// written as its number.
var filterProtos = map[string]int{"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}

const protoChoices = `"tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255`

// filterStates are conntrack's views of a packet's flow, in its order.
var filterStates = []string{"new", "established", "related", "invalid"}

// decodeFilter decodes [filter] and its [[filter.rule]]s; t is nil when
// the file has none. resolveFilter checks the rules' interfaces.
func decodeFilter(t *table) Filter {
	if t == nil {
		return Filter{Policy: FilterAccept}
	}
	f := Filter{Policy: FilterAccept, Line: t.pos.at()}
	if s, ok := oneOf(t, "policy", FilterAccept, FilterDrop); ok {
		f.Policy = s
	}
	for _, r := range t.tables("rule") {
		r.name = t.name + " " + r.name // "filter rule 2"
		f.Rules = append(f.Rules, decodeFilterRule(r))
	}
	t.unknownKeys()
	return f
}

// decodeFilterRule decodes one [[filter.rule]] and checks what can be
// checked within it.
func decodeFilterRule(t *table) FilterRule {
	before := len(t.errs.errs)
	r := FilterRule{Line: t.pos.at()}
	r.In = decodeRuleIface(t, "in")
	r.Out = decodeRuleIface(t, "out")
	r.From = decodeRulePrefixes(t, "from", "source")
	r.To = decodeRulePrefixes(t, "to", "destination")
	proto, protoOK := decodeFilterProto(t)
	r.Proto = proto
	r.DPorts = decodeRuleDPorts(t, proto, protoOK)
	r.States = decodeStates(t)
	if s, ok := oneOf(t, "action", FilterAccept, FilterDrop, FilterReject); ok {
		r.Action = s
	} else if !t.has("action") {
		t.errorf(t.pos.at(), `action is required: "accept", "drop" or "reject"`)
	}
	if b, ok := t.boolean("log"); ok {
		r.Log = b
	}
	if len(t.errs.errs) == before {
		// Only on a rule that is otherwise right: with a bad prefix left
		// out, the families left would say nothing true.
		checkRuleFamilies(t, r)
	}
	t.unknownKeys()
	return r
}

// decodeRuleIface reads in or out. An empty name is refused rather than
// taken for "any": leaving the key out says that.
func decodeRuleIface(t *table, key string) string {
	s, ok := t.str(key)
	if ok && s == "" {
		t.errorf(t.line(key), "%s is empty; leave it out to match any interface", key)
	}
	return s
}

// decodeRulePrefixes reads from or to. An empty array is refused: it
// could mean "nothing" as well as "any", and leaving the key out says any.
func decodeRulePrefixes(t *table, key, what string) []netip.Prefix {
	before := len(t.errs.errs)
	ps := decodePrefixes(t, key)
	if ps == nil && t.has(key) && len(t.errs.errs) == before {
		t.errorf(t.line(key), "%s is empty; leave it out to match any %s", key, what)
	}
	return ps
}

// decodeFilterProto reads proto: a name or a TOML integer. It is -1 when
// absent, and false when present but bad (reported).
func decodeFilterProto(t *table) (int, bool) {
	v, ok := t.get("proto")
	if !ok {
		return -1, true
	}
	switch v := v.(type) {
	case string:
		if p, known := filterProtos[v]; known {
			return p, true
		}
		hint := ""
		if _, err := strconv.Atoi(v); err == nil {
			hint = fmt.Sprintf("; write a number without quotes: proto = %s", v)
		}
		t.errorf(t.line("proto"), "proto %q must be %s%s", v, protoChoices, hint)
	case int64:
		if n, ok := t.integer("proto", 0, 255); ok {
			return int(n), true
		}
	default:
		t.errorf(t.line("proto"), "proto must be %s, not %s", protoChoices, describe(v))
	}
	return -1, false
}

// filterProtoName names protocol p for messages, as the file would.
func filterProtoName(p int) string {
	for n, v := range filterProtos {
		if v == p {
			return strconv.Quote(n)
		}
	}
	return strconv.Itoa(p)
}

// decodeRuleDPorts reads dport, a port set. Only TCP and UDP have ports
// to match, so it needs proto to say one of them; protoOK is false when
// proto is bad, reported already.
func decodeRuleDPorts(t *table, proto int, protoOK bool) PortSet {
	s, ok := t.str("dport")
	if !ok {
		return nil
	}
	ps, err := parsePortSet(s)
	if err != nil {
		t.errorf(t.line("dport"), "dport %v", err)
	}
	switch {
	case !protoOK:
	case proto == -1:
		t.errorf(t.line("dport"), `dport needs proto "tcp" or "udp"`)
	case proto != int(ProtoTCP) && proto != int(ProtoUDP):
		t.errorf(t.line("dport"), `dport needs proto "tcp" or "udp", not %s`, filterProtoName(proto))
	}
	return ps
}

// decodeStates reads state, the conntrack states a rule matches.
func decodeStates(t *table) []string {
	before := len(t.errs.errs)
	items, ok := t.strs("state")
	if ok && len(items) == 0 && len(t.errs.errs) == before {
		t.errorf(t.line("state"), "state is empty; leave it out to match any state")
	}
	var states []string
	for _, it := range items {
		switch {
		case !slices.Contains(filterStates, it.s):
			t.errorf(it.line, "state %q must be one of %s", it.s, strings.Join(filterStates, ", "))
		case slices.Contains(states, it.s):
			t.errorf(it.line, "state %q is listed twice", it.s)
		default:
			states = append(states, it.s)
		}
	}
	return states
}

// families is a set of IP families a rule's key can match.
type families uint8

const (
	famIPv4 families = 1 << iota
	famIPv6
	famAny = famIPv4 | famIPv6
)

func (f families) String() string {
	switch f {
	case famIPv4:
		return "IPv4"
	case famIPv6:
		return "IPv6"
	}
	return "IPv4 and IPv6"
}

func prefixFamilies(ps []netip.Prefix) families {
	if ps == nil {
		return famAny
	}
	var f families
	for _, p := range ps {
		if p.Addr().Is4() {
			f |= famIPv4
		} else {
			f |= famIPv6
		}
	}
	return f
}

func protoFamilies(p int) families {
	switch p {
	case filterProtos["icmp"]:
		return famIPv4
	case filterProtos["icmpv6"]:
		return famIPv6
	}
	return famAny
}

// checkRuleFamilies refuses a rule whose from, to and proto have no IP
// family in common: it could never match, which is surely not what the
// file meant. Each key allows one family or both, so two that disagree
// are enough to find.
func checkRuleFamilies(t *table, r FilterRule) {
	keys := []struct {
		key, what string
		fam       families
	}{
		{"from", "from", prefixFamilies(r.From)},
		{"to", "to", prefixFamilies(r.To)},
		{"proto", "proto " + filterProtoName(r.Proto), protoFamilies(r.Proto)},
	}
	for i, a := range keys {
		for _, b := range keys[i+1:] {
			if a.fam&b.fam == 0 {
				t.errorf(t.line(b.key), "%s is %v only and %s %v only; the rule can never match", a.what, a.fam, b.what, b.fam)
				return
			}
		}
	}
}

// checkFilterStage: rules, or a drop policy, need the filter stage, or the
// router would quietly forward what the file says to stop. As with
// checkNATStages, it is reported at stages; DefaultStages has it.
func checkFilterStage(t *table, c *Config) {
	if t == nil || slices.Contains(c.Pipeline.Stages, "filter") {
		return
	}
	if len(c.Filter.Rules) > 0 || c.Filter.Policy == FilterDrop {
		t.errorf(t.line("stages"), `stage "filter" is required by [filter], to filter forwarded packets`)
	}
}

// resolveFilter checks the rules' interfaces against the [[interface]]s:
// a rule naming another would never match, and quietly so.
func resolveFilter(errs *errorList, c *Config) {
	for i, r := range c.Filter.Rules {
		for _, k := range []struct{ key, name string }{{"in", r.In}, {"out", r.Out}} {
			if k.name != "" && findInterface(c.Interface, func(in *Interface) bool { return in.Name == k.name }) == nil {
				errs.errorf(0, "filter rule %d: %s %q is not an [[interface]]", i+1, k.key, k.name)
			}
		}
	}
}
