package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/admin"
	"github.com/tungate/tungate/router/caps"
	"github.com/tungate/tungate/router/metrics"
)

// loadConfig parses a command's one flag, -c FILE, and loads FILE.
func loadConfig(name string, args []string) (string, *config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	file := fs.String("c", "", "config `FILE`")
	if err := fs.Parse(args); err != nil {
		return "", nil, err
	}
	if *file == "" || fs.NArg() > 0 {
		return "", nil, usageError{"takes -c FILE and nothing else"}
	}
	cfg, err := config.Load(*file)
	return *file, cfg, err
}

func cmdRun(args []string, _ io.Writer) error {
	file, cfg, err := loadConfig("run", args)
	if err != nil {
		return err
	}
	var level slog.LevelVar
	level.UnmarshalText([]byte(cfg.Router.LogLevel)) // validated by config
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &level}))
	r, err := router.New(cfg, router.Options{Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()
	reload := func() error {
		next, err := config.Load(file)
		if err == nil {
			err = r.Reload(next)
		}
		if err != nil {
			log.Error("reload refused; the running config stays", "file", file, "err", err)
			return err
		}
		level.UnmarshalText([]byte(next.Router.LogLevel))
		return nil
	}
	if path := cfg.Router.AdminSocket; path != "" {
		srv, err := admin.Listen(path, r, reload)
		if err != nil {
			return fmt.Errorf("admin socket: %w", err)
		}
		defer srv.Close()
	}
	if addr := cfg.Router.MetricsListen; addr != "" {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		at, err := metrics.Serve(ctx, addr, r)
		if err != nil {
			return fmt.Errorf("metrics_listen: %w", err)
		}
		log.Info("serving metrics", "url", fmt.Sprintf("http://%s/metrics", at))
	}
	narrowCapabilities(cfg, log)
	r.Start()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for s := range sig {
		if s == syscall.SIGHUP {
			reload()
			continue
		}
		log.Info("stopping", "signal", s.String())
		return nil
	}
	return nil
}

// narrowCapabilities drops, once the devices, the admin socket and the
// metrics listener exist, every capability tungate no longer needs: it
// keeps CAP_NET_ADMIN to open the interfaces a reload adds, and
// CAP_SYS_ADMIN while some interface lives in a namespace of its own
// (configuring it there means entering that namespace).
func narrowCapabilities(cfg *config.Config, log *slog.Logger) {
	keep := []int{caps.NetAdmin}
	if slices.ContainsFunc(cfg.Interface, func(ic config.Interface) bool { return ic.Netns != "" }) {
		keep = append(keep, caps.SysAdmin)
	}
	left, err := caps.Keep(keep...)
	if err != nil {
		log.Warn("capabilities not narrowed", "err", err)
		return
	}
	names := make([]string, len(left))
	for i, c := range left {
		names[i] = caps.Name(c)
	}
	log.Info("capabilities narrowed", "kept", names)
}

func cmdCheck(args []string, stdout io.Writer) error {
	file, cfg, err := loadConfig("check", args)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	for _, w := range cfg.Conntrack.BelowRFC() {
		fmt.Fprintf(stdout, "warning: conntrack %s\n", w)
	}
	fmt.Fprintf(stdout, "\npipeline: %s\n\ninterfaces:\n", strings.Join(cfg.Pipeline.Stages, " -> "))
	for _, ic := range cfg.Interface {
		fmt.Fprintf(stdout, "  %-15s %s mtu %d addresses %v", ic.Name, ic.Kind, ic.MTU, ic.Addresses)
		if ic.Netns != "" {
			fmt.Fprintf(stdout, " netns %s", ic.Netns)
		}
		if len(ic.Peer) > 0 {
			fmt.Fprintf(stdout, " peer %v", ic.Peer)
		}
		fmt.Fprintln(stdout)
	}
	if len(cfg.Route) > 0 {
		fmt.Fprintln(stdout, "\nroutes:")
		for _, rt := range cfg.Route {
			fmt.Fprintf(stdout, "  %s", rt.To)
			if rt.Via.IsValid() {
				fmt.Fprintf(stdout, " via %s", rt.Via)
			}
			fmt.Fprintf(stdout, " dev %s metric %d\n", rt.Dev, rt.Metric)
		}
	}
	if f := cfg.Filter; len(f.Rules) > 0 || f.Policy == config.FilterDrop {
		fmt.Fprintf(stdout, "\nfilter (first match wins, else %s):\n", f.Policy)
		for i, r := range f.Rules {
			fmt.Fprintf(stdout, "  %d  %s\n", i+1, ruleText(r))
		}
	}
	return nil
}

// ruleText is a filter rule as one line, nftables style: its matches,
// then its action.
func ruleText(r config.FilterRule) string {
	var parts []string
	add := func(key string, v any) { parts = append(parts, fmt.Sprintf("%s %v", key, v)) }
	if r.In != "" {
		add("in", r.In)
	}
	if r.Out != "" {
		add("out", r.Out)
	}
	if r.From != nil {
		add("from", r.From)
	}
	if r.To != nil {
		add("to", r.To)
	}
	if r.Proto >= 0 {
		add("proto", r.Proto)
	}
	if r.DPorts != nil {
		add("dport", r.DPorts)
	}
	if r.States != nil {
		add("state", strings.Join(r.States, ","))
	}
	action := r.Action
	if r.Log {
		action = "log " + action
	}
	if len(parts) == 0 {
		return action
	}
	return strings.Join(parts, " ") + " -> " + action
}

func cmdReload(args []string, stdout io.Writer) error {
	c, _, err := inspectFlags("reload", args)
	if err != nil {
		return err
	}
	if err := c.Post("/reload", nil, nil); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "reloaded")
	return nil
}
