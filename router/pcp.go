package router

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"

	"github.com/tungate/tungate/nat"
	"github.com/tungate/tungate/nat/pcp"
	"github.com/tungate/tungate/router/packet"
)

// The mapping-control server: RFC 6888 REQ-9, "A CGN MUST implement a
// protocol giving subscribers explicit control over NAT mappings. That
// protocol SHOULD be the Port Control Protocol". Inside hosts of a
// [[snat]] rule with pcp = true ask for explicit mappings (nat.Table's
// Explicit) with PCP or NAT-PMP on UDP port 5351 of the router's own
// stack. Only requests from inside reach it: the local stage refuses the
// others (pcpAllowed).

// Lifetimes the server grants and answers with.
const (
	// pcpMaxLifetime caps a granted lifetime. RFC 6887 §15 lets the
	// server shorten what the client asks for; a day bounds how long a
	// forgotten mapping holds a port.
	pcpMaxLifetime = 24 * time.Hour
	// pcpErrorLifetime is how long a client should expect an error to
	// last, which an error response's lifetime tells it (RFC 6887 §7.2).
	pcpErrorLifetime = 30 * time.Second
)

// pcpServer reads requests on the router's stack while some rule has pcp
// on.
type pcpServer struct {
	r    *Router
	conn *gonet.UDPConn
	wg   sync.WaitGroup

	mu     sync.Mutex
	nonces map[pcpMapping]pcpNonce // PCP MAP's nonce per explicit mapping
}

// pcpMapping names an explicit mapping: its table, protocol and internal
// endpoint.
type pcpMapping struct {
	table    *nat.Table
	proto    uint8
	internal netip.AddrPort
}

// pcpNonce is the nonce of the client that made a mapping, and the mapping,
// to know when the nonce can be forgotten.
type pcpNonce struct {
	nonce [12]byte
	m     *nat.Mapping
}

// servePCP starts or stops the server to match s: it runs while some rule
// has pcp on. It is called by New and Reload, which serialize it.
func (r *Router) servePCP(s *snapshot) error {
	want := s.nat.pcp
	switch {
	case want && r.pcp == nil:
		// One dual-stack socket: gVisor's IPv6 wildcard takes IPv4 too,
		// as IPv4-mapped addresses.
		c, err := gonet.DialUDP(r.local.NetStack(), &tcpip.FullAddress{Port: pcp.Port}, nil, ipv6.ProtocolNumber)
		if err != nil {
			return err
		}
		srv := &pcpServer{r: r, conn: c, nonces: make(map[pcpMapping]pcpNonce)}
		srv.wg.Go(srv.serve)
		r.pcp = srv
	case !want && r.pcp != nil:
		r.pcp.close()
		r.pcp = nil
	}
	return nil
}

func (srv *pcpServer) close() {
	srv.conn.Close()
	srv.wg.Wait()
}

// serve answers requests until the server is closed.
func (srv *pcpServer) serve() {
	c := srv.conn
	buf := make([]byte, 1100+1) // RFC 6887 §7: requests are at most 1100 bytes
	var out []byte
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		client := from.(*net.UDPAddr).AddrPort()
		if out = srv.handle(out[:0], buf[:n], client.Addr().Unmap()); out != nil {
			c.WriteTo(out, from)
		}
	}
}

// handle answers one request from client, or drops it (nil).
func (srv *pcpServer) handle(out, b []byte, client netip.Addr) []byte {
	req, res, ok := pcp.Parse(b)
	if !ok {
		return nil
	}
	rule := srv.r.snap.Load().nat.pcpRule(client)
	if rule == nil {
		// The local stage lets through only requests from a pcp rule's
		// inside; a reload may have changed that since.
		return pcp.AppendResponse(out, req, pcpError(pcp.NotAuthorized, 0))
	}
	t := rule.table
	epoch := uint32(t.Epoch() / time.Second)
	if res != pcp.Success {
		return pcp.AppendResponse(out, req, pcpError(res, epoch))
	}
	// RFC 6887 §8.1: a PCP Client's IP Address field other than the
	// request's source is ADDRESS_MISMATCH; a NAT between client and
	// server would make the mapping useless to the client.
	if req.Version == 2 && req.Client != client {
		return pcp.AppendResponse(out, req, pcpError(pcp.AddressMismatch, epoch))
	}
	rep := srv.decide(t, req, client)
	rep.Epoch = epoch
	return pcp.AppendResponse(out, req, rep)
}

