package config

import (
	"fmt"
	"math"
	"net/netip"
)

// decodeRoute decodes one [[route]] and checks what can be checked within
// it; resolveRoutes checks it against the interfaces.
func decodeRoute(t *table) Route {
	r := Route{Line: t.pos.at()}
	r.Via = decodeVia(t)
	r.To = decodeTo(t, r.Via)
	if s, ok := t.str("dev"); ok {
		if s == "" {
			t.errorf(t.line("dev"), "dev is empty; leave it out to take the interface whose prefix holds via")
		}
		r.Dev = s
	}
	if n, ok := t.integer("metric", 0, math.MaxUint32); ok {
		r.Metric = uint32(n)
	}
	if !t.has("via") && !t.has("dev") {
		t.errorf(t.pos.at(), "needs via (a next hop), dev (an on-link route), or both")
	}
	if r.To.IsValid() && r.Via.IsValid() && r.To.Addr().Is4() != r.Via.Is4() {
		t.errorf(t.line("via"), "via %s and to %s are not the same IP family", r.Via, r.To)
	}
	t.unknownKeys()
	return r
}

// decodeTo reads the destination. "default" takes its family from via, as
// the one way to tell; an IPv6 on-link default route is written "::/0".
func decodeTo(t *table, via netip.Addr) netip.Prefix {
	s, ok := t.str("to")
	switch {
	case !ok:
		if !t.has("to") {
			t.errorf(t.pos.at(), `to is required: a prefix like "10.0.0.0/8", or "default"`)
		}
		return netip.Prefix{}
	case s == "default" && via.Is6():
		return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	case s == "default":
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	p, err := parseMaskedPrefix(s)
	if err != nil {
		t.errorf(t.line("to"), "to %v", err)
		return netip.Prefix{}
	}
	return p
}

// parseMaskedPrefix parses a prefix that stands for a set of addresses,
// a route's destination or an SNAT rule's sources, so it has no host bits.
func parseMaskedPrefix(s string) (netip.Prefix, error) {
	p, err := parsePrefix(s)
	if err == nil && p != p.Masked() {
		// iproute2 refuses it too, in these words: the host bits would be
		// ignored, and are likely a typo.
		err = fmt.Errorf("%s: invalid prefix for given prefix length (host bits set); did you mean %s?", s, p.Masked())
	}
	return p, err
}

func decodeVia(t *table) netip.Addr {
	s, ok := t.str("via")
	if !ok {
		return netip.Addr{}
	}
	a, err := parseHostAddr(s)
	if err != nil {
		t.errorf(t.line("via"), "via %v", err)
	}
	return a
}

// parseHostAddr parses the address of another host on a link: a route's
// next hop, a static neighbor. It is invalid (zero) on error.
func parseHostAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		err = fmt.Errorf("%q is not an IP address: %s", s, reason(err))
	case a.Zone() != "":
		err = fmt.Errorf("%s: name the interface with dev, not with a zone", s)
	case a.Is4In6():
		err = fmt.Errorf("%s is IPv4-mapped IPv6; write it as IPv4", s)
	default:
		err = checkUnicast(a)
	}
	if err != nil {
		return netip.Addr{}, err
	}
	return a, nil
}

// routeKey identifies a route: the FIB holds one route per destination and
// metric, as the kernel's does.
type routeKey struct {
	to     netip.Prefix
	metric uint32
}

// decodeRoutes decodes the [[route]] tables; a repeated destination and
// metric is an error at the repeat.
func decodeRoutes(ts []*table) []Route {
	return decodeUnique(ts, "route", decodeRoute, func(r Route) (routeKey, string) {
		return routeKey{r.To, r.Metric}, fmt.Sprintf("to (%s) and metric (%d)", r.To, r.Metric)
	})
}

// resolveRoutes checks each route's next hop against the interfaces and
// fills in Dev where only via was given.
func resolveRoutes(errs *errorList, c *Config) {
	for i := range c.Route {
		resolveDev(errs, c.Interface, &c.Route[i], fmt.Sprintf("route %d", i+1))
	}
}

// resolveDev checks that the route's next hop is on a link of ours: with
// dev, on that interface; without, on whichever interface holds it, which
// then becomes Dev. An IPv6 link-local next hop, the usual kind (routers
// advertise themselves from their link-local address, RFC 4861 §4.2), is
// on every link: it needs dev, and a tap there to resolve it by NDP.
func resolveDev(errs *errorList, ifs []Interface, r *Route, name string) {
	linkLocal := r.Via.Is6() && r.Via.IsLinkLocalUnicast()
	switch {
	case linkLocal && r.Dev == "":
		errs.errorf(0, "%s: via %s is link-local, on every link at once; name its tap interface with dev", name, r.Via)
		return
	case r.Dev != "":
		in := findInterface(ifs, func(in *Interface) bool { return in.Name == r.Dev })
		if in == nil {
			errs.errorf(0, "%s: dev %q is not an [[interface]]", name, r.Dev)
			return
		}
		if linkLocal && in.Kind == KindTUN {
			errs.errorf(0, "%s: via %s is link-local, a next hop only a tap interface can resolve; dev %q is a tun interface "+
				"(for an on-link route, leave via out)", name, r.Via, r.Dev)
			return
		}
		if r.Via.IsValid() && !linkLocal && !holds(in, r.Via) {
			errs.errorf(0, "%s: via %s is not inside a connected prefix of interface %q (unreachable next hop)", name, r.Via, r.Dev)
			return
		}
	case r.Via.IsValid():
		in := findInterface(ifs, func(in *Interface) bool { return holds(in, r.Via) })
		if in == nil {
			errs.errorf(0, "%s: via %s is not inside any interface's connected prefix", name, r.Via)
			return
		}
		r.Dev = in.Name
	}
	// A link-local address is the router's own only on its own link.
	if own := findInterface(ifs, func(in *Interface) bool { return isOwn(in, r.Via) && (!linkLocal || in.Name == r.Dev) }); own != nil {
		errs.errorf(0, "%s: via %s is the router's own address on interface %q", name, r.Via, own.Name)
	}
}

func findInterface(ifs []Interface, match func(*Interface) bool) *Interface {
	for i := range ifs {
		if match(&ifs[i]) {
			return &ifs[i]
		}
	}
	return nil
}

// holds reports whether a is inside one of the interface's connected prefixes.
func holds(in *Interface, a netip.Addr) bool {
	for _, p := range in.Addresses {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// isOwn reports whether a is one of the interface's own addresses.
func isOwn(in *Interface, a netip.Addr) bool {
	for _, p := range in.Addresses {
		if p.Addr() == a {
			return true
		}
	}
	return false
}
