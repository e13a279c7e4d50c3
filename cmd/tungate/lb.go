package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tungate/tungate/router"
)

// cmdLB prints the services as `ipvsadm -Ln --stats` does, with each
// backend's forwarding method, weight, connections and health; --rate
// prints per-second rates over one second instead of the totals, as
// `ipvsadm -Ln --rate` does.
func cmdLB(args []string, stdout io.Writer) error {
	var rate bool
	c, asJSON, err := inspectFlags("lb", args, func(fs *flag.FlagSet) {
		fs.BoolVar(&rate, "rate", false, "print rates per second, measured over one second")
	})
	if err != nil {
		return err
	}
	var raw []byte
	if err := c.Get("/services", &raw); err != nil {
		return err
	}
	var services []router.ServiceInfo
	if err := json.Unmarshal(raw, &services); err != nil {
		return err
	}
	if rate {
		time.Sleep(time.Second)
		var later []router.ServiceInfo
		if err := c.Get("/services", &later); err != nil {
			return err
		}
		services = rates(services, later)
	}
	if asJSON {
		out, err := json.MarshalIndent(services, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(stdout, "%s\n", out)
		return err
	}
	printServices(stdout, services, rate)
	return nil
}

// rates turns two samples one second apart into rates: the counters of
// later less those of before, by service and backend.
func rates(before, later []router.ServiceInfo) []router.ServiceInfo {
	type key struct{ service, backend string }
	was := map[key]router.Counters{}
	for _, s := range before {
		was[key{s.Name, ""}] = s.Counters
		for _, b := range s.Backends {
			was[key{s.Name, b.Address.String()}] = b.Counters
		}
	}
	// Saturating: a counter may go back, when a reload makes a backend
	// anew between the samples.
	sub := func(a, b uint64) uint64 {
		if a < b {
			return 0
		}
		return a - b
	}
	minus := func(c router.Counters, k key) router.Counters {
		o := was[k]
		return router.Counters{Conns: sub(c.Conns, o.Conns), InPkts: sub(c.InPkts, o.InPkts), OutPkts: sub(c.OutPkts, o.OutPkts),
			InBytes: sub(c.InBytes, o.InBytes), OutBytes: sub(c.OutBytes, o.OutBytes)}
	}
	for i := range later {
		s := &later[i]
		s.Counters = minus(s.Counters, key{s.Name, ""})
		for j := range s.Backends {
			b := &s.Backends[j]
			b.Counters = minus(b.Counters, key{s.Name, b.Address.String()})
		}
	}
	return later
}

// forwardNames are ipvsadm's names of the forwarding methods.
var forwardNames = map[string]string{"nat": "Masq", "dr": "Route", "tunnel": "Tunnel"}

func printServices(w io.Writer, services []router.ServiceInfo, rate bool) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	cols := "Conns\tInPkts\tOutPkts\tInBytes\tOutBytes"
	if rate {
		cols = "CPS\tInPPS\tOutPPS\tInBPS\tOutBPS"
	}
	fmt.Fprintf(tw, "Prot LocalAddress:Port\tScheduler Flags\t\t\t\t\t%s\n", cols)
	fmt.Fprintf(tw, "  -> RemoteAddress:Port\tForward\tWeight\tActiveConn\tInActConn\tHealth\t%s\n", cols)
	for _, s := range services {
		flags := s.Scheduler
		if s.Persistence > 0 {
			flags += fmt.Sprintf(" persistent %d", int(s.Persistence/time.Second))
		}
		fmt.Fprintf(tw, "%s  %s (%s)\t%s\t\t\t\t\t%s\n", strings.ToUpper(s.Proto), s.VIP, s.Name, flags, counters(s.Counters))
		for _, b := range s.Backends {
			fmt.Fprintf(tw, "  -> %s\t%s\t%d\t%d\t%d\t%s\t%s\n", b.Address, forwardNames[s.Forward], b.Weight,
				b.ActiveConn, b.InActConn, b.Health, counters(b.Counters))
		}
	}
	tw.Flush()
}

func counters(c router.Counters) string {
	return fmt.Sprintf("%d\t%d\t%d\t%d\t%d", c.Conns, c.InPkts, c.OutPkts, c.InBytes, c.OutBytes)
}
