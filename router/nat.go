package router

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/nat"
	"github.com/tungate/tungate/nat/xlate"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// The NAT, in the pipeline's terms. Conntrack holds one flow per
// translated conversation, with two keys: Orig, how its first packet
// arrived, and Reply, how answers arrive. A packet of a known flow is
// rewritten so that it looks like the other key reversed: the dnat stage
// sets its destination, the snat stage its source. The first packet of a
// conversation collects the decisions of both stages (a port forward or
// an inbound mapping in dnat, a source mapping in snat) in a newFlow that
// becomes a conntrack flow when the packet leaves the pipeline.

// natRules is the NAT part of a snapshot.
type natRules struct {
	snat     []*snatRule
	forwards map[forwardKey]forward
	tables   map[string]*nat.Table // by natRule's key, for the next reload
	pcp      bool                  // some rule serves PCP
}

// snatRule is one [[snat]] table: where it applies and its live mapping
// table, which a reload keeps when the rule did not change.
type snatRule struct {
	out     int
	from    []netip.Prefix
	dest    []netip.Prefix // nil: any destination
	dports  config.PortSet // nil: any port
	table   *nat.Table     // nil: the rule exempts what it matches from translation
	hairpin bool
	synICMP bool // answer unsolicited SYNs after 6 s (unsolicited_syn = "icmp")
	pcp     bool // inside hosts may ask for explicit mappings (pcp.go)
}

type forwardKey struct {
	proto  uint8
	listen netip.AddrPort
}

// forward is a [[forward]]: packets to its listen endpoint that come in
// on in (or from an inside host, hairpinned) go to to.
type forward struct {
	in int
	to netip.AddrPort
}

// forwardFor is the port forward p is for, and the source NAT rule of its
// sender when that is an inside host reaching the forward through the
// external address (a hairpin, RFC 4787 REQ-9).
func (n *natRules) forwardFor(p *packet.Packet) (fw forward, inside *snatRule, ok bool) {
	fw, ok = n.forwards[forwardKey{p.Proto, destination(p)}]
	if !ok {
		return forward{}, nil, false
	}
	inside = n.insideRule(p.Src)
	return fw, inside, fw.in == p.In || inside != nil
}

// natIdle reports whether the NAT has nothing to do: no rules, and no flows
// left from rules a reload removed. A plain router then pays nothing for
// the NAT stages.
func (r *Router) natIdle(s *snapshot) bool {
	return len(s.nat.snat) == 0 && len(s.nat.forwards) == 0 && len(s.lb.list) == 0 && r.ct.Len() == 0
}

// inside reports whether the rule translates packets from src.
func (r *snatRule) inside(src netip.Addr) bool {
	return slices.ContainsFunc(r.from, func(p netip.Prefix) bool { return p.Contains(src) })
}

// matches reports whether the rule applies to p, which leaves by out
// (any interface for a hairpin): its source is inside, and its
// destination is one the rule is narrowed to, if it is.
func (r *snatRule) matches(p *packet.Packet, hairpin bool) bool {
	if r.out != p.Out && !hairpin || !r.inside(p.Src) {
		return false
	}
	if r.dest != nil && !slices.ContainsFunc(r.dest, func(d netip.Prefix) bool { return d.Contains(p.Dst) }) {
		return false
	}
	return r.dports == nil || hasDstPort(p) && r.dports.Contains(p.DstPort)
}

// hasDstPort reports whether p is a TCP or UDP packet whose header holds
// its destination port (HasPorts covers ICMP echo identifiers too).
func hasDstPort(p *packet.Packet) bool {
	return p.HasPorts && (p.Proto == uint8(header.TCPProtocolNumber) || p.Proto == uint8(header.UDPProtocolNumber))
}

