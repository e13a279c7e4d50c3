package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// FuzzParse: Parse never panics, is deterministic, points only at lines
// that exist, and what it accepts keeps the promises of the types' docs;
// locate finds everything toml decodes. The seeds are in
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		_, terr := toml.Decode(string(data), &doc)
		emptyKey := terr == nil && hasEmptyKey(doc)
		if terr == nil && !emptyKey {
			checkPositions(t, doc, locate(string(data)), strings.Split(string(data), "\n"), "")
		}
		c, err := Parse("f.toml", data)
		c2, err2 := Parse("f.toml", data)
		if !reflect.DeepEqual(c, c2) || fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Parse is not deterministic:\n%v\n%v", err, err2)
		}
		if emptyKey && err == nil {
			t.Fatal("accepted a document with an empty key")
		}
		if err != nil {
			checkErrors(t, err, bytes.Count(data, []byte("\n"))+1)
			return
		}
		checkConfig(t, c)
	})
}

// checkPositions walks a decoded document and locate's positions
// together: every key, table and array element must have been located, on
// a line that shows the key.
func checkPositions(t *testing.T, v any, n *node, lines []string, path string) {
	if n == nil || n.line < 0 || n.line > len(lines) {
		t.Fatalf("%s: located at %+v", path, n)
	}
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			c := n.key(k)
			if c != nil && c.line > 0 && c.line <= len(lines) && !strings.Contains(lines[c.line-1], k) &&
				!strings.ContainsAny(lines[c.line-1], `"'`) { // a quoted key may be written with escapes
				t.Fatalf("%s.%s: located at line %d: %q", path, k, c.line, lines[c.line-1])
			}
			checkPositions(t, e, c, lines, path+"."+k)
		}
	case []map[string]any:
		for i, e := range v {
			checkPositions(t, e, n.elem(i), lines, fmt.Sprintf("%s[%d]", path, i))
		}
	case []any:
		for i, e := range v {
			checkPositions(t, e, n.elem(i), lines, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// hasEmptyKey reports whether a decoded document holds the key "" at any
// depth. toml v1.6.0 then records the type of the table or array around
// it wrongly and may decode that one level flatter than written
// (`x = [[{"" = 1}]]` comes back as [{"" = 1}]; BurntSushi/toml PR #492),
// so the shape no longer matches the text that locate reads. The key
// itself always survives, and no table of ours has it, so such a document
// is refused as an unknown key either way; FuzzParse checks that.
func hasEmptyKey(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if k == "" || hasEmptyKey(e) {
				return true
			}
		}
	case []map[string]any:
		for _, e := range v {
			if hasEmptyKey(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasEmptyKey(e) {
				return true
			}
		}
	}
	return false
}

func checkErrors(t *testing.T, err error, lines int) {
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var ce *Error
		if !errors.As(e, &ce) || ce.File != "f.toml" || ce.Line < 0 || ce.Line > lines {
			t.Fatalf("error %q: want an *Error in f.toml within lines 0..%d", e, lines)
		}
	}
}

