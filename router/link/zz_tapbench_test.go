package link

// TEMPORARY experiment: TAP batching vs one frame per Read vs IFF_VNET_HDR
// with userspace segmentation. Not to be kept.

import (
	"encoding/binary"
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

const vnetLen = 10

type vnetTAP struct {
	dev  netdev
	conn syscall.RawConn
}

func openVnet(t *testing.T, name string) *vnetTAP {
	fd, name, err := openDevice(name, unix.IFF_TAP|unix.IFF_NO_PI|unix.IFF_VNET_HDR)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, unix.TUN_F_CSUM|unix.TUN_F_TSO4|unix.TUN_F_TSO6); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "tap")
	c, _ := f.SyscallConn()
	v := &vnetTAP{dev: netdev{name: name, file: f}, conn: c}
	t.Cleanup(func() { f.Close() })
	return v
}

// readRaw reads up to len(bufs) frames (vnet header included).
func (v *vnetTAP) readRaw(bufs [][]byte, sizes []int) (int, error) {
	n := 0
	err := v.conn.Read(func(fd uintptr) bool {
		for n < len(bufs) {
			m, err := unix.Read(int(fd), bufs[n])
			if err == unix.EAGAIN {
				return n > 0
			}
			if err != nil {
				return true
			}
			sizes[n] = m
			n++
		}
		return true
	})
	return n, err
}

func (v *vnetTAP) writeRaw(frames [][]byte) error {
	i := 0
	return v.conn.Write(func(fd uintptr) bool {
		for i < len(frames) {
			_, err := unix.Write(int(fd), frames[i])
			if err == unix.EAGAIN {
				return false
			}
			i++
		}
		return true
	})
}

// segment splits one vnet frame (header included) into plain frames, each
// written into out[k][vnetLen:] with a zero vnet header; returns count.
func segment(in []byte, out [][]byte) int {
	flags, gsoType := in[0], in[1]&^0x80
	gsoSize := int(binary.LittleEndian.Uint16(in[4:]))
	csumStart := int(binary.LittleEndian.Uint16(in[6:]))
	csumOff := int(binary.LittleEndian.Uint16(in[8:]))
	frame := in[vnetLen:]
	if gsoType == 0 {
		o := out[0][:vnetLen+len(frame)]
		clear(o[:vnetLen])
		copy(o[vnetLen:], frame)
		f := o[vnetLen:]
		if flags&1 != 0 {
			// the field holds the pseudo-header sum already
			binary.BigEndian.PutUint16(f[csumStart+csumOff:], ^checksum.Checksum(f[csumStart:], 0))
		}
		out[0] = o
		return 1
	}
	ip := frame[header.EthernetMinimumSize:]
	var ipLen int
	v4 := header.IPVersion(ip) == 4
	if v4 {
		ipLen = int(header.IPv4(ip).HeaderLength())
	} else {
		ipLen = header.IPv6MinimumSize
	}
	tcp := header.TCP(ip[ipLen:])
	tcpLen := int(tcp.DataOffset())
	hdrLen := header.EthernetMinimumSize + ipLen + tcpLen
	payload := frame[hdrLen:]
	seq := tcp.SequenceNumber()
	var id uint16
	if v4 {
		id = header.IPv4(ip).ID()
	}
	n := 0
	for off := 0; off < len(payload); off += gsoSize {
		end := min(off+gsoSize, len(payload))
		o := out[n][:vnetLen+hdrLen+end-off]
		clear(o[:vnetLen])
		f := o[vnetLen:]
		copy(f, frame[:hdrLen])
		copy(f[hdrLen:], payload[off:end])
		sip := f[header.EthernetMinimumSize:]
		var src, dst tcpip.Address
		segLen := tcpLen + end - off
		if v4 {
			h := header.IPv4(sip)
			h.SetTotalLength(uint16(ipLen + segLen))
			h.SetID(id + uint16(n))
			h.SetChecksum(0)
			h.SetChecksum(^h.CalculateChecksum())
			src, dst = h.SourceAddress(), h.DestinationAddress()
		} else {
			h := header.IPv6(sip)
			h.SetPayloadLength(uint16(segLen))
			src, dst = h.SourceAddress(), h.DestinationAddress()
		}
		st := header.TCP(sip[ipLen:])
		st.SetSequenceNumber(seq + uint32(off))
		fl := st.Flags()
		if end < len(payload) {
			fl &^= header.TCPFlagFin | header.TCPFlagPsh
		}
		if off > 0 {
			fl &^= header.TCPFlagCwr
		}
		st.SetFlags(uint8(fl))
		st.SetChecksum(0)
		sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(segLen))
		st.SetChecksum(^checksum.Checksum(st[:segLen], sum))
		out[n] = o
		n++
	}
	return n
}

