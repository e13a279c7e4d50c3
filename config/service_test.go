package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tungate/tungate/lb"
)

// lbIfaces are a tap link for direct routing, a tun link and an uplink,
// to build service cases on; the next line is 11.
const lbIfaces = `[[interface]]
name = "lan0"
kind = "tap"
addresses = ["192.168.47.1/24", "fd47::1/64"]
[[interface]]
name = "lan1"
addresses = ["192.168.46.1/24"]
[[interface]]
name = "wan0"
addresses = ["18.18.18.8/24", "2001:db8::8/64"]
`

func TestServiceDefaults(t *testing.T) {
	c, err := Parse("t.toml", []byte(lbIfaces+`[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
`))
	if err != nil {
		t.Fatal(err)
	}
	// SPEC's defaults, spelled out, as for [arp]; wlc is IPVS's.
	want := Service{
		Name:      "web",
		VIP:       netip.MustParseAddrPort("18.18.18.100:80"),
		Proto:     ProtoTCP,
		Scheduler: "wlc",
		Forward:   ForwardNAT,
		Health:    Health{Check: "tcp", Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
		Line:      11,
	}
	if len(c.Service) != 1 || !reflect.DeepEqual(c.Service[0], want) {
		t.Errorf("services = %+v, want %+v", c.Service, want)
	}
	if DefaultHealth != want.Health {
		t.Errorf("DefaultHealth = %+v, want %+v", DefaultHealth, want.Health)
	}
}

// TestParseServices: SPEC's example, a direct-routing IPv6 service with
// an HTTP check, a tunnel, and a service without backends on a forward's
// endpoint with the other protocol.
func TestParseServices(t *testing.T) {
	c, err := Parse("t.toml", []byte(lbIfaces+`[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
scheduler = "maglev"          # rr | wrr | lc | wlc | sh | maglev
forward = "nat"               # nat (LVS-NAT) | dr (direct routing, MAC rewrite) | tunnel (IP-in-IP)
persistence = "0s"            # client affinity window; 0 = off
  [service.health]
  check = "tcp"               # tcp | http | none
  interval = "2s"
  timeout = "1s"
  rise = 2
  fall = 3
  # path = "/healthz"          # http only; 2xx/3xx is healthy
  [[service.backend]]
  address = "192.168.47.11:80"
  weight = 1
  [[service.backend]]
  address = "192.168.47.12:80"
  weight = 2

[[service]]
name = "api.v2_x-1"
vip = "[2001:db8::100]:443"
proto = "tcp"
scheduler = "sh"
forward = "dr"
persistence = "5m"
  [service.health]
  check = "http"
  interval = "500ms"
  timeout = "500ms"
  rise = 1
  fall = 100
  path = "/healthz?full=1"
  [[service.backend]]
  address = "[fd47::11]:443"
  weight = 0
  [[service.backend]]
  address = "[fd47::12]:443"
  weight = 65535

[[service]]
name = "dns"
vip = "18.18.18.100:53"
proto = "udp"
forward = "tunnel"
health = { check = "none" }
backend = [{ address = "10.9.0.53:53" }, { address = "192.168.46.53:53" }]

[[service]]
name = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
vip = "18.18.18.8:80"
proto = "udp"
health = { check = "http" }

[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:80"
to = "192.168.46.10:80"
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{{
		Name:      "web",
		VIP:       netip.MustParseAddrPort("18.18.18.100:80"),
		Proto:     ProtoTCP,
		Scheduler: "maglev",
		Forward:   ForwardNAT,
		Health:    Health{Check: CheckTCP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
		Backends: []Backend{
			{Address: netip.MustParseAddrPort("192.168.47.11:80"), Weight: 1, Line: 25},
			{Address: netip.MustParseAddrPort("192.168.47.12:80"), Weight: 2, Line: 28},
		},
		Line: 11,
	}, {
		Name:        "api.v2_x-1",
		VIP:         netip.MustParseAddrPort("[2001:db8::100]:443"),
		Proto:       ProtoTCP,
		Scheduler:   "sh",
		Forward:     ForwardDR,
		Persistence: 5 * time.Minute,
		Health:      Health{Check: CheckHTTP, Interval: 500 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 100, Path: "/healthz?full=1"},
		Backends: []Backend{
			{Address: netip.MustParseAddrPort("[fd47::11]:443"), Weight: 0, Line: 46},
			{Address: netip.MustParseAddrPort("[fd47::12]:443"), Weight: 65535, Line: 49},
		},
		Line: 32,
	}, {
		Name:      "dns",
		VIP:       netip.MustParseAddrPort("18.18.18.100:53"),
		Proto:     ProtoUDP,
		Scheduler: "wlc",
		Forward:   ForwardTunnel,
		Health:    Health{Check: CheckNone, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3},
		Backends: []Backend{
			{Address: netip.MustParseAddrPort("10.9.0.53:53"), Weight: 1, Line: 59},
			{Address: netip.MustParseAddrPort("192.168.46.53:53"), Weight: 1, Line: 59},
		},
		Line: 53,
	}, {
		Name:      strings.Repeat("a", 64),
		VIP:       netip.MustParseAddrPort("18.18.18.8:80"),
		Proto:     ProtoUDP,
		Scheduler: "wlc",
		Forward:   ForwardNAT,
		Health:    Health{Check: CheckHTTP, Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Path: "/"},
		Line:      61,
	}}
	if !reflect.DeepEqual(c.Service, want) {
		t.Errorf("got  %+v\nwant %+v", c.Service, want)
	}
}

// TestSchedulersMirrorLB: config names the schedulers and the weight bound
// without importing lb; they must be lb's.
func TestSchedulersMirrorLB(t *testing.T) {
	got := strings.Join(schedulers, " ")
	for _, n := range lb.Names() {
		if !strings.Contains(" "+got+" ", " "+n+" ") {
			t.Errorf("scheduler %q of lb is missing from %q", n, got)
		}
	}
	if len(schedulers) != len(lb.Names()) {
		t.Errorf("schedulers = %q, lb.Names() = %q", schedulers, lb.Names())
	}
	if maxWeight != lb.MaxWeight {
		t.Errorf("maxWeight = %d, lb.MaxWeight = %d", maxWeight, lb.MaxWeight)
	}
}

func TestServiceName(t *testing.T) {
	for _, s := range []string{"web", "a", "A.b-c_9", "...", strings.Repeat("x", 64)} {
		if err := checkServiceName(s); err != nil {
			t.Errorf("checkServiceName(%q) = %v", s, err)
		}
	}
	for _, s := range []string{"", ".", "..", strings.Repeat("x", 65), "a/b", "a b", "a%20", "é", "a?b", "a\x00"} {
		if checkServiceName(s) == nil {
			t.Errorf("checkServiceName(%q) accepted", s)
		}
	}
}

// TestTooManyBackends: lb.New takes at most maxBackends; check must say
// so rather than the router at start.
func TestTooManyBackends(t *testing.T) {
	var b strings.Builder
	b.WriteString(natIfaces + "[[service]]\nname = \"web\"\nvip = \"18.18.18.100:80\"\nproto = \"tcp\"\nbackend = [\n")
	for i := range maxBackends + 1 {
		fmt.Fprintf(&b, "{address = \"10.%d.%d.%d:80\"},\n", i>>16, i>>8&0xff, i&0xff)
	}
	b.WriteString("]\n")
	_, err := Parse("tungate.toml", []byte(b.String()))
	want := fmt.Sprintf(`tungate.toml:%d: service "web" backend %d: a service has at most %d backends`, 12+maxBackends, maxBackends+1, maxBackends)
	if err == nil || err.Error() != want {
		t.Errorf("Parse = %v, want %s", err, want)
	}
}

// TestServiceErrors lists service configs and the complete error output
// each must give, line by line, as TestParseErrors does.
func TestServiceErrors(t *testing.T) {
	tests := []struct {
		name string
		toml string
		want []string
	}{
		{"service values", natIfaces + `[[service]]
[[service]]
name = "a b"
vip = "18.18.18.100"
proto = "icmp"
scheduler = "fast"
forward = "masq"
persistence = "-1s"
bogus = 1
[[service]]
name = ".."
vip = "[fe80::1%wan0]:80"
proto = 6
persistence = "1"
[[service]]
name = "` + strings.Repeat("a", 65) + `"
vip = "18.18.18.100:0"
proto = "tcp"
[[service]]
name = ""
vip = "224.0.0.1:80"
proto = "udp"
[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
scheduler = "wlc "
`, []string{
			"tungate.toml:7: service 1: name is required",
			"tungate.toml:7: service 1: vip is required",
			"tungate.toml:7: service 1: proto is required",
			`tungate.toml:9: service 2: name "a b" may hold only ASCII letters, digits, '-', '_' and '.', as it is part of the admin API's URLs`,
			`tungate.toml:10: service 2: vip "18.18.18.100" is not ip:port, like "18.18.18.8:8080" or "[fd18::8]:8080"`,
			`tungate.toml:11: service 2: proto "icmp" must be "tcp" or "udp"`,
			`tungate.toml:12: service 2: scheduler "fast" must be one of rr, wrr, lc, wlc, sh, maglev`,
			`tungate.toml:13: service 2: forward "masq" must be one of nat, dr, tunnel`,
			`tungate.toml:14: service 2: persistence "-1s" must not be negative; "0s" turns it off`,
			`tungate.toml:15: service 2: unknown key "bogus"`,
			`tungate.toml:17: service 3: name ".." is not a name: URLs take it for a directory`,
			"tungate.toml:18: service 3: vip fe80::1%wan0: a translated address takes no zone",
			"tungate.toml:19: service 3: proto must be a string, not the integer 6",
			`tungate.toml:20: service 3: persistence "1" is not a duration: missing unit; write it like "30s" or "2h4m"`,
			`tungate.toml:22: service 4: name "` + strings.Repeat("a", 65) + `" is 65 bytes; at most 64, as it is part of the admin API's URLs`,
			"tungate.toml:23: service 4: vip 18.18.18.100:0: port 0 is not a port; ports are 1..65535",
			`tungate.toml:26: service 5: name "" is empty`,
			"tungate.toml:27: service 5: vip 224.0.0.1 is a multicast address, not a unicast host address",
			`tungate.toml:33: service "web": scheduler "wlc " must be one of rr, wrr, lc, wlc, sh, maglev`,
		}},
		{"repeated services", natIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "udp"
[[service]]
name = "web2"
vip = "18.18.18.100:80"
proto = "tcp"
[[service]]
name = "web"
vip = "18.18.18.100:81"
proto = "tcp"
`, []string{
			`tungate.toml:11: service "web" is defined twice (first on line 7)`,
			`tungate.toml:17: service "web2": same vip (18.18.18.100:80) and proto (tcp) as service "web"`,
			`tungate.toml:19: service "web" is defined twice (first on line 7)`,
		}},
		{"health values", natIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
[service.health]
check = "icmp"
interval = "0s"
timeout = "x"
rise = 0
fall = 101
path = "/x"
retries = 3
[[service]]
name = "web2"
vip = "18.18.18.100:81"
proto = "tcp"
[service.health]
interval = "500ms"
path = "/"
[[service]]
name = "web3"
vip = "18.18.18.100:82"
proto = "tcp"
[service.health]
check = "http"
interval = "1s"
timeout = "2s"
path = "healthz"
[[service]]
name = "web4"
vip = "18.18.18.100:83"
proto = "tcp"
health = {check = "none", path = "/", timeout = "-1s"}
[[service]]
name = "web5"
vip = "18.18.18.100:84"
proto = "tcp"
health = {check = "http", path = "/a b\n"}
[[service]]
name = "web6"
vip = "18.18.18.100:85"
proto = "tcp"
health = {interval = "1", timeout = "3s"}
`, []string{
			`tungate.toml:12: service "web" health: check "icmp" must be one of tcp, http, none`,
			`tungate.toml:13: service "web" health: interval "0s" must be more than 0`,
			`tungate.toml:14: service "web" health: timeout "x" is not a duration; write it like "30s" or "2h4m"`,
			"tungate.toml:15: service \"web\" health: rise 0 is out of range 1..100",
			"tungate.toml:16: service \"web\" health: fall 101 is out of range 1..100",
			`tungate.toml:18: service "web" health: unknown key "retries"`,
			`tungate.toml:24: service "web2" health: timeout 1s is longer than interval 500ms; a probe must end before the next one starts`,
			`tungate.toml:25: service "web2" health: path is for check = "http" only; this check is "tcp"`,
			`tungate.toml:33: service "web3" health: timeout 2s is longer than interval 1s; a probe must end before the next one starts`,
			`tungate.toml:34: service "web3" health: path "healthz" must start with "/"`,
			`tungate.toml:39: service "web4" health: timeout "-1s" must be more than 0`,
			`tungate.toml:39: service "web4" health: path is for check = "http" only; this check is "none"`,
			`tungate.toml:44: service "web5" health: path "/a b\n" cannot contain spaces or control characters; escape them as in a URL (%20)`,
			// No word on the timeout against an interval that is not one.
			`tungate.toml:49: service "web6" health: interval "1" is not a duration: missing unit; write it like "30s" or "2h4m"`,
		}},
		{"backend values", natIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
[[service.backend]]
[[service.backend]]
address = "192.168.46.11"
weight = 65536
port = 80
[[service.backend]]
address = "[fd46::11]:80"
weight = -1
[[service.backend]]
address = "192.168.46.11:80"
[[service.backend]]
address = "192.168.46.11:80"
weight = 0
[[service.backend]]
address = "192.168.46.11:8080"
`, []string{
			`tungate.toml:11: service "web" backend 1: address is required`,
			`tungate.toml:13: service "web" backend 2: address "192.168.46.11" is not ip:port, like "18.18.18.8:8080" or "[fd18::8]:8080"`,
			`tungate.toml:14: service "web" backend 2: weight 65536 is out of range 0..65535`,
			`tungate.toml:15: service "web" backend 2: unknown key "port"`,
			`tungate.toml:17: service "web" backend 3: address [fd46::11]:80 is not the same IP family as vip 18.18.18.100:80`,
			`tungate.toml:18: service "web" backend 3: weight -1 is out of range 0..65535`,
			`tungate.toml:21: service "web" backend 5: same address (192.168.46.11:80) as backend 4`,
		}},
		{"direct routing and tunnels", lbIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
forward = "dr"
[[service.backend]]
address = "192.168.47.11:8080"
[[service.backend]]
address = "192.168.46.11:80"
[[service.backend]]
address = "10.0.0.11:80"
[[service.backend]]
address = "192.168.47.255:80"
[[service.backend]]
address = "192.168.47.1:80"
[[service.backend]]
address = "192.168.47.12:80"
[[service]]
name = "v6"
vip = "[2001:db8::100]:53"
proto = "udp"
forward = "tunnel"
[[service.backend]]
address = "[fd47::53]:53"
[[service]]
name = "tun4"
vip = "18.18.18.100:53"
proto = "udp"
forward = "tunnel"
[[service.backend]]
address = "10.0.0.53:5353"
[[service.backend]]
address = "[fd47::53]:53"
`, []string{
			`tungate.toml:17: service "web" backend 1: address 192.168.47.11:8080: port 8080 is not the vip's, 80; forward = "dr" (direct routing) does not rewrite ports`,
			`tungate.toml:32: service "v6": forward = "tunnel" carries IPv4 only (RFC 2003 IP-in-IP), and vip [2001:db8::100]:53 is IPv6`,
			`tungate.toml:41: service "tun4" backend 1: address 10.0.0.53:5353: port 5353 is not the vip's, 53; forward = "tunnel" (IP-in-IP) does not rewrite ports`,
			`tungate.toml:43: service "tun4" backend 2: address [fd47::53]:53 is not the same IP family as vip 18.18.18.100:53`,
			`tungate.toml: service "web" backend 2: forward = "dr" needs the backend on an Ethernet link: 192.168.46.11 is on tun interface "lan1"`,
			`tungate.toml: service "web" backend 3: forward = "dr" needs the backend on an Ethernet link: 10.0.0.11 is on no interface's link`,
			`tungate.toml: service "web" backend 4: address 192.168.47.255 is the broadcast address of 192.168.47.0/24`,
			`tungate.toml: service "web" backend 5: address 192.168.47.1 is the router's own address on interface "lan0"; a backend is another host`,
		}},
		{"services against forwards and interfaces", natIfaces + `[[forward]]
in = "wan0"
proto = "tcp"
listen = "18.18.18.8:80"
to = "192.168.46.10:80"
[[service]]
name = "web"
vip = "18.18.18.8:80"
proto = "tcp"
[[service.backend]]
address = "192.168.46.1:80"
[[service]]
name = "dns"
vip = "18.18.18.8:80"
proto = "udp"
[[service.backend]]
address = "18.18.18.8:80"
`, []string{
			`tungate.toml: service "web": vip 18.18.18.8:80 (tcp) is the listen endpoint of forward 1; an endpoint is either forwarded or balanced`,
			`tungate.toml: service "web" backend 1: address 192.168.46.1 is the router's own address on interface "lan0"; a backend is another host`,
			`tungate.toml: service "dns" backend 1: address 18.18.18.8 is the router's own address on interface "wan0"; a backend is another host`,
		}},
		{"services need the dnat stage", natIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
[pipeline]
stages = ["validate", "local", "route", "ttl", "neighbor"]
`, []string{
			`tungate.toml:12: pipeline: stage "dnat" is required by [[service]], to balance virtual services`,
		}},
		{"service tables of the wrong shape", natIfaces + `[[service]]
name = "web"
vip = "18.18.18.100:80"
proto = "tcp"
health = 1
[service.backend]
address = "192.168.46.11:80"
[[service]]
name = "web2"
vip = "18.18.18.100:81"
proto = "tcp"
backend = [1]
`, []string{
			`tungate.toml:11: service "web": health must be a table, [service.health], not the integer 1`,
			`tungate.toml:12: service "web": backend must be an array of tables, [[service.backend]], not a table`,
			`tungate.toml:18: service "web2": backend must be an array of tables, [[service.backend]]; element 1 is the integer 1`,
		}},
		{"service is an array of tables", "service = 1\n" + iface, []string{
			"tungate.toml:1: service must be an array of tables, [[service]], not the integer 1",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("tungate.toml", []byte(tt.toml))
			if err == nil {
				t.Fatalf("no error; config %+v", c)
			}
			checkErrorLines(t, err.Error(), tt.want)
		})
	}
}
