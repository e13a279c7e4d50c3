// Package local is the router's own host: a gVisor network stack that owns
// the router's addresses, answers ping, refuses closed ports the way a host
// does (ICMP port unreachable, TCP RST), and carries the router's own TCP
// and UDP sockets (health checks, small services) through gonet.
//
// The stack has one NIC backed by a channel endpoint and is neither a router
// nor a neighbor: the pipeline hands it packets addressed to the router
// (Deliver), and everything the stack sends comes back out of Read as plain
// IP packets, which the pipeline then routes like any other packet. The
// stack's own route table sends every destination, on-link, out of that one
// NIC, so gVisor never chooses an egress; our route stage does.
package local

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// Defaults for zero Options fields.
const (
	DefaultMTU   = 1500
	DefaultQueue = 512
)

// maxBatch caps BatchSize; it is wireguard-go's batch size, so the stack
// reads like any other device of the router.
const maxBatch = 128

// nicID is the stack's only NIC.
const nicID tcpip.NICID = 1

// Options configure a Stack.
type Options struct {
	// Addresses are the router's addresses with their prefix lengths, e.g.
	// 192.168.46.1/24 and 2001:db8::1/64. Routing is ours, so to gVisor
	// the prefix length only marks the subnet's broadcast address.
	Addresses []netip.Prefix
	// MTU of the stack's packets, at least 1280 (IPv6 needs it; gVisor
	// silently stops sending IPv6 below it) and at most 65535 (the
	// largest IPv4 packet). 0 means DefaultMTU.
	MTU int
	// Queue is the outbound queue length in packets; gVisor drops what
	// the stack sends while the queue is full. 0 means DefaultQueue.
	Queue int
}

// Stack is the router's own host. Its methods are safe for concurrent use.
type Stack struct {
	ns *stack.Stack
	ep *queueEndpoint

	// ctx is cancelled by Close so that a blocked Read returns at once.
	ctx    context.Context
	cancel context.CancelFunc
	closed atomic.Bool
	once   sync.Once

	batch int

	mu    sync.Mutex
	addrs map[netip.Addr]netip.Prefix // guarded by mu: what the NIC holds
}

