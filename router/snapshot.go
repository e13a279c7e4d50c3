package router

import (
	"fmt"
	"net/netip"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/packet"
	"github.com/tungate/tungate/router/route"
)

// snapshot is everything a packet's way depends on that comes from the
// config: built whole on load and reload, then read-only, swapped
// atomically (STYLE.md §7). Live state (counters, devices) stays in Router.
type snapshot struct {
	cfg    *config.Config
	ifaces []ifaceConfig // by interface index
	own    map[netip.Addr]bool
	fib    *route.Table
	pipe   *pipeline
}

// ifaceConfig is what the packet path needs to know of an interface.
type ifaceConfig struct {
	name string
	mtu  int
	// v4 and v6 are the interface's first address of each family: the
	// source of ICMP errors about packets that came in on it.
	v4, v6 netip.Addr
}

func newSnapshot(r *Router, cfg *config.Config) (*snapshot, error) {
	s := &snapshot{cfg: cfg, own: map[netip.Addr]bool{}}
	var routes []route.Route
	for i, ic := range cfg.Interface {
		c := ifaceConfig{name: ic.Name, mtu: ic.MTU}
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
		s.ifaces = append(s.ifaces, c)
	}
	for _, rc := range cfg.Route {
		routes = append(routes, route.Route{To: rc.To, Via: rc.Via, Dev: r.indexOf(rc.Dev), Metric: rc.Metric, Proto: route.Static})
	}
	fib, err := route.New(routes)
	if err != nil {
		return nil, fmt.Errorf("route table: %w", err)
	}
	s.fib = fib
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

func (c ifaceConfig) addr(version uint8) netip.Addr {
	if version == 4 {
		return c.v4
	}
	return c.v6
}