// buildNAT compiles the NAT rules of cfg, reusing the mapping tables of
// rules that are the same as in the running snapshot.
func (r *Router) buildNAT(cfg *config.Config, index map[string]int) (*natRules, error) {
	var old map[string]*nat.Table
	if s := r.snap.Load(); s != nil {
		old = s.nat.tables
	}
	n := &natRules{forwards: map[forwardKey]forward{}, tables: map[string]*nat.Table{}}
	for _, f := range cfg.Forward {
		n.forwards[forwardKey{f.Proto, f.Listen}] = forward{index[f.In], f.To}
	}
	for i, sc := range cfg.SNAT {
		if sc.Exempt {
			n.snat = append(n.snat, &snatRule{out: index[sc.Out], from: sc.From, dest: sc.Dest, dports: sc.DPorts})
			continue
		}
		rule, key, err := natRule(cfg, sc)
		if err != nil {
			return nil, fmt.Errorf("snat %d: %w", i+1, err)
		}
		t, ok := old[key]
		if !ok {
			if t, err = nat.New(rule, r.now, nil); err != nil {
				return nil, fmt.Errorf("snat %d: %w", i+1, err)
			}
		}
		n.tables[key] = t
		n.snat = append(n.snat, &snatRule{out: index[sc.Out], from: sc.From, dest: sc.Dest, dports: sc.DPorts,
			table: t, hairpin: sc.Hairpin, synICMP: sc.UnsolicitedSYN == config.SYNICMP, pcp: sc.PCP})
		n.pcp = n.pcp || sc.PCP
	}
	return n, nil
}

// natRule resolves a [[snat]] table into the nat package's rule, and a key
// that is the same for the same translation, so a reload keeps its table.
func natRule(cfg *config.Config, sc config.SNAT) (nat.Rule, string, error) {
	external := sc.Addresses
	if sc.Masquerade {
		ic := cfg.Interface[slices.IndexFunc(cfg.Interface, func(i config.Interface) bool { return i.Name == sc.Out })]
		for _, is6 := range []bool{false, true} {
			if a, ok := ic.MasqueradeAddr(is6); ok {
				external = append(external, a)
			}
		}
	}
	mapping, err := nat.MappingBehaviorByName(string(sc.Mapping))
	if err != nil {
		return nat.Rule{}, "", err
	}
	filtering, err := nat.FilteringBehaviorByName(string(sc.Filtering))
	if err != nil {
		return nat.Rule{}, "", err
	}
	rule := nat.Rule{
		External: external, Ports: nat.PortRange{Lo: sc.Ports.Lo, Hi: sc.Ports.Hi},
		Mapping: mapping, Filtering: filtering, PortPreservation: sc.PortPreservation, Parity: sc.PortParity,
		MaxPortsPerHost: sc.MaxPortsPerHost,
	}
	key := fmt.Sprintf("%s %v %v %v %v %v %v %d", sc.Out, external, rule.Ports, mapping, filtering, sc.PortPreservation, sc.PortParity, sc.MaxPortsPerHost)
	return rule, key, nil
}

// newFlow is what the first packet of a conversation gathered on its way;
// it becomes the Owner of the conntrack flow, releasing the mappings the
// flow holds when conntrack removes it. It also holds the flow's first
// translations, so a new flow costs no allocations for them.
type newFlow struct {
	orig    conntrack.Key
	hairpin bool // from inside to an inside host through an external address
	// held are the mappings the flow holds: an inbound one from dnat, an
	// outbound one from snat.
	held  [2]heldMapping
	nheld int
	first [2]translation // by Dir
	// backend is the load balancer's backend of a flow to a service.
	backend *backend
}

func (nf *newFlow) hold(h heldMapping) {
	nf.held[nf.nheld] = h
	nf.nheld++
}

type heldMapping struct {
	table  *nat.Table
	m      *nat.Mapping
	remote netip.AddrPort
}

func (nf *newFlow) Released(f *conntrack.Flow) {
	for _, h := range nf.held[:nf.nheld] {
		h.table.Release(h.m, h.remote)
	}
	if nf.backend != nil {
		nf.backend.release(f)
	}
}

// direct reports whether the flow's packets reach their backend without
// translation (a dr or tunnel service): replies then come from the VIP,
// as the client sent to it, and the dnat stage must see every packet.
func (nf *newFlow) direct() bool {
	return nf.backend != nil && nf.backend.svc.Load().method != config.ForwardNAT
}

// flow is the conntrack flow of p and its direction, looked up once.
func (r *Router) flow(p *packet.Packet) (*conntrack.Flow, conntrack.Dir) {
	if !p.FlowLooked {
		p.FlowLooked = true
		if p.HasPorts {
			if f, d := r.ct.Lookup(conntrack.KeyOf(p)); f != nil {
				p.Flow, p.FlowDir = f, uint8(d)
			}
		}
	}
	f, _ := p.Flow.(*conntrack.Flow)
	return f, conntrack.Dir(p.FlowDir)
}

