package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/conntrack"
	"github.com/tungate/tungate/router/icmperr"
	"github.com/tungate/tungate/router/link"
	"github.com/tungate/tungate/router/local"
	"github.com/tungate/tungate/router/neigh"
	"github.com/tungate/tungate/router/packet"
)

// Device is a link the router reads packets from and writes packets to:
// the shape of wireguard's tun.Device. Packet i is at
// bufs[i][offset:offset+sizes[i]]; Write may coalesce packets into the
// spare capacity of bufs. Read returns an error once the device is closed.
type Device interface {
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	Close() error
}

// Options are what a Router takes besides its config.
type Options struct {
	Logger *slog.Logger
	// OpenDevice opens the device of an interface, one Device per queue;
	// nil opens real devices (OpenLink).
	OpenDevice func(config.Interface) ([]Device, error)
	// Now is the clock for rate limits; nil is time.Now.
	Now func() time.Time
}

// ICMP errors are limited to icmpRate a second with bursts of icmpBurst
// (RFC 1812 §4.3.2.8), the defaults of Linux's icmp_msgs_per_sec and
// icmp_msgs_burst.
const (
	icmpRate  = 1000
	icmpBurst = 50
)

// Router owns the devices, the tables and the pipeline.
type Router struct {
	log     *slog.Logger
	now     func() time.Time
	open    func(config.Interface) ([]Device, error)
	started bool // Start ran; guarded by reloadMu
	local   *local.Stack
	neigh   *neigh.Cache
	ct      *conntrack.Table // flows of the NAT, kept across reloads
	pcp     *pcpServer       // while some [[snat]] rule has pcp on; guarded by reloadMu
	// generations numbers the snapshots (snapshot.gen).
	generations atomic.Uint64
	refusals    refusalLog // housekeeping's only
	// ctx ends with the router: the health checks run under it.
	ctx       context.Context
	cancel    context.CancelFunc
	syns      synHold     // unsolicited SYNs waiting for their answer
	frags     fragTracker // how the NAT translated fragmented datagrams
	ctMax     int
	ra        *raSchedule
	origin    *link.Memory // ICMP errors made outside the pipeline, to be routed
	icmpLimit *icmperr.Limiter
	snap      atomic.Pointer[snapshot]

	reloadMu sync.Mutex // one reload at a time
	stagesMu sync.Mutex
	stages   map[string]*stageCounters
	link     stageCounters // TAP link layer: ARP and NDP taken, frames dropped
	output   stageCounters

	// clock is the time of the last housekeeping tick, as nanoseconds
	// since epoch: conntrack counts whole seconds, and reading it costs
	// nothing per packet, where time.Now would cost a fifth of the fast
	// path. epoch keeps Go's monotonic reading, so a step of the wall
	// clock neither expires nor freezes flows.
	epoch time.Time
	clock atomic.Int64

	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// iface is one interface's device queues and live counters.
type iface struct {
	name     string
	queues   []Device
	counters ifaceCounters
	captures captures
}

// New opens the devices and the router's own stack for cfg. Nothing is
// read until Start. On error, whatever was opened is closed again.
func New(cfg *config.Config, opt Options) (_ *Router, err error) {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.OpenDevice == nil {
		opt.OpenDevice = OpenLink
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &Router{
		log:       opt.Logger,
		now:       opt.Now,
		open:      opt.OpenDevice,
		epoch:     opt.Now(),
		icmpLimit: icmperr.NewLimiter(icmpRate, icmpBurst, opt.Now),
		stages:    map[string]*stageCounters{},
		origin:    link.NewMemory("origin", 64),
		ra:        &raSchedule{state: map[int]*raState{}},
		done:      make(chan struct{}),
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.neigh = neigh.New(neighConfig(cfg.ARP), opt.Now, neighSender{r})
	r.tick()
	r.ct = conntrack.New(conntrackConfig(cfg.Conntrack), r.sinceStart)
	r.frags.entries, r.frags.from = map[fragKey]*fragEntry{}, map[netip.Addr]int{}
	r.ctMax = cmp.Or(cfg.Conntrack.Max, conntrack.DefaultMax)
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if r.local, err = local.New(local.Options{Addresses: addresses(cfg), MTU: stackMTU(cfg)}); err != nil {
		return nil, fmt.Errorf("router's own stack: %w", err)
	}
	var devs []*iface
	defer func() {
		if err != nil {
			closeDevices(devs)
		}
	}()
	for _, ic := range cfg.Interface {
		d, err := r.openInterface(ic)
		if err != nil {
			return nil, err
		}
		devs = append(devs, d)
	}
	s, err := newSnapshot(r, cfg, devs)
	if err != nil {
		return nil, err
	}
	r.snap.Store(s)
	r.syncStaticNeighbors(nil, s)
	r.commitLB(s)
	if err := r.servePCP(s); err != nil {
		return nil, fmt.Errorf("PCP server: %w", err)
	}
	return r, nil
}

// tick moves the coarse clock to now.
func (r *Router) tick() { r.clock.Store(int64(r.now().Sub(r.epoch))) }

// sinceStart is the coarse clock: the time since the router started, as
// of the last tick.
func (r *Router) sinceStart() time.Duration { return time.Duration(r.clock.Load()) }

func conntrackConfig(c config.Conntrack) conntrack.Config {
	return conntrack.Config{Max: c.Max, TCPEstablished: c.TCPEstablished, TCPOpening: c.TCPOpening, TCPClosing: c.TCPClosing, UDP: c.UDP, ICMP: c.ICMP}
}

func neighConfig(c config.ARP) neigh.Config {
	return neigh.Config{Reachable: c.Reachable, Stale: c.Stale, RetryInterval: c.RetryInterval, Retries: c.Retries, Queue: c.Queue, MaxEntries: c.MaxEntries}
}

// openInterface opens the device of ic.
func (r *Router) openInterface(ic config.Interface) (*iface, error) {
	queues, err := r.open(ic)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", ic.Name, err)
	}
	return &iface{name: ic.Name, queues: queues}, nil
}

// closeDevices closes the queues of devs (nil entries are gone already);
// their readers end.
func closeDevices(devs []*iface) error {
	var errs []error
	for _, d := range devs {
		if d != nil {
			for _, q := range d.queues {
				errs = append(errs, q.Close())
			}
		}
	}
	return errors.Join(errs...)
}

// syncStaticNeighbors makes the PERMANENT entries those of s's config: it
// adds the new ones and removes those that old had and s does not (on
// interfaces s keeps: a removed interface's entries are gone with it).
func (r *Router) syncStaticNeighbors(old, s *snapshot) {
	keep := map[config.Neighbor]bool{}
	for _, n := range s.cfg.Neighbor {
		n.Line = 0
		keep[n] = true
		r.neigh.AddStatic(s.index[n.Dev], n.IP, neigh.MAC(n.MAC))
	}
	if old == nil {
		return
	}
	for _, n := range old.cfg.Neighbor {
		if i, ok := s.index[n.Dev]; ok && i == old.index[n.Dev] {
			if n.Line = 0; !keep[n] {
				r.neigh.RemoveStatic(i, n.IP)
			}
		}
	}
}

// Start runs one reader per device queue and one for the router's own
// stack.
func (r *Router) Start() {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	r.started = true
	s := r.snap.Load()
	r.wg.Go(func() { r.readLoop(r.local, "local", packet.NoInterface, 0) })
	r.wg.Go(func() { r.readLoop(r.origin, "origin", packet.NoInterface, 0) })
	r.wg.Go(r.housekeeping)
	for i := range s.devs {
		r.bringUp(s, i)
	}
	r.log.Info("router started", "file", s.cfg.File, "interfaces", len(s.index))
}

// bringUp starts reading interface i of s, announces its addresses and
// schedules its router advertisements. s is the running snapshot.
func (r *Router) bringUp(s *snapshot, i int) {
	d := s.devs[i]
	if d == nil {
		return // removed by a reload before Start
	}
	for q, dev := range d.queues {
		r.wg.Go(func() { r.readLoop(dev, d.name, i, q) })
	}
	if s.ifaces[i].tap {
		r.ra.add(i, r.now())
		r.announce(i)
	}
	r.log.Info("interface up", "name", d.name, "addresses", s.ifaces[i].prefixes)
}

// Close stops the readers and closes every device; devices the router
// created disappear with it.
func (r *Router) Close() error {
	r.closeOnce.Do(func() { close(r.done) })
	errs := []error{r.origin.Close()}
	if s := r.snap.Load(); s != nil {
		errs = append(errs, closeDevices(s.devs))
	}
	r.cancel()
	r.reloadMu.Lock()
	if r.pcp != nil {
		r.pcp.close()
		r.pcp = nil
	}
	if r.snap.Load() != nil {
		r.stopMonitors()
	}
	r.reloadMu.Unlock()
	if r.local != nil {
		errs = append(errs, r.local.Close())
	}
	r.wg.Wait()
	return errors.Join(errs...)
}

// Reload swaps in cfg: routes, the router's addresses, the rules and the
// pipeline change at once for the next batch, and interfaces that cfg adds
// are opened and those it drops closed. Changing an interface that stays
// other than in its addresses (kind, MTU, fd, netns, peer, offload,
// queues, MAC) is refused, as are [arp], [conntrack] and [router]
// changes, and the running config stays.
func (r *Router) Reload(cfg *config.Config) (err error) {
	r.reloadMu.Lock()
	defer r.reloadMu.Unlock()
	oldSnap := r.snap.Load()
	old := oldSnap.cfg
	if err := sameDevices(old, cfg); err != nil {
		return err
	}
	if old.ARP != cfg.ARP {
		return fmt.Errorf("%s: reload cannot change [arp]; restart tungate", cfg.File)
	}
	if old.Conntrack != cfg.Conntrack {
		return fmt.Errorf("%s: reload cannot change [conntrack]; restart tungate", cfg.File)
	}
	if old.Router.AdminSocket != cfg.Router.AdminSocket || old.Router.MetricsListen != cfg.Router.MetricsListen {
		return fmt.Errorf("%s: reload cannot change [router] admin_socket or metrics_listen; restart tungate", cfg.File)
	}
	devs, added, err := r.reopen(oldSnap, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			closeDevices(added)
		}
	}()
	s, err := newSnapshot(r, cfg, devs)
	if err != nil {
		return err
	}
	if err := r.local.SetAddresses(addresses(cfg)); err != nil {
		return fmt.Errorf("router's own stack: %w", err)
	}
	retireLB(oldSnap, s)
	r.snap.Store(s)
	for i, d := range oldSnap.devs {
		if d != nil && s.devs[i] == nil {
			closeDevices([]*iface{d})
			r.neigh.ForgetLink(i)
			r.ra.remove(i)
			r.log.Info("interface down", "name", d.name)
		}
	}
	if r.started {
		for i := len(oldSnap.devs); i < len(s.devs); i++ {
			r.bringUp(s, i)
		}
	}
	r.syncStaticNeighbors(oldSnap, s)
	r.commitLB(s)
	if err := r.servePCP(s); err != nil {
		r.log.Error("PCP server", "err", err)
	}
	r.log.Info("config reloaded", "file", cfg.File, "routes", len(cfg.Route))
	return nil
}

// reopen works out the devices of cfg from those of s: the interfaces
// both have keep their devices and indexes; cfg's new ones are opened and
// appended; s's others leave a nil behind, to be closed once cfg runs.
func (r *Router) reopen(s *snapshot, cfg *config.Config) (devs, added []*iface, err error) {
	devs = make([]*iface, len(s.devs))
	for _, ic := range cfg.Interface {
		if i, ok := s.index[ic.Name]; ok {
			devs[i] = s.devs[i]
		}
	}
	for _, ic := range cfg.Interface {
		if _, ok := s.index[ic.Name]; ok {
			continue
		}
		d, err := r.openInterface(ic)
		if err != nil {
			closeDevices(added)
			return nil, nil, err
		}
		devs, added = append(devs, d), append(added, d)
	}
	return devs, added, nil
}

// sameDevices reports, as an error, what cfg changes in an interface that
// it keeps and a reload cannot change.
func sameDevices(old, cfg *config.Config) error {
	for _, o := range old.Interface {
		i := slices.IndexFunc(cfg.Interface, func(n config.Interface) bool { return n.Name == o.Name })
		if i < 0 {
			continue // removed: a reload can
		}
		n := cfg.Interface[i]
		if o.Kind != n.Kind || o.MTU != n.MTU || o.FD != n.FD || o.Netns != n.Netns ||
			o.Offload != n.Offload || o.Queues != n.Queues || o.MAC != n.MAC || !slices.Equal(o.Peer, n.Peer) {
			return fmt.Errorf("%s:%d: reload cannot change interface %q other than its addresses; remove it in one reload and add it back in the next, or restart tungate", cfg.File, n.Line, o.Name)
		}
	}
	return nil
}

// Routes is the forwarding table, sorted for display.
func (r *Router) Routes() []RouteInfo {
	s := r.snap.Load()
	var out []RouteInfo
	for rt := range s.fib.Routes() {
		out = append(out, RouteInfo{
			Destination: rt.To, Gateway: rt.Via, Metric: rt.Metric,
			Iface: s.ifaces[rt.Dev].name, Proto: rt.Proto.String(), Use: rt.Use.Load(),
		})
	}
	return out
}

// RouteInfo is one row of `tungate routes`.
type RouteInfo struct {
	Destination netip.Prefix `json:"destination"`
	Gateway     netip.Addr   `json:"gateway"`
	Metric      uint32       `json:"metric"`
	Iface       string       `json:"iface"`
	Proto       string       `json:"proto"`
	Use         uint64       `json:"use"`
}

// NeighborInfo is one row of `tungate arp`.
type NeighborInfo struct {
	IP      netip.Addr  `json:"ip"`
	MAC     neigh.MAC   `json:"mac"`
	State   neigh.State `json:"state"`
	Iface   string      `json:"iface"`
	Updated time.Time   `json:"updated"`
	Queued  int         `json:"queued,omitempty"`
}

// Neighbors is the neighbor cache, ARP and NDP together, sorted by
// interface and address.
func (r *Router) Neighbors() []NeighborInfo {
	s := r.snap.Load()
	var out []NeighborInfo
	for _, e := range r.neigh.Entries() {
		if e.Iface < len(s.devs) && s.devs[e.Iface] != nil {
			out = append(out, NeighborInfo{IP: e.IP, MAC: e.MAC, State: e.State, Iface: s.devs[e.Iface].name, Updated: e.Updated, Queued: e.Queued})
		}
	}
	return out
}

// Stats copies the live counters.
func (r *Router) Stats() Stats {
	st := Stats{Drops: map[string]uint64{}}
	s := r.snap.Load()
	for _, ifc := range s.devs {
		if ifc == nil {
			continue
		}
		c := &ifc.counters
		st.Interfaces = append(st.Interfaces, InterfaceStats{
			Name: ifc.name, RxPackets: c.rxPackets.Load(), RxBytes: c.rxBytes.Load(),
			TxPackets: c.txPackets.Load(), TxBytes: c.txBytes.Load(), TxErrors: c.txErrors.Load(),
		})
	}
	for _, name := range s.pipe.names {
		sc := r.stageCounters(name)
		st.Stages = append(st.Stages, sc.snapshot(name, st.Drops))
	}
	st.Stages = append([]StageStats{r.link.snapshot("link", st.Drops)}, st.Stages...)
	st.Stages = append(st.Stages, r.output.snapshot("output", st.Drops))
	st.Neighbors = r.neigh.Stats()
	// Every ICMP error the router makes passes the limiter, those of the
	// stages and those made outside the pipeline (unanswered next hops,
	// held SYNs) alike.
	st.ICMP.Sent, st.ICMP.RateLimited = r.icmpLimit.Sent(), r.icmpLimit.Suppressed()
	st.Conntrack = r.ct.Stats()
	st.Filter = s.filter.stats()
	for i, rule := range s.nat.snat {
		if rule.table == nil {
			continue
		}
		ts := rule.table.Stats()
		ns := NATRuleStats{
			Rule: i + 1, Out: s.ifaces[rule.out].name, Mappings: ts.Mappings, Hosts: ts.Hosts, Held: ts.Held,
			RefusedQuota: ts.RefusedQuota, RefusedExhausted: ts.RefusedExhausted, RefusedNoAddress: ts.RefusedNoAddress,
		}
		for _, a := range ts.Addresses {
			ns.Ports = append(ns.Ports, NATPortStats{Addr: a.Addr, Proto: protoName(a.Proto), Live: a.Live, Held: a.Held})
		}
		st.NAT = append(st.NAT, ns)
	}
	return st
}

// stageCounters returns the live counters of the stage named name, the
// same across reloads.
func (r *Router) stageCounters(name string) *stageCounters {
	r.stagesMu.Lock()
	defer r.stagesMu.Unlock()
	sc, ok := r.stages[name]
	if !ok {
		sc = &stageCounters{}
		r.stages[name] = sc
	}
	return sc
}

func addresses(cfg *config.Config) []netip.Prefix {
	var out []netip.Prefix
	for _, ic := range cfg.Interface {
		out = append(out, ic.Addresses...)
	}
	for _, svc := range cfg.Service {
		if a := svc.VIP.Addr(); !slices.ContainsFunc(out, func(p netip.Prefix) bool { return p.Addr() == a }) {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// stackMTU is the smallest interface MTU, so the router's own packets fit
// any link, but not below IPv6's minimum link MTU of 1280 (RFC 8200 §5),
// under which gVisor stops sending IPv6; output fragments IPv4 for
// smaller links.
func stackMTU(cfg *config.Config) int {
	m := 65535
	for _, ic := range cfg.Interface {
		m = min(m, ic.MTU)
	}
	return max(m, 1280)
}
