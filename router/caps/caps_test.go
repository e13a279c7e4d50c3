package caps

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestKeep runs Keep in a child process (capabilities once dropped do not
// come back) and reads what the kernel says of the child afterwards.
func TestKeep(t *testing.T) {
	if os.Getenv("CAPS_TEST_CHILD") == "1" {
		left, err := Keep(NetAdmin)
		switch {
		case errors.Is(err, ErrCgo):
			os.Stdout.WriteString("cgo\n")
		case err != nil:
			os.Stdout.WriteString("error: " + err.Error() + "\n")
		default:
			status, _ := os.ReadFile("/proc/self/status")
			os.Stdout.WriteString(strings.Join(capLines(string(status)), "\n") + "\n")
			if len(left) != 1 || left[0] != NetAdmin {
				os.Stdout.WriteString("left: wrong\n")
			}
		}
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the child must hold capabilities to drop")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestKeep$")
	cmd.Env = append(os.Environ(), "CAPS_TEST_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// This package links no cgo (the runtime's cgo comes with packages
	// such as net, and with the race detector), so Keep must work here
	// whatever CGO_ENABLED says, and refuse under -race.
	got := string(out)
	if raceEnabled {
		if !strings.Contains(got, "cgo") {
			t.Errorf("with cgo linked (-race), Keep must return ErrCgo; the child said:\n%s", got)
		}
		return
	}
	// CAP_NET_ADMIN is bit 12: 0x1000. Root may drop from the bounding
	// set (it has CAP_SETPCAP), so that goes down to it too.
	for _, want := range []string{"CapInh:\t0000000000000000", "CapPrm:\t0000000000001000", "CapEff:\t0000000000001000", "CapBnd:\t0000000000001000", "CapAmb:\t0000000000000000"} {
		if !strings.Contains(got, want) {
			t.Errorf("want %q; the child's capabilities:\n%s", want, got)
		}
	}
	if strings.Contains(got, "left: wrong") || strings.Contains(got, "error:") {
		t.Errorf("child: %s", got)
	}
}

func capLines(status string) []string {
	var out []string
	for line := range strings.SplitSeq(status, "\n") {
		if strings.HasPrefix(line, "Cap") {
			out = append(out, line)
		}
	}
	return out
}
