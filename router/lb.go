package router

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/lb"
	"github.com/tungate/tungate/lb/health"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/packet"
)

// The load balancer, in the pipeline's terms. A [[service]] is a VIP:port
// of one protocol; the dnat stage gives each new flow to it a backend its
// scheduler picks (lb), and the flow keeps that backend for its life: the
// choice lives in the flow's conntrack entry, shared with the NAT. How
// the flow's packets reach the backend is the service's forwarding
// method, as LVS has them:
//
//	nat     the destination becomes the backend's (LVS-NAT); replies come
//	        back through the router and get the VIP back as their source.
//	dr      nothing is rewritten: the packet goes to the backend's MAC on
//	        its Ethernet link (LVS-DR, direct routing); the backend holds
//	        the VIP on its loopback and answers the client itself.
//	tunnel  the packet is wrapped in an IPv4 header to the backend
//	        (IP-in-IP, RFC 2003; LVS-TUN); the backend unwraps it and
//	        answers the client itself.
//
// The VIPs are the router's own addresses: it answers ARP and ping for
// them, and refuses other ports like a host.

// lbServices is the load-balancer part of a snapshot.
type lbServices struct {
	byVIP map[forwardKey]*service
	list  []*service // in config order
}

// service is one [[service]] of a snapshot.
type service struct {
	name        string
	vip         netip.AddrPort
	proto       uint8
	method      string
	scheduler   string
	persistence time.Duration
	health      config.Health
	backends    []*backend       // in config order
	weights     []int            // the file's, by backend; commitLB sets them
	devs        map[*backend]int // dr: the interface of each backend's link
	sched       atomic.Value
	affinity    *lb.Affinity // nil without persistence
}

// affinityLimit bounds the clients a persistent service remembers.
const affinityLimit = 1 << 16

// scheduled is what service.sched holds.
type scheduled struct{ lb.Scheduler }

// backend is a real server of a service. A reload that keeps the service
// (backendKey) and the backend's address keeps the backend, with its
// flows, counters and health.
type backend struct {
	*lb.Backend
	svc     atomic.Pointer[service] // the service of the running snapshot
	removed atomic.Bool             // a reload removed it: its flows end on their next packet
	conns   atomic.Uint64           // flows it has been given
	// done counts the packets and bytes of its flows that have ended,
	// by Dir (Original: client to backend).
	donePackets, doneBytes [2]atomic.Uint64
	monitor                *health.Monitor
	checked                config.Health // what monitor probes by
}

// backendKey names a backend across reloads: a service that changes its
// VIP, protocol or method has new backends (its flows could not go on
// under another method).
type backendKey struct {
	service, method string
	vip             netip.AddrPort
	proto           uint8
	addr            netip.AddrPort
}

func keyOfBackend(svc *service, addr netip.AddrPort) backendKey {
	return backendKey{svc.name, svc.method, svc.vip, svc.proto, addr}
}

// buildLB compiles the services of cfg, reusing the backends the running
// snapshot has for the same service and address (backendKey). It changes
// nothing that is running: retireLB and commitLB do, around the swap.
func (r *Router) buildLB(cfg *config.Config, fibDev func(netip.Addr) int) (*lbServices, error) {
	old := map[backendKey]*backend{}
	oldSvc := map[string]*service{}
	if s := r.snap.Load(); s != nil {
		for _, svc := range s.lb.list {
			oldSvc[svc.name] = svc
			for _, b := range svc.backends {
				old[keyOfBackend(svc, b.Addr)] = b
			}
		}
	}
	out := &lbServices{byVIP: map[forwardKey]*service{}}
	for _, sc := range cfg.Service {
		svc := &service{
			name: sc.Name, vip: sc.VIP, proto: sc.Proto, method: sc.Forward, scheduler: sc.Scheduler,
			persistence: sc.Persistence, health: sc.Health,
		}
		if o := oldSvc[sc.Name]; o != nil && o.persistence == sc.Persistence {
			svc.affinity = o.affinity // clients stay where they were
		} else if sc.Persistence > 0 {
			svc.affinity = lb.NewAffinity(sc.Persistence, affinityLimit, r.now)
		}
		svc.devs = make(map[*backend]int, len(sc.Backends))
		for _, bc := range sc.Backends {
			b := old[keyOfBackend(svc, bc.Address)]
			if b == nil {
				b = &backend{Backend: lb.NewBackend(bc.Address, bc.Weight)}
				b.svc.Store(svc) // no one sees it before this snapshot runs
			}
			svc.backends = append(svc.backends, b)
			svc.weights = append(svc.weights, bc.Weight)
			svc.devs[b] = fibDev(bc.Address.Addr())
		}
		if err := svc.rebuild(); err != nil {
			return nil, fmt.Errorf("service %q: %w", sc.Name, err)
		}
		out.byVIP[forwardKey{sc.Proto, sc.VIP}] = svc
		out.list = append(out.list, svc)
	}
	return out, nil
}

