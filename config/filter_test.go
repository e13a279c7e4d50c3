package config

import (
	"net/netip"
	"reflect"
	"testing"
)

func TestFilterDefaults(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want Filter
	}{
		{"no [filter]", natIfaces, Filter{Policy: FilterAccept}},
		{"empty [filter]", natIfaces + "[filter]\n", Filter{Policy: FilterAccept, Line: 7}},
		// Nothing to filter, so the stage may be left out.
		{"accept policy without the stage", natIfaces + `[filter]
policy = "accept"
[pipeline]
stages = ["validate", "route"]
`, Filter{Policy: FilterAccept, Line: 7}},
		{"a rule with only its action", natIfaces + "[[filter.rule]]\naction = \"drop\"\n", Filter{
			Policy: FilterAccept,
			Rules:  []FilterRule{{Proto: -1, Action: FilterDrop, Line: 7}},
			Line:   7, // implied by the rule's header
		}},
		{"inline tables", `filter = {policy = "drop", rule = [{in = "lan0", action = "accept"}, {action = "reject"}]}
` + natIfaces, Filter{
			Policy: FilterDrop,
			Rules: []FilterRule{
				{In: "lan0", Proto: -1, Action: FilterAccept, Line: 1},
				{Proto: -1, Action: FilterReject, Line: 1},
			},
			Line: 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(tt.toml))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Filter, tt.want) {
				t.Errorf("filter = %+v, want %+v", c.Filter, tt.want)
			}
		})
	}
}

// TestParseFilter: SPEC's example as written, then a rule with every key,
// and protocols by name and by number.
func TestParseFilter(t *testing.T) {
	c, err := Parse("t.toml", []byte(natIfaces+`[filter]
policy = "accept"             # accept | drop
[[filter.rule]]
in = "wan0"                   # all match keys are optional; absent = any
# out = "lan0"
# from = ["0.0.0.0/0"]
# to = ["192.168.46.0/24"]
# proto = "tcp"               # tcp | udp | icmp | icmpv6 | a number
# dport = "22,80,1000-2000"
state = ["new", "invalid"]    # new | established | related | invalid (conntrack's view)
action = "drop"               # accept | drop | reject (ICMP admin-prohibited, TCP RST for tcp)
# log = true                  # log matches, rate limited

[[filter.rule]]
in = "wan0"
out = "lan0"
from = ["0.0.0.0/0", "::/0"]
to = ["192.168.46.0/24", "fd46::/64"]
proto = "tcp"
dport = "1000-2000, 80,22"
state = ["established", "related", "new", "invalid"]
action = "accept"
log = true

[[filter.rule]]
from = ["fd46::/64"]
proto = "icmpv6"
action = "accept"

[[filter.rule]]
from = ["192.168.46.0/24", "fd46::/64"]
proto = "icmp"
action = "reject"
log = false

[[filter.rule]]
to = ["192.168.46.53/32"]
proto = 17
dport = "53"
action = "accept"

[[filter.rule]]
proto = 0
action = "drop"

[pipeline]
stages = ["validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"]
`))
	if err != nil {
		t.Fatal(err)
	}
	pfx := func(ss ...string) []netip.Prefix {
		var ps []netip.Prefix
		for _, s := range ss {
			ps = append(ps, netip.MustParsePrefix(s))
		}
		return ps
	}
	want := Filter{
		Policy: FilterAccept,
		Rules: []FilterRule{{
			In:     "wan0",
			Proto:  -1,
			States: []string{"new", "invalid"},
			Action: FilterDrop,
			Line:   9,
		}, {
			In:     "wan0",
			Out:    "lan0",
			From:   pfx("0.0.0.0/0", "::/0"),
			To:     pfx("192.168.46.0/24", "fd46::/64"),
			Proto:  6,
			DPorts: PortSet{{22, 22}, {80, 80}, {1000, 2000}},
			States: []string{"established", "related", "new", "invalid"},
			Action: FilterAccept,
			Log:    true,
			Line:   20,
		}, {
			From:   pfx("fd46::/64"),
			Proto:  58,
			Action: FilterAccept,
			Line:   31,
		}, {
			// Mixed families are fine: the IPv4 prefix is the one icmp matches.
			From:   pfx("192.168.46.0/24", "fd46::/64"),
			Proto:  1,
			Action: FilterReject,
			Line:   36,
		}, {
			To:     pfx("192.168.46.53/32"),
			Proto:  17,
			DPorts: PortSet{{53, 53}},
			Action: FilterAccept,
			Line:   42,
		}, {
			Proto:  0,
			Action: FilterDrop,
			Line:   48,
		}},
		Line: 7,
	}
	if !reflect.DeepEqual(c.Filter, want) {
		t.Errorf("got  %+v\nwant %+v", c.Filter, want)
	}
}

