package conntrack

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tungate/tungate/router/packet"
)

// clock is the injected clock of the tests: it moves only when told.
type clock struct{ ns atomic.Int64 }

func (c *clock) since() time.Duration    { return time.Duration(c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func newTable(t testing.TB, cfg Config) (*Table, *clock) {
	t.Helper()
	c := new(clock)
	return New(cfg, c.since), c
}

// owner records Released calls.
type owner struct {
	mu       sync.Mutex
	released map[*Flow]int
}

func newOwner() *owner { return &owner{released: map[*Flow]int{}} }

func (o *owner) Released(f *Flow) {
	o.mu.Lock()
	o.released[f]++
	o.mu.Unlock()
}

func (o *owner) count(f *Flow) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.released[f]
}

func (o *owner) total() (flows, calls int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, n := range o.released {
		flows++
		calls += n
	}
	return flows, calls
}

var (
	inside  = netip.MustParseAddr("192.168.1.10")
	server  = netip.MustParseAddr("198.51.100.7")
	public  = netip.MustParseAddr("203.0.113.1")
	inside6 = netip.MustParseAddr("2001:db8:1::10")
	server6 = netip.MustParseAddr("2001:db8:2::7")
)

func key(proto uint8, src netip.Addr, sport uint16, dst netip.Addr, dport uint16) Key {
	return Key{Src: src, Dst: dst, SrcPort: sport, DstPort: dport, Proto: proto}
}

// natKeys is a masqueraded flow: inside:port to server:443, seen from
// outside as public:port+20000.
func natKeys(proto uint8, port uint16) (orig, reply Key) {
	orig = key(proto, inside, port, server, 443)
	reply = key(proto, server, 443, public, port+20000)
	return orig, reply
}

// nthKey is the i-th of many distinct IPv4 keys.
func nthKey(i int) Key {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], 0x0a000000|uint32(i>>16))
	return key(protoUDP, netip.AddrFrom4(a), uint16(i), server, 53)
}

// nthReply is a reply key for nthKey(i), translated as by a NAT: the
// destination is another address, still unique per i.
func nthReply(i int) Key {
	k := nthKey(i).Reverse()
	a := k.Dst.As4()
	a[0] = 100
	k.Dst = netip.AddrFrom4(a)
	return k
}

// pkt is a packet going as k, with TCP flags fl.
func pkt(k Key, fl uint8) *packet.Packet {
	return &packet.Packet{
		Src: k.Src, Dst: k.Dst, Proto: k.Proto,
		HasPorts: true, SrcPort: k.SrcPort, DstPort: k.DstPort,
		TCPFlags: fl, Len: 60,
	}
}

func mustInsert(t testing.TB, tab *Table, orig, reply Key, o Owner) *Flow {
	t.Helper()
	f, err := tab.Insert(orig, reply, o)
	if err != nil {
		t.Fatalf("Insert(%v, %v): %v", orig, reply, err)
	}
	return f
}

// reapAll has Expire go over the whole of a small table once.
func reapAll(tab *Table) int {
	groups := 0
	for i := range tab.shards {
		groups = max(groups, len(tab.shards[i].idx.Load().groups))
	}
	return tab.Expire(groups * nShards / expireGroups)
}
