package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tungate/tungate/e2e/netns"
)

// Tests of tungate with least privilege: as an unprivileged user with
// only CAP_NET_ADMIN, and with TUN devices a privileged parent opened and
// handed in, with no capability at all. Each runs `tungate run` as nobody
// (uid 65534) in a namespace of its own, between a LAN and a WAN host
// whose ends of the devices the test, as root, sets up.

const nobody = 65534

// unprivileged is a tungate run as nobody in namespace core.
type unprivileged struct {
	cmd    *exec.Cmd
	socket string
	log    *strings.Builder
}

// nobodysDir makes a directory nobody owns, with config, after a [router]
// table naming the admin socket there, in tungate.toml, and a TUN clone
// device node anyone may open: distributions make /dev/net/tun 0666; where
// it is not, tungate runs in a mount namespace of its own where this node
// stands in for it, and the machine's stays as it is.
func nobodysDir(t *testing.T, config string) (socket, file, node string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tungate-nobody")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket, file, node = filepath.Join(dir, "admin.sock"), filepath.Join(dir, "tungate.toml"), filepath.Join(dir, "tun")
	if err := os.WriteFile(file, fmt.Appendf(nil, "[router]\nadmin_socket = %q\n%s", socket, config), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(node, unix.S_IFCHR|0o666, int(unix.Mkdev(10, 200))); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		mode os.FileMode // set past the umask
	}{{dir, 0o755}, {node, 0o666}, {file, 0o644}} {
		if err := os.Chmod(f.path, f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(f.path, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	return socket, file, node
}

// runAsNobody runs tungate on config in core as nobody through setpriv
// with the capability flags given, handing in files as fds 3, 4, ...; it
// waits (10 s at most) for the admin socket.
func runAsNobody(t *testing.T, core, config string, capFlags []string, files ...*os.File) *unprivileged {
	t.Helper()
	socket, file, node := nobodysDir(t, config)
	u := &unprivileged{socket: socket, log: &strings.Builder{}}
	argv := []string{"unshare", "--mount", "--propagation", "private", "sh", "-c", `mount --bind "$0" /dev/net/tun && exec "$@"`, node,
		"setpriv", fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups"}
	argv = append(argv, capFlags...)
	// ip netns exec, unshare, sh and setpriv each exec the next: the
	// process is tungate's, and SIGTERM reaches it.
	u.cmd = netns.Command(context.Background(), core, append(argv, tungateBin, "run", "-c", file)...)
	u.cmd.Stdout, u.cmd.Stderr = u.log, u.log
	u.cmd.ExtraFiles = files
	runTungate(t, u.cmd, u.socket, u.log)
	return u
}

// capabilities is the CapEff line of the process's status.
func (u *unprivileged) capabilities(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", u.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no CapEff in %s", status)
	return ""
}

// checkSocket checks the admin socket is nobody's and only nobody's.
func (u *unprivileged) checkSocket(t *testing.T) {
	t.Helper()
	fi, err := os.Stat(u.socket)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode().Perm() != 0o600 || st.Uid != nobody {
		t.Errorf("admin socket mode %v owner %d, want 0600 and %d", fi.Mode().Perm(), st.Uid, nobody)
	}
}

// attach moves device dev from core into host's namespace with addr, up,
// with a default route via gw: what a container runtime does with the
// router's devices.
func attach(t *testing.T, core, dev string, host *Host, addr, gw string) {
	t.Helper()
	for _, argv := range [][]string{
		{"ip", "-n", core, "link", "set", "dev", dev, "netns", host.Netns},
		{"ip", "-n", host.Netns, "addr", "add", addr, "dev", dev},
		{"ip", "-n", host.Netns, "link", "set", "dev", dev, "up"},
		{"ip", "-n", host.Netns, "route", "add", "default", "via", gw},
	} {
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
	}
}

// pingAcross pings the WAN host from the LAN host through tungate.
func pingAcross(t *testing.T, lan *Host) {
	t.Helper()
	if out := lan.Run(t, "ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.1"); !strings.Contains(out, " 0% packet loss") {
		t.Errorf("ping through tungate:\n%s", out)
	}
}

// TestUnprivilegedWithNetAdmin: tungate as nobody with CAP_NET_ADMIN alone
// (ambient, as setpriv or a systemd unit gives it) creates its devices,
// routes between the hosts, keeps only CAP_NET_ADMIN (bit 12) and serves
// its admin socket as nobody's, mode 0600.
func TestUnprivilegedWithNetAdmin(t *testing.T) {
	t.Parallel()
	topo := New(t)
	core, lanNS, wanNS := topo.Netns("rt"), topo.Netns("lan"), topo.Netns("wan")
	lanDev, wanDev := topo.Name("l"), topo.Name("w")
	u := runAsNobody(t, core, fmt.Sprintf(`
[[interface]]
name = %q
addresses = ["192.168.46.1/24"]
[[interface]]
name = %q
addresses = ["198.18.0.8/24"]
`, lanDev, wanDev), []string{"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin"})
	lan, wan := &Host{Netns: lanNS}, &Host{Netns: wanNS}
	attach(t, core, lanDev, lan, "192.168.46.2/24", "192.168.46.1")
	attach(t, core, wanDev, wan, "198.18.0.1/24", "198.18.0.8")
	pingAcross(t, lan)
	if got := u.capabilities(t); got != "0000000000001000" {
		t.Errorf("tungate's effective capabilities %s, want CAP_NET_ADMIN alone (0000000000001000)", got)
	}
	u.checkSocket(t)
}

// openTUN opens a new TUN device called name in namespace ns, as a
// privileged parent does before it hands the fd to tungate.
func openTUN(t *testing.T, ns, name string) *os.File {
	t.Helper()
	var f *os.File
	err := netns.Do(ns, func() error {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			unix.Close(fd)
			return err
		}
		ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
		if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
			unix.Close(fd)
			return err
		}
		f = os.NewFile(uintptr(fd), name)
		return nil
	})
	if err != nil {
		t.Fatalf("TUN %s in %s: %v", name, ns, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestHandedInFDs: with TUN devices opened and handed in by a privileged
// parent (fd = 3 and fd = 4), tungate as nobody needs no capability at
// all, and routes.
func TestHandedInFDs(t *testing.T) {
	t.Parallel()
	topo := New(t)
	core, lanNS, wanNS := topo.Netns("rt"), topo.Netns("lan"), topo.Netns("wan")
	lanDev, wanDev := topo.Name("l"), topo.Name("w")
	files := []*os.File{openTUN(t, core, lanDev), openTUN(t, core, wanDev)}
	u := runAsNobody(t, core, fmt.Sprintf(`
[[interface]]
name = %q
fd = 3
addresses = ["192.168.46.1/24"]
[[interface]]
name = %q
fd = 4
addresses = ["198.18.0.8/24"]
`, lanDev, wanDev), []string{"--inh-caps=-all", "--bounding-set=-all"}, files...)
	lan, wan := &Host{Netns: lanNS}, &Host{Netns: wanNS}
	attach(t, core, lanDev, lan, "192.168.46.2/24", "192.168.46.1")
	attach(t, core, wanDev, wan, "198.18.0.1/24", "198.18.0.8")
	pingAcross(t, lan)
	if got := u.capabilities(t); got != "0000000000000000" {
		t.Errorf("tungate's effective capabilities %s, want none", got)
	}
	u.checkSocket(t)
}

// TestUserNamespace: an unprivileged user runs tungate in a user and
// network namespace of its own (unshare --user --map-root-user --net),
// where it is root over that namespace alone; the kernel side of its LAN
// device, configured by tungate there, pings the router's address through
// it.
func TestUserNamespace(t *testing.T) {
	t.Parallel()
	New(t) // root, or a skip (a failure under CI)
	socket, config, node := nobodysDir(t, `
[[interface]]
name = "lan0"
addresses = ["192.168.46.1/24"]
peer = ["192.168.46.2/24"]
`)
	// Inside: start tungate, wait for its socket, ping, stop it.
	script := fmt.Sprintf(`mount --bind %[1]s /dev/net/tun || exit 1
%[2]s run -c %[3]s & pid=$!
for i in $(seq 50); do [ -S %[4]s ] && break; sleep 0.1; done
ping -c 2 -i 0.2 -W 2 192.168.46.1; status=$?
kill $pid; wait $pid; exit $status`, node, tungateBin, config, socket)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "setpriv", fmt.Sprintf("--reuid=%d", nobody), fmt.Sprintf("--regid=%d", nobody), "--clear-groups",
		"--inh-caps=-all", "--bounding-set=-all", "unshare", "--user", "--map-root-user", "--net", "--mount", "sh", "-c", script).CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 0% packet loss") {
		t.Errorf("tungate in a user namespace: %v\n%s", err, out)
	}
}
