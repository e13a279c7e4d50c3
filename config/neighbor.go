package config

import (
	"fmt"
	"math"
	"net/netip"
)

const (
	maxRetries = 100   // beyond this a dead neighbor holds its queue for ages
	maxQueue   = 65535 // packets per unresolved neighbor
)

// decodeARP decodes [arp]; t is nil when the file has none.
func decodeARP(t *table) ARP {
	a := DefaultARP
	if d, ok := t.duration("reachable"); ok {
		a.Reachable = d
	}
	if d, ok := t.duration("stale"); ok {
		a.Stale = d
	}
	if n, ok := t.integer("retries", 1, maxRetries); ok {
		a.Retries = int(n)
	}
	if d, ok := t.duration("retry_interval"); ok {
		a.RetryInterval = d
	}
	if n, ok := t.integer("queue", 1, maxQueue); ok {
		a.Queue = int(n)
	}
	// Not in SPEC: an extension, see ARP.MaxEntries.
	if n, ok := t.integer("max_entries", 1, math.MaxInt32); ok {
		a.MaxEntries = int(n)
	}
	t.unknownKeys()
	return a
}

// checkCacheSize: the static entries are never evicted, so they must fit
// in the cache. It is reported at max_entries, where it is fixed.
func checkCacheSize(t *table, errs *errorList, a ARP, neighbors []Neighbor) {
	if len(neighbors) <= a.MaxEntries {
		return
	}
	const format = "arp: max_entries %d cannot hold the %d [[neighbor]] entries, which are never evicted"
	if t == nil {
		errs.errorf(0, format, a.MaxEntries, len(neighbors))
		return
	}
	errs.errorf(t.line("max_entries"), format, a.MaxEntries, len(neighbors))
}

// decodeNeighbor decodes one [[neighbor]] and checks what can be checked
// within it; resolveNeighbors checks it against the interfaces.
func decodeNeighbor(t *table) Neighbor {
	n := Neighbor{Line: t.pos.at()}
	if s, ok := t.str("ip"); ok {
		a, err := parseHostAddr(s)
		if err != nil {
			t.errorf(t.line("ip"), "ip %v", err)
		}
		n.IP = a
	}
	n.MAC, _ = t.mac("mac")
	if s, ok := t.str("dev"); ok {
		if s == "" {
			t.errorf(t.line("dev"), "dev is empty; name the tap interface the neighbor is on")
		}
		n.Dev = s
	}
	// All three are needed, as by `ip neigh add`: an IPv6 link-local
	// address is on every link, so it cannot tell the interface.
	for _, k := range []string{"ip", "mac", "dev"} {
		if !t.has(k) {
			t.errorf(t.pos.at(), "%s is required", k)
		}
	}
	t.unknownKeys()
	return n
}

// neighborKey identifies a static entry: one MAC per address on a link.
type neighborKey struct {
	dev string
	ip  netip.Addr
}

// decodeNeighbors decodes the [[neighbor]] tables; a repeated dev and ip
// is an error at the repeat.
func decodeNeighbors(ts []*table) []Neighbor {
	return decodeUnique(ts, "neighbor", decodeNeighbor, func(n Neighbor) (neighborKey, string) {
		return neighborKey{n.Dev, n.IP}, fmt.Sprintf("dev (%s) and ip (%s)", n.Dev, n.IP)
	})
}

// resolveNeighbors checks each static entry against its interface: a tap
// (a tun link carries bare IP packets, so it has no link-layer addresses
// and no neighbors), with the address on that link.
func resolveNeighbors(errs *errorList, c *Config) {
	for i := range c.Neighbor {
		n := &c.Neighbor[i]
		if !n.IP.IsValid() || n.Dev == "" {
			continue // reported by decodeNeighbor
		}
		name := fmt.Sprintf("neighbor %d", i+1)
		in := findInterface(c.Interface, func(in *Interface) bool { return in.Name == n.Dev })
		switch {
		case in == nil:
			errs.errorf(0, "%s: dev %q is not an [[interface]]", name, n.Dev)
			continue
		case in.Kind == KindTUN:
			errs.errorf(0, "%s: dev %q is a tun interface, which has no neighbors: it carries IP packets without link-layer addresses; static neighbors are for tap interfaces", name, n.Dev)
			continue
		}
		if err := onLink(in, n.IP); err != nil {
			errs.errorf(0, "%s: ip %v", name, err)
		}
		if n.MAC == in.MAC && n.MAC != (MAC{}) {
			errs.errorf(0, "%s: mac %s is the router's own on interface %q", name, n.MAC, in.Name)
		}
	}
}

// onLink checks that a, a neighbor's address, can be a host on the link of
// in: IPv6 link-local, or inside a connected prefix and neither the
// router's own address nor the prefix's network or broadcast address.
func onLink(in *Interface, a netip.Addr) error {
	if a.Is6() && a.IsLinkLocalUnicast() {
		return nil // fe80::/10 is on every link (RFC 4291 §2.5.6)
	}
	for _, p := range in.Addresses {
		switch {
		case !p.Contains(a):
			continue
		case p.Addr() == a:
			return fmt.Errorf("%s is the router's own address on interface %q", a, in.Name)
		case p.Bits() >= a.BitLen()-1:
			return nil // /31, /32, /127, /128: every address is a host's
		case a == p.Masked().Addr():
			return fmt.Errorf("%s is the prefix %s itself, not a host in it", a, p.Masked())
		case a.Is4() && a == broadcast(p):
			return fmt.Errorf("%s is the broadcast address of %s", a, p.Masked())
		}
		return nil
	}
	return fmt.Errorf("%s is not inside a connected prefix of interface %q; only IPv6 link-local addresses (fe80::/10) may be outside", a, in.Name)
}