// retireLB marks the backends of old that s drops as removed, before s
// runs: a packet of one of their flows, under either snapshot, then ends
// its flow rather than reaching the backend or caching its way there.
// Their probes stop first, so none marks them healthy again.
func retireLB(old, s *snapshot) {
	keep := map[*backend]bool{}
	for _, svc := range s.lb.list {
		for _, b := range svc.backends {
			keep[b] = true
		}
	}
	for _, svc := range old.lb.list {
		for _, b := range svc.backends {
			if !keep[b] {
				if b.monitor != nil {
					b.monitor.Stop()
				}
				b.removed.Store(true)
				b.Healthy.Store(false) // lb.Affinity forgets its clients
			}
		}
	}
}

// commitLB makes the services of s the running ones: its backends are
// probed, by a new monitor where the health settings changed, and take
// the file's weights.
func (r *Router) commitLB(s *snapshot) {
	for _, svc := range s.lb.list {
		for i, b := range svc.backends {
			b.svc.Store(svc)
			b.Weight.Store(int32(svc.weights[i]))
			if b.monitor != nil && b.checked != svc.health {
				b.monitor.Stop()
				b.monitor = nil
			}
			if b.monitor == nil {
				r.monitor(svc, b)
			}
		}
		if err := svc.rebuild(); err != nil {
			r.log.Error("scheduler not rebuilt", "service", svc.name, "err", err)
		}
	}
}

// monitor starts probing b from the router's own stack, so that probes
// leave through the route and neighbor stages like any packet.
func (r *Router) monitor(svc *service, b *backend) {
	b.checked = svc.health
	kind, err := health.ParseKind(svc.health.Check)
	var check health.Checker
	if err == nil {
		check, err = health.NewChecker(kind, health.NewStackDialer(r.local.NetStack()), svc.health.Path)
	}
	if err == nil {
		opts := health.Options{Interval: svc.health.Interval, Timeout: svc.health.Timeout, Rise: svc.health.Rise, Fall: svc.health.Fall}
		b.monitor, err = health.NewMonitor(b.Addr, check, opts, func(_ netip.AddrPort, healthy bool) { r.healthChanged(b, healthy) })
	}
	if err != nil {
		// config has checked the settings; an error here is a bug.
		r.log.Error("health check not started", "service", svc.name, "backend", b.Addr, "err", err)
		return
	}
	b.monitor.Start(r.ctx)
}

func (r *Router) healthChanged(b *backend, healthy bool) {
	b.Healthy.Store(healthy)
	svc := b.svc.Load()
	state := "down"
	if healthy {
		state = "up"
	}
	r.log.Info("backend "+state, "service", svc.name, "backend", b.Addr)
	if err := svc.rebuild(); err != nil {
		r.log.Error("scheduler not rebuilt", "service", svc.name, "err", err)
	}
}

// rebuild makes the service's scheduler anew from its backends' weights
// and health: lb.Scheduler's contract for any change of either.
func (svc *service) rebuild() error {
	bs := make([]*lb.Backend, len(svc.backends))
	for i, b := range svc.backends {
		bs[i] = b.Backend
	}
	s, err := lb.New(svc.scheduler, bs)
	if err != nil {
		return err
	}
	svc.sched.Store(scheduled{s})
	return nil
}