// begin returns p's newFlow, starting one from p as it is now.
func begin(p *packet.Packet) *newFlow {
	if nf, ok := p.NewFlow.(*newFlow); ok {
		return nf
	}
	nf := &newFlow{orig: conntrack.KeyOf(p)}
	p.NewFlow = nf
	return nf
}

// translation is where a flow's packets in one direction go once
// translated: a packet must leave looking like the other direction's key
// reversed. It is worked out once per flow and kept in the flow's Cache,
// with, once a packet has taken the whole pipeline, the egress the route
// stage chose for it in snapshot gen: what the fast stage needs.
type translation struct {
	src, dst netip.AddrPort
	slow     bool // never the fast path: a direct flow (newFlow.direct)

	gen       uint64 // the snapshot the egress is of; 0: none yet
	in        int    // the ingress the decisions were made for (the filter's may depend on it)
	out       int
	nextHop   netip.Addr
	routeUse  *atomic.Uint64
	filterHit *ruleCounters // the filter rule that let the flow through, or nil
}

// remember keeps both directions' translations in a new flow, with the
// egress p, its first packet, took.
func remember(s *snapshot, f *conntrack.Flow, nf *newFlow, reply conntrack.Key, p *packet.Packet) {
	orig := nf.orig
	nf.first[conntrack.Original] = translation{src: ap(reply.Dst, reply.DstPort), dst: ap(reply.Src, reply.SrcPort)}
	nf.first[conntrack.Reply] = translation{src: ap(orig.Dst, orig.DstPort), dst: ap(orig.Src, orig.SrcPort)}
	nf.first[conntrack.Original].slow = nf.direct()
	if p.RouteUse != nil && !p.NoFast {
		t := &nf.first[conntrack.Original]
		t.gen, t.in, t.out, t.nextHop, t.routeUse = s.gen, p.In, p.Out, p.NextHop, p.RouteUse
		t.filterHit, _ = p.FilterHit.(*ruleCounters)
	}
	f.Cache[conntrack.Original].Store(&nf.first[conntrack.Original])
	f.Cache[conntrack.Reply].Store(&nf.first[conntrack.Reply])
}

// peers are where a flow's packet in direction d goes once translated.
func peers(f *conntrack.Flow, d conntrack.Dir) (src, dst netip.AddrPort) {
	t := f.Cache[d].Load().(*translation)
	return t.src, t.dst
}

func source(p *packet.Packet) netip.AddrPort      { return netip.AddrPortFrom(p.Src, p.SrcPort) }
func destination(p *packet.Packet) netip.AddrPort { return netip.AddrPortFrom(p.Dst, p.DstPort) }

// claimed reports whether p, addressed to one of the router's addresses,
// is the NAT's rather than the router's own: a packet of a translated
// flow, one for a port forward or an external mapping, or an ICMP error
// about a translated flow.
func (r *Router) claimed(s *snapshot, p *packet.Packet) bool {
	if r.natIdle(s) {
		return false
	}
	if icmpError(p) {
		_, _, ok := r.errorFlow(p)
		return ok
	}
	if !p.HasPorts {
		return false
	}
	if f, _ := r.flow(p); f != nil {
		return true
	}
	if s.lb.byVIP[forwardKey{p.Proto, destination(p)}] != nil {
		return true
	}
	if _, _, ok := s.nat.forwardFor(p); ok {
		return true
	}
	for _, t := range s.nat.tables {
		if m, _ := t.Inbound(p.Proto, destination(p), source(p)); m != nil {
			return true
		}
	}
	return false
}

// dnatStage translates destinations: of known flows, of new flows to a
// port forward or to an external mapping the filtering admits, and of
// ICMP errors about known flows (RFC 5508).
type dnatStage struct {
	r *Router
	s *snapshot
}

