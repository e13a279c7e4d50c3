package config

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"unicode"
)

const (
	minMTU     = 576   // every IPv4 host must take a 576-byte datagram (RFC 791)
	minIPv6MTU = 1280  // IPv6's minimum link MTU (RFC 8200 §5)
	maxMTU     = 65535 // the largest IPv4 packet; IPv6 jumbograms are out of scope
	maxQueues  = 16    // more reader queues than cores would only contend
)

// decodeInterfaces decodes the [[interface]] tables. A repeated name is
// reported at the repeat.
func decodeInterfaces(ts []*table) []Interface {
	ifs := make([]Interface, 0, len(ts))
	for i, t := range ts {
		in := decodeInterface(t)
		if j := slices.IndexFunc(ifs, func(o Interface) bool { return o.Name == in.Name }); j >= 0 && in.Name != "" {
			// By number: the name no longer tells the two apart.
			t.errs.errorf(t.line("name"), "interface %d: name %q is already used by interface %d", i+1, in.Name, j+1)
		}
		ifs = append(ifs, in)
	}
	return ifs
}

// decodeInterface decodes one [[interface]] and checks what can be checked
// within it; checks against the other interfaces are in checkInterfaces.
func decodeInterface(t *table) Interface {
	in := Interface{MTU: 1500, FD: -1, Queues: 1, Line: t.pos.at()}
	in.Name = decodeName(t)
	in.Kind = decodeKind(t)
	in.Offload = true
	in.Addresses = hostPrefixes(t, "addresses", nil)
	if n, ok := t.integer("mtu", minMTU, maxMTU); ok {
		in.MTU = int(n)
	}
	if in.MTU < minIPv6MTU && slices.ContainsFunc(in.Addresses, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
		t.errorf(t.line("mtu"), "mtu %d is below %d, the IPv6 minimum (RFC 8200 §5), and the interface has an IPv6 address", in.MTU, minIPv6MTU)
	}
	in.FD = decodeFD(t)
	in.Netns = decodeNetns(t)
	in.Peer = hostPrefixes(t, "peer", peerCheck(in.Addresses))
	if b, ok := t.boolean("offload"); ok {
		in.Offload = b
	}
	if n, ok := t.integer("queues", 1, maxQueues); ok {
		in.Queues = int(n)
		tunOnly(t, in.Kind, "queues")
		if n > 1 && in.FD >= 0 {
			t.errorf(t.line("queues"), "queues %d needs tungate to open the device itself; an inherited fd is one queue", n)
		}
	}
	if m, ok := t.mac("mac"); ok {
		in.MAC = m
		tapOnly(t, in.Kind, "mac")
	}
	if b, ok := t.boolean("router_advertisements"); ok {
		in.RouterAdvertisements = b
		tapOnly(t, in.Kind, "router_advertisements")
		if b && in.Kind == KindTAP && !slices.ContainsFunc(in.Addresses, isSLAACPrefix) {
			t.errorf(t.line("router_advertisements"), "router_advertisements needs an IPv6 address with a /64 prefix (not link-local) on this interface "+
				"to advertise: SLAAC forms addresses only in a /64 (RFC 4862 §5.5.3, RFC 4291 §2.5.1)")
		}
	}
	t.unknownKeys()
	return in
}

// isSLAACPrefix reports whether hosts can form addresses in p by SLAAC
// from a Router Advertisement: an IPv6 /64, the length of Ethernet's
// interface identifiers; a link-local prefix is never advertised
// (RFC 4861 §6.2.1).
func isSLAACPrefix(p netip.Prefix) bool {
	return p.Addr().Is6() && p.Bits() == 64 && !p.Addr().IsLinkLocalUnicast()
}

// decodeName reads the name and, when it is valid, names the table by it
// in the messages that follow.
func decodeName(t *table) string {
	s, ok := t.str("name")
	switch {
	case !ok && !t.has("name"):
		t.errorf(t.pos.at(), "name is required")
	case ok:
		if err := checkIfname(s); err != nil {
			t.errorf(t.line("name"), "name %q %v", s, err)
			break
		}
		t.name = fmt.Sprintf("interface %q", s)
	}
	return s
}