type endpoint interface {
	configure(Peer) error
}

func (v *vnetTAP) configure(p Peer) error { return v.dev.configurePeer(p) }
func (t *TAP) configure(p Peer) error     { return t.ConfigurePeer(p) }

type copyStats struct {
	mu            sync.Mutex
	reads, frames atomic.Uint64
}

func copyPlain(src, dst *TAP, batch int, st *copyStats) {
	bufs, sizes := newBufs(batch)
	out := make([][]byte, batch)
	for {
		n, err := src.Read(bufs, sizes, testHeadroom)
		if err != nil {
			return
		}
		st.reads.Add(1)
		st.frames.Add(uint64(n))
		for i := range n {
			out[i] = bufs[i][:testHeadroom+sizes[i]]
		}
		dst.Write(out[:n], testHeadroom) // EIO while dst is still down
	}
}

func copyVnet(src, dst *vnetTAP, pass bool, st *copyStats) {
	const nread = 8
	bufs := make([][]byte, nread)
	for i := range bufs {
		bufs[i] = make([]byte, 65536+vnetLen+64)
	}
	sizes := make([]int, nread)
	segs := make([][]byte, 64*nread)
	for i := range segs {
		segs[i] = make([]byte, 2048)
	}
	out := make([][]byte, 0, 64*nread)
	for {
		n, err := src.readRaw(bufs, sizes)
		if err != nil {
			return
		}
		st.reads.Add(1)
		out = out[:0]
		k := 0
		for i := range n {
			if pass {
				out = append(out, bufs[i][:sizes[i]])
				continue
			}
			for j := range segs[k:] {
				segs[k+j] = segs[k+j][:cap(segs[k+j])]
			}
			m := segment(bufs[i][:sizes[i]], segs[k:])
			out = append(out, segs[k:k+m]...)
			k += m
		}
		st.frames.Add(uint64(len(out)))
		if err := dst.writeRaw(out); err != nil {
			return
		}
	}
}

type iperfResult struct {
	End struct {
		SumReceived struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Packets       int     `json:"packets"`
			Seconds       float64 `json:"seconds"`
		} `json:"sum_received"`
		SumSent struct {
			Retransmits int `json:"retransmits"`
		} `json:"sum_sent"`
		Sum struct {
			Packets     int     `json:"packets"`
			LostPackets int     `json:"lost_packets"`
			Seconds     float64 `json:"seconds"`
		} `json:"sum"`
	} `json:"end"`
}

