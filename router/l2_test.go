package router

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/tungate/tungate/config"
	"github.com/tungate/tungate/router/link"
	"github.com/tungate/tungate/router/neigh"
)

// tapMemory is an in-memory device with TAP framing: the Ethernet header
// sits in the ethLen bytes before the offset, on Read and on Write.
type tapMemory struct{ *link.Memory }

func (m tapMemory) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := m.Memory.Read(bufs, sizes, offset-ethLen)
	for i := range n {
		sizes[i] -= ethLen
	}
	return n, err
}

func (m tapMemory) Write(bufs [][]byte, offset int) (int, error) {
	return m.Memory.Write(bufs, offset-ethLen)
}

var hostMAC = neigh.MAC{0x02, 0, 0, 0, 0, 0x22}

// frame puts an Ethernet header in front of payload.
func frame(dst, src neigh.MAC, typ tcpip.NetworkProtocolNumber, payload []byte) []byte {
	b := make([]byte, ethLen+len(payload))
	header.Ethernet(b).Encode(&header.EthernetFields{DstAddr: tcpip.LinkAddress(dst[:]), SrcAddr: tcpip.LinkAddress(src[:]), Type: typ})
	copy(b[ethLen:], payload)
	return b
}

// arpFrame is an ARP message from the test host.
func arpFrame(op header.ARPOp, dst neigh.MAC, sender, target string, targetMAC neigh.MAC) []byte {
	b := make([]byte, header.ARPSize)
	a := header.ARP(b)
	a.SetIPv4OverEthernet()
	a.SetOp(op)
	s, tg := netip.MustParseAddr(sender).As4(), netip.MustParseAddr(target).As4()
	copy(a.HardwareAddressSender(), hostMAC[:])
	copy(a.ProtocolAddressSender(), s[:])
	copy(a.HardwareAddressTarget(), targetMAC[:])
	copy(a.ProtocolAddressTarget(), tg[:])
	return frame(dst, hostMAC, header.ARPProtocolNumber, b)
}

// l2Router is testConfig with lan0 an Ethernet (TAP) link, on a clock the
// test moves.
func l2Router(t *testing.T) (*testRouter, *atomic.Int64) {
	return l2RouterWith(t, testConfig())
}

