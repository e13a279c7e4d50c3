package router

import (
	"cmp"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/filter"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// The filter stage: [filter] and its [[filter.rule]]s, like an nftables
// forward chain. It sees forwarded packets after route (destinations are
// those after DNAT, as in a forward chain), never the router's own. Its
// state matches are conntrack's view: while some rule matches on state,
// every flow the filter accepts is tracked, translated or not.

// firewall is the filter part of a snapshot.
type firewall struct {
	matcher  *filter.Matcher
	rules    []*filterRule
	policy   *filterRule // what no rule matches: its action and counters
	stateful bool        // some rule matches on state: track every accepted flow
}

// filterRule is a compiled rule's action and its live counters, which a
// reload keeps for the rule at the same place with the same keys.
type filterRule struct {
	action  string
	log     bool
	line    int
	counted *ruleCounters
}

// ruleCounters count what a rule matched; the fast stage adds the packets
// of the flows it decided for.
type ruleCounters struct {
	packets, bytes atomic.Uint64
	logged         atomic.Int64 // when it last logged a match, unix ns
}

func (c *ruleCounters) count(p *packet.Packet) {
	c.packets.Add(1)
	c.bytes.Add(uint64(p.Len))
}

var filterStates = map[string]filter.State{
	"new": filter.New, "established": filter.Established, "related": filter.Related, "invalid": filter.Invalid,
}

// buildFirewall compiles cfg's [filter], keeping the counters of rules the
// running snapshot has at the same place and with the same text.
func (r *Router) buildFirewall(cfg *config.Config, index map[string]int) *firewall {
	fc := cfg.Filter
	if len(fc.Rules) == 0 && fc.Policy != config.FilterDrop {
		return nil
	}
	old := map[string]*ruleCounters{}
	if s := r.snap.Load(); s != nil && s.filter != nil {
		for i, fr := range s.filter.rules {
			old[ruleKey(i, s.cfg.Filter.Rules[i])] = fr.counted
		}
		old["policy"] = s.filter.policy.counted
	}
	counters := func(key string) *ruleCounters {
		if c := old[key]; c != nil {
			return c
		}
		return &ruleCounters{}
	}
	fw := &firewall{policy: &filterRule{action: cmp.Or(fc.Policy, config.FilterAccept), counted: counters("policy")}}
	var rules []filter.Rule
	for i, rc := range fc.Rules {
		fr := filter.Rule{In: filter.Any, Out: filter.Any, From: rc.From, To: rc.To, Proto: rc.Proto}
		if rc.In != "" {
			fr.In = index[rc.In]
		}
		if rc.Out != "" {
			fr.Out = index[rc.Out]
		}
		for _, pr := range rc.DPorts {
			fr.DPorts = append(fr.DPorts, filter.PortRange{Lo: pr.Lo, Hi: pr.Hi})
		}
		for _, st := range rc.States {
			fr.States |= filterStates[st]
		}
		fw.stateful = fw.stateful || fr.States != 0
		rules = append(rules, fr)
		fw.rules = append(fw.rules, &filterRule{action: rc.Action, log: rc.Log, line: rc.Line, counted: counters(ruleKey(i, rc))})
	}
	fw.matcher = filter.Compile(rules)
	return fw
}

// ruleKey names a rule across reloads: its place and its keys.
func ruleKey(i int, rc config.FilterRule) string {
	rc.Line = 0
	return fmt.Sprint(i, rc)
}

type filterStage struct {
	r *Router
	s *snapshot
}

func (st filterStage) Process(p *packet.Packet) packet.Verdict {
	fw, r := st.s.filter, st.r
	if fw == nil || p.Origin == packet.Local {
		return packet.Continue
	}
	if p.NonFirstFragment {
		// A later fragment goes with its datagram: it waits for the first
		// fragment to pass the filter, and follows it, or goes nowhere
		// (nftables reassembles for the same end). Rules count the first
		// fragment only.
		if p.Reassociated {
			return packet.Continue
		}
		v, _ := r.frags.later(p, r.now(), true)
		return v
	}
	state := r.connState(p)
	fp := filter.Packet{In: p.In, Out: p.Out, Src: p.Src, Dst: p.Dst, Proto: p.Proto, HasPort: hasDstPort(p), DPort: p.DstPort, State: state}
	rule := fw.policy
	if i := fw.matcher.Match(&fp); i >= 0 {
		rule = fw.rules[i]
		if rule.log {
			r.logMatch(st.s, i, rule, p, state)
		}
	}
	rule.counted.count(p)
	switch rule.action {
	case config.FilterDrop:
		return packet.Drop(packet.ReasonFiltered)
	case config.FilterReject:
		return r.reject(st.s, p)
	}
	// The fast stage may decide the flow's next packets in this direction
	// only if this rule would: a packet that was not established may
	// have matched on being new.
	p.FilterHit = rule.counted
	if state != filter.Established || rule.log {
		p.NoFast = true
	}
	if fw.stateful && state == filter.New && p.HasPorts && p.Flow == nil && p.NewFlow == nil {
		if v := r.roomForFlow(st.s, p); v != packet.Continue {
			return v
		}
		begin(p) // tracked, so that its answers are established
	}
	return packet.Continue
}

// connState is conntrack's view of p for the filter (nftables' ct state):
// established once its flow has seen an answer, new before, related for an
// ICMP error about a known flow, invalid for a packet that fits no flow
// and cannot start one.
func (r *Router) connState(p *packet.Packet) filter.State {
	switch {
	case icmpError(p):
		if r.quotesFlow(p) {
			return filter.Related
		}
		return filter.Invalid
	case !p.HasPorts:
		return filter.New // untracked protocols: each packet on its own
	}
	if f, d := r.flow(p); f != nil {
		if d == conntrack.Reply || f.Replied() {
			return filter.Established
		}
		return filter.New
	}
	// No flow yet (or one a port forward or a mapping is beginning): only
	// what can open a conversation is new.
	switch {
	case p.Proto == uint8(header.TCPProtocolNumber):
		// RFC 9293: only a SYN opens a connection.
		if header.TCPFlags(p.TCPFlags)&(header.TCPFlagSyn|header.TCPFlagAck|header.TCPFlagRst) == header.TCPFlagSyn {
			return filter.New
		}
		return filter.Invalid
	case p.Proto == uint8(header.ICMPv4ProtocolNumber) && header.ICMPv4Type(p.ICMPType) == header.ICMPv4EchoReply,
		p.Proto == uint8(header.ICMPv6ProtocolNumber) && header.ICMPv6Type(p.ICMPType) == header.ICMPv6EchoReply:
		return filter.Invalid // an answer to no question
	}
	return filter.New
}

// reject answers p as refused: a TCP segment with a reset, anything else
// with Destination Unreachable, administratively prohibited (ICMPv6:
// communication administratively prohibited), both rate limited as the
// router's ICMP errors are.
func (r *Router) reject(s *snapshot, p *packet.Packet) packet.Verdict {
	if p.Proto != uint8(header.TCPProtocolNumber) {
		return r.answer(s, p, icmperr.AdminProhibited, 0, packet.ReasonFiltered)
	}
	if !r.icmpLimit.Allow() {
		return packet.Drop(packet.ReasonFiltered)
	}
	untranslate(p) // the reset comes from where the sender sent to
	if !tcpReset(p, conntrack.KeyOf(p)) {
		return packet.Drop(packet.ReasonFiltered)
	}
	return packet.Reply(packet.ReasonFiltered)
}

// filterLogEvery is the least time between two log lines of one rule.
const filterLogEvery = time.Second

func (r *Router) logMatch(s *snapshot, i int, rule *filterRule, p *packet.Packet, state filter.State) {
	now := r.now().UnixNano()
	last := rule.counted.logged.Load()
	if now-last < int64(filterLogEvery) || !rule.counted.logged.CompareAndSwap(last, now) {
		return
	}
	r.log.Info("filter rule matched", "rule", i+1, "line", rule.line, "action", rule.action,
		"in", ifaceName(s, p.In), "out", ifaceName(s, p.Out), "proto", protoName(p.Proto),
		"src", netip.AddrPortFrom(p.Src, p.SrcPort), "dst", netip.AddrPortFrom(p.Dst, p.DstPort), "state", stateName(state))
}

func ifaceName(s *snapshot, i int) string {
	if i >= 0 && i < len(s.devs) && s.devs[i] != nil {
		return s.devs[i].name
	}
	return "-"
}

func stateName(st filter.State) string {
	for name, v := range filterStates {
		if v == st {
			return name
		}
	}
	return "?"
}

// FilterRuleStats is what one filter rule (or the policy) matched.
type FilterRuleStats struct {
	Rule    int    `json:"rule"` // from 1; 0 is the policy
	Line    int    `json:"line,omitempty"`
	Action  string `json:"action"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (fw *firewall) stats() []FilterRuleStats {
	if fw == nil {
		return nil
	}
	out := []FilterRuleStats{{Action: fw.policy.action, Packets: fw.policy.counted.packets.Load(), Bytes: fw.policy.counted.bytes.Load()}}
	for i, fr := range fw.rules {
		out = append(out, FilterRuleStats{Rule: i + 1, Line: fr.line, Action: fr.action, Packets: fr.counted.packets.Load(), Bytes: fr.counted.bytes.Load()})
	}
	return out
}
