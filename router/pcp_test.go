package router

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
)

// pcpRouter masquerades with address-and-port-dependent filtering, so that
// only an explicit mapping lets a stranger in, and serves PCP.
func pcpRouter(t *testing.T) *testRouter {
	cfg := natConfig(config.AddressAndPortDependent)
	cfg.SNAT[0].PCP = true
	tr, _ := natRouterWith(t, cfg)
	return tr
}

// natpmpMap is a NAT-PMP request to map a UDP port (RFC 6886 §3.3).
func natpmpMap(internal, suggested uint16, lifetime uint32) []byte {
	b := make([]byte, 12)
	b[1] = 1 // map UDP
	binary.BigEndian.PutUint16(b[4:], internal)
	binary.BigEndian.PutUint16(b[6:], suggested)
	binary.BigEndian.PutUint32(b[8:], lifetime)
	return b
}

// pcpMap is a PCP MAP request (RFC 6887 §7.1, §11.1) for UDP.
func pcpMap(client string, nonce byte, internal, suggested uint16, lifetime uint32) []byte {
	b := make([]byte, 60)
	b[0], b[1] = 2, 1
	binary.BigEndian.PutUint32(b[4:], lifetime)
	c := netip.MustParseAddr(client).As16()
	copy(b[8:24], c[:])
	b[24] = nonce
	b[36] = uint8(header.UDPProtocolNumber)
	binary.BigEndian.PutUint16(b[40:], internal)
	binary.BigEndian.PutUint16(b[42:], suggested)
	any4 := netip.IPv4Unspecified().As16()
	copy(b[44:60], any4[:])
	return b
}

// ask sends a request from 192.168.46.2:5350 to the router's inside
// address and returns the UDP payload of the answer.
func (tr *testRouter) ask(t *testing.T, req []byte) []byte {
	t.Helper()
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "192.168.46.1", ttl: 64, sport: 5350, dpt: 5351, data: req}.bytes())
	ip := header.IPv4(tr.expect(t, "lan0"))
	udp := header.UDP(ip.Payload())
	if udp.SourcePort() != 5351 || udp.DestinationPort() != 5350 {
		t.Fatalf("answer from port %d to %d", udp.SourcePort(), udp.DestinationPort())
	}
	return udp.Payload()
}

// reaches reports whether a stranger's datagram to the external port gets
// to 192.168.46.2:internal.
func (tr *testRouter) reaches(t *testing.T, external, internal uint16) bool {
	t.Helper()
	tr.devs["wan0"].Inject(udp4{src: "203.0.113.9", dst: "198.18.0.8", ttl: 64, payload: 4, sport: 9999, dpt: external}.bytes())
	select {
	case pkt := <-tr.devs["lan0"].Written():
		return header.UDP(header.IPv4(pkt).Payload()).DestinationPort() == internal
	case <-time.After(200 * time.Millisecond):
		return false
	}
}

func TestNATPMPMapping(t *testing.T) {
	tr := pcpRouter(t)
	if tr.reaches(t, 7000, 6000) {
		t.Fatal("a stranger got in before any mapping")
	}
	resp := tr.ask(t, natpmpMap(6000, 7000, 60))
	// RFC 6886 §3.3: version 0, opcode 128+1, result 0, epoch, internal
	// port, mapped port, lifetime.
	if len(resp) != 16 || resp[0] != 0 || resp[1] != 129 || binary.BigEndian.Uint16(resp[2:]) != 0 {
		t.Fatalf("response % x", resp)
	}
	if in, ext, life := binary.BigEndian.Uint16(resp[8:]), binary.BigEndian.Uint16(resp[10:]), binary.BigEndian.Uint32(resp[12:]); in != 6000 || ext != 7000 || life != 60 {
		t.Errorf("mapped %d -> %d for %d s, want 6000 -> 7000 for 60 s", in, ext, life)
	}
	if !tr.reaches(t, 7000, 6000) {
		t.Error("a stranger's datagram to the mapped port did not get in")
	}
	// Lifetime 0 deletes it; the flow the stranger made holds the mapping
	// until it ends, but no one new gets in.
	tr.ask(t, natpmpMap(6000, 0, 0))
	tr.devs["wan0"].Inject(udp4{src: "203.0.113.10", dst: "198.18.0.8", ttl: 64, payload: 4, sport: 9999, dpt: 7000}.bytes())
	tr.expectNone(t, "lan0")
}