// pick chooses the backend of a new flow from client, or nil when none
// may take one.
func (svc *service) pick(client netip.AddrPort) *backend {
	key := lb.FlowKey{Client: client, Proto: svc.proto}
	sched := svc.sched.Load().(scheduled).Scheduler
	var chosen *lb.Backend
	if svc.affinity != nil {
		chosen = svc.affinity.Pick(key, sched)
	} else {
		chosen = sched.Pick(key)
	}
	if chosen == nil {
		return nil
	}
	i := slices.IndexFunc(svc.backends, func(b *backend) bool { return b.Backend == chosen })
	if i < 0 {
		return nil // an affinity to a backend a reload just removed
	}
	return svc.backends[i]
}

// SetWeight changes the weight of a backend of the running config, live:
// 0 drains it (no new flows; its flows go on). A reload sets the weights
// of the file again.
func (r *Router) SetWeight(serviceName string, addr netip.AddrPort, weight int) error {
	if weight < 0 || weight > lb.MaxWeight {
		return fmt.Errorf("weight %d is out of range 0..%d", weight, lb.MaxWeight)
	}
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	for _, svc := range r.snap.Load().lb.list {
		if svc.name != serviceName {
			continue
		}
		for _, b := range svc.backends {
			if b.Addr == addr {
				b.Weight.Store(int32(weight))
				return svc.rebuild()
			}
		}
		return fmt.Errorf("service %q has no backend %s", serviceName, addr)
	}
	return fmt.Errorf("no service %q", serviceName)
}

// startService begins a new flow to svc: the scheduler picks its backend
// and the method sends the packet there.
func (st dnatStage) startService(p *packet.Packet, svc *service) packet.Verdict {
	r := st.r
	b := svc.pick(source(p))
	if b == nil {
		// No backend may take it: answered as IPVS does, like a closed
		// port.
		return r.answer(st.s, p, icmperr.PortUnreachable, 0, packet.ReasonLBNoBackend)
	}
	var v packet.Verdict
	if svc.method == config.ForwardNAT {
		v = st.start(p, b.Addr, nil)
	} else if v = r.roomForFlow(st.s, p); v == packet.Continue {
		begin(p)
		v = st.deliver(p, svc, b)
	}
	if v != packet.Continue {
		return v
	}
	nf := p.NewFlow.(*newFlow)
	nf.backend = b
	b.Active.Add(1)
	return packet.Continue
}

// serviceFlow handles a packet of a known flow of a service: the flow
// ends when a reload removed its backend, and a dr or tunnel flow's
// packets to the backend are delivered by its method. It reports false
// when the packet is not the service's business beyond the NAT's.
func (st dnatStage) serviceFlow(p *packet.Packet, f *conntrack.Flow, d conntrack.Dir) (packet.Verdict, bool) {
	nf, _ := f.Owner().(*newFlow)
	if nf == nil || nf.backend == nil {
		return packet.Continue, false
	}
	b := nf.backend
	if b.removed.Load() {
		// The IPVS expire_nodest_conn complaint: a flow to a backend that
		// is gone must end, not blackhole. TCP gets a reset, so the
		// client knows at once; a UDP flow's next packet starts afresh.
		st.r.ct.Delete(f)
		arrived := f.Orig()
		if d == conntrack.Reply {
			arrived = f.Reply()
		}
		if tcpReset(p, arrived) {
			return packet.Reply(packet.ReasonLBBackendGone), true
		}
		return packet.Drop(packet.ReasonLBBackendGone), true
	}
	if d != conntrack.Original || b.svc.Load().method == config.ForwardNAT {
		return packet.Continue, false
	}
	return st.deliver(p, b.svc.Load(), b), true
}

// deliver sends p to b by a dr or tunnel service's method: to the
// backend's MAC on its link, or to the backend's route, to be wrapped in
// IP-in-IP by the ttl stage, so that the filter judges the packet as the
// client sent it.
func (st dnatStage) deliver(p *packet.Packet, svc *service, b *backend) packet.Verdict {
	if svc.method == config.ForwardDR {
		p.Direct, p.Out, p.NextHop = true, svc.devs[b], b.Addr.Addr()
		return packet.Continue
	}
	to := b.Addr.Addr()
	rt := st.s.fib.Lookup(to)
	if rt == nil {
		return st.r.answer(st.s, p, icmperr.NetUnreachable, 0, packet.ReasonNoRoute)
	}
	p.Direct, p.Out, p.NextHop, p.TunnelTo = true, rt.Dev, cmp.Or(rt.Via, to), to
	return packet.Continue
}

