package e2e

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/tungate/tungate/router"
	"github.com/tungate/tungate/router/link"
)

// Segment is an Ethernet segment: a Linux bridge, in a namespace of its
// own, with one of the router's TAP interfaces as a port. Hosts join it
// through veth pairs.
type Segment struct {
	topo  *Topology
	ifc   *Interface
	Netns string
	hosts int
}

// Segment makes a segment called name around the TAP interface ifc.
func (tp *Topology) Segment(name string, ifc *Interface) *Segment {
	tp.t.Helper()
	seg := &Segment{topo: tp, ifc: ifc, Netns: tp.Netns(name)}
	// Moving the device without addresses only brings it up there.
	if err := ifc.link.ConfigurePeer(router.Peer(ifc.cfg, seg.Netns, nil)); err != nil {
		tp.t.Fatal(err)
	}
	err := withHandle(seg.Netns, func(h *netlink.Handle) error {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br0"}}
		if err := h.LinkAdd(br); err != nil {
			return err
		}
		tap, err := h.LinkByName(ifc.cfg.Name)
		if err != nil {
			return err
		}
		if err := h.LinkSetMaster(tap, br); err != nil {
			return err
		}
		return h.LinkSetUp(br)
	})
	if err != nil {
		tp.t.Fatalf("segment %s: %v", name, err)
	}
	return seg
}

// Host makes a host on the segment with the given MAC (nil: the kernel
// picks one) and addresses, and a default route via the router's first
// address of each family on the segment. Without addresses the host is
// left to configure itself (IPv6 SLAAC from the router's advertisements).
func (seg *Segment) Host(name string, mac net.HardwareAddr, addrs ...string) *Host {
	t := seg.topo.t
	t.Helper()
	h := &Host{Netns: seg.topo.Netns(name)}
	seg.hosts++
	port := fmt.Sprintf("port%d", seg.hosts)
	target, err := netns.GetFromName(h.Netns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	err = withHandle(seg.Netns, func(sh *netlink.Handle) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: "eth0", PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(target)}
		if err := sh.LinkAdd(veth); err != nil {
			return err
		}
		br, err := sh.LinkByName("br0")
		if err != nil {
			return err
		}
		if err := sh.LinkSetMaster(veth, br); err != nil {
			return err
		}
		return sh.LinkSetUp(veth)
	})
	if err != nil {
		t.Fatalf("segment host %s: %v", name, err)
	}
	var prefixes []netip.Prefix
	for _, a := range addrs {
		prefixes = append(prefixes, netip.MustParsePrefix(a))
	}
	err = withHandle(h.Netns, func(hh *netlink.Handle) error {
		eth, err := hh.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, p := range prefixes {
			if err := hh.AddrAdd(eth, link.NetlinkAddr(p)); err != nil {
				return err
			}
		}
		if err := hh.LinkSetUp(eth); err != nil {
			return err
		}
		if err := defaultRoutes(hh, eth, seg.ifc, addrs); err != nil {
			return err
		}
		return link.WaitLocal(hh, prefixes)
	})
	if err != nil {
		t.Fatalf("segment host %s: %v", name, err)
	}
	return h
}

// defaultRoutes routes a host's traffic via the router's first address of
// each family the host has an address of.
func defaultRoutes(h *netlink.Handle, eth netlink.Link, ifc *Interface, addrs []string) error {
	for _, is4 := range []bool{true, false} {
		has := false
		for _, a := range addrs {
			has = has || netip.MustParsePrefix(a).Addr().Is4() == is4
		}
		if !has {
			continue
		}
		for _, gw := range ifc.cfg.Addresses {
			if gw.Addr().Is4() == is4 {
				if err := h.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gw.Addr().AsSlice()}); err != nil {
					return err
				}
				break
			}
		}
	}
	return nil
}

// withHandle runs fn with a netlink handle inside the named namespace.
func withHandle(ns string, fn func(*netlink.Handle) error) error {
	nsh, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h)
}
