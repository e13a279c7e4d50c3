package config

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// schedulers are the values of scheduler. They mirror lb.Names(): config
// only reads the file and imports none of the router's packages, so a test
// keeps the two lists in step.
var schedulers = []string{"rr", "wrr", "lc", "wlc", "sh", "maglev"}

const (
	defaultScheduler = "wlc"   // IPVS's default
	maxWeight        = 65535   // lb.MaxWeight, ipvsadm's bound
	maxBackends      = 1 << 16 // lb.New's bound: maglev needs fewer backends than table slots
	maxServiceName   = 64
	maxRiseFall      = 100 // more probes in a row than this only delays the verdict
)

// samePort are the forward methods that hand the backend the packet with
// its transport header untouched, so the backend's port is the vip's; each
// with its long name for messages.
var samePort = map[string]string{ForwardDR: "direct routing", ForwardTunnel: "IP-in-IP"}

// decodeServices decodes the [[service]] tables; a repeated name, or a
// repeated vip and proto, is an error at the repeat.
func decodeServices(ts []*table) []Service {
	var svcs []Service
	for _, t := range ts {
		s := decodeService(t)
		checkRepeat(t, svcs, s)
		svcs = append(svcs, s)
	}
	return svcs
}

// checkRepeat reports what s shares with the first of the earlier
// services. A name or vip that is bad, reported already, is left out of
// the comparison.
func checkRepeat(t *table, earlier []Service, s Service) {
	if checkServiceName(s.Name) == nil {
		if i := slices.IndexFunc(earlier, func(o Service) bool { return o.Name == s.Name }); i >= 0 {
			t.errs.errorf(s.Line, "service %q is defined twice (first on line %d)", s.Name, earlier[i].Line)
		}
	}
	if s.VIP.IsValid() && s.Proto != 0 {
		if i := slices.IndexFunc(earlier, func(o Service) bool { return o.VIP == s.VIP && o.Proto == s.Proto }); i >= 0 {
			t.errorf(t.line("vip"), "same vip (%s) and proto (%s) as %s", s.VIP, protoName(s.Proto), serviceLabel(earlier, i))
		}
	}
}

// decodeService decodes one [[service]] and checks what can be checked
// within it; resolveServices checks it against the other tables.
func decodeService(t *table) Service {
	s := Service{Scheduler: defaultScheduler, Forward: ForwardNAT, Health: DefaultHealth, Line: t.pos.at()}
	s.Name = decodeServiceName(t)
	s.VIP = decodeEndpoint(t, "vip")
	s.Proto = decodeProto(t)
	for _, k := range []string{"vip", "proto"} {
		if !t.has(k) {
			t.errorf(t.pos.at(), "%s is required", k)
		}
	}
	if v, ok := oneOf(t, "scheduler", schedulers...); ok {
		s.Scheduler = v
	}
	if v, ok := oneOf(t, "forward", ForwardNAT, ForwardDR, ForwardTunnel); ok {
		s.Forward = v
	}
	if s.Forward == ForwardTunnel && s.VIP.Addr().Is6() {
		t.errorf(t.line("forward"), `forward = "tunnel" carries IPv4 only (RFC 2003 IP-in-IP), and vip %s is IPv6`, s.VIP)
	}
	if d, ok := t.durationOrZero("persistence"); ok {
		s.Persistence = d
	}
	s.Health = decodeHealth(subTable(t, "health"))
	s.Backends = decodeBackends(t, &s)
	t.unknownKeys()
	return s
}

// subTable returns the table at key inside t, named after t in messages:
// `service "web" health`.
func subTable(t *table, key string) *table {
	sub := t.table(key)
	if sub != nil {
		sub.name = t.name + " " + key
	}
	return sub
}

// decodeServiceName reads the name and, when it is valid, names the table
// by it in the messages that follow.
func decodeServiceName(t *table) string {
	s, ok := t.str("name")
	switch {
	case !ok && !t.has("name"):
		t.errorf(t.pos.at(), "name is required")
	case ok:
		if err := checkServiceName(s); err != nil {
			t.errorf(t.line("name"), "name %q %v", s, err)
			break
		}
		t.name = fmt.Sprintf("service %q", s)
	}
	return s
}

// checkServiceName keeps a name usable as one path element of the admin
// API's URLs, POST /services/{name}/..., as written, with no escaping.
func checkServiceName(s string) error {
	switch {
	case s == "":
		return errors.New("is empty")
	case len(s) > maxServiceName:
		return fmt.Errorf("is %d bytes; at most %d, as it is part of the admin API's URLs", len(s), maxServiceName)
	case s == "." || s == "..":
		return errors.New("is not a name: URLs take it for a directory")
	case strings.ContainsFunc(s, func(r rune) bool { return !isNameRune(r) }):
		return errors.New("may hold only ASCII letters, digits, '-', '_' and '.', as it is part of the admin API's URLs")
	}
	return nil
}

func isNameRune(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.'
}

// decodeHealth decodes [service.health]; t is nil when the service has
// none.
func decodeHealth(t *table) Health {
	h := DefaultHealth
	check, ok := oneOf(t, "check", CheckTCP, CheckHTTP, CheckNone)
	switch {
	case ok:
		h.Check = check
	case t.has("check"):
		check = "" // bad, reported: nothing more is said about path
	default:
		check = h.Check
	}
	checkTimeout := true // unless a bad value, reported, would make it noise
	if d, ok := t.duration("interval"); ok {
		h.Interval = d
	} else if t.has("interval") {
		checkTimeout = false
	}
	if d, ok := t.duration("timeout"); ok {
		h.Timeout = d
	} else if t.has("timeout") {
		checkTimeout = false
	}
	if checkTimeout && h.Timeout > h.Interval {
		// With t nil the defaults apply, which agree.
		line := t.line("interval")
		if t.has("timeout") {
			line = t.line("timeout")
		}
		t.errorf(line, "timeout %v is longer than interval %v; a probe must end before the next one starts", h.Timeout, h.Interval)
	}
	if n, ok := t.integer("rise", 1, maxRiseFall); ok {
		h.Rise = int(n)
	}
	if n, ok := t.integer("fall", 1, maxRiseFall); ok {
		h.Fall = int(n)
	}
	h.Path = decodeHealthPath(t, check)
	t.unknownKeys()
	return h
}