func (st dnatStage) Process(p *packet.Packet) packet.Verdict {
	r, n := st.r, st.s.nat
	if r.natIdle(st.s) {
		return packet.Continue
	}
	if p.NonFirstFragment {
		v, _ := r.frags.later(p, r.now(), st.s.mayNeedNAT(p))
		return v
	}
	if icmpError(p) {
		return r.translateError(p)
	}
	if !p.HasPorts {
		return packet.Continue
	}
	if f, d := r.flow(p); f != nil {
		if v, done := st.serviceFlow(p, f, d); done {
			return v
		}
		if _, dst := peers(f, d); dst != destination(p) {
			xlate.Rewrite(p, source(p), dst)
		}
		return packet.Continue
	}
	if svc := st.s.lb.byVIP[forwardKey{p.Proto, destination(p)}]; svc != nil {
		return st.startService(p, svc)
	}
	if fw, inside, ok := n.forwardFor(p); ok {
		return st.start(p, fw.to, inside)
	}
	for _, rule := range n.snat {
		if rule.table == nil {
			continue
		}
		m, admitted := rule.table.Inbound(p.Proto, destination(p), source(p))
		if m == nil {
			continue
		}
		if !admitted {
			// RFC 4787 §5: the filtering behaviour decides which outside
			// endpoints may use a mapping. An unsolicited SYN waits 6 s for
			// an answer (RFC 5382 REQ-4) unless policy drops it (REQ-4a).
			if rule.synICMP && isSYN(p) {
				r.syns.hold(p, r.now())
			}
			return packet.Drop(packet.ReasonNATFiltered)
		}
		if !rule.table.Acquire(m, source(p)) {
			return packet.Drop(packet.ReasonNATFiltered)
		}
		if v := st.start(p, m.Internal(), n.insideRule(p.Src)); v != packet.Continue {
			rule.table.Release(m, source(p))
			return v
		}
		nf := p.NewFlow.(*newFlow)
		nf.hold(heldMapping{rule.table, m, source(p)})
		return packet.Continue
	}
	return packet.Continue
}

// start begins a new flow whose destination becomes to. inside is the
// source NAT rule of the sender when it is itself an inside host, which
// makes the flow a hairpin (RFC 4787 REQ-9).
func (st dnatStage) start(p *packet.Packet, to netip.AddrPort, inside *snatRule) packet.Verdict {
	if inside != nil && !inside.hairpin {
		return packet.Drop(packet.ReasonNATFiltered)
	}
	if v := st.r.roomForFlow(st.s, p); v != packet.Continue {
		return v
	}
	nf := begin(p)
	nf.hairpin = inside != nil
	xlate.Rewrite(p, source(p), to)
	return packet.Continue
}

// insideRule is the translating source NAT rule whose inside holds src,
// or nil.
func (n *natRules) insideRule(src netip.Addr) *snatRule {
	for _, rule := range n.snat {
		if rule.table != nil && rule.inside(src) {
			return rule
		}
	}
	return nil
}

// snatStage translates sources: of known flows, and of new flows leaving
// by a rule's interface from its inside (or hairpinned), through the
// rule's mapping table.
type snatStage struct {
	r *Router
	s *snapshot
}

func (st snatStage) Process(p *packet.Packet) packet.Verdict {
	r, n := st.r, st.s.nat
	if r.natIdle(st.s) || icmpError(p) || p.NonFirstFragment || p.Origin == packet.Local {
		// ICMP errors and later fragments were translated whole by dnat;
		// the router's own packets, its answers in the name of another
		// host (a reject's reset) among them, are never masqueraded.
		return packet.Continue
	}
	if f, d := r.flow(p); f != nil {
		if src, _ := peers(f, d); src != source(p) {
			xlate.Rewrite(p, src, destination(p))
		}
		return packet.Continue
	}
	nf, _ := p.NewFlow.(*newFlow)
	i := slices.IndexFunc(n.snat, func(c *snatRule) bool { return c.matches(p, nf != nil && nf.hairpin) })
	if i < 0 || n.snat[i].table == nil {
		return packet.Continue // no rule, or one that exempts p (RFC 6888 REQ-6)
	}
	rule := n.snat[i]
	if !p.HasPorts {
		return packet.Drop(packet.ReasonNATUnsupported)
	}
	if nf == nil {
		if v := r.roomForFlow(st.s, p); v != packet.Continue {
			return v
		}
		nf = begin(p)
	}
	m, err := rule.table.Outbound(p.Proto, source(p), destination(p))
	if err != nil {
		// RFC 5508 REQ-8, RFC 6888 REQ-11: no mapping can be made; drop
		// and answer Destination Unreachable, administratively prohibited.
		// (What the new flow took is given back with the packet.)
		return r.answer(st.s, p, icmperr.AdminProhibited, 0, packet.ReasonNATExhausted)
	}
	nf.hold(heldMapping{rule.table, m, destination(p)})
	xlate.Rewrite(p, m.External(), destination(p))
	return packet.Continue
}