func checkConfig(t *testing.T, c *Config) {
	if len(c.Interface) == 0 {
		t.Fatal("accepted a config without interfaces")
	}
	byName := make(map[string]*Interface)
	for i := range c.Interface {
		in := &c.Interface[i]
		if checkIfname(in.Name) != nil || byName[in.Name] != nil {
			t.Fatalf("accepted interface name %q (bad or repeated)", in.Name)
		}
		byName[in.Name] = in
		if in.Kind != KindTUN && in.Kind != KindTAP || in.MTU < minMTU || in.MTU > maxMTU || in.Queues < 1 || in.Queues > maxQueues || in.FD != -1 && in.FD < 3 {
			t.Fatalf("accepted interface %+v", *in)
		}
		tap := in.Kind == KindTAP
		if tap && in.Queues != 1 || !tap && (in.MAC != MAC{} || in.RouterAdvertisements) {
			t.Fatalf("accepted keys of the other kind: %+v", *in)
		}
		if in.MAC != (MAC{}) && in.MAC[0]&1 != 0 {
			t.Fatalf("accepted mac %s", in.MAC)
		}
		if in.RouterAdvertisements && !slices.ContainsFunc(in.Addresses, isSLAACPrefix) {
			t.Fatalf("accepted router_advertisements without a /64: %+v", *in)
		}
		if tap && !slices.Contains(c.Pipeline.Stages, "neighbor") {
			t.Fatalf("accepted tap %s without the neighbor stage: %v", in.Name, c.Pipeline.Stages)
		}
		for _, p := range in.Addresses {
			if _, err := parseHostPrefix(p.String()); err != nil {
				t.Fatalf("accepted address %s: %v", p, err)
			}
			for _, o := range c.Interface[:i] {
				for _, q := range o.Addresses {
					if p.Overlaps(q) {
						t.Fatalf("accepted overlapping %s and %s", p, q)
					}
				}
			}
		}
		for _, p := range in.Peer {
			if !holds(in, p.Addr()) || isOwn(in, p.Addr()) {
				t.Fatalf("accepted peer %s on %+v", p, *in)
			}
		}
	}
	for _, r := range c.Route {
		in := byName[r.Dev]
		if !r.To.IsValid() || r.To != r.To.Masked() || in == nil {
			t.Fatalf("accepted route %+v", r)
		}
		linkLocal := r.Via.Is6() && r.Via.IsLinkLocalUnicast()
		if linkLocal && in.Kind != KindTAP ||
			r.Via.IsValid() && (r.Via.Is4() != r.To.Addr().Is4() || !linkLocal && !holds(in, r.Via) || isOwn(in, r.Via)) {
			t.Fatalf("accepted next hop of route %+v", r)
		}
	}
	seen := make(map[neighborKey]bool)
	for _, n := range c.Neighbor {
		in := byName[n.Dev]
		k := neighborKey{n.Dev, n.IP}
		if in == nil || in.Kind != KindTAP || onLink(in, n.IP) != nil || n.MAC == (MAC{}) || n.MAC[0]&1 != 0 || n.MAC == in.MAC || seen[k] {
			t.Fatalf("accepted neighbor %+v", n)
		}
		seen[k] = true
	}
	if a := c.ARP; a.Reachable <= 0 || a.Stale <= 0 || a.RetryInterval <= 0 || a.Retries < 1 || a.Retries > maxRetries ||
		a.Queue < 1 || a.Queue > maxQueue || a.MaxEntries < len(c.Neighbor) || a.MaxEntries < 1 {
		t.Fatalf("accepted arp %+v", a)
	}
	checkNAT(t, c, byName)
	checkServices(t, c)
	checkFilter(t, c, byName)
	if probs := checkStages(c.Pipeline.Stages); probs != nil {
		t.Fatalf("accepted pipeline %v: %v", c.Pipeline.Stages, probs)
	}
}

