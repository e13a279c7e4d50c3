package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// behaviors are the values of mapping and filtering, in RFC 4787's order.
var behaviors = []string{string(EndpointIndependent), string(AddressDependent), string(AddressAndPortDependent)}

// decodeSNATs decodes the [[snat]] tables; resolveSNATs checks them against
// the interfaces. Two rules may overlap: they are tried in order.
func decodeSNATs(ts []*table) []SNAT {
	rules := make([]SNAT, 0, len(ts))
	for _, t := range ts {
		rules = append(rules, decodeSNAT(t))
	}
	return rules
}

// decodeSNAT decodes one [[snat]] and checks what can be checked within it.
func decodeSNAT(t *table) SNAT {
	r := SNAT{
		Masquerade:       true,
		Ports:            DefaultSNATPorts,
		Mapping:          EndpointIndependent,
		Filtering:        EndpointIndependent,
		PortPreservation: true,
		Hairpin:          true,
		UnsolicitedSYN:   SYNICMP,
		Line:             t.pos.at(),
	}
	if s, ok := t.str("out"); ok {
		if s == "" {
			t.errorf(t.line("out"), "out is empty; name the egress interface")
		}
		r.Out = s
	} else if !t.has("out") {
		t.errorf(t.pos.at(), "out is required: the egress interface")
	}
	from := decodeFrom(t)
	for _, f := range from {
		r.From = append(r.From, f.p)
	}
	decodePool(t, &r, from)
	r.Dest = decodePrefixes(t, "dest")
	if s, ok := t.str("dport"); ok {
		ps, err := parsePortSet(s)
		if err != nil {
			t.errorf(t.line("dport"), "dport %v", err)
		}
		r.DPorts = ps
	}
	if r.Exempt {
		// Nothing is translated, so nothing about a translation applies:
		// a key that seems to would mislead the reader of the file.
		for _, k := range []string{"ports", "mapping", "filtering", "port_preservation", "port_parity", "hairpin", "max_ports_per_host", "unsolicited_syn", "pcp"} {
			if t.has(k) {
				t.errorf(t.line(k), `%s has no meaning with to = "none", which translates nothing`, k)
			}
		}
	}
	if s, ok := t.str("ports"); ok {
		pr, err := parsePorts(s)
		if err != nil {
			t.errorf(t.line("ports"), "ports %v", err)
		}
		r.Ports = pr
	}
	if s, ok := oneOf(t, "mapping", behaviors...); ok {
		r.Mapping = Behavior(s)
	}
	if s, ok := oneOf(t, "filtering", behaviors...); ok {
		r.Filtering = Behavior(s)
	}
	if b, ok := t.boolean("port_preservation"); ok {
		r.PortPreservation = b
	}
	if b, ok := t.boolean("port_parity"); ok {
		r.PortParity = b
	}
	if b, ok := t.boolean("hairpin"); ok {
		r.Hairpin = b
	}
	if n, ok := t.integer("max_ports_per_host", 0, math.MaxInt32); ok {
		r.MaxPortsPerHost = int(n)
	}
	if b, ok := t.boolean("pcp"); ok {
		r.PCP = b
	}
	if s, ok := oneOf(t, "unsolicited_syn", SYNICMP, SYNDrop); ok {
		r.UnsolicitedSYN = s
	}
	t.unknownKeys()
	return r
}