// TestFilterErrors lists filter configs and the complete error output
// each must give, line by line, as TestParseErrors does.
func TestFilterErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"filter values", natIfaces + `[filter]
policy = "reject"
bogus = 1
[[filter.rule]]
in = "wan9"
out = ""
from = ["10.0.0.1/8", "fd46::/64", "fd46::/64"]
to = "192.168.46.0/24"
proto = "icmp"
dport = "22"
state = ["new", "NEW", "new"]
action = "allow"
log = "yes"
comment = "x"
[[filter.rule]]
dport = "80"
[[filter.rule]]
out = "eth9"
proto = "tcp"
dport = "1000-2000,1500"
action = "drop"
[[filter.rule]]
proto = "udp"
dport = "53,,54"
action = "drop"
[[filter.rule]]
proto = "udp"
dport = "2000-1000"
action = "drop"
[[filter.rule]]
proto = "tcp"
dport = ""
action = "drop"
[[filter.rule]]
proto = "tcp"
dport = 22
action = "drop"
`, []string{
			`tungate.toml:8: filter: policy "reject" must be "accept" or "drop"`,
			`tungate.toml:9: filter: unknown key "bogus"`,
			`tungate.toml:12: filter rule 1: out is empty; leave it out to match any interface`,
			`tungate.toml:13: filter rule 1: from 10.0.0.1/8: invalid prefix for given prefix length (host bits set); did you mean 10.0.0.0/8?`,
			`tungate.toml:13: filter rule 1: from fd46::/64 is listed twice`,
			`tungate.toml:14: filter rule 1: to must be an array of strings, not the string "192.168.46.0/24"`,
			`tungate.toml:16: filter rule 1: dport needs proto "tcp" or "udp", not "icmp"`,
			`tungate.toml:17: filter rule 1: state "NEW" must be one of new, established, related, invalid`,
			`tungate.toml:17: filter rule 1: state "new" is listed twice`,
			`tungate.toml:18: filter rule 1: action "allow" must be one of accept, drop, reject`,
			`tungate.toml:19: filter rule 1: log must be true or false, not the string "yes"`,
			`tungate.toml:20: filter rule 1: unknown key "comment"`,
			`tungate.toml:21: filter rule 2: action is required: "accept", "drop" or "reject"`,
			`tungate.toml:22: filter rule 2: dport needs proto "tcp" or "udp"`,
			`tungate.toml:26: filter rule 3: dport "1000-2000,1500": 1000-2000 and 1500 overlap`,
			`tungate.toml:30: filter rule 4: dport "53,,54" has an empty entry; write ports and ranges like "22,80,1000-2000"`,
			`tungate.toml:34: filter rule 5: dport "2000-1000": 2000 is above 1000`,
			`tungate.toml:38: filter rule 6: dport "" has an empty entry; write ports and ranges like "22,80,1000-2000"`,
			`tungate.toml:42: filter rule 7: dport must be a string, not the integer 22`,
			`tungate.toml: filter rule 1: in "wan9" is not an [[interface]]`,
			`tungate.toml: filter rule 3: out "eth9" is not an [[interface]]`,
		}},
		{"protocols", natIfaces + `[[filter.rule]]
proto = "gre"
action = "drop"
[[filter.rule]]
proto = "6"
dport = "80"
action = "drop"
[[filter.rule]]
proto = 256
action = "drop"
[[filter.rule]]
proto = -1
action = "drop"
[[filter.rule]]
proto = 6.0
dport = "80"
action = "drop"
[[filter.rule]]
proto = "TCP"
action = "drop"
[[filter.rule]]
proto = 47
dport = "80"
action = "drop"
`, []string{
			`tungate.toml:8: filter rule 1: proto "gre" must be "tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255`,
			`tungate.toml:11: filter rule 2: proto "6" must be "tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255; write a number without quotes: proto = 6`,
			"tungate.toml:15: filter rule 3: proto 256 is out of range 0..255",
			"tungate.toml:18: filter rule 4: proto -1 is out of range 0..255",
			`tungate.toml:21: filter rule 5: proto must be "tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255, not the float 6`,
			`tungate.toml:25: filter rule 6: proto "TCP" must be "tcp", "udp", "icmp", "icmpv6" or a protocol number 0..255`,
			`tungate.toml:29: filter rule 7: dport needs proto "tcp" or "udp", not 47`,
		}},
		{"prefixes and states", natIfaces + `[[filter.rule]]
from = []
to = ["192.168.46.0/24", "192.168.46.0/24"]
state = []
action = "drop"
[[filter.rule]]
from = ["10.0.0.0"]
to = ["::ffff:10.0.0.0/104", "fe80::1%lan0/64", 1]
state = "new"
action = "drop"
[[filter.rule]]
state = ["new", "closed", 1]
action = "drop"
`, []string{
			"tungate.toml:8: filter rule 1: from is empty; leave it out to match any source",
			"tungate.toml:9: filter rule 1: to 192.168.46.0/24 is listed twice",
			"tungate.toml:10: filter rule 1: state is empty; leave it out to match any state",
			`tungate.toml:13: filter rule 2: from "10.0.0.0" has no prefix length, like the /24 of 192.168.46.1/24`,
			"tungate.toml:14: filter rule 2: to: element 3 must be a string, not the integer 1",
			"tungate.toml:14: filter rule 2: to ::ffff:10.0.0.0/104 is IPv4-mapped IPv6; write it as IPv4",
			`tungate.toml:14: filter rule 2: to "fe80::1%lan0/64" is not an IP prefix: IPv6 zones cannot be present in a prefix`,
			`tungate.toml:15: filter rule 2: state must be an array of strings, not the string "new"`,
			"tungate.toml:18: filter rule 3: state: element 3 must be a string, not the integer 1",
			`tungate.toml:18: filter rule 3: state "closed" must be one of new, established, related, invalid`,
		}},
		{"rules that can never match", natIfaces + `[[filter.rule]]
from = ["192.168.46.0/24"]
to = ["fd46::/64"]
action = "drop"
[[filter.rule]]
to = ["192.168.46.0/24"]
proto = "icmpv6"
action = "drop"
[[filter.rule]]
from = ["fd46::/64", "::/0"]
proto = 1
action = "drop"
[[filter.rule]]
from = ["10.0.0.0/8", "fd46::/64"]
to = ["fd46::/64"]
proto = "icmp"
action = "drop"
`, []string{
			"tungate.toml:9: filter rule 1: from is IPv4 only and to IPv6 only; the rule can never match",
			`tungate.toml:13: filter rule 2: to is IPv4 only and proto "icmpv6" IPv6 only; the rule can never match`,
			`tungate.toml:17: filter rule 3: from is IPv6 only and proto "icmp" IPv4 only; the rule can never match`,
			`tungate.toml:22: filter rule 4: to is IPv6 only and proto "icmp" IPv4 only; the rule can never match`,
		}},
		{"rules need the filter stage", natIfaces + `[[filter.rule]]
action = "accept"
[pipeline]
stages = ["validate", "local", "dnat", "route", "ttl", "snat", "neighbor"]
`, []string{
			`tungate.toml:10: pipeline: stage "filter" is required by [filter], to filter forwarded packets`,
		}},
		{"a drop policy needs the filter stage", natIfaces + `[filter]
policy = "drop"
[pipeline]
stages = ["validate", "route"]
`, []string{
			`tungate.toml:10: pipeline: stage "filter" is required by [filter], to filter forwarded packets`,
		}},
		{"filter tables of the wrong shape", natIfaces + `[filter]
rule = 1
[filter.rules]
`, []string{
			`tungate.toml:8: filter: rule must be an array of tables, [[filter.rule]], not the integer 1`,
			`tungate.toml:9: filter: unknown table "rules" (did you mean "rule"?)`,
		}},
		{"filter rule is an array of tables", natIfaces + `[filter.rule]
action = "drop"
`, []string{
			`tungate.toml:7: filter: rule must be an array of tables, [[filter.rule]], not a table`,
		}},
		{"filter is a table", natIfaces + `[[filter]]
policy = "drop"
`, []string{
			`tungate.toml:7: filter must be a table, [filter], not an array of tables`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("tungate.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			checkErrorLines(t, err.Error(), tt.want)
		})
	}
}