func (nf *newFlow) release() { nf.Released(nil) }

// roomForFlow refuses a new flow when conntrack is full: RFC 5508 REQ-8,
// Destination Unreachable code 13 to the sender, rate limited.
func (r *Router) roomForFlow(s *snapshot, p *packet.Packet) packet.Verdict {
	if r.ct.Len() < r.ctMax {
		return packet.Continue
	}
	return r.answer(s, p, icmperr.AdminProhibited, 0, packet.ReasonConntrackFull)
}

// forgetFlow clears the flow state of a packet that did not get through:
// the mappings a new conversation took are given back.
func forgetFlow(p *packet.Packet) {
	if nf, ok := p.NewFlow.(*newFlow); ok {
		nf.release()
	}
	p.FlowLooked, p.Flow, p.FlowDir, p.NewFlow = false, nil, 0, nil
	p.Direct, p.TunnelTo = false, netip.Addr{}
}

// track accounts a packet that got through the pipeline (sent, or waiting
// for its next hop) to its flow, or makes the flow the first packet of a
// conversation started. It reports whether p may go.
func (r *Router) track(s *snapshot, p *packet.Packet) bool {
	// Only what the stages found: a packet no NAT stage looked at has no
	// flow to account to.
	if f, ok := p.Flow.(*conntrack.Flow); ok {
		d := conntrack.Dir(p.FlowDir)
		r.ct.Seen(f, d, p)
		learnEgress(s, f, d, p)
		return true
	}
	nf, ok := p.NewFlow.(*newFlow)
	if !ok {
		return true
	}
	reply := conntrack.KeyOf(p).Reverse()
	if nf.direct() {
		reply = nf.orig.Reverse() // p may be wrapped for a tunnel
	}
	if reply == nf.orig {
		// A host hairpinned to its own external endpoint: both directions
		// have one key, which no flow can hold. Each such packet is
		// translated afresh through the mapping its own flow keeps.
		nf.release()
		return true
	}
	f, err := r.ct.Insert(nf.orig, reply, nf)
	if err != nil {
		// Full, or a packet of the same conversation on another reader
		// made the flow first: this one is dropped, the next finds it.
		nf.release()
		return false
	}
	remember(s, f, nf, reply, p)
	r.ct.Seen(f, conntrack.Original, p)
	if nf.backend != nil {
		nf.backend.conns.Add(1)
	}
	return true
}

// learnEgress keeps the egress p took in its flow's direction d, for the
// fast stage, unless the flow knows it for this snapshot already. A new
// snapshot (a reload) has another gen, so its routes are looked up anew.
func learnEgress(s *snapshot, f *conntrack.Flow, d conntrack.Dir, p *packet.Packet) {
	t := f.Cache[d].Load().(*translation)
	if t.gen == s.gen || p.RouteUse == nil || p.NoFast {
		return
	}
	learned := *t
	learned.gen, learned.in, learned.out, learned.nextHop, learned.routeUse = s.gen, p.In, p.Out, p.NextHop, p.RouteUse
	learned.filterHit, _ = p.FilterHit.(*ruleCounters)
	f.Cache[d].Store(&learned)
}

// fastStage is the fast path of conntrack (DESIGN.md): a packet of a flow
// whose egress is known for this snapshot is translated at once, in both
// addresses, and sent on to the ttl stage, past local, dnat, route and
// filter, which would decide the same (the filter's verdict is known only
// for an established flow whose rule did not depend on more, and its rule
// counts the packet still). The pipeline puts it after validate when its
// stages allow (fastPathFits).
type fastStage struct {
	r *Router
	s *snapshot
}