// checkNAT checks what Parse accepted of [[snat]], [[forward]] and
// [conntrack].
func checkNAT(t *testing.T, c *Config, byName map[string]*Interface) {
	for _, r := range c.SNAT {
		in := byName[r.Out]
		if in == nil || len(r.From) == 0 || r.Ports.Lo < 1 || r.Ports.Lo > r.Ports.Hi || r.MaxPortsPerHost < 0 ||
			!slices.Contains(behaviors, string(r.Mapping)) || !slices.Contains(behaviors, string(r.Filtering)) ||
			r.UnsolicitedSYN != SYNICMP && r.UnsolicitedSYN != SYNDrop ||
			(r.Masquerade || r.Exempt) != (r.Addresses == nil) || r.Masquerade && r.Exempt || len(r.Addresses) > MaxPoolSize || !slices.Contains(c.Pipeline.Stages, "snat") {
			t.Fatalf("accepted snat %+v", r)
		}
		external := r.Addresses
		if r.Masquerade {
			for _, p := range in.Addresses {
				external = append(external, p.Addr())
			}
		}
		seenAddr := make(map[netip.Addr]bool)
		for _, a := range r.Addresses {
			if checkExternal(a) != nil || a.Is4() != r.Addresses[0].Is4() || seenAddr[a] {
				t.Fatalf("accepted snat address %s: %+v", a, r)
			}
			seenAddr[a] = true
		}
		for i, pr := range r.DPorts {
			if pr.Lo < 1 || pr.Lo > pr.Hi || i > 0 && pr.Lo <= r.DPorts[i-1].Hi {
				t.Fatalf("accepted snat dport %v: %+v", r.DPorts, r)
			}
		}
		for _, p := range r.From {
			if _, ok := in.MasqueradeAddr(p.Addr().Is6()); p != p.Masked() || r.Masquerade && !ok || r.Addresses != nil && p.Addr().Is4() != r.Addresses[0].Is4() {
				t.Fatalf("accepted snat from %s: %+v", p, r)
			}
			for _, a := range external {
				if p.Contains(a) {
					t.Fatalf("accepted external address %s inside from %s (RFC 4787 REQ-7): %+v", a, p, r)
				}
			}
		}
	}
	seen := make(map[forwardKey]bool)
	for _, f := range c.Forward {
		in := byName[f.In]
		k := forwardKey{f.In, f.Proto, f.Listen}
		if in == nil || f.Proto != ProtoTCP && f.Proto != ProtoUDP || f.Listen.Port() == 0 || f.To.Port() == 0 ||
			!isOwn(in, f.Listen.Addr()) || f.Listen.Addr().Is4() != f.To.Addr().Is4() || checkExternal(f.To.Addr()) != nil ||
			seen[k] || !slices.Contains(c.Pipeline.Stages, "dnat") {
			t.Fatalf("accepted forward %+v", f)
		}
		seen[k] = true
		for i := range c.Interface {
			if isOwn(&c.Interface[i], f.To.Addr()) {
				t.Fatalf("accepted forward to the router's own address: %+v", f)
			}
		}
	}
	if ct := c.Conntrack; ct.Max < 1 || ct.TCPEstablished <= 0 || ct.TCPOpening <= 0 || ct.TCPClosing <= 0 || ct.UDP <= 0 || ct.ICMP <= 0 {
		t.Fatalf("accepted conntrack %+v", ct)
	}
}

// checkServices checks what Parse accepted of [[service]].
func checkServices(t *testing.T, c *Config) {
	if len(c.Service) > 0 && !slices.Contains(c.Pipeline.Stages, "dnat") {
		t.Fatalf("accepted services without the dnat stage: %v", c.Pipeline.Stages)
	}
	names := make(map[string]bool)
	type vipKey struct {
		vip   netip.AddrPort
		proto uint8
	}
	vips := make(map[vipKey]bool)
	for _, s := range c.Service {
		k := vipKey{s.VIP, s.Proto}
		if checkServiceName(s.Name) != nil || names[s.Name] || vips[k] ||
			checkExternal(s.VIP.Addr()) != nil || s.VIP.Port() == 0 || s.Proto != ProtoTCP && s.Proto != ProtoUDP ||
			!slices.Contains(schedulers, s.Scheduler) || s.Persistence < 0 || len(s.Backends) > maxBackends ||
			s.Forward != ForwardNAT && s.Forward != ForwardDR && s.Forward != ForwardTunnel ||
			s.Forward == ForwardTunnel && !s.VIP.Addr().Is4() {
			t.Fatalf("accepted service %+v", s)
		}
		names[s.Name], vips[k] = true, true
		for _, f := range c.Forward {
			if f.Listen == s.VIP && f.Proto == s.Proto {
				t.Fatalf("accepted service %q on the listen endpoint of forward %+v", s.Name, f)
			}
		}
		checkHealth(t, s.Health)
		checkBackends(t, c, s)
	}
}