// New builds the stack with its NIC and addresses.
func New(o Options) (*Stack, error) {
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if o.MTU < header.IPv6MinimumMTU || o.MTU > math.MaxUint16 {
		return nil, fmt.Errorf("local: mtu %d outside [%d, %d]", o.MTU, header.IPv6MinimumMTU, math.MaxUint16)
	}
	if o.Queue == 0 {
		o.Queue = DefaultQueue
	}
	if o.Queue < 0 {
		return nil, fmt.Errorf("local: negative queue length %d", o.Queue)
	}

	ns := stack.New(stack.Options{
		NetworkProtocols: []stack.NetworkProtocolFactory{
			// IGMP off: the router's host joins no groups worth announcing
			// and must stay silent unless spoken to.
			ipv4.NewProtocolWithOptions(ipv4.Options{IGMP: ipv4.IGMPOptions{Enabled: false}}),
			// Every field spelled out because each one would otherwise make
			// the stack talk on its own: DAD sends Neighbor Solicitations
			// for every address (and delays its use), router solicitations
			// go out when the NIC comes up, MLD reports go out for the
			// all-nodes and solicited-node groups, and a generated
			// link-local address would be one more address we did not
			// configure. The router learns nothing from Router
			// Advertisements either; it is the router.
			ipv6.NewProtocolWithOptions(ipv6.Options{
				NDPConfigs: ipv6.NDPConfigurations{
					MaxRtrSolicitations: 0,
					HandleRAs:           ipv6.HandlingRAsDisabled,
				},
				AutoGenLinkLocal: false,
				MLD:              ipv6.MLDOptions{Enabled: false},
				DADConfigs:       stack.DADConfigurations{DupAddrDetectTransmits: 0},
			}),
		},
		TransportProtocols: []stack.TransportProtocolFactory{
			tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6,
		},
		// The router talking to itself (a health check of a local
		// service, say) stays inside the stack instead of taking a trip
		// through the pipeline and back.
		HandleLocal: true,
	})

	// No capabilities: no link-layer resolution (the neighbor stage does
	// that), no checksum offload (gVisor computes and verifies every
	// checksum), and no GSO, so every packet Read returns fits the MTU.
	ep := &queueEndpoint{channel.New(o.Queue, uint32(o.MTU), "")}
	if err := ns.CreateNIC(nicID, ep); err != nil {
		ns.Destroy()
		return nil, fmt.Errorf("local: create NIC: %s", err)
	}
	// Everything leaves through the one NIC, on-link: no gateway means no
	// neighbor to resolve and no decision for gVisor to make.
	ns.SetRouteTable([]tcpip.Route{
		{Destination: header.IPv4EmptySubnet, NIC: nicID},
		{Destination: header.IPv6EmptySubnet, NIC: nicID},
	})

	ctx, cancel := context.WithCancel(context.Background())
	s := &Stack{
		ns:     ns,
		ep:     ep,
		ctx:    ctx,
		cancel: cancel,
		batch:  min(o.Queue, maxBatch),
		addrs:  make(map[netip.Addr]netip.Prefix),
	}
	if err := s.SetAddresses(o.Addresses); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// queueEndpoint is a channel endpoint that admits a full queue. The
// channel endpoint drops a packet it has no room for but reports success,
// so gVisor would count it as sent; returning ErrNoBufferSpace instead makes
// the NIC count it (Stats().NICs.TxPacketsDroppedNoBufferSpace) and tells
// the sender, as ENOBUFS would.
type queueEndpoint struct {
	*channel.Endpoint
}

var _ stack.LinkEndpoint = (*queueEndpoint)(nil)

// WritePackets implements stack.LinkEndpoint.
func (e *queueEndpoint) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n, err := e.Endpoint.WritePackets(pkts)
	if err == nil && n < pkts.Len() {
		err = &tcpip.ErrNoBufferSpace{}
	}
	return n, err
}

// checkAddresses validates addrs and indexes them by address. An address
// listed twice with different prefix lengths is an error: the NIC can hold
// it only once.
func checkAddresses(addrs []netip.Prefix) (map[netip.Addr]netip.Prefix, error) {
	want := make(map[netip.Addr]netip.Prefix, len(addrs))
	for _, p := range addrs {
		a := p.Addr()
		switch {
		case !p.IsValid():
			return nil, fmt.Errorf("local: invalid address %v", p)
		case a.Is4In6():
			return nil, fmt.Errorf("local: address %v: IPv4-mapped IPv6 addresses are not supported; use the IPv4 form", p)
		case a.IsUnspecified() || a.IsMulticast():
			return nil, fmt.Errorf("local: address %v is not a unicast address", p)
		case a.Zone() != "":
			return nil, fmt.Errorf("local: address %v: zones are not supported", p)
		}
		if q, ok := want[a]; ok && q != p {
			return nil, fmt.Errorf("local: address %v listed as both %v and %v", a, q, p)
		}
		want[a] = p
	}
	return want, nil
}

// SetAddresses makes addrs the stack's addresses: it adds the new ones and
// removes those no longer listed, keeping the rest (and their connections)
// untouched. An address whose prefix length changed is removed and added
// again. On an error from gVisor the stack holds a mix of old and new; the
// next successful call repairs that.
func (s *Stack) SetAddresses(addrs []netip.Prefix) error {
	want, err := checkAddresses(addrs)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return os.ErrClosed
	}
	for a, p := range s.addrs {
		if want[a] == p {
			continue
		}
		if err := s.ns.RemoveAddress(nicID, tcpip.AddrFromSlice(a.AsSlice())); err != nil {
			return fmt.Errorf("local: remove address %v: %s", p, err)
		}
		delete(s.addrs, a)
	}
	for a, p := range want {
		if _, ok := s.addrs[a]; ok {
			continue
		}
		proto := ipv4.ProtocolNumber
		if a.Is6() {
			proto = ipv6.ProtocolNumber
		}
		pa := tcpip.ProtocolAddress{
			Protocol: proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{
				Address:   tcpip.AddrFromSlice(a.AsSlice()),
				PrefixLen: p.Bits(),
			},
		}
		if err := s.ns.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("local: add address %v: %s", p, err)
		}
		s.addrs[a] = p
	}
	return nil
}

