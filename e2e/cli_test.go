package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tungate/tungate/router"
)

// tungateBin is the tungate binary, built once by TestMain.
var tungateBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tungate-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Others may run it: the tests of least privilege run it as nobody.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tungateBin = filepath.Join(dir, "tungate")
	// Built as released: static, without cgo, so that it can narrow its
	// capabilities (router/caps).
	build := exec.Command("go", "build", "-o", tungateBin, "../cmd/tungate")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tungate:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// daemon is `tungate run` in its own process, as a user runs it.
type daemon struct {
	config, socket string
	cmd            *exec.Cmd
	log            *bytes.Buffer
}

// startDaemon writes config to a file and runs tungate on it until the
// test ends; it waits (at most 10 s) for the admin socket.
func startDaemon(t *testing.T, config string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{config: filepath.Join(dir, "tungate.toml"), socket: filepath.Join(dir, "admin.sock"), log: &bytes.Buffer{}}
	d.writeConfig(t, config)
	d.cmd = exec.Command(tungateBin, "run", "-c", d.config)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	runTungate(t, d.cmd, d.socket, d.log)
	return d
}

// runTungate starts cmd, a `tungate run` whose output goes to log, and
// waits (10 s at most) for its admin socket; when the test ends it stops
// it with SIGTERM, and kills it if it has not stopped 10 s later.
func runTungate(t *testing.T, cmd *exec.Cmd, socket string, log fmt.Stringer) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Error("tungate did not stop within 10 s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("tungate log:\n%s", log)
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(socket); err == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("tungate exited: %v\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no admin socket after 10 s\n%s", log)
		}
	}
}

func (d *daemon) writeConfig(t *testing.T, config string) {
	t.Helper()
	config = strings.ReplaceAll(config, "SOCKET", d.socket)
	if err := os.WriteFile(d.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tungate runs an inspection command against the daemon.
func (d *daemon) tungate(args ...string) (string, error) {
	out, err := exec.Command(tungateBin, append(args, "--socket", d.socket)...).CombinedOutput()
	return string(out), err
}

func (d *daemon) stats(t *testing.T) router.Stats {
	t.Helper()
	out, err := d.tungate("stats", "--json")
	if err != nil {
		t.Fatalf("tungate stats --json: %v\n%s", err, out)
	}
	var st router.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("tungate stats --json: %v\n%s", err, out)
	}
	return st
}

// daemonConfig is hopConfig for `tungate run`: the devices get unique
// names and are moved into the hosts' namespaces by tungate itself.
func daemonConfig(topo *Topology, lan, wan string, extra string) string {
	return fmt.Sprintf(`
[router]
admin_socket = "SOCKET"

[[interface]]
name = "%s"
addresses = ["192.168.46.1/24", "fd46::1/64"]
netns = "%s"
peer = ["192.168.46.2/24", "fd46::2/64"]

[[interface]]
name = "%s"
addresses = ["198.18.0.8/24", "fd18::8/64"]
netns = "%s"
peer = ["198.18.0.1/24", "fd18::1/64"]
%s`, topo.Name("l"), lan, topo.Name("w"), wan, extra)
}

// malformed sends, with scapy from inside the LAN host, one packet per
// reason the validate and ttl stages count. AF_PACKET on a TUN device
// sends the bytes as they are: a raw IP socket would fix the checksum and
// total length.
const malformed = `
import sys
from scapy.all import IP, UDP, Raw, sendp

def ip(**fields):
    return IP(src="192.168.46.2", dst="198.18.0.1", **fields)/UDP(sport=1000, dport=2000)/Raw(b"x" * 32)

for p in [
    bytes(ip())[:12],          # truncated
    bytes(ip(chksum=0x1234)),  # bad_checksum
    bytes(ip(ihl=4)),          # bad_header_length
    bytes(ip(len=2000)),       # bad_total_length
    bytes(ip(ttl=1)),          # ttl_exceeded
]:
    sendp(Raw(p), iface=sys.argv[1], verbose=0)
`

func TestDaemonCountsMalformedPackets(t *testing.T) {
	topo := New(t)
	lanNS, wanNS := topo.Netns("lan"), topo.Netns("wan")
	d := startDaemon(t, daemonConfig(topo, lanNS, wanNS, ""))
	lan := &Host{Netns: lanNS}
	lan.Run(t, "ping", "-c", "1", "-W", "2", "198.18.0.1")

	before := d.stats(t)
	lan.Run(t, "/usr/bin/python3", "-c", malformed, topo.Name("l"))
	// The router keeps forwarding after them.
	lan.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.1")
	after := d.stats(t)
	for _, reason := range []string{"truncated", "bad_checksum", "bad_header_length", "bad_total_length", "ttl_exceeded"} {
		if got := after.Drops[reason] - before.Drops[reason]; got != 1 {
			t.Errorf("drops[%s] went up by %d, want 1 (stats: %v)", reason, got, after.Drops)
		}
	}
}

func TestDaemonRoutesAndReload(t *testing.T) {
	topo := New(t)
	lanNS, wanNS := topo.Netns("lan"), topo.Netns("wan")
	d := startDaemon(t, daemonConfig(topo, lanNS, wanNS, ""))
	lan := &Host{Netns: lanNS}

	out, err := d.tungate("routes")
	if err != nil || !strings.Contains(out, "192.168.46.0") || !strings.Contains(out, "fd18::/64") {
		t.Fatalf("tungate routes (%v):\n%s", err, out)
	}
	if out, err := lan.Try("ping", "-c", "1", "-W", "2", "203.0.113.1"); err == nil || !strings.Contains(out, "Net Unreachable") {
		t.Fatalf("want 203.0.113.1 unreachable before the reload (%v):\n%s", err, out)
	}

	// A route added by reload is used at once.
	d.writeConfig(t, daemonConfig(topo, lanNS, wanNS, `
[[route]]
to = "203.0.113.0/24"
via = "198.18.0.1"
metric = 10
`))
	if out, err := d.tungate("reload"); err != nil {
		t.Fatalf("tungate reload: %v\n%s", err, out)
	}
	if out, _ := d.tungate("routes"); !strings.Contains(out, "203.0.113.0") || !strings.Contains(out, "UG") {
		t.Errorf("route missing after reload:\n%s", out)
	}
	(&Host{Netns: wanNS}).Run(t, "ip", "addr", "add", "203.0.113.1/32", "dev", "lo")
	lan.Run(t, "ping", "-c", "1", "-W", "2", "203.0.113.1")

	// An invalid file is refused with its line, and the old config runs on.
	d.writeConfig(t, daemonConfig(topo, lanNS, wanNS, "\n[[route]]\nto = \"bogus\"\ndev = \"x\"\n"))
	out, err = d.tungate("reload")
	if err == nil || !strings.Contains(out, "tungate.toml:") {
		t.Errorf("want the reload refused with file:line, got (%v): %s", err, out)
	}
	lan.Run(t, "ping", "-c", "1", "-W", "2", "203.0.113.1")
}
