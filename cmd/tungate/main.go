// Command tungate is a userspace router on TUN devices. This file only
// wires subcommands to the packages that do the work, and prints.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
)

// usageError is a command line mistake: exit status 2, with usage.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	summary string
	run     func(args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"run":     {"run the router in the foreground (-c FILE)", cmdRun},
	"check":   {"validate a config file and print the resolved pipeline (-c FILE)", cmdCheck},
	"demo":    {"build a topology of namespaces, route real traffic through tungate, tear it down (root)", cmdDemo},
	"routes":  {"show the route table", cmdRoutes},
	"arp":     {"show the neighbor cache (ARP and NDP)", cmdARP},
	"nat":     {"show the NAT's connection table", cmdNAT},
	"lb":      {"show the load balancer's services and backends, ipvsadm -Ln --stats style (--rate for rates)", cmdLB},
	"capture": {"stream what an interface reads and writes as pcap: capture IFACE [-w FILE] [-c N]", cmdCapture},
	"stats":   {"show interface, stage and drop counters", cmdStats},
	"reload":  {"make the running router reload its config file", cmdReload},
	"version": {"print the version and dependency versions", cmdVersion},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tungate: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd.run(args[1:], stdout)
	var ue usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 2
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "tungate %s: %s\n", args[0], ue.msg)
		return 2
	default:
		fmt.Fprintf(stderr, "tungate %s: %s\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: tungate COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nInspection commands take --socket PATH (or -c FILE for its admin_socket) and --json.")
}