func l2RouterWith(t *testing.T, cfg *config.Config) (*testRouter, *atomic.Int64) {
	cfg.Interface[0].Kind = config.KindTAP
	cfg.ARP = config.DefaultARP
	var clock atomic.Int64
	clock.Store(time.Unix(1e9, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	tr := &testRouter{devs: map[string]*link.Memory{}}
	r, err := New(cfg, Options{Now: now, OpenDevice: func(ic config.Interface) ([]Device, error) {
		m := link.NewMemory(ic.Name, 64)
		tr.devs[ic.Name] = m
		if ic.Kind == config.KindTAP {
			return []Device{tapMemory{m}}, nil
		}
		return []Device{m}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	tr.Router = r
	r.Start()
	t.Cleanup(func() { r.Close() })
	// The announcements of lan0's addresses as it comes up: an ARP
	// announcement for 192.168.46.1, unsolicited NAs for its IPv6 ones.
	for range 3 {
		tr.expect(t, "lan0")
	}
	return tr, &clock
}

// ethernet splits a frame written to a TAP link.
func ethernet(t *testing.T, f []byte) (dst neigh.MAC, typ uint16, payload []byte) {
	t.Helper()
	if len(f) < ethLen {
		t.Fatalf("runt frame % x", f)
	}
	copy(dst[:], f[ethDst:])
	return dst, binary.BigEndian.Uint16(f[ethType:]), f[ethLen:]
}

func TestARPRequestForTheRouterIsAnswered(t *testing.T) {
	tr, _ := l2Router(t)
	routerMAC := neigh.MAC(link.MACFor("lan0"))
	tr.devs["lan0"].Inject(arpFrame(header.ARPRequest, neigh.Broadcast, "192.168.46.2", "192.168.46.1", neigh.MAC{}))
	dst, typ, payload := ethernet(t, tr.expect(t, "lan0"))
	a := header.ARP(payload)
	if dst != hostMAC || typ != uint16(header.ARPProtocolNumber) || a.Op() != header.ARPReply ||
		neigh.MAC(a.HardwareAddressSender()) != routerMAC || netip.AddrFrom4([4]byte(a.ProtocolAddressSender())).String() != "192.168.46.1" {
		t.Errorf("answer to %s, type %#x, op %d, sender %x", dst, typ, a.Op(), a.HardwareAddressSender())
	}
}

func TestNextHopResolvedByARPThenForwarded(t *testing.T) {
	tr, _ := l2Router(t)
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "192.168.46.2", ttl: 64, payload: 20}.bytes())
	dst, typ, payload := ethernet(t, tr.expect(t, "lan0"))
	if a := header.ARP(payload); dst != neigh.Broadcast || typ != uint16(header.ARPProtocolNumber) || a.Op() != header.ARPRequest ||
		netip.AddrFrom4([4]byte(a.ProtocolAddressTarget())).String() != "192.168.46.2" {
		t.Fatalf("want a broadcast ARP request for 192.168.46.2, got to %s type %#x", dst, typ)
	}
	routerMAC := neigh.MAC(link.MACFor("lan0"))
	tr.devs["lan0"].Inject(arpFrame(header.ARPReply, routerMAC, "192.168.46.2", "192.168.46.1", routerMAC))
	dst, typ, payload = ethernet(t, tr.expect(t, "lan0"))
	if ip := header.IPv4(payload); dst != hostMAC || typ != uint16(header.IPv4ProtocolNumber) || ip.TTL() != 63 {
		t.Errorf("queued packet out to %s, type %#x, TTL %d", dst, typ, ip.TTL())
	}
	// Resolved now: the next packet goes at once.
	tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: "192.168.46.2", ttl: 64, payload: 20}.bytes())
	if dst, _, _ = ethernet(t, tr.expect(t, "lan0")); dst != hostMAC {
		t.Errorf("to %s, want %s", dst, hostMAC)
	}
}

// TestUnresolvedNextHopIsHostUnreachable, also for a packet the NAT
// translated on its way: the error quotes it as its sender sent it.
func TestUnresolvedNextHopIsHostUnreachable(t *testing.T) {
	forwarded := natConfig(config.EndpointIndependent)
	forwarded.Forward = []config.Forward{{In: "wan0", Proto: uint8(header.UDPProtocolNumber),
		Listen: netip.MustParseAddrPort("198.18.0.8:8080"), To: netip.MustParseAddrPort("192.168.46.9:80")}}
	for _, tt := range []struct {
		name string
		cfg  *config.Config
		dst  string
		dpt  uint16
	}{
		{"routed", testConfig(), "192.168.46.9", 80},
		{"port forward", forwarded, "198.18.0.8", 8080},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tr, clock := l2RouterWith(t, tt.cfg)
			tr.devs["wan0"].Inject(udp4{src: "198.18.0.1", dst: tt.dst, ttl: 64, payload: 20, sport: 7000, dpt: tt.dpt}.bytes())
			cfg := config.DefaultARP
			if tt.cfg == forwarded {
				// The forward's flow is made once the packet is queued; the
				// clock moved by hand would fail the neighbor before that,
				// where real retries take seconds.
				for deadline := time.Now().Add(2 * time.Second); len(tr.Conntrack()) == 0; time.Sleep(time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("no flow for the forwarded packet")
					}
				}
			}
			for range cfg.Retries {
				if _, typ, _ := ethernet(t, tr.expect(t, "lan0")); typ != uint16(header.ARPProtocolNumber) {
					t.Fatalf("want an ARP request, got type %#x", typ)
				}
				clock.Add(int64(cfg.RetryInterval))
				tr.neigh.Tick()
			}
			icmp := icmp4(t, tr.expect(t, "wan0"), "198.18.0.8", "198.18.0.1", header.ICMPv4DstUnreachable, header.ICMPv4HostUnreachable)
			quote := header.IPv4(icmp.Payload())
			if got := netip.AddrFrom4(quote.DestinationAddress().As4()); got.String() != tt.dst || header.UDP(quote.Payload()).DestinationPort() != tt.dpt {
				t.Errorf("quote to %s:%d, want %s:%d", got, header.UDP(quote.Payload()).DestinationPort(), tt.dst, tt.dpt)
			}
			if st := tr.Stats(); st.Neighbors.Failed != 1 || st.Drops["neighbor_failed"] != 1 || st.ICMP.Sent != 1 {
				t.Errorf("failed %d, neighbor_failed drops %d, ICMP errors sent %d; want 1 each", st.Neighbors.Failed, st.Drops["neighbor_failed"], st.ICMP.Sent)
			}
		})
	}
}

func TestFramesForOtherHostsAreDropped(t *testing.T) {
	tr, _ := l2Router(t)
	pkt := udp4{src: "192.168.46.2", dst: "198.18.0.1", ttl: 64, payload: 20}.bytes()
	tr.devs["lan0"].Inject(frame(neigh.MAC{0x02, 9, 9, 9, 9, 9}, hostMAC, header.IPv4ProtocolNumber, pkt))
	tr.devs["lan0"].Inject(frame(neigh.MAC(link.MACFor("lan0")), hostMAC, header.IPv4ProtocolNumber, pkt))
	tr.expect(t, "wan0") // only the one addressed to the router
	tr.expectNone(t, "wan0")
	if n := tr.Stats().Drops["other_host"]; n != 1 {
		t.Errorf("other_host drops %d, want 1", n)
	}
}

// TestCaptureTAP: a capture of a TAP interface is pcap of whole Ethernet
// frames (link type 1), the frame the router read first.
func TestCaptureTAP(t *testing.T) {
	tr, _ := l2Router(t)
	var buf bytes.Buffer
	done := make(chan error, 1)
	go func() {
		_, _, err := tr.Capture(context.Background(), "lan0", &buf, 1)
		done <- err
	}()
	req := arpFrame(header.ARPRequest, neigh.MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "192.168.46.2", "192.168.46.1", neigh.MAC{})
	deadline := time.After(2 * time.Second)
	for {
		tr.devs["lan0"].Inject(req) // until the capture is in place
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			b := buf.Bytes()
			if len(b) < 24+16+len(req) || binary.LittleEndian.Uint32(b[0:]) != 0xa1b2c3d4 || binary.LittleEndian.Uint32(b[20:]) != 1 {
				t.Fatalf("not a pcap of Ethernet frames: % x", b[:min(len(b), 24)])
			}
			if rec := b[24+16:]; !bytes.Equal(rec, req) || binary.LittleEndian.Uint32(b[24+8:]) != uint32(len(req)) {
				t.Errorf("record % x, want the frame % x", rec, req)
			}
			return
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("nothing captured")
		}
	}
}