func TestPCPMap(t *testing.T) {
	tr := pcpRouter(t)
	resp := tr.ask(t, pcpMap("192.168.46.2", 1, 6000, 7000, 600))
	// RFC 6887 §7.2, §11.1: R bit and opcode, result, lifetime, then the
	// MAP data with the assigned external port and address.
	if len(resp) != 60 || resp[0] != 2 || resp[1] != 0x81 || resp[3] != 0 {
		t.Fatalf("response % x", resp)
	}
	ext := netip.AddrFrom16([16]byte(resp[44:60])).Unmap()
	if life, port := binary.BigEndian.Uint32(resp[4:]), binary.BigEndian.Uint16(resp[42:]); life != 600 || port != 7000 || ext.String() != "198.18.0.8" {
		t.Errorf("granted %s:%d for %d s, want 198.18.0.8:7000 for 600 s", ext, port, life)
	}
	if !tr.reaches(t, 7000, 6000) {
		t.Error("a stranger's datagram to the mapped port did not get in")
	}
	for _, tt := range []struct {
		name string
		req  []byte
		want byte
	}{
		// RFC 6887 §11.3: the mapping is another nonce's.
		{"other nonce", pcpMap("192.168.46.2", 2, 6000, 0, 600), 2},
		// RFC 6887 §8.1: the client's address field is not the source.
		{"address mismatch", pcpMap("192.168.46.3", 1, 6000, 0, 600), 12},
		// Nor may another nonce delete it.
		{"delete with other nonce", pcpMap("192.168.46.2", 2, 6000, 0, 0), 2},
	} {
		if resp := tr.ask(t, tt.req); len(resp) < 4 || resp[3] != tt.want {
			t.Errorf("%s: response % x, want result %d", tt.name, resp, tt.want)
		}
	}
}

// TestPCPFromOutsideIsRefused: a request by the egress interface, even
// with an inside source, never reaches the server.
func TestPCPFromOutsideIsRefused(t *testing.T) {
	tr := pcpRouter(t)
	tr.devs["wan0"].Inject(udp4{src: "192.168.46.2", dst: "198.18.0.8", ttl: 64, sport: 5350, dpt: 5351, data: natpmpMap(6000, 7000, 60)}.bytes())
	tr.expectNone(t, "wan0")
	tr.expectNone(t, "lan0")
	if n := tr.Stats().Drops["pcp_refused"]; n != 1 {
		t.Errorf("pcp_refused drops = %d, want 1", n)
	}
	if tr.reaches(t, 7000, 6000) {
		t.Error("the refused request made a mapping")
	}
}

// TestPCPFollowsReload: with pcp turned off by a reload nothing listens,
// and the router's stack answers like any host without the service.
func TestPCPFollowsReload(t *testing.T) {
	tr := pcpRouter(t)
	tr.ask(t, natpmpMap(6000, 7000, 60))
	if err := tr.Reload(natConfig(config.AddressAndPortDependent)); err != nil {
		t.Fatal(err)
	}
	tr.devs["lan0"].Inject(udp4{src: "192.168.46.2", dst: "192.168.46.1", ttl: 64, sport: 5350, dpt: 5351, data: natpmpMap(6000, 7000, 60)}.bytes())
	icmp4(t, tr.expect(t, "lan0"), "192.168.46.1", "192.168.46.2", header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable)
}
