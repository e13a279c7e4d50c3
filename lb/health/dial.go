// Package health checks the load balancer's backends the way keepalived
// does for IPVS: a probe (TCP connect, HTTP GET, or none) every interval,
// and a backend flips down after fall consecutive failures and back up
// after rise consecutive successes.
//
// Probes are made through a Dialer. In tungate that is a StackDialer on the
// router's own gVisor stack (router/local), so a probe leaves through the
// router's pipeline — route, filter, SNAT, neighbor — like any packet, from
// the router's own address, and a backend that the router cannot reach is
// a backend that is down. Tests and tools may pass a *net.Dialer instead.
package health

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Dialer opens the connections that probes use. *net.Dialer and
// *StackDialer implement it.
type Dialer interface {
	DialContext(ctx context.Context, network, addr string) (net.Conn, error)
}

// StackDialer dials TCP over a gVisor stack through gonet. The source
// address is the stack's own choice for the route (in router/local: the
// NIC's primary address of the destination's family).
type StackDialer struct {
	s *stack.Stack
}

var (
	_ Dialer = (*StackDialer)(nil)
	_ Dialer = (*net.Dialer)(nil)
)

// NewStackDialer returns a Dialer over s, e.g. local.Stack.NetStack().
func NewStackDialer(s *stack.Stack) *StackDialer { return &StackDialer{s: s} }

// DialContext connects to addr, a literal "ip:port" or "[ip6]:port" (there
// is no resolver: host names are an error), over TCP; network is "tcp",
// "tcp4" or "tcp6", and the address family picks IPv4 or IPv6. ctx bounds
// the handshake only, as with net.Dialer. Errors are *net.OpError.
func (d *StackDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Err: err}
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil, opErr(net.UnknownNetworkError(network))
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, opErr(fmt.Errorf("address %q: want a literal ip:port: %w", addr, err))
	}
	ip := ap.Addr().Unmap()
	if ip.Zone() != "" {
		return nil, opErr(fmt.Errorf("address %s: zones are not supported", addr))
	}
	if ip.IsUnspecified() || ip.IsMulticast() {
		return nil, opErr(fmt.Errorf("address %s is not a unicast address", addr))
	}
	proto := ipv4.ProtocolNumber
	if ip.Is6() {
		proto = ipv6.ProtocolNumber
	}
	if (network == "tcp4" && ip.Is6()) || (network == "tcp6" && ip.Is4()) {
		return nil, opErr(&net.AddrError{Err: "address family does not match network", Addr: addr})
	}
	full := tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ip.AsSlice()), Port: ap.Port()}
	c, err := gonet.DialContextTCP(ctx, d.s, full, proto)
	if err != nil {
		// gonet returns ctx.Err() bare when the handshake is cut short;
		// its own failures are already *net.OpError.
		var oe *net.OpError
		if errors.As(err, &oe) {
			return nil, err
		}
		return nil, &net.OpError{Op: "dial", Net: network, Addr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(ip, ap.Port())), Err: err}
	}
	return c, nil
}
