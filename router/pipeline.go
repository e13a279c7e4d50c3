// Package router is tungate's engine: it owns the devices, the tables and
// the pipeline of stages every packet takes.
//
// The way of a packet, in order (STYLE.md §1):
//
//	device Read (a batch, into the reader's own buffers)
//	  -> validate   parse the IP header once; every failure a counted reason
//	  -> local      to one of the router's addresses: copied into the
//	                router's own gVisor stack, Taken
//	  -> route      longest-prefix match: egress interface and next hop;
//	                no route: ICMP Destination Unreachable
//	  -> ttl        RFC 1812 hop: TTL/hop limit, MTU; ICMP errors
//	  -> output     grouped by egress device (IPv4 fragmented when it must
//	                be), written as one batch per device
//
// What the router's own stack sends enters at the stage after local, and so
// does every ICMP error a stage makes: the stage rewrites the packet in
// place into the error (a Reply verdict) and it is routed like any packet.
//
// Who owns a buffer: each reader goroutine owns its batch of buffers. A
// stage may change the packet in place but must not keep the buffer after
// it returns; a stage that keeps a packet (the local stack) copies it. The
// batch's output is written before the reader reads again, so no buffer is
// shared and none is allocated per packet.
package router

import (
	"fmt"
	"slices"

	"github.com/tungate/tungate/router/packet"
)

// Stage is one step of the pipeline. Process looks at (and may rewrite)
// the packet and says what happens next; see packet.Verdict. A stage is
// built per config snapshot and is immutable; it may be called from
// several reader goroutines at once.
type Stage interface {
	Process(p *packet.Packet) packet.Verdict
}

// stageBuilders is the one table of the stages this version implements.
// The order they may take is checked by the config package; here a name
// only becomes a Stage for one snapshot.
var stageBuilders = map[string]func(*Router, *snapshot) Stage{
	"validate": func(*Router, *snapshot) Stage { return validateStage{} },
	"local":    func(r *Router, s *snapshot) Stage { return localStage{r: r, s: s} },
	"dnat":     func(r *Router, s *snapshot) Stage { return dnatStage{r: r, s: s} },
	"snat":     func(r *Router, s *snapshot) Stage { return snatStage{r: r, s: s} },
	"route":    func(r *Router, s *snapshot) Stage { return routeStage{r: r, s: s} },
	"ttl":      func(r *Router, s *snapshot) Stage { return ttlStage{r: r, s: s} },
	"neighbor": func(r *Router, s *snapshot) Stage { return neighborStage{r: r, s: s} },
	"fast":     func(r *Router, s *snapshot) Stage { return fastStage{r: r, s: s} },
	"filter":   func(r *Router, s *snapshot) Stage { return filterStage{r: r, s: s} },
}

// pipeline is the ordered list of stages for one snapshot.
type pipeline struct {
	names    []string
	stages   []Stage
	counters []*stageCounters // by stage index, live across reloads
	// originAt is where packets the router itself sends start: the first
	// stage after local.
	originAt int
	// routeAt is where a Reply restarts: the route stage.
	routeAt int
	// resumeAt is where a packet goes on after a Skip: the stage after
	// the ones the fast stage stands in for.
	resumeAt int
}

func buildPipeline(r *Router, s *snapshot, names []string) (*pipeline, error) {
	if fastPathFits(names) {
		names = slices.Insert(slices.Clone(names), 1, "fast")
	}
	if len(names) > maxStages {
		return nil, fmt.Errorf("%d stages, at most %d", len(names), maxStages)
	}
	p := &pipeline{names: names, routeAt: -1}
	for i, name := range names {
		build, ok := stageBuilders[name]
		if !ok {
			return nil, fmt.Errorf("stage %q is not implemented", name)
		}
		p.stages = append(p.stages, build(r, s))
		p.counters = append(p.counters, r.stageCounters(name))
		switch name {
		case "local":
			p.originAt = i + 1
		case "route":
			p.routeAt = i
		case "ttl":
			p.resumeAt = i
		}
	}
	if p.routeAt < 0 {
		return nil, fmt.Errorf("the pipeline has no route stage")
	}
	return p, nil
}

// run takes p through the stages from index from. It returns Continue
// when the packet is to be sent (to p.Out), Taken when a stage kept it, or
// a drop; drops and takes are counted in c.
func (pl *pipeline) run(p *packet.Packet, from int, c *batchCounters) packet.Verdict {
	replied := false
	for i := from; i < len(pl.stages); i++ {
		v := pl.stages[i].Process(p)
		c.stagePackets[i]++
		switch {
		case v == packet.Continue:
		case v == packet.Skip:
			c.stageSkipped[i]++
			i = pl.resumeAt - 1
		case v == packet.Taken:
			c.stageTaken[i]++
			return v
		case v.IsReply() && !replied:
			// The original is gone: count it dropped, and route the
			// router's answer that took its place. A second reply could
			// only come from a stage answering the router's own packet.
			c.drop(i, v.Reason())
			c.stageReplies[i]++
			replied = true
			forgetFlow(p)
			i = pl.routeAt - 1
		case v.IsReply():
			c.drop(i, packet.ReasonLoop)
			return packet.Drop(packet.ReasonLoop)
		default:
			c.drop(i, v.Reason())
			return v
		}
	}
	return packet.Continue
}