func (st fastStage) Process(p *packet.Packet) packet.Verdict {
	if !p.HasPorts || p.Fragment || st.r.natIdle(st.s) {
		return packet.Continue // fragments keep the dnat stage's bookkeeping
	}
	f, d := st.r.flow(p)
	if f == nil {
		return packet.Continue
	}
	t := f.Cache[d].Load().(*translation)
	if t.gen != st.s.gen || t.slow || t.in != p.In {
		return packet.Continue // another snapshot, or a packet of the flow from elsewhere
	}
	if t.src != source(p) || t.dst != destination(p) {
		xlate.Rewrite(p, t.src, t.dst)
	}
	t.routeUse.Add(1)
	if t.filterHit != nil {
		t.filterHit.count(p)
	}
	p.Out, p.NextHop, p.RouteUse = t.out, t.nextHop, t.routeUse
	return packet.Skip
}

// fastPathFits reports whether a pipeline of these stages can have the
// fast stage: what it stands in for (local, dnat, route, and filter if
// there) comes right after validate and before ttl, and nothing after ttl
// needs more than a known flow's packet has (snat finds it translated,
// neighbor resolves Out's next hop).
func fastPathFits(names []string) bool {
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == "filter" })
	return len(names) >= 5 && slices.Equal(names[:5], []string{"validate", "local", "dnat", "route", "ttl"}) &&
		!slices.ContainsFunc(names[5:], func(n string) bool { return n != "snat" && n != "neighbor" })
}

// icmpError reports whether p is an ICMP or ICMPv6 error message.
func icmpError(p *packet.Packet) bool {
	switch {
	case p.NonFirstFragment:
		return false // no ICMP header: the type is its first fragment's
	case p.Proto == uint8(header.ICMPv4ProtocolNumber):
		switch header.ICMPv4Type(p.ICMPType) {
		case header.ICMPv4DstUnreachable, header.ICMPv4TimeExceeded, header.ICMPv4ParamProblem:
			return true
		}
	case p.Proto == uint8(header.ICMPv6ProtocolNumber):
		return p.ICMPType < 128 // RFC 4443 §2.1: error messages are types 0 to 127
	}
	return false
}

// quotesFlow reports whether p, an ICMP error, quotes a packet of a known
// flow, as the error's sender got it (one direction's key reversed) or,
// once dnat translated the error, as its flow's own sender sent it.
func (r *Router) quotesFlow(p *packet.Packet) bool {
	f, e, ok := r.errorFlow(p)
	if ok || !e.HasPorts {
		return f != nil
	}
	quoted := conntrack.Key{Src: e.Src.Addr(), Dst: e.Dst.Addr(), SrcPort: e.Src.Port(), DstPort: e.Dst.Port(), Proto: e.Proto}
	f, _ = r.ct.Lookup(quoted)
	return f != nil
}

// errorFlow finds the flow an ICMP error is about from the packet it
// quotes, which the error's sender got already translated: the quote is
// one direction's key reversed.
func (r *Router) errorFlow(p *packet.Packet) (*conntrack.Flow, xlate.Embedded, bool) {
	e, ok := xlate.ParseError(p)
	if !ok || !e.HasPorts {
		return nil, e, false
	}
	quoted := conntrack.Key{Src: e.Src.Addr(), Dst: e.Dst.Addr(), SrcPort: e.Src.Port(), DstPort: e.Dst.Port(), Proto: e.Proto}
	f, _ := r.ct.Lookup(quoted.Reverse())
	return f, e, f != nil
}

// translateError turns an ICMP error about a translated packet back into
// one about the packet as its sender sent it (RFC 5508 REQ-4, REQ-5): the
// quoted headers get their original addresses and ports, and the error
// goes to the quoted packet's original source. Its type and code stay;
// it neither refreshes nor ends the flow (REQ-6, RFC 4787 REQ-12).
func (r *Router) translateError(p *packet.Packet) packet.Verdict {
	f, e, ok := r.errorFlow(p)
	if !ok {
		return packet.Continue
	}
	quoted := conntrack.Key{Src: e.Src.Addr(), Dst: e.Dst.Addr(), SrcPort: e.Src.Port(), DstPort: e.Dst.Port(), Proto: e.Proto}
	// The quote is the Reply key reversed when it was a translated packet
	// of the original direction; then, untranslated, it was Orig.
	was := f.Reply().Reverse()
	if quoted == was {
		was = f.Orig()
	} else {
		was = f.Reply()
	}
	outerSrc := p.Src
	if outerSrc == quoted.Dst {
		outerSrc = was.Dst // the quoted packet's destination answered itself
	}
	if !xlate.TranslateError(p, e, outerSrc, was.Src,
		netip.AddrPortFrom(was.Src, was.SrcPort), netip.AddrPortFrom(was.Dst, was.DstPort)) {
		return packet.Drop(packet.ReasonNATUnsupported)
	}
	p.FlowLooked = true // an error is no packet of the flow
	return packet.Continue
}

