package router

import (
	"net/netip"
	"sync/atomic"

	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/neigh"
	"github.com/tungate/tungate/router/packet"
)

// maxStages bounds a pipeline: SPEC's eight stages and the fast stage.
const maxStages = 9

// stageCounters are one stage's live counters, kept by name across
// reloads.
type stageCounters struct {
	packets, taken, replies, skipped atomic.Uint64
	drops                            [packet.NumReasons]atomic.Uint64
}

// ifaceCounters are one interface's live counters.
type ifaceCounters struct {
	rxPackets, rxBytes, txPackets, txBytes, txErrors atomic.Uint64
}

// batchCounters is a reader's private tally for one batch, added to the
// shared atomics once per batch so the per-packet path touches no shared
// cache line.
type batchCounters struct {
	stagePackets, stageTaken, stageReplies [maxStages]uint64
	stageSkipped                           [maxStages]uint64
	stageDrops                             [maxStages][packet.NumReasons]uint64
	outputDrops, linkDrops                 [packet.NumReasons]uint64
	linkTaken                              uint64 // ARP and NDP messages handled
}

func (c *batchCounters) drop(stage int, r packet.Reason) { c.stageDrops[stage][r]++ }

// flush adds the tally to the shared counters of the stages and clears it.
func (c *batchCounters) flush(stages []*stageCounters, link, output *stageCounters) {
	for i, sc := range stages {
		addNonZero(&sc.packets, c.stagePackets[i])
		addNonZero(&sc.taken, c.stageTaken[i])
		addNonZero(&sc.replies, c.stageReplies[i])
		addNonZero(&sc.skipped, c.stageSkipped[i])
		for r, n := range c.stageDrops[i] {
			addNonZero(&sc.drops[r], n)
		}
	}
	for r := range c.outputDrops {
		addNonZero(&output.drops[r], c.outputDrops[r])
		addNonZero(&link.drops[r], c.linkDrops[r])
	}
	addNonZero(&link.packets, c.linkTaken)
	addNonZero(&link.taken, c.linkTaken)
	*c = batchCounters{}
}

func addNonZero(a *atomic.Uint64, n uint64) {
	if n != 0 {
		a.Add(n)
	}
}

// Stats is a point-in-time copy of the router's counters, as `tungate
// stats` shows them.
type Stats struct {
	Interfaces []InterfaceStats `json:"interfaces"`
	Stages     []StageStats     `json:"stages"`
	// Drops totals every stage's drops by reason.
	Drops     map[string]uint64 `json:"drops"`
	ICMP      ICMPStats         `json:"icmp"`
	Neighbors neigh.Stats       `json:"neighbors"`
	Conntrack conntrack.Stats   `json:"conntrack"`
	// NAT has one entry per [[snat]] rule that translates.
	NAT []NATRuleStats `json:"nat,omitempty"`
	// Filter counts what each [[filter.rule]] matched, the policy first.
	Filter []FilterRuleStats `json:"filter,omitempty"`
}

// NATRuleStats is the mapping table of one [[snat]] rule.
type NATRuleStats struct {
	Rule     int    `json:"rule"` // its place among the [[snat]] tables, from 1
	Out      string `json:"out"`
	Mappings int    `json:"mappings"`
	Hosts    int    `json:"hosts"` // inside hosts holding ports
	Held     int    `json:"held"`  // ports held back after their mapping ended (RFC 6888 REQ-8)
	// Ports is the use of each external address's ports, by protocol.
	Ports            []NATPortStats `json:"ports,omitempty"`
	RefusedQuota     uint64         `json:"refused_quota"`
	RefusedExhausted uint64         `json:"refused_exhausted"`
	RefusedNoAddress uint64         `json:"refused_no_address"`
}

// NATPortStats is the port use of one external address for one protocol.
type NATPortStats struct {
	Addr  netip.Addr `json:"addr"`
	Proto string     `json:"proto"`
	Live  int        `json:"live"`
	Held  int        `json:"held"`
}

// InterfaceStats counts what one interface received and sent.
type InterfaceStats struct {
	Name      string `json:"name"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	TxErrors  uint64 `json:"tx_errors"`
}

// StageStats counts what one stage saw and decided. Two pseudo-stages
// frame the pipeline: "link" counts the ARP and NDP messages TAP links
// hand to the neighbor cache and the frames they drop, "output" the drops
// at the devices (fragmentation, write errors, unanswered next hops).
type StageStats struct {
	Name    string `json:"name"`
	Packets uint64 `json:"packets"`
	Taken   uint64 `json:"taken"`
	Replies uint64 `json:"replies"`
	// Skipped counts packets the stage sent past the stages after it (the
	// fast stage: packets of known flows sent on to ttl).
	Skipped uint64            `json:"skipped,omitempty"`
	Drops   map[string]uint64 `json:"drops"`
}

// ICMPStats counts the router's ICMP errors.
type ICMPStats struct {
	Sent        uint64 `json:"sent"`
	RateLimited uint64 `json:"rate_limited"`
}

func (sc *stageCounters) snapshot(name string, total map[string]uint64) StageStats {
	st := StageStats{Name: name, Packets: sc.packets.Load(), Taken: sc.taken.Load(), Replies: sc.replies.Load(), Skipped: sc.skipped.Load(), Drops: map[string]uint64{}}
	for r := range sc.drops {
		if n := sc.drops[r].Load(); n != 0 {
			st.Drops[packet.Reason(r).String()] = n
			total[packet.Reason(r).String()] += n
		}
	}
	return st
}
