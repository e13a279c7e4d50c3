package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// protoNames are the protocols a [[forward]] or a [[service]] takes, by
// name only: a number would promise protocols that have no ports to
// forward or balance.
var protoNames = map[string]uint8{"tcp": ProtoTCP, "udp": ProtoUDP}

func protoName(p uint8) string {
	for n, v := range protoNames {
		if v == p {
			return n
		}
	}
	return fmt.Sprint(p)
}

// decodeForward decodes one [[forward]] and checks what can be checked
// within it; resolveForwards checks it against the interfaces.
func decodeForward(t *table) Forward {
	f := Forward{Line: t.pos.at()}
	if s, ok := t.str("in"); ok {
		if s == "" {
			t.errorf(t.line("in"), "in is empty; name the interface the traffic arrives on")
		}
		f.In = s
	}
	f.Proto = decodeProto(t)
	f.Listen = decodeEndpoint(t, "listen")
	f.To = decodeEndpoint(t, "to")
	for _, k := range []string{"in", "proto", "listen", "to"} {
		if !t.has(k) {
			t.errorf(t.pos.at(), "%s is required", k)
		}
	}
	if f.Listen.IsValid() && f.To.IsValid() && f.Listen.Addr().Is4() != f.To.Addr().Is4() {
		t.errorf(t.line("to"), "to %s and listen %s are not the same IP family", f.To, f.Listen)
	}
	t.unknownKeys()
	return f
}

// decodeProto reads proto by name; it is 0 when absent or unknown
// (reported).
func decodeProto(t *table) uint8 {
	s, ok := t.str("proto")
	if !ok {
		return 0
	}
	p, known := protoNames[s]
	if !known {
		t.errorf(t.line("proto"), `proto %q must be "tcp" or "udp"`, s)
	}
	return p
}

// decodeEndpoint reads an ip:port, IPv6 in brackets, with a real port on
// an address that can be routed to: not link-local, no zone.
func decodeEndpoint(t *table, key string) netip.AddrPort {
	s, ok := t.str(key)
	if !ok {
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.errorf(t.line(key), `%s %q is not ip:port, like "18.18.18.8:8080" or "[fd18::8]:8080"`, key, s)
		return netip.AddrPort{}
	}
	err = checkExternal(ap.Addr())
	if err == nil && ap.Port() == 0 {
		err = fmt.Errorf("%s: port 0 is not a port; ports are 1..65535", s)
	}
	if err != nil {
		t.errorf(t.line(key), "%s %v", key, err)
		return netip.AddrPort{}
	}
	return ap
}

// forwardKey identifies a forward: one target per protocol and listening
// endpoint on an interface.
type forwardKey struct {
	in     string
	proto  uint8
	listen netip.AddrPort
}

// decodeForwards decodes the [[forward]] tables; a repeated in, proto and
// listen is an error at the repeat.
func decodeForwards(ts []*table) []Forward {
	return decodeUnique(ts, "forward", decodeForward, func(f Forward) (forwardKey, string) {
		return forwardKey{f.In, f.Proto, f.Listen}, fmt.Sprintf("in (%s), proto (%s) and listen (%s)", f.In, protoName(f.Proto), f.Listen)
	})
}

// resolveForwards checks each forward against the interfaces: a forward
// is to the router's own address on in (what the outside reaches), and to
// an inside host, never to the router itself.
func resolveForwards(errs *errorList, c *Config) {
	for i := range c.Forward {
		f := &c.Forward[i]
		if f.In == "" {
			continue // reported by decodeForward
		}
		name := fmt.Sprintf("forward %d", i+1)
		in := findInterface(c.Interface, func(in *Interface) bool { return in.Name == f.In })
		if in == nil {
			errs.errorf(0, "%s: in %q is not an [[interface]]", name, f.In)
			continue
		}
		if f.Listen.IsValid() && !isOwn(in, f.Listen.Addr()) {
			errs.errorf(0, "%s: listen %s is not an address of interface %q; a forward listens on the router's own address there (%s)",
				name, f.Listen, in.Name, ownAddrs(in))
		}
		if !f.To.IsValid() {
			continue
		}
		if own := findInterface(c.Interface, func(in *Interface) bool { return isOwn(in, f.To.Addr()) }); own != nil {
			errs.errorf(0, "%s: to %s is the router's own address on interface %q; a forward goes to another host", name, f.To, own.Name)
		}
	}
}

// ownAddrs lists the interface's own addresses for a message.
func ownAddrs(in *Interface) string {
	if len(in.Addresses) == 0 {
		return "it has none"
	}
	s := make([]string, len(in.Addresses))
	for i, p := range in.Addresses {
		s[i] = p.Addr().String()
	}
	return strings.Join(s, ", ")
}