// untranslate gives p back the addresses and ports it arrived with when
// the NAT has translated it, before the router answers it with an ICMP
// error: the error then goes to the packet's sender, and quotes what that
// sender sent, which is how its stack finds the socket the error is about
// (a TCP connection learning its path MTU, RFC 1191 §6.3, or traceroute
// its probe). Hairpinned packets, translated twice, get both undone.
// (Errors about packets that left the pipeline translated, such as Host
// Unreachable for a queue of an unresolved neighbor, come back through
// the dnat stage, which translates them as it does anyone's.)
func untranslate(p *packet.Packet) {
	var arrived conntrack.Key
	switch f, _ := p.Flow.(*conntrack.Flow); {
	case p.NewFlow != nil:
		arrived = p.NewFlow.(*newFlow).orig
	case f != nil && conntrack.Dir(p.FlowDir) == conntrack.Original:
		arrived = f.Orig()
	case f != nil:
		arrived = f.Reply()
	default:
		return
	}
	if arrived != conntrack.KeyOf(p) {
		xlate.Rewrite(p, ap(arrived.Src, arrived.SrcPort), ap(arrived.Dst, arrived.DstPort))
	}
}

// FlowInfo is one row of `tungate nat`: a translated conversation as the
// inside host, the NAT's outside and the remote end see it.
type FlowInfo struct {
	Proto   string         `json:"proto"`
	Inside  netip.AddrPort `json:"inside"`
	Outside netip.AddrPort `json:"outside"`
	Remote  netip.AddrPort `json:"remote"`
	State   string         `json:"state"`
	Idle    time.Duration  `json:"idle"`
	Expires time.Duration  `json:"expires"`
	Packets [2]uint64      `json:"packets"` // original, reply
	Bytes   [2]uint64      `json:"bytes"`
}

// Conntrack is the NAT's flow table, sorted by inside endpoint.
func (r *Router) Conntrack() []FlowInfo {
	var out []FlowInfo
	for f := range r.ct.Flows() {
		in := r.ct.Info(f)
		o, rep := in.Orig, in.Reply
		row := FlowInfo{Proto: protoName(o.Proto), State: in.State.String(), Idle: in.Idle, Expires: in.Expires, Packets: in.Packets, Bytes: in.Bytes}
		if o.Src != rep.Dst || o.SrcPort != rep.DstPort {
			// The source was translated: an inside host went out.
			row.Inside, row.Outside, row.Remote = ap(o.Src, o.SrcPort), ap(rep.Dst, rep.DstPort), ap(o.Dst, o.DstPort)
		} else {
			// The destination was: the remote end came in to an inside host.
			row.Inside, row.Outside, row.Remote = ap(rep.Src, rep.SrcPort), ap(o.Dst, o.DstPort), ap(o.Src, o.SrcPort)
		}
		out = append(out, row)
	}
	slices.SortFunc(out, func(a, b FlowInfo) int {
		return cmp.Or(a.Inside.Compare(b.Inside), a.Remote.Compare(b.Remote), cmp.Compare(a.Proto, b.Proto))
	})
	return out
}

func ap(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// protoName is the name of a transport protocol, or its number.
func protoName(p uint8) string {
	switch p {
	case uint8(header.TCPProtocolNumber):
		return "tcp"
	case uint8(header.UDPProtocolNumber):
		return "udp"
	case uint8(header.ICMPv4ProtocolNumber):
		return "icmp"
	case uint8(header.ICMPv6ProtocolNumber):
		return "icmpv6"
	}
	return strconv.Itoa(int(p))
}