// decodePool reads to: "masquerade" (the default), "none", or the pool: an
// address, a range "a-b", or an array of them. RFC 6888 REQ-3: "the CGN
// MUST be configurable with contiguous or non-contiguous external IPv4
// address ranges."
func decodePool(t *table, r *SNAT, from []fromItem) {
	v, ok := t.get("to")
	if !ok {
		return
	}
	var items []item
	switch v := v.(type) {
	case string:
		switch v {
		case "masquerade":
			return
		case "none":
			r.Masquerade, r.Exempt = false, true
			return
		}
		items = []item{{v, t.line("to")}}
	case []any:
		before := len(t.errs.errs)
		items, _ = t.strs("to")
		if len(v) == 0 && len(t.errs.errs) == before {
			t.errorf(t.line("to"), `to is empty; leave it out for masquerade, or list addresses and ranges`)
		}
	default:
		t.errorf(t.line("to"), `to must be "masquerade", "none", an address, a range, or an array of addresses and ranges, not %s`, describe(v))
		return
	}
	r.Masquerade = false
	seen := make(map[netip.Addr]bool)
	var written []string
	for _, it := range items {
		addrs, err := parsePool(it.s)
		switch {
		case err != nil:
		case len(r.Addresses) > 0 && addrs[0].Is4() != r.Addresses[0].Is4():
			err = fmt.Errorf("%s is not of the same IP family as %s; write one [[snat]] per family", it.s, r.Addresses[0])
		case len(r.Addresses)+len(addrs) > MaxPoolSize:
			err = fmt.Errorf("%s: the pool holds more than %d addresses", it.s, MaxPoolSize)
		default:
			if i := slices.IndexFunc(addrs, func(a netip.Addr) bool { return seen[a] }); i >= 0 {
				err = fmt.Errorf("%s: %s is in the pool twice", it.s, addrs[i])
			}
		}
		if err != nil {
			t.errorf(it.line, "to %v", err)
			continue
		}
		for _, a := range addrs {
			seen[a] = true
		}
		r.Addresses = append(r.Addresses, addrs...)
		written = append(written, it.s)
	}
	checkPool(t, strings.Join(written, ", "), r.Addresses, from)
}

