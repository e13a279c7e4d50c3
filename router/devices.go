package router

import (
	"fmt"
	"net/netip"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
)

// Link is an interface's open device: the queues the router reads and
// writes, and the device's kernel side.
type Link struct {
	Queues []Device
	kernel interface{ ConfigurePeer(link.Peer) error }
}

// ConfigurePeer sets up the kernel side of the device (see link.Peer).
func (l *Link) ConfigurePeer(p link.Peer) error { return l.kernel.ConfigurePeer(p) }

// OpenLink opens the real device of an interface, one Device per queue,
// and sets up its kernel side (namespace, peer addresses, link up).
func OpenLink(ic config.Interface) ([]Device, error) {
	l, err := Open(ic)
	if err != nil {
		return nil, err
	}
	return l.Queues, nil
}

// Open opens the TUN or TAP device of an interface and configures its
// kernel side as the interface's netns and peer keys say.
func Open(ic config.Interface) (*Link, error) {
	l := &Link{}
	switch ic.Kind {
	case config.KindTUN:
		t, err := link.OpenTUN(link.TUNOptions{Name: ic.Name, MTU: ic.MTU, Offload: ic.Offload, FD: ic.FD, Queues: ic.Queues})
		if err != nil {
			return nil, err
		}
		for _, q := range t.Queues() {
			l.Queues = append(l.Queues, q)
		}
		l.kernel = t
	case config.KindTAP:
		t, err := link.OpenTAP(link.TAPOptions{Name: ic.Name, MTU: ic.MTU, Offload: ic.Offload, FD: ic.FD})
		if err != nil {
			return nil, err
		}
		l.Queues, l.kernel = []Device{t}, t
	default:
		return nil, fmt.Errorf("kind %q is not supported by this version", ic.Kind)
	}
	// A handed-in fd comes configured by the privileged parent that
	// opened it; touching its link would need CAP_NET_ADMIN.
	if ic.FD < 0 || ic.Netns != "" || len(ic.Peer) > 0 {
		if err := l.ConfigurePeer(Peer(ic, ic.Netns, ic.Peer)); err != nil {
			for _, q := range l.Queues {
				q.Close()
			}
			return nil, err
		}
	}
	return l, nil
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
