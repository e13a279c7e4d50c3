package main

import (
	"net/netip"
	"testing"

	"github.com/tungate/tungate/router"
)

func TestRates(t *testing.T) {
	b := netip.MustParseAddrPort("192.168.46.11:80")
	sample := func(conns, pkts uint64) []router.ServiceInfo {
		c := router.Counters{Conns: conns, InPkts: pkts, OutPkts: 2 * pkts, InBytes: 100 * pkts, OutBytes: 200 * pkts}
		return []router.ServiceInfo{{Name: "web", Counters: c, Backends: []router.BackendInfo{{Address: b, Counters: c}}}}
	}
	got := rates(sample(10, 100), sample(15, 160))
	want := router.Counters{Conns: 5, InPkts: 60, OutPkts: 120, InBytes: 6000, OutBytes: 12000}
	if got[0].Counters != want || got[0].Backends[0].Counters != want {
		t.Errorf("rates = %+v / %+v, want %+v for both", got[0].Counters, got[0].Backends[0].Counters, want)
	}
	// A backend made anew between the samples counts from zero again.
	if got := rates(sample(10, 100), sample(2, 20)); got[0].Counters != (router.Counters{}) {
		t.Errorf("rates of counters that went back = %+v, want zeros", got[0].Counters)
	}
}
