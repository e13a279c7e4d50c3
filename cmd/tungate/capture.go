package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/admin"
)

// cmdCapture streams what the running router reads and writes on an
// interface as pcap, to stdout or -w FILE, until -c N packets or an
// interrupt: `tungate capture lan0 -c 10 -w lan0.pcap`, or piped into
// `tcpdump -r -`. (-c is the count here, as in tcpdump; the socket is
// named with --socket.)
func cmdCapture(args []string, stdout io.Writer) error {
	var iface string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		iface, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("capture", flag.ContinueOnError)
	socket := fs.String("socket", config.DefaultAdminSocket, "admin socket `PATH`")
	file := fs.String("w", "", "write the pcap to `FILE` instead of stdout")
	count := fs.Int("c", 0, "stop after `N` packets (0: until interrupted)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if iface == "" && fs.NArg() > 0 {
		iface = fs.Arg(0)
	}
	switch {
	case iface == "":
		return usageError{"name the interface: tungate capture IFACE [-w FILE] [-c N]"}
	case *count < 0:
		return usageError{"-c must be 0 or more"}
	}
	out := stdout
	if *file != "" {
		f, err := os.Create(*file)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	path := fmt.Sprintf("/capture?iface=%s&count=%d", url.QueryEscape(iface), *count)
	// Unbuffered: a capture is read as it happens (tcpdump -r - on a pipe).
	return admin.NewClient(*socket).Stream(ctx, path, out)
}