// checkFilter checks what Parse accepted of [filter].
func checkFilter(t *testing.T, c *Config, byName map[string]*Interface) {
	f := c.Filter
	if f.Policy != FilterAccept && f.Policy != FilterDrop || f.Line < 0 || f.Line == 0 && (f.Policy != FilterAccept || f.Rules != nil) {
		t.Fatalf("accepted filter %+v", f)
	}
	if (len(f.Rules) > 0 || f.Policy == FilterDrop) && !slices.Contains(c.Pipeline.Stages, "filter") {
		t.Fatalf("accepted [filter] without the filter stage: %v", c.Pipeline.Stages)
	}
	for _, r := range f.Rules {
		if r.In != "" && byName[r.In] == nil || r.Out != "" && byName[r.Out] == nil || r.Line < 1 ||
			r.Action != FilterAccept && r.Action != FilterDrop && r.Action != FilterReject ||
			r.Proto < -1 || r.Proto > 255 || r.DPorts != nil && r.Proto != int(ProtoTCP) && r.Proto != int(ProtoUDP) ||
			r.States != nil && len(r.States) == 0 || r.From != nil && len(r.From) == 0 || r.To != nil && len(r.To) == 0 {
			t.Fatalf("accepted filter rule %+v", r)
		}
		for i, pr := range r.DPorts {
			if pr.Lo < 1 || pr.Lo > pr.Hi || i > 0 && pr.Lo <= r.DPorts[i-1].Hi {
				t.Fatalf("accepted filter dport %v: %+v", r.DPorts, r)
			}
		}
		for i, s := range r.States {
			if !slices.Contains(filterStates, s) || slices.Contains(r.States[:i], s) {
				t.Fatalf("accepted filter state %q: %+v", s, r)
			}
		}
		for _, ps := range [][]netip.Prefix{r.From, r.To} {
			for i, p := range ps {
				if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" || slices.Contains(ps[:i], p) {
					t.Fatalf("accepted filter prefix %s: %+v", p, r)
				}
			}
		}
		if prefixFamilies(r.From)&prefixFamilies(r.To)&protoFamilies(r.Proto) == 0 {
			t.Fatalf("accepted a filter rule that can never match: %+v", r)
		}
	}
}

func checkHealth(t *testing.T, h Health) {
	if h.Interval <= 0 || h.Timeout <= 0 || h.Timeout > h.Interval ||
		h.Rise < 1 || h.Rise > maxRiseFall || h.Fall < 1 || h.Fall > maxRiseFall {
		t.Fatalf("accepted health %+v", h)
	}
	switch h.Check {
	case CheckHTTP:
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsFunc(h.Path, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			t.Fatalf("accepted http path %q", h.Path)
		}
	case CheckTCP, CheckNone:
		if h.Path != "" {
			t.Fatalf("accepted path %q with check %q", h.Path, h.Check)
		}
	default:
		t.Fatalf("accepted health check %q", h.Check)
	}
}

func checkBackends(t *testing.T, c *Config, s Service) {
	seen := make(map[netip.AddrPort]bool)
	for _, b := range s.Backends {
		a := b.Address.Addr()
		if checkExternal(a) != nil || b.Address.Port() == 0 || a.Is4() != s.VIP.Addr().Is4() || seen[b.Address] ||
			b.Weight < 0 || b.Weight > maxWeight || s.Forward != ForwardNAT && b.Address.Port() != s.VIP.Port() {
			t.Fatalf("accepted backend %+v of service %+v", b, s)
		}
		seen[b.Address] = true
		for i := range c.Interface {
			in := &c.Interface[i]
			if isOwn(in, a) {
				t.Fatalf("accepted backend %s, the router's own address: %+v", b.Address, s)
			}
			if s.Forward == ForwardDR && holds(in, a) && (in.Kind != KindTAP || onLink(in, a) != nil) {
				t.Fatalf("accepted dr backend %s off an Ethernet link (%+v): %+v", b.Address, *in, s)
			}
		}
		if s.Forward == ForwardDR && findInterface(c.Interface, func(in *Interface) bool { return holds(in, a) }) == nil {
			t.Fatalf("accepted dr backend %s on no link: %+v", b.Address, s)
		}
	}
}