// decide grants or refuses a parsed request from client.
func (srv *pcpServer) decide(t *nat.Table, req pcp.Request, client netip.Addr) pcp.Reply {
	if req.Opcode == pcp.Announce {
		// PCP ANNOUNCE carries no data; NAT-PMP's public address request
		// wants the address the client's mappings use.
		a, ok := t.ExternalAddr(client)
		if req.Version == 0 && !ok {
			return pcpError(pcp.NetworkFailure, 0)
		}
		return pcp.Reply{External: netip.AddrPortFrom(a, 0)}
	}
	if req.Proto != uint8(header.TCPProtocolNumber) && req.Proto != uint8(header.UDPProtocolNumber) {
		return pcpError(pcp.UnsuppProtocol, 0) // ports of other protocols are not ours to map
	}
	internal := netip.AddrPortFrom(client, req.InternalPort)
	key := pcpMapping{t, req.Proto, internal}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if old, ok := srv.nonces[key]; ok && req.Version == 2 && req.InternalPort != 0 && t.Lifetime(old.m) > 0 && old.nonce != req.Nonce {
		// RFC 6887 §11.3: a request for an existing mapping, to renew or
		// to delete it, with another nonce is another client's, and is
		// refused NOT_AUTHORIZED.
		return pcpError(pcp.NotAuthorized, 0)
	}
	if req.Lifetime == 0 {
		// RFC 6887 §15: a lifetime of 0 deletes; port 0 deletes all of
		// the client's mappings of the protocol.
		srv.forget(t, req.Proto, internal)
		t.Unmap(req.Proto, internal)
		return pcp.Reply{External: req.External}
	}
	if req.InternalPort == 0 {
		return pcpError(pcp.UnsuppProtocol, 0) // all ports of a protocol: not granted
	}
	lifetime := min(time.Duration(req.Lifetime)*time.Second, pcpMaxLifetime)
	m, err := t.Explicit(req.Proto, internal, req.External.Port(), req.PreferFailure, lifetime)
	switch {
	case errors.Is(err, nat.ErrQuota):
		return pcpError(pcp.UserExQuota, 0)
	case errors.Is(err, nat.ErrPortTaken):
		return pcpError(pcp.CannotProvideExternal, 0)
	case err != nil:
		return pcpError(pcp.NoResources, 0)
	}
	if req.Version == 2 { // NAT-PMP has no nonce: it neither owns nor takes a mapping from PCP's
		srv.nonces[key] = pcpNonce{req.Nonce, m}
	}
	srv.prune()
	return pcp.Reply{Lifetime: uint32(lifetime / time.Second), External: m.External()}
}

// forget drops the nonces of the mappings a deletion ends. srv.mu is held.
func (srv *pcpServer) forget(t *nat.Table, proto uint8, internal netip.AddrPort) {
	for k := range srv.nonces {
		if k.table == t && k.proto == proto && k.internal.Addr() == internal.Addr() && (internal.Port() == 0 || k.internal == internal) {
			delete(srv.nonces, k)
		}
	}
}

// prune forgets the nonces of mappings whose lifetime ran out, so the map
// holds no more than the live explicit mappings. srv.mu is held.
func (srv *pcpServer) prune() {
	for k, n := range srv.nonces {
		if k.table.Lifetime(n.m) == 0 {
			delete(srv.nonces, k)
		}
	}
}

func pcpError(res pcp.Result, epoch uint32) pcp.Reply {
	return pcp.Reply{Result: res, Epoch: epoch, Lifetime: uint32(pcpErrorLifetime / time.Second)}
}

// pcpRule is the rule that serves PCP for an inside host at src: the
// first translating rule with pcp on whose inside holds src, or nil.
func (n *natRules) pcpRule(src netip.Addr) *snatRule {
	for _, rule := range n.snat {
		if rule.pcp && rule.inside(src) {
			return rule
		}
	}
	return nil
}

// pcpAllowed reports whether p, addressed to the router, may go on to
// its stack. A request to the mapping-control server must come from the
// inside of a rule with pcp on, and not by that rule's own egress
// interface, where an inside source is spoofed: a mapping is a hole in
// the NAT for the host it names. While no rule has pcp on, nothing
// listens, and the stack answers like any host.
func (n *natRules) pcpAllowed(p *packet.Packet) bool {
	if !n.pcp || p.Proto != uint8(header.UDPProtocolNumber) || !p.HasPorts || p.DstPort != pcp.Port {
		return true // not a request: none of the server's business
	}
	rule := n.pcpRule(p.Src)
	return rule != nil && rule.out != p.In
}