// checkIfname applies the kernel's rules for device names (dev_valid_name),
// so that a bad name fails here and not when the device is created.
func checkIfname(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > 15:
		return fmt.Errorf("is %d bytes; Linux takes at most 15 (IFNAMSIZ)", len(s))
	case s == "." || s == "..":
		return errors.New("is not a valid device name")
	case strings.ContainsAny(s, "/:"):
		return errors.New("cannot contain '/' or ':'")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return errors.New("cannot contain whitespace or control characters")
	case strings.Contains(s, "%"):
		// The kernel would replace %d with a number of its choosing, and
		// routes and tests could no longer name the device.
		return errors.New("cannot contain '%'; give the name in full")
	}
	return nil
}

// decodeKind returns the kind, KindTUN when absent, or "" for a bad one.
func decodeKind(t *table) Kind {
	s, ok := t.str("kind")
	switch {
	case !t.has("kind"):
		return KindTUN
	case !ok:
		return "" // not a string: reported
	case Kind(s) == KindTUN || Kind(s) == KindTAP:
		return Kind(s)
	}
	t.errorf(t.line("kind"), `kind %q must be "tun" or "tap"`, s)
	return ""
}

// tunOnly and tapOnly report key on an interface of the other kind; with a
// bad kind, already reported, they say nothing more.
func tunOnly(t *table, k Kind, key string) {
	if k == KindTAP {
		t.errorf(t.line(key), "%s is for tun interfaces only", key)
	}
}

func tapOnly(t *table, k Kind, key string) {
	if k == KindTUN {
		t.errorf(t.line(key), "%s is for tap interfaces only", key)
	}
}

// parseMAC parses an Ethernet address that one host can own: six bytes,
// as ip-link(8) writes them (net.ParseMAC's other spellings work too), not
// zero, not a group address.
func parseMAC(s string) (MAC, error) {
	var m MAC
	hw, err := net.ParseMAC(s)
	switch {
	case err != nil:
		return m, fmt.Errorf(`%q is not a MAC address like "02:00:00:00:00:01"`, s)
	case len(hw) != len(m):
		return m, fmt.Errorf("%s is %d bytes; an Ethernet address has 6", s, len(hw))
	}
	copy(m[:], hw)
	switch {
	case m == MAC{}:
		return m, fmt.Errorf("%s is all zeros, not a host's address", s)
	case m == MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}:
		return m, fmt.Errorf("%s is the broadcast address, not a host's address", s)
	case m[0]&1 != 0:
		// IEEE 802: the I/G bit, first on the wire, marks a group address.
		return m, fmt.Errorf("%s is a multicast address (the lowest bit of its first byte is set), not a host's address", s)
	}
	return m, nil
}

// decodeFD reads fd; -1, the default, means none. Descriptors 0-2 are
// refused: there a privileged parent has most likely not put a device at all.
func decodeFD(t *table) int {
	n, ok := t.integer("fd", -1, math.MaxInt32)
	if !ok {
		return -1
	}
	if n >= 0 && n <= 2 {
		t.errorf(t.line("fd"), "fd %d is stdin, stdout or stderr; pass the device on fd 3 or above", n)
	}
	return int(n)
}

// decodeNetns reads netns, a name under /run/netns as ip-netns(8) makes it.
func decodeNetns(t *table) string {
	s, ok := t.str("netns")
	if !ok {
		return ""
	}
	switch {
	case s == "":
		t.errorf(t.line("netns"), "netns is empty; leave it out to keep the device in tungate's own namespace")
	case s == "." || s == ".." || strings.ContainsAny(s, "/\x00") || len(s) > 255:
		t.errorf(t.line("netns"), "netns %q is not a file name under /run/netns", s)
	}
	return s
}