// release gives back what a flow to b held, and keeps its counters for
// `tungate lb`; f is nil for a flow never made.
func (b *backend) release(f *conntrack.Flow) {
	b.Active.Add(-1)
	if f == nil {
		return
	}
	packets, bytes := f.Counters()
	for d := range packets {
		b.donePackets[d].Add(packets[d])
		b.doneBytes[d].Add(bytes[d])
	}
}

// ServiceInfo is one service of `tungate lb`, ipvsadm -Ln --stats style.
type ServiceInfo struct {
	Name        string         `json:"name"`
	Proto       string         `json:"proto"`
	VIP         netip.AddrPort `json:"vip"`
	Scheduler   string         `json:"scheduler"`
	Forward     string         `json:"forward"`
	Persistence time.Duration  `json:"persistence"`
	Counters
	Backends []BackendInfo `json:"backends"`
}

// BackendInfo is one backend of a service.
type BackendInfo struct {
	Address    netip.AddrPort `json:"address"`
	Weight     int            `json:"weight"`
	Health     string         `json:"health"` // up, down, or "-" without checks
	ActiveConn int            `json:"active_conn"`
	InActConn  int            `json:"inact_conn"`
	Counters
}

// Counters are ipvsadm's --stats columns: flows given, and packets and
// bytes in (client to backend) and out.
type Counters struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"inpkts"`
	OutPkts  uint64 `json:"outpkts"`
	InBytes  uint64 `json:"inbytes"`
	OutBytes uint64 `json:"outbytes"`
}

func (c *Counters) add(o Counters) {
	c.Conns += o.Conns
	c.InPkts += o.InPkts
	c.OutPkts += o.OutPkts
	c.InBytes += o.InBytes
	c.OutBytes += o.OutBytes
}

// Services is the load balancer's state: the services of the running
// config, their backends' weights, health and counters. ActiveConn counts
// established TCP flows, InActConn the others (IPVS's split).
func (r *Router) Services() []ServiceInfo {
	type live struct {
		active, inactive int
		Counters
	}
	byBackend := map[*backend]*live{}
	for f := range r.ct.Flows() {
		nf, _ := f.Owner().(*newFlow)
		if nf == nil || nf.backend == nil {
			continue
		}
		l := byBackend[nf.backend]
		if l == nil {
			l = &live{}
			byBackend[nf.backend] = l
		}
		if f.State() == conntrack.Established {
			l.active++
		} else {
			l.inactive++
		}
		packets, bytes := f.Counters()
		l.add(Counters{InPkts: packets[0], OutPkts: packets[1], InBytes: bytes[0], OutBytes: bytes[1]})
	}
	var out []ServiceInfo
	for _, svc := range r.snap.Load().lb.list {
		si := ServiceInfo{Name: svc.name, Proto: protoName(svc.proto), VIP: svc.vip, Scheduler: svc.scheduler, Forward: svc.method, Persistence: svc.persistence}
		for _, b := range svc.backends {
			bi := BackendInfo{Address: b.Addr, Weight: int(b.Weight.Load()), Health: "-"}
			if svc.health.Check != "none" {
				bi.Health = map[bool]string{true: "up", false: "down"}[b.Healthy.Load()]
			}
			bi.Conns = b.conns.Load()
			bi.InPkts, bi.OutPkts = b.donePackets[0].Load(), b.donePackets[1].Load()
			bi.InBytes, bi.OutBytes = b.doneBytes[0].Load(), b.doneBytes[1].Load()
			if l := byBackend[b]; l != nil {
				bi.ActiveConn, bi.InActConn = l.active, l.inactive
				bi.add(l.Counters)
			}
			si.add(bi.Counters)
			si.Backends = append(si.Backends, bi)
		}
		out = append(out, si)
	}
	slices.SortStableFunc(out, func(a, b ServiceInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// stopMonitors ends every health check, when the router closes.
func (r *Router) stopMonitors() {
	for _, svc := range r.snap.Load().lb.list {
		for _, b := range svc.backends {
			if b.monitor != nil {
				b.monitor.Stop()
			}
		}
	}
}