// decodePrefixes reads key, the sources or destinations a rule applies
// to: masked prefixes, none twice; absent is any.
func decodePrefixes(t *table, key string) []netip.Prefix {
	items, _ := t.strs(key)
	var out []netip.Prefix
	for _, it := range items {
		p, err := parseMaskedPrefix(it.s)
		if err == nil && slices.Contains(out, p) {
			err = fmt.Errorf("%s is listed twice", p)
		}
		if err != nil {
			t.errorf(it.line, "%s %v", key, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// fromItem is one prefix of from, with its line.
type fromItem struct {
	p    netip.Prefix
	line int
}

// decodeFrom reads the sources, masked prefixes. They are required: the
// "any source" a missing from could mean would hold the external
// addresses too (RFC 4787 REQ-7), so the file has to say what is inside.
func decodeFrom(t *table) []fromItem {
	before := len(t.errs.errs)
	items, ok := t.strs("from")
	switch {
	case !ok && !t.has("from"):
		t.errorf(t.pos.at(), `from is required: the inside prefixes to translate, like ["192.168.46.0/24"]`)
	case ok && len(items) == 0 && len(t.errs.errs) == before:
		t.errorf(t.line("from"), `from is empty; list the inside prefixes to translate, like ["192.168.46.0/24"]`)
	}
	var out []fromItem
	for _, it := range items {
		p, err := parseMaskedPrefix(it.s)
		if err == nil && slices.ContainsFunc(out, func(f fromItem) bool { return f.p == p }) {
			err = fmt.Errorf("%s is listed twice", p)
		}
		if err != nil {
			t.errorf(it.line, "from %v", err)
			continue
		}
		out = append(out, fromItem{p, it.line})
	}
	return out
}

// oneOf returns the value of key if it is one of values.
func oneOf(t *table, key string, values ...string) (string, bool) {
	s, ok := t.str(key)
	if !ok || slices.Contains(values, s) {
		return s, ok
	}
	if len(values) == 2 {
		t.errorf(t.line(key), "%s %q must be %q or %q", key, s, values[0], values[1])
	} else {
		t.errorf(t.line(key), "%s %q must be one of %s", key, s, strings.Join(values, ", "))
	}
	return s, false
}

// parsePool parses to when it is not "masquerade": one address, or a range
// "a-b" of one family, a <= b, which it expands. It returns nil on error.
func parsePool(s string) ([]netip.Addr, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf(`%q is not "masquerade", an IP address or a range like "18.18.18.8-18.18.18.9"`, s)
		}
		if err := checkExternal(a); err != nil {
			return nil, err
		}
		return []netip.Addr{a}, nil
	}
	var ends [2]netip.Addr
	for i, e := range []string{lo, hi} {
		a, err := netip.ParseAddr(e)
		if err != nil {
			return nil, fmt.Errorf("range %q: %q is not an IP address: %s", s, e, reason(err))
		}
		if err := checkExternal(a); err != nil {
			return nil, fmt.Errorf("range %s: %v", s, err)
		}
		ends[i] = a
	}
	a, b := ends[0], ends[1]
	switch {
	case a.Is4() != b.Is4():
		return nil, fmt.Errorf("range %s: %s and %s are not the same IP family", s, a, b)
	case b.Less(a):
		return nil, fmt.Errorf("range %s: %s comes after %s", s, a, b)
	case !fitsPool(a, b):
		return nil, fmt.Errorf("range %s holds more than %d addresses", s, MaxPoolSize)
	}
	// With both ends fine, so is what lies between: the addresses
	// checkExternal refuses are single ones at an end of the address space
	// (0.0.0.0, 255.255.255.255, ::, ::1) or blocks a range of
	// MaxPoolSize cannot reach over (127.0.0.0/8, 169.254.0.0/16,
	// 224.0.0.0/4, fe80::/10, ff00::/8).
	var addrs []netip.Addr
	for ; a != b; a = a.Next() {
		addrs = append(addrs, a)
	}
	return append(addrs, b), nil
}

// checkExternal refuses what cannot be an address a NAT translates to, an
// SNAT pool's or a forward's: a translated packet leaves its link, so not
// link-local, and with no zone either.
func checkExternal(a netip.Addr) error {
	switch {
	case a.Zone() != "":
		return fmt.Errorf("%s: a translated address takes no zone", a)
	case a.Is4In6():
		return fmt.Errorf("%s is IPv4-mapped IPv6; write it as IPv4", a)
	case a.IsLinkLocalUnicast():
		return fmt.Errorf("%s is link-local; a translated packet leaves its link", a)
	}
	return checkUnicast(a)
}

// fitsPool reports whether the range a..b, a <= b, of one family, holds at
// most MaxPoolSize addresses.
func fitsPool(a, b netip.Addr) bool {
	x, y := a.As16(), b.As16()
	hiA, loA := binary.BigEndian.Uint64(x[:8]), binary.BigEndian.Uint64(x[8:])
	hiB, loB := binary.BigEndian.Uint64(y[:8]), binary.BigEndian.Uint64(y[8:])
	diffLo := loB - loA
	if loB < loA {
		hiB-- // borrow; hiB > hiA then, as a <= b
	}
	return hiB == hiA && diffLo < MaxPoolSize
}

// checkPool checks an explicit pool, to as written, against from: one
// family for both (tungate translates within a family), and, RFC 4787
// REQ-7, no external address inside: the NAT could not tell its own
// external address from an inside host's.
func checkPool(t *table, to string, pool []netip.Addr, from []fromItem) {
	if len(pool) == 0 {
		return // a bad to, reported
	}
	for _, f := range from {
		switch {
		case f.p.Addr().Is4() != pool[0].Is4():
			t.errorf(f.line, "from %s and to %s are not the same IP family; write one [[snat]] per family", f.p, to)
		case slices.ContainsFunc(pool, f.p.Contains):
			t.errorf(t.line("to"), "to %s overlaps from %s: external addresses must not be inside ones (RFC 4787 REQ-7)", to, f.p)
		}
	}
}

// parsePorts parses ports: "lo-hi", or one port "n".
func parsePorts(s string) (PortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	var ends [2]uint64
	for i, e := range []string{lo, hi} {
		n, err := strconv.ParseUint(e, 10, 32)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return PortRange{}, fmt.Errorf(`%q is not a port range like "1024-65535", or one port`, s)
		}
		if err != nil || n < 1 || n > math.MaxUint16 {
			return PortRange{}, fmt.Errorf("%q: ports are 1..65535", s)
		}
		ends[i] = n
	}
	if ends[0] > ends[1] {
		return PortRange{}, fmt.Errorf("%q: %d is above %d", s, ends[0], ends[1])
	}
	return PortRange{uint16(ends[0]), uint16(ends[1])}, nil
}

// String is the range as the file writes it.
func (r PortRange) String() string {
	if r.Lo == r.Hi {
		return strconv.Itoa(int(r.Lo))
	}
	return fmt.Sprintf("%d-%d", r.Lo, r.Hi)
}

// PortSet is a set of ports: ranges in ascending order, none overlapping.
type PortSet []PortRange

// Contains reports whether port is in the set.
func (s PortSet) Contains(port uint16) bool {
	for _, r := range s {
		if port >= r.Lo && port <= r.Hi {
			return true
		}
	}
	return false
}

// parsePortSet parses a list of ports and ranges, "22,80,1000-2000", into
// ranges in ascending order. Empty or overlapping ranges are errors: one
// is a typo, the other a rule that says one thing twice.
func parsePortSet(s string) (PortSet, error) {
	var set PortSet
	for part := range strings.SplitSeq(s, ",") {
		pr, err := parsePorts(strings.TrimSpace(part))
		if err != nil {
			if strings.TrimSpace(part) == "" {
				err = fmt.Errorf("%q has an empty entry; write ports and ranges like \"22,80,1000-2000\"", s)
			}
			return nil, err
		}
		set = append(set, pr)
	}
	slices.SortFunc(set, func(a, b PortRange) int { return int(a.Lo) - int(b.Lo) })
	for i := 1; i < len(set); i++ {
		if a, b := set[i-1], set[i]; b.Lo <= a.Hi {
			return nil, fmt.Errorf("%q: %s and %s overlap", s, a, b)
		}
	}
	return set, nil
}

// MasqueradeAddr returns the address masquerade translates the packets of
// one family (IPv6 when is6) leaving by this interface to: the interface's
// first address of that family that is not link-local. It is false when
// there is none; Parse refuses a [[snat]] that would need one.
func (in Interface) MasqueradeAddr(is6 bool) (netip.Addr, bool) {
	for _, p := range in.Addresses {
		if a := p.Addr(); a.Is6() == is6 && !a.IsLinkLocalUnicast() {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// resolveSNATs checks each rule against its egress interface: it exists,
// and for masquerade, has an address for every family of from, none of
// its addresses inside from (RFC 4787 REQ-7, as in checkPool).
func resolveSNATs(errs *errorList, c *Config) {
	for i := range c.SNAT {
		r := &c.SNAT[i]
		if r.Out == "" {
			continue // reported by decodeSNAT
		}
		name := fmt.Sprintf("snat %d", i+1)
		in := findInterface(c.Interface, func(in *Interface) bool { return in.Name == r.Out })
		if in == nil {
			errs.errorf(0, "%s: out %q is not an [[interface]]", name, r.Out)
			continue
		}
		if !r.Masquerade {
			continue
		}
		missing := make(map[bool]bool) // by is6: reported once per family
		for _, p := range r.From {
			is6 := p.Addr().Is6()
			if _, ok := in.MasqueradeAddr(is6); !ok && !missing[is6] {
				missing[is6] = true
				errs.errorf(0, "%s: from %s is %s, and interface %q has no %s address (not link-local) to masquerade as",
					name, p, family(is6), in.Name, family(is6))
			}
			for _, a := range in.Addresses {
				if p.Contains(a.Addr()) {
					errs.errorf(0, "%s: from %s holds %s, an address of interface %q, which masquerade translates to: "+
						"external addresses must not be inside ones (RFC 4787 REQ-7)", name, p, a.Addr(), in.Name)
				}
			}
		}
	}
}

func family(is6 bool) string {
	if is6 {
		return "IPv6"
	}
	return "IPv4"
}