// decodeHealthPath reads path, which only an HTTP check has; check is ""
// when it is bad. The path goes into the request line, GET PATH HTTP/1.1,
// so it has no spaces or control characters either.
func decodeHealthPath(t *table, check string) string {
	s, ok := t.str("path")
	switch {
	case check == "":
		return ""
	case check != CheckHTTP:
		if ok {
			t.errorf(t.line("path"), `path is for check = "http" only; this check is %q`, check)
		}
		return ""
	case !ok:
		return "/"
	case !strings.HasPrefix(s, "/"):
		t.errorf(t.line("path"), `path %q must start with "/"`, s)
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		t.errorf(t.line("path"), "path %q cannot contain spaces or control characters; escape them as in a URL (%%20)", s)
	}
	return s
}

// decodeBackends decodes the [[service.backend]] tables of s, named
// `service "web" backend 2` in messages; a repeated address is an error at
// the repeat.
func decodeBackends(t *table, s *Service) []Backend {
	ts := t.tables("backend")
	if len(ts) == 0 {
		return nil
	}
	for _, b := range ts {
		b.name = t.name + " " + b.name
	}
	if len(ts) > maxBackends {
		ts[maxBackends].errorf(ts[maxBackends].pos.at(), "a service has at most %d backends", maxBackends)
	}
	decode := func(b *table) Backend { return decodeBackend(b, s) }
	return decodeUnique(ts, "backend", decode, func(b Backend) (netip.AddrPort, string) {
		return b.Address, fmt.Sprintf("address (%s)", b.Address)
	})
}

// decodeBackend decodes one [[service.backend]] of s and checks it against
// the vip and forward of s.
func decodeBackend(t *table, s *Service) Backend {
	b := Backend{Weight: 1, Line: t.pos.at()}
	b.Address = decodeEndpoint(t, "address")
	if !t.has("address") {
		t.errorf(t.pos.at(), "address is required")
	}
	if n, ok := t.integer("weight", 0, maxWeight); ok {
		b.Weight = int(n)
	}
	if b.Address.IsValid() && s.VIP.IsValid() {
		checkBackendAddr(t, s, b.Address)
	}
	t.unknownKeys()
	return b
}

// checkBackendAddr checks a backend's address against the service: the
// VIP's family, since the router translates within one; and with DR and
// tunnel, the VIP's port, since they hand the packet over with its
// transport header untouched.
func checkBackendAddr(t *table, s *Service, a netip.AddrPort) {
	switch {
	case a.Addr().Is4() != s.VIP.Addr().Is4():
		t.errorf(t.line("address"), "address %s is not the same IP family as vip %s", a, s.VIP)
	case samePort[s.Forward] != "" && a.Port() != s.VIP.Port():
		t.errorf(t.line("address"), "address %s: port %d is not the vip's, %d; forward = %q (%s) does not rewrite ports",
			a, a.Port(), s.VIP.Port(), s.Forward, samePort[s.Forward])
	}
}

// resolveServices checks each service against the forwards and the
// interfaces: a vip is not also a forward's listen endpoint; a backend is
// another host than the router; and a DR backend is on an Ethernet link,
// where the router can hand it the frame.
func resolveServices(errs *errorList, c *Config) {
	for i := range c.Service {
		s := &c.Service[i]
		name := serviceLabel(c.Service, i)
		for j, f := range c.Forward {
			if s.VIP.IsValid() && s.VIP == f.Listen && s.Proto == f.Proto {
				errs.errorf(0, "%s: vip %s (%s) is the listen endpoint of forward %d; an endpoint is either forwarded or balanced",
					name, s.VIP, protoName(s.Proto), j+1)
			}
		}
		for j, b := range s.Backends {
			if b.Address.IsValid() {
				resolveBackend(errs, c.Interface, s, b.Address.Addr(), fmt.Sprintf("%s backend %d", name, j+1))
			}
		}
	}
}

// resolveBackend checks one backend's address a against the interfaces.
func resolveBackend(errs *errorList, ifs []Interface, s *Service, a netip.Addr, name string) {
	if own := findInterface(ifs, func(in *Interface) bool { return isOwn(in, a) }); own != nil {
		errs.errorf(0, "%s: address %s is the router's own address on interface %q; a backend is another host", name, a, own.Name)
		return
	}
	if s.Forward != ForwardDR {
		return
	}
	const format = `%s: forward = "dr" needs the backend on an Ethernet link: %s is on %s`
	in := findInterface(ifs, func(in *Interface) bool { return holds(in, a) })
	switch {
	case in == nil:
		errs.errorf(0, format, name, a, "no interface's link")
	case in.Kind != KindTAP:
		errs.errorf(0, format, name, a, fmt.Sprintf("%s interface %q", in.Kind, in.Name))
	default:
		if err := onLink(in, a); err != nil {
			errs.errorf(0, "%s: address %v", name, err)
		}
	}
}

// serviceLabel names service i in cross-table messages.
func serviceLabel(svcs []Service, i int) string {
	if checkServiceName(svcs[i].Name) != nil {
		return fmt.Sprintf("service %d", i+1)
	}
	return fmt.Sprintf("service %q", svcs[i].Name)
}
