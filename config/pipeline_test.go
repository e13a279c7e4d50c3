package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestDefaultStages(t *testing.T) {
	if want := []string{"validate", "local", "dnat", "route", "filter", "ttl", "snat", "neighbor"}; !reflect.DeepEqual(DefaultStages, want) {
		t.Errorf("DefaultStages = %v, want %v", DefaultStages, want)
	}
	if probs := checkStages(DefaultStages); probs != nil {
		t.Errorf("DefaultStages break the rules: %v", probs)
	}
}

// TestSpecOrder: SPEC's full list must satisfy every ordering rule; only
// the stages not implemented yet may be refused.
func TestSpecOrder(t *testing.T) {
	for _, p := range checkStages(stageNames()) {
		if !strings.Contains(p.msg, "not supported yet") {
			t.Errorf("SPEC's order breaks a rule: %s", p.msg)
		}
	}
}

func TestOrderRulesNameKnownStages(t *testing.T) {
	known := stageNames()
	for _, r := range orderRules {
		for _, n := range []string{r.before, r.after} {
			if !strings.Contains(" "+strings.Join(known, " ")+" ", " "+n+" ") {
				t.Errorf("order rule %v names unknown stage %q", r, n)
			}
		}
	}
}

func TestCheckStages(t *testing.T) {
	tests := []struct {
		stages string
		want   []stageProblem
	}{
		{"validate route", nil},
		{"validate local route ttl", nil},
		{"validate route ttl local", []stageProblem{{1, "route must come after local"}}},
		{"validate ttl route", []stageProblem{{1, "ttl must come after route"}}},
		{"route validate", []stageProblem{{1, "validate must come first"}}},
		{"validate", []stageProblem{{-1, `stage "route" is required`}}},
		{"", []stageProblem{{-1, `stage "validate" is required`}, {-1, `stage "route" is required`}}},
		{"validate route route", []stageProblem{{2, `stage "route" is listed twice`}}},
		{"validate route Route", []stageProblem{{2, `unknown stage "Route"; the stages are validate, local, dnat, route, filter, ttl, snat, neighbor`}}},
		{"validate dnat route", nil},
		{"validate route dnat", []stageProblem{{1, "route must come after dnat"}}},
		{"validate dnat local route", []stageProblem{{1, "dnat must come after local"}}},
		{"validate route filter", nil},
		{"validate dnat route filter ttl snat neighbor", nil},
		{"validate filter route", []stageProblem{{1, "filter must come after route"}}},
		{"validate route ttl filter", []stageProblem{{2, "ttl must come after filter"}}},
		{"validate route snat filter", []stageProblem{{2, "snat must come after filter"}}},
		{"validate local route ttl neighbor", nil},
		{"validate local route neighbor ttl", []stageProblem{{3, "neighbor must come last"}}},
		{"validate neighbor route", []stageProblem{
			{1, "neighbor must come last"},
			{1, "neighbor must come after route"},
		}},
		{"validate route snat", nil},
		{"validate snat route", []stageProblem{{1, "snat must come after route"}}},
		{"validate route snat neighbor", nil},
		{"validate route neighbor snat", []stageProblem{{2, "neighbor must come last"}}},
	}
	for _, tt := range tests {
		got := checkStages(strings.Fields(tt.stages))
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("checkStages(%q) =\n%v, want\n%v", tt.stages, got, tt.want)
		}
	}
}
