package router

import (
	"fmt"
	"net/netip"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
)

// OpenLink opens the real device of an interface, one Device per queue,
// and sets up its kernel side (namespace, peer addresses, link up).
func OpenLink(ic config.Interface) ([]Device, error) {
	t, err := OpenTUN(ic)
	if err != nil {
		return nil, err
	}
	return Queues(t), nil
}

// OpenTUN opens the TUN device of an interface and configures its kernel
// side as the interface's netns and peer keys say.
func OpenTUN(ic config.Interface) (*link.TUN, error) {
	if ic.Kind != config.KindTUN {
		return nil, fmt.Errorf("kind %q is not supported by this version", ic.Kind)
	}
	t, err := link.OpenTUN(link.TUNOptions{Name: ic.Name, MTU: ic.MTU, Offload: ic.Offload, FD: ic.FD, Queues: ic.Queues})
	if err != nil {
		return nil, err
	}
	// A handed-in fd comes configured by the privileged parent that
	// opened it; touching its link would need CAP_NET_ADMIN.
	if ic.FD < 0 || ic.Netns != "" || len(ic.Peer) > 0 {
		if err := t.ConfigurePeer(Peer(ic, ic.Netns, ic.Peer)); err != nil {
			t.Close()
			return nil, err
		}
	}
	return t, nil
}

// Peer is the kernel side of an interface's device in namespace ns with
// addresses addrs: a default route via the router's address on it.
func Peer(ic config.Interface, ns string, addrs []netip.Prefix) link.Peer {
	gateways := make([]netip.Addr, len(ic.Addresses))
	for i, a := range ic.Addresses {
		gateways[i] = a.Addr()
	}
	return link.Peer{Netns: ns, Addresses: addrs, Gateways: gateways}
}

// Queues are the device queues of t as the router reads and writes them.
func Queues(t *link.TUN) []Device {
	var devs []Device
	for _, q := range t.Queues() {
		devs = append(devs, q)
	}
	return devs
}
