package link

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Peer is the kernel side of a TUN or TAP device: what slirp4netns
// --configure does for a container.
type Peer struct {
	// Netns names a network namespace (/run/netns/NAME) to move the device
	// into; "" leaves it where it is.
	Netns string
	// Addresses are given to the kernel side of the link, as prefixes
	// (192.168.46.2/24: the address and its connected route).
	Addresses []netip.Prefix
	// Gateways are the router's own addresses on the link, in config order.
	// For each family of Addresses the kernel side gets a default route via
	// the first gateway of that family, or a device route without one.
	Gateways []netip.Addr
}

// configurePeer sets up the kernel side of the device through netlink: it
// moves the link into p.Netns, then, in the namespace the link is in, sets
// the MTU (when d.mtu > 0), brings the link up, adds p.Addresses (IPv6
// without duplicate address detection, so they are usable at once) and the
// default routes. With a zero Peer it only sets the MTU and brings the link
// up. It needs CAP_NET_ADMIN over the device's namespace (and the
// target's), and fails rather than replace an existing default route.
func (d netdev) configurePeer(p Peer) error {
	if err := d.configure(p); err != nil {
		return fmt.Errorf("link: configure %s: %w", d.name, err)
	}
	return nil
}

func (d netdev) configure(p Peer) error {
	fd, err := d.netns()
	if err != nil {
		return err
	}
	ns := netns.NsHandle(fd)
	defer ns.Close() // Close takes a pointer: ns must keep this fd
	at := ns         // the namespace the link ends up in
	if p.Netns != "" {
		target, err := netns.GetFromName(p.Netns)
		if err != nil {
			return fmt.Errorf("netns %q: %w", p.Netns, err)
		}
		defer target.Close()
		if err := moveLink(ns, d.name, target); err != nil {
			return fmt.Errorf("move to netns %q: %w", p.Netns, err)
		}
		at = target
	}
	h, err := handleIn(at)
	if err != nil {
		return err
	}
	defer h.Close()
	// Names are unique per namespace, and the move would have failed on a
	// clash, so the name finds our device; its index may have changed.
	link, err := h.LinkByName(d.name)
	if err != nil {
		return err
	}
	return d.setUp(h, link, p)
}

// handleIn is a netlink handle in namespace ns. Entering a namespace takes
// CAP_SYS_ADMIN, so when ns is the one the process is in, the handle is
// made where it stands: a router with CAP_NET_ADMIN alone sets up its own
// devices.
func handleIn(ns netns.NsHandle) (*netlink.Handle, error) {
	if cur, err := netns.Get(); err == nil {
		defer cur.Close()
		if cur.Equal(ns) {
			return netlink.NewHandle(unix.NETLINK_ROUTE)
		}
	}
	return netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
}

func moveLink(from netns.NsHandle, name string, to netns.NsHandle) error {
	h, err := handleIn(from)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if err != nil {
		return err
	}
	return h.LinkSetNsFd(link, int(to))
}

// setUp configures the link in its final namespace. The link goes up before
// the routes are added: the kernel refuses a route over a down link.
func (d netdev) setUp(h *netlink.Handle, link netlink.Link, p Peer) error {
	if d.mtu > 0 {
		if err := h.LinkSetMTU(link, d.mtu); err != nil {
			return fmt.Errorf("mtu %d: %w", d.mtu, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("link up: %w", err)
	}
	for _, a := range p.Addresses {
		if err := h.AddrReplace(link, NetlinkAddr(a)); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	if err := WaitLocal(h, p.Addresses); err != nil {
		return err
	}
	for _, r := range defaultRoutes(link.Attrs().Index, p) {
		if err := h.RouteAdd(r); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = errors.New("the namespace already has a default route")
			}
			return fmt.Errorf("default route %s: %w", r.Dst, err)
		}
	}
	return nil
}

// localRouteWait bounds WaitLocal; the kernel's DAD work needs the RTNL
// lock, which a busy host may hold for a while.
const localRouteWait = 5 * time.Second

// WaitLocal waits until the kernel routes each IPv6 address in addrs to the
// host, in the namespace of h. With IFA_F_NODAD an address is listed at once, but its local route
// is added later by the kernel's DAD work item; until then packets to it are
// dropped (Ip6InAddrErrors). Seen in tests: the first datagrams written to a
// fresh peer got lost. IPv4 local routes come with the address itself.
func WaitLocal(h *netlink.Handle, addrs []netip.Prefix) error {
	deadline := time.Now().Add(localRouteWait)
	for _, a := range addrs {
		for a.Addr().Is6() && !isLocal(h, a.Addr()) {
			if time.Now().After(deadline) {
				return fmt.Errorf("address %s: no local route after %v", a, localRouteWait)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

func isLocal(h *netlink.Handle, a netip.Addr) bool {
	routes, err := h.RouteGet(a.AsSlice())
	return err == nil && len(routes) > 0 && routes[0].Type == unix.RTN_LOCAL
}

// NetlinkAddr is p as netlink adds it to a link: IPv6 without duplicate
// address detection, so it is usable at once.
func NetlinkAddr(p netip.Prefix) *netlink.Addr {
	a := p.Addr()
	addr := &netlink.Addr{IPNet: &net.IPNet{
		IP:   a.AsSlice(),
		Mask: net.CIDRMask(p.Bits(), a.BitLen()),
	}}
	if a.Is6() {
		// A TUN has no link layer to detect duplicates on. A TAP has one,
		// but these addresses come from the router's config, the authority
		// for the link; on either, DAD would only leave the address
		// tentative (unusable) for a second or more.
		addr.Flags = unix.IFA_F_NODAD
	}
	return addr
}

// defaultRoutes returns one default route per address family of the peer
// addresses, IPv4 first.
func defaultRoutes(index int, p Peer) []*netlink.Route {
	var routes []*netlink.Route
	for _, is4 := range []bool{true, false} {
		if hasFamily(p.Addresses, is4) {
			routes = append(routes, defaultRoute(index, is4, firstGateway(p.Gateways, is4)))
		}
	}
	return routes
}

func hasFamily(addrs []netip.Prefix, is4 bool) bool {
	for _, a := range addrs {
		if a.Addr().Is4() == is4 {
			return true
		}
	}
	return false
}

func firstGateway(gws []netip.Addr, is4 bool) netip.Addr {
	for _, g := range gws {
		if g.Is4() == is4 {
			return g
		}
	}
	return netip.Addr{}
}

func defaultRoute(index int, is4 bool, gw netip.Addr) *netlink.Route {
	dst := &net.IPNet{IP: net.IPv6zero, Mask: net.CIDRMask(0, 128)}
	if is4 {
		dst = &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}
	}
	r := &netlink.Route{LinkIndex: index, Dst: dst, Scope: netlink.SCOPE_LINK}
	if gw.IsValid() {
		r.Gw = gw.AsSlice()
		r.Scope = netlink.SCOPE_UNIVERSE
		// On a point-to-point TUN any gateway is reachable, and on a TAP
		// the kernel resolves it by ARP or NDP on the link whatever its
		// prefix; onlink lets the router's address lie outside the peer's
		// prefix (a /32 peer).
		r.Flags = int(netlink.FLAG_ONLINK)
	}
	return r
}
