package main

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tungate/tungate/router"
)

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.toml", "[[interface]]\nname = \"lan0\"\naddresses = [\"192.168.46.1/24\"]\n\n[conntrack]\nudp = \"1m\"\n")
	filtered := write("filter.toml", "[[interface]]\nname = \"wan0\"\naddresses = [\"198.18.0.8/24\"]\n"+
		"[filter]\npolicy = \"drop\"\n[[filter.rule]]\nin = \"wan0\"\nproto = \"tcp\"\ndport = \"22,80\"\nstate = [\"new\"]\naction = \"accept\"\nlog = true\n")
	bad := write("bad.toml", "[[interface]]\nname = \"lan0\"\naddresses = [\"192.168.46.1/24\"]\nbogus = 1\n")
	tests := []struct {
		args   []string
		code   int
		stdout string // a line it must contain
		stderr string
	}{
		{args: nil, code: 2, stderr: "usage: tungate COMMAND"},
		{args: []string{"frobnicate"}, code: 2, stderr: `unknown command "frobnicate"`},
		{args: []string{"capture"}, code: 2, stderr: "tungate capture: name the interface"},
		{args: []string{"capture", "lan0", "-c", "-1"}, code: 2, stderr: "tungate capture: -c must be 0 or more"},
		{args: []string{"check"}, code: 2, stderr: "takes -c FILE"},
		{args: []string{"check", "-c", bad}, code: 1, stderr: bad + `:4: interface "lan0": unknown key "bogus"`},
		{args: []string{"check", "-c", good}, code: 0, stdout: "pipeline: validate -> local -> dnat -> route -> filter -> ttl -> snat -> neighbor"},
		{args: []string{"check", "-c", good}, code: 0, stdout: "warning: conntrack udp 1m0s is below"},
		{args: []string{"check", "-c", filtered}, code: 0, stdout: "filter (first match wins, else drop):\n  1  in wan0 proto 6 dport [22 80] state new -> log accept\n"},
		{args: []string{"routes", "--socket", filepath.Join(dir, "none.sock")}, code: 1, stderr: "is tungate running?"},
		{args: []string{"version"}, code: 0, stdout: "tungate "},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(tc.args, &stdout, &stderr); code != tc.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tc.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", stdout.String(), tc.stdout)
			}
			if !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("stderr %q lacks %q", stderr.String(), tc.stderr)
			}
		})
	}
}

func TestPrintRoutes(t *testing.T) {
	var b bytes.Buffer
	printRoutes(&b, []router.RouteInfo{
		{Destination: netip.MustParsePrefix("0.0.0.0/0"), Gateway: netip.MustParseAddr("198.18.0.1"), Metric: 100, Iface: "wan0"},
		{Destination: netip.MustParsePrefix("192.168.46.0/24"), Iface: "lan0", Use: 7},
		{Destination: netip.MustParsePrefix("10.9.9.9/32"), Iface: "lan0"},
		{Destination: netip.MustParsePrefix("fd46::/64"), Iface: "lan0"},
	})
	for _, want := range []string{
		"0.0.0.0      198.18.0.1 0.0.0.0         UG    100    0   wan0",
		"192.168.46.0 0.0.0.0    255.255.255.0   U     0      7   lan0",
		"10.9.9.9     0.0.0.0    255.255.255.255 UH    0      0   lan0",
		"fd46::/64   ::       U    0   0   lan0",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("route -n output lacks %q:\n%s", want, b.String())
		}
	}
}