// Deliver copies the IP packet pkt into the stack, which handles it on the
// caller's goroutine; replies it makes at once (echo replies, ICMP errors,
// RSTs) are queued for Read before Deliver returns. Deliver reports false
// when it refused the packet: the stack is closed or pkt is not an IPv4 or
// IPv6 packet. A packet the stack takes and then finds wrong (bad checksum,
// not for one of its addresses, …) is dropped and counted by gVisor, in
// NetStack().Stats().
//
// pkt must be one packet, never a GRO-coalesced super-packet.
func (s *Stack) Deliver(pkt []byte) bool {
	if s.closed.Load() {
		return false
	}
	var proto tcpip.NetworkProtocolNumber
	switch header.IPVersion(pkt) {
	case header.IPv4Version:
		proto = ipv4.ProtocolNumber
	case header.IPv6Version:
		proto = ipv6.ProtocolNumber
	default:
		return false
	}
	pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(pkt)})
	s.ep.InjectInbound(proto, pb)
	pb.DecRef()
	return true
}

// Read returns what the stack sent, in the shape of the router's devices: it
// blocks until at least one packet is queued or the stack is closed, then
// takes up to len(bufs) queued packets without blocking more; packet i is
// bufs[i][offset:offset+sizes[i]]. Every packet is one IPv4 or IPv6 packet
// of at most the MTU, so buffers of offset+MTU bytes always suffice.
//
// After Close, Read returns os.ErrClosed, as a closed wireguard tun device
// does. A packet that does not fit its buffer is dropped, and Read returns
// the packets before it with an error wrapping io.ErrShortBuffer.
func (s *Stack) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if s.closed.Load() {
		return 0, os.ErrClosed
	}
	if len(bufs) == 0 {
		return 0, nil
	}
	// ReadContext returns nil when Close cancels ctx, and also once the
	// endpoint itself is closed (its channel is closed).
	pkt := s.ep.ReadContext(s.ctx)
	n := 0
	for pkt != nil {
		size := pkt.Size()
		if offset+size > len(bufs[n]) {
			pkt.DecRef()
			return n, fmt.Errorf("local: %d-byte packet dropped, buffer %d has room for %d: %w",
				size, n, len(bufs[n])-offset, io.ErrShortBuffer)
		}
		copied := 0
		for _, v := range pkt.AsSlices() {
			copied += copy(bufs[n][offset+copied:], v)
		}
		pkt.DecRef()
		sizes[n] = copied
		n++
		if n == len(bufs) {
			break
		}
		pkt = s.ep.Read()
	}
	if n == 0 {
		return 0, os.ErrClosed
	}
	return n, nil
}

// BatchSize is the most packets one Read returns, for sizing bufs.
func (s *Stack) BatchSize() int { return s.batch }

// Close aborts the stack's connections, removes its NIC, drops what is still
// queued, and makes Read return os.ErrClosed and Deliver false. Closing
// twice is harmless.
func (s *Stack) Close() error {
	s.once.Do(func() {
		// Take mu so that a concurrent SetAddresses either finishes first
		// or sees closed.
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		s.cancel()
		// Destroy removes the NIC, which closes and drains the endpoint.
		s.ns.Destroy()
	})
	return nil
}

// NetStack is the gVisor stack, for gonet sockets (health checks, small
// services). Callers must not change its NICs, routes or addresses; those
// belong to Stack.
func (s *Stack) NetStack() *stack.Stack { return s.ns }
