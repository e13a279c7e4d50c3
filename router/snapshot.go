package router

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
	"github.com/tungate/tungate/router/neigh"
	"github.com/tungate/tungate/router/packet"
	"github.com/tungate/tungate/router/route"
)

// snapshot is everything a packet's way depends on that comes from the
// config: built whole on load and reload, then read-only, swapped
// atomically (STYLE.md §7). Live state (counters, devices) stays in Router.
type snapshot struct {
	cfg *config.Config
	// devs are the interfaces' devices by interface index, which stays an
	// interface's for its life: a reload that removes one leaves nil in
	// its place, one that adds one appends it. index names them.
	devs   []*iface
	index  map[string]int
	ifaces []ifaceConfig // by interface index
	own    map[netip.Addr]bool
	fib    *route.Table
	nat    *natRules
	lb     *lbServices
	filter *firewall // nil without [filter] rules or a drop policy
	pipe   *pipeline
	gen    uint64 // unique to the snapshot, from 1: what a flow's cached egress is of
}

// ifaceConfig is what the packet path needs to know of an interface.
type ifaceConfig struct {
	name     string
	mtu      int
	prefixes []netip.Prefix // the router's addresses on it, with their prefixes
	// v4 and v6 are the interface's first address of each family: the
	// source of ICMP errors about packets that came in on it.
	v4, v6 netip.Addr

	// Ethernet (TAP) interfaces only.
	tap  bool
	mac  neigh.MAC
	link neigh.Link // what the ARP and NDP handlers need
	ra   bool       // send Router Advertisements
}

// addrs are the router's own addresses on the interface.
func (c *ifaceConfig) addrs() []netip.Addr {
	out := make([]netip.Addr, len(c.prefixes))
	for i, p := range c.prefixes {
		out[i] = p.Addr()
	}
	return out
}

// solicitSource is the address to ask for target from: the router's
// address in target's prefix, the link-local one for an IPv6 link-local
// target, else the first of target's family.
func (c *ifaceConfig) solicitSource(target netip.Addr) netip.Addr {
	if target.Is6() && target.IsLinkLocalUnicast() {
		return neigh.LinkLocal(c.mac)
	}
	for _, p := range c.prefixes {
		if p.Contains(target) {
			return p.Addr()
		}
	}
	if target.Is4() {
		return c.v4
	}
	return c.v6
}

// newSnapshot compiles cfg over devs, the devices of its interfaces by
// interface index.
func newSnapshot(r *Router, cfg *config.Config, devs []*iface) (*snapshot, error) {
	s := &snapshot{cfg: cfg, devs: devs, index: map[string]int{}, own: map[netip.Addr]bool{}, gen: r.generations.Add(1)}
	for i, d := range devs {
		if d != nil {
			s.index[d.name] = i
		}
	}
	s.ifaces = make([]ifaceConfig, len(devs))
	var routes []route.Route
	for _, ic := range cfg.Interface {
		i := s.index[ic.Name]
		c := ifaceConfig{name: ic.Name, mtu: ic.MTU, prefixes: ic.Addresses, tap: ic.Kind == config.KindTAP, ra: ic.RouterAdvertisements}
		if c.tap {
			c.mac = macOf(ic)
			own := map[netip.Addr]bool{}
			for _, a := range ic.Addresses {
				own[a.Addr()] = true
			}
			// The router answers ARP and NDP for the VIPs on the links
			// they are on, as an LVS director holds them.
			for _, svc := range cfg.Service {
				if slices.ContainsFunc(ic.Addresses, func(p netip.Prefix) bool { return p.Contains(svc.VIP.Addr()) }) {
					own[svc.VIP.Addr()] = true
				}
			}
			c.link = neigh.Link{Index: i, MAC: c.mac, Ours: func(a netip.Addr) bool { return own[a] }}
		}
		for _, a := range ic.Addresses {
			s.own[a.Addr()] = true
			if a.Addr().Is4() && !c.v4.IsValid() {
				c.v4 = a.Addr()
			}
			if a.Addr().Is6() && !c.v6.IsValid() {
				c.v6 = a.Addr()
			}
			routes = append(routes, route.Route{To: a.Masked(), Dev: i, Proto: route.Connected})
		}
		s.ifaces[i] = c
	}
	for _, rc := range cfg.Route {
		routes = append(routes, route.Route{To: rc.To, Via: rc.Via, Dev: s.index[rc.Dev], Metric: rc.Metric, Proto: route.Static})
	}
	fib, err := route.New(routes)
	if err != nil {
		return nil, fmt.Errorf("route table: %w", err)
	}
	s.fib = fib
	for _, svc := range cfg.Service {
		s.own[svc.VIP.Addr()] = true
	}
	if s.nat, err = r.buildNAT(cfg, s.index); err != nil {
		return nil, err
	}
	devOf := func(a netip.Addr) int {
		if rt := fib.Lookup(a); rt != nil {
			return rt.Dev
		}
		return packet.NoInterface
	}
	if s.lb, err = r.buildLB(cfg, devOf); err != nil {
		return nil, err
	}
	s.filter = r.buildFirewall(cfg, s.index)
	if s.pipe, err = buildPipeline(r, s, cfg.Pipeline.Stages); err != nil {
		return nil, err
	}
	return s, nil
}

// sourceFor picks the router address an ICMP error about p comes from:
// the ingress interface's address of p's family (RFC 1812 §4.3.2.4 lets
// the router choose; the ingress address is what traceroute users expect
// to see), else any router address of that family.
func (s *snapshot) sourceFor(p *packet.Packet) netip.Addr {
	if p.In >= 0 && p.In < len(s.ifaces) {
		if a := s.ifaces[p.In].addr(p.Version); a.IsValid() {
			return a
		}
	}
	for _, c := range s.ifaces {
		if a := c.addr(p.Version); a.IsValid() {
			return a
		}
	}
	return netip.Addr{}
}

// macOf is an interface's own MAC: from config, else one made from its
// name, the same on every start.
func macOf(ic config.Interface) neigh.MAC {
	if ic.MAC != (config.MAC{}) {
		return neigh.MAC(ic.MAC)
	}
	return link.MACFor(ic.Name)
}

func (c ifaceConfig) addr(version uint8) netip.Addr {
	if version == 4 {
		return c.v4
	}
	return c.v6
}
