package neigh

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// mtuOption finds the MTU option in opts by walking the option TLVs of
// RFC 4861 §4.6 (gVisor's iterator skips the type it does not know).
func mtuOption(t *testing.T, opts []byte) (uint32, bool) {
	t.Helper()
	for len(opts) >= 2 {
		size := int(opts[1]) * 8
		if size == 0 || size > len(opts) {
			t.Fatalf("malformed options %x", opts)
		}
		if opts[0] == mtuOptionType {
			if size != mtuOptionSize {
				t.Fatalf("MTU option of %d bytes", size)
			}
			return binary.BigEndian.Uint32(opts[4:]), true
		}
		opts = opts[size:]
	}
	return 0, false
}

func TestBuildRA(t *testing.T) {
	out := make([]byte, 256)
	r := BuildRA(out, RA{
		MAC:      routerMAC,
		Lifetime: DefaultRouterLifetime,
		MTU:      1500,
		Prefixes: []netip.Prefix{
			netip.MustParsePrefix("fd46::1/64"),
			netip.MustParsePrefix("2001:db8:1::1/48"),
			netip.MustParsePrefix("192.168.46.1/24"),
			netip.MustParsePrefix("fe80::1/64"),
		},
	})
	if r.Dst != (MAC{0x33, 0x33, 0, 0, 0, 1}) {
		t.Fatalf("to %v", r.Dst)
	}
	// 40 IPv6 + 16 RA + 8 source link-layer + 8 MTU + 2 × 32 prefixes.
	if r.N != 136 {
		t.Fatalf("%d bytes", r.N)
	}
	icmp := checkICMPv6(t, out[:r.N], LinkLocal(routerMAC), AllNodes, header.ICMPv6RouterAdvert)
	ra := header.NDPRouterAdvert(icmp.MessageBody())
	if ra.CurrHopLimit() != 64 || ra.ManagedAddrConfFlag() || ra.OtherConfFlag() ||
		ra.DefaultRouterPreference() != header.MediumRoutePreference ||
		ra.RouterLifetime() != 1800*time.Second || ra.ReachableTime() != 0 || ra.RetransTimer() != 0 {
		t.Fatalf("RA hop limit %d M=%t O=%t pref %v lifetime %v reachable %v retrans %v",
			ra.CurrHopLimit(), ra.ManagedAddrConfFlag(), ra.OtherConfFlag(), ra.DefaultRouterPreference(),
			ra.RouterLifetime(), ra.ReachableTime(), ra.RetransTimer())
	}

	it, err := ra.Options().Iter(true)
	if err != nil {
		t.Fatal(err)
	}
	var slla bool
	var prefixes []header.NDPPrefixInformation
	for {
		o, done, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		switch o := o.(type) {
		case header.NDPSourceLinkLayerAddressOption:
			slla = o.EthernetAddress() == routerMAC.link()
		case header.NDPPrefixInformation:
			prefixes = append(prefixes, o)
		default:
			t.Fatalf("option %v", o)
		}
	}
	if !slla {
		t.Fatal("no source link-layer option with our MAC")
	}
	want := []struct {
		prefix     string
		autonomous bool
	}{{"fd46::/64", true}, {"2001:db8:1::/48", false}}
	if len(prefixes) != len(want) {
		t.Fatalf("%d prefix options, want %d", len(prefixes), len(want))
	}
	for i, w := range want {
		p := prefixes[i]
		if p.Subnet().String() != w.prefix || !p.OnLinkFlag() || p.AutonomousAddressConfigurationFlag() != w.autonomous ||
			p.ValidLifetime() != 30*24*time.Hour || p.PreferredLifetime() != 7*24*time.Hour {
			t.Errorf("prefix %d: %v, want %s L A=%t valid 30d preferred 7d", i, p, w.prefix, w.autonomous)
		}
	}
	if mtu, ok := mtuOption(t, ra.Options()); !ok || mtu != 1500 {
		t.Fatalf("MTU option %d %t", mtu, ok)
	}
}

func TestBuildRALifetime(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, 0}, {-time.Second, 0}, {time.Hour, time.Hour}, {24 * time.Hour, 9000 * time.Second},
	} {
		out := make([]byte, 128)
		r := BuildRA(out, RA{MAC: routerMAC, Lifetime: tt.in})
		icmp := checkICMPv6(t, out[:r.N], LinkLocal(routerMAC), AllNodes, header.ICMPv6RouterAdvert)
		if got := header.NDPRouterAdvert(icmp.MessageBody()).RouterLifetime(); got != tt.want {
			t.Errorf("lifetime %v: %v, want %v", tt.in, got, tt.want)
		}
		if _, ok := mtuOption(t, header.NDPRouterAdvert(icmp.MessageBody()).Options()); ok {
			t.Error("MTU option without an MTU")
		}
	}
}

func TestBuildRAShortBuffer(t *testing.T) {
	ra := RA{MAC: routerMAC, MTU: 1500, Prefixes: []netip.Prefix{netip.MustParsePrefix("fd46::/64")}}
	if r := BuildRA(make([]byte, 103), ra); r.N != 0 {
		t.Fatalf("wrote %d bytes into 103", r.N)
	}
	if r := BuildRA(make([]byte, 104), ra); r.N != 104 {
		t.Fatalf("wrote %d bytes, want 104", r.N)
	}
}