// hostPrefixes decodes an array of addresses with prefix lengths, skipping
// (and reporting) bad ones and repeats; check, if not nil, adds a test.
func hostPrefixes(t *table, key string, check func(netip.Prefix) error) []netip.Prefix {
	items, _ := t.strs(key)
	var out []netip.Prefix
	for _, it := range items {
		p, err := parseHostPrefix(it.s)
		if err == nil && check != nil {
			err = check(p)
		}
		if err == nil && slices.ContainsFunc(out, func(q netip.Prefix) bool { return q.Addr() == p.Addr() }) {
			err = fmt.Errorf("%s is listed twice", p.Addr())
		}
		if err != nil {
			t.errorf(it.line, "%s: %v", key, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// peerCheck: a peer (the kernel side of the device) must be on the link,
// inside one of the router's prefixes, and must not take the router's
// own address.
func peerCheck(own []netip.Prefix) func(netip.Prefix) error {
	return func(p netip.Prefix) error {
		if slices.ContainsFunc(own, func(o netip.Prefix) bool { return o.Addr() == p.Addr() }) {
			return fmt.Errorf("%s is the router's own address on this interface", p.Addr())
		}
		if !slices.ContainsFunc(own, func(o netip.Prefix) bool { return o.Contains(p.Addr()) }) {
			return fmt.Errorf("%s is not inside any of this interface's prefixes", p)
		}
		return nil
	}
}

// parseHostPrefix parses an address as `ip addr add` takes it: the host's
// own address with the length of its connected prefix. It stays as written
// (192.168.46.1/24, not 192.168.46.0/24): the address is what matters.
func parseHostPrefix(s string) (netip.Prefix, error) {
	p, err := parsePrefix(s)
	if err != nil {
		return p, err
	}
	a := p.Addr()
	if err := checkUnicast(a); err != nil {
		return p, err
	}
	switch {
	case p.Bits() == 0:
		return p, fmt.Errorf("%s: a /0 connected prefix would hold every address", s)
	case p.Bits() >= a.BitLen()-1:
		// /31 and /32 (IPv6: /127, /128) have no network or broadcast
		// address to avoid (RFC 3021, RFC 6164).
		return p, nil
	case a == p.Masked().Addr():
		return p, fmt.Errorf("%s is the prefix itself, not a host address in it, like %s", s, netip.PrefixFrom(a.Next(), p.Bits()))
	case a.Is4() && a == broadcast(p):
		return p, fmt.Errorf("%s is the broadcast address of %s", s, p.Masked())
	}
	return p, nil
}

// broadcast returns the last address of an IPv4 prefix shorter than /31.
func broadcast(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	v := binary.BigEndian.Uint32(b[:]) | (1<<(32-p.Bits()) - 1)
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// parsePrefix parses an IP prefix in CIDR notation, refusing IPv4-mapped
// IPv6 so that every prefix has one clear family.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		return netip.Prefix{}, fmt.Errorf("%q has no prefix length, like the /24 of 192.168.46.1/24", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, fmt.Errorf("%q is not an IP prefix: %s", s, reason(err))
	}
	if p.Addr().Is4In6() {
		return p, fmt.Errorf("%s is IPv4-mapped IPv6; write it as IPv4", s)
	}
	return p, nil
}

// checkUnicast refuses addresses that cannot belong to one host on a link.
func checkUnicast(a netip.Addr) error {
	var what string
	switch {
	case a.IsGlobalUnicast() || a.IsLinkLocalUnicast():
		return nil
	case a.IsUnspecified():
		what = "the unspecified address"
	case a.IsLoopback():
		what = "a loopback address"
	case a.IsMulticast():
		what = "a multicast address"
	default:
		what = "the broadcast address"
	}
	return fmt.Errorf("%s is %s, not a unicast host address", a, what)
}

// reason strips the function and argument that net/netip errors start with,
// `netip.ParsePrefix("x"): `, since our message quotes the value already.
func reason(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	return msg
}

// checkInterfaces checks the interfaces against each other, beyond names.
func checkInterfaces(errs *errorList, ifs []Interface) {
	if len(ifs) == 0 {
		errs.errorf(0, "no [[interface]]: at least one is needed")
	}
	for j := range ifs {
		for i := range j {
			checkPair(errs, ifs, i, j)
		}
	}
}

// checkPair checks interface j against an earlier interface i: their
// connected prefixes must not overlap, or a destination would be on two
// links at once.
func checkPair(errs *errorList, ifs []Interface, i, j int) {
	a, b := &ifs[i], &ifs[j]
	for _, p := range b.Addresses {
		for _, q := range a.Addresses {
			if p.Overlaps(q) {
				errs.errorf(0, "%s: %s overlaps %s of %s", ifaceLabel(ifs, j), p, q, ifaceLabel(ifs, i))
			}
		}
	}
}

// ifaceLabel names interface i in cross-table messages.
func ifaceLabel(ifs []Interface, i int) string {
	if ifs[i].Name == "" {
		return fmt.Sprintf("interface %d", i+1)
	}
	return fmt.Sprintf("interface %q", ifs[i].Name)
}