func iperf(t *testing.T, cns, sns string, args ...string) iperfResult {
	srv := exec.Command("ip", "netns", "exec", sns, "iperf3", "-s", "-1", "-B", "10.99.0.2")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	defer srv.Process.Kill()
	time.Sleep(300 * time.Millisecond)
	a := append([]string{"netns", "exec", cns, "iperf3", "-c", "10.99.0.2", "-J", "-O", "1"}, args...)
	out, err := exec.Command("ip", a...).Output()
	if err != nil {
		t.Fatalf("iperf3 %v: %v\n%s", args, err, out)
	}
	var r iperfResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestZZTAPBench(t *testing.T) {
	if os.Getenv("TAPBENCH") == "" {
		t.Skip("TAPBENCH not set")
	}
	modes := strings.Split(os.Getenv("TAPBENCH"), ",")
	dur := "4"
	for round := range 5 {
		for _, mode := range modes {
			t.Run(mode, func(t *testing.T) {
				cns, sns := newNetns(t), newNetns(t)
				var stAB, stBA copyStats
				var a, b endpoint
				switch mode {
				case "single", "batch", "batch16", "batch128":
					ta, err := OpenTAP(TAPOptions{Name: tunName(), FD: -1})
					if err != nil {
						t.Fatal(err)
					}
					tb, err := OpenTAP(TAPOptions{Name: tunName(), FD: -1})
					if err != nil {
						t.Fatal(err)
					}
					defer ta.Close()
					defer tb.Close()
					bs := map[string]int{"single": 1, "batch": 64, "batch16": 16, "batch128": 128}[mode]
					go copyPlain(ta, tb, bs, &stAB)
					go copyPlain(tb, ta, bs, &stBA)
					a, b = ta, tb
				case "vnet", "vnetpass":
					va, vb := openVnet(t, tunName()), openVnet(t, tunName())
					go copyVnet(va, vb, mode == "vnetpass", &stAB)
					go copyVnet(vb, va, mode == "vnetpass", &stBA)
					a, b = va, vb
				}
				if err := a.configure(Peer{Netns: cns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24")}}); err != nil {
					t.Fatal(err)
				}
				if err := b.configure(Peer{Netns: sns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(200 * time.Millisecond)
				var ru0, ru1 syscall.Rusage
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
				r0, f0 := stAB.reads.Load(), stAB.frames.Load()
				tcp1 := iperf(t, cns, sns, "-t", dur)
				syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
				r1, f1 := stAB.reads.Load(), stAB.frames.Load()
				cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
				gb := tcp1.End.SumReceived.BitsPerSecond / 8 * 5 / 1e9 // approx bytes over the run incl. omit
				tcp4 := iperf(t, cns, sns, "-t", dur, "-P", "4")
				var udp iperfResult
				if os.Getenv("NOUDP") == "" {
					udp = iperf(t, cns, sns, "-t", dur, "-u", "-l", "64", "-b", "0")
				}
				t.Logf("round %d %-8s TCPx1 %6.2f Gbit/s (copier cpu %.2f s/GB, %.1f frames/read, rexmit %d)  TCPx4 %6.2f Gbit/s  UDP64 %6.0f kpps  load %s",
					round, mode, tcp1.End.SumReceived.BitsPerSecond/1e9, cpu.Seconds()/gb, float64(f1-f0)/float64(max(r1-r0, 1)), tcp1.End.SumSent.Retransmits,
					tcp4.End.SumReceived.BitsPerSecond/1e9, float64(udp.End.SumReceived.Packets)/max(udp.End.SumReceived.Seconds, 1)/1e3, loadavg())
			})
		}
	}
}

func TestZZVethRef(t *testing.T) {
	if os.Getenv("TAPBENCH") == "" {
		t.Skip("TAPBENCH not set")
	}
	cns, sns := newNetns(t), newNetns(t)
	va, vb := tunName(), tunName()
	run := func(args ...string) {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	run("link", "add", va, "netns", cns, "type", "veth", "peer", "name", vb, "netns", sns)
	run("-n", cns, "addr", "add", "10.99.0.1/24", "dev", va)
	run("-n", sns, "addr", "add", "10.99.0.2/24", "dev", vb)
	run("-n", cns, "link", "set", va, "up")
	run("-n", sns, "link", "set", vb, "up")
	time.Sleep(200 * time.Millisecond)
	tcp1 := iperf(t, cns, sns, "-t", "5")
	tcp4 := iperf(t, cns, sns, "-t", "5", "-P", "4")
	udp := iperf(t, cns, sns, "-t", "5", "-u", "-l", "64", "-b", "0")
	t.Logf("veth     TCPx1 %6.2f Gbit/s  TCPx4 %6.2f Gbit/s  UDP64 %6.0f kpps",
		tcp1.End.SumReceived.BitsPerSecond/1e9, tcp4.End.SumReceived.BitsPerSecond/1e9,
		float64(udp.End.SumReceived.Packets)/max(udp.End.SumReceived.Seconds, 1)/1e3)
}

func TestZZDebug(t *testing.T) {
	if os.Getenv("TAPBENCH") == "" {
		t.Skip("TAPBENCH not set")
	}
	cns, sns := newNetns(t), newNetns(t)
	ta, err := OpenTAP(TAPOptions{Name: tunName(), FD: -1})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := OpenTAP(TAPOptions{Name: tunName(), FD: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer ta.Close()
	defer tb.Close()
	var st copyStats
	go copyPlain(ta, tb, 64, &st)
	go copyPlain(tb, ta, 64, &st)
	if err := ta.ConfigurePeer(Peer{Netns: cns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24")}}); err != nil {
		t.Fatal(err)
	}
	if err := tb.ConfigurePeer(Peer{Netns: sns, Addresses: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ip", "netns", "exec", cns, "ping", "-c", "2", "-W", "1", "10.99.0.2").CombinedOutput()
	t.Logf("%s %v", out, err)
	out, _ = exec.Command("ip", "-n", cns, "-s", "link").CombinedOutput()
	t.Logf("%s", out)
	out, _ = exec.Command("ip", "-n", sns, "-s", "link").CombinedOutput()
	t.Logf("%s", out)
	out, _ = exec.Command("ip", "-n", cns, "neigh").CombinedOutput()
	t.Logf("%s", out)
	st.mu.Lock()
	t.Logf("%+v", st.frames.Load())
	st.mu.Unlock()
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(b))[:1], "")
}
