package fragment

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Raw IPv4 options (RFC 791 §3.1), type octet first.
var (
	optRecordRoute = []byte{7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0}     // not copied
	optLooseRoute  = []byte{0x83, 7, 4, 10, 0, 0, 1}              // copied
	optRouterAlert = []byte{0x94, 4, 0, 0}                        // copied (RFC 2113)
	optTimestamp   = []byte{68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0} // not copied
	optNOP         = []byte{1}
	optEnd         = []byte{0}
)

// packet4 is an IPv4 packet with the given options (padded with zeros to
// a whole word), flags, offset in bytes, and n bytes of patterned data.
func packet4(options []byte, flags uint8, offset uint16, n int) []byte {
	hlen := header.IPv4MinimumSize + (len(options)+3)&^3
	b := make([]byte, hlen+n)
	ip := header.IPv4(b)
	ip.Encode(&header.IPv4Fields{
		TOS:            0x10,
		TotalLength:    uint16(len(b)),
		ID:             0xabcd,
		Flags:          flags,
		FragmentOffset: offset,
		TTL:            63,
		Protocol:       uint8(header.UDPProtocolNumber),
		SrcAddr:        tcpip.AddrFrom4([4]byte{192, 0, 2, 1}),
		DstAddr:        tcpip.AddrFrom4([4]byte{198, 51, 100, 2}),
	})
	ip.SetHeaderLength(uint8(hlen))
	copy(ip.Options(), options)
	for i := range n {
		b[hlen+i] = byte(i*7 + i>>8)
	}
	ip.SetChecksum(^ip.CalculateChecksum())
	return b
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// buffers is n empty buffers of the given capacity.
func buffers(n, capacity int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, 0, capacity)
	}
	return out
}

// reassembly is what a receiver makes of a run of fragments.
type reassembly struct {
	first  header.IPv4 // the first fragment's header
	data   []byte      // the data of all fragments joined
	offset int         // where the first fragment's data starts
	more   bool        // the last fragment's MF
}

// reassemble checks frags as a receiver would (RFC 791 §3.2: same ID,
// source, destination and protocol; each piece starts where the one
// before ended) plus what the sender owes (valid checksum, at most mtu
// bytes, data in whole blocks but for the last), and joins them.
func reassemble(frags [][]byte, mtu int) (reassembly, error) {
	var r reassembly
	for i, b := range frags {
		f := header.IPv4(b)
		last := i == len(frags)-1
		switch {
		case !f.IsValid(len(b)) || int(f.TotalLength()) != len(b):
			return r, fmt.Errorf("fragment %d: bad header or total length %d", i, len(b))
		case !f.IsChecksumValid():
			return r, fmt.Errorf("fragment %d: bad checksum", i)
		case len(b) > mtu:
			return r, fmt.Errorf("fragment %d: %d bytes, MTU %d", i, len(b), mtu)
		case f.Flags()&header.IPv4FlagDontFragment != 0:
			return r, fmt.Errorf("fragment %d: DF set", i)
		case !last && !f.More():
			return r, fmt.Errorf("fragment %d: MF clear before the last", i)
		case !last && len(f.Payload())%fragmentBlock != 0:
			return r, fmt.Errorf("fragment %d: %d bytes of data, not whole blocks", i, len(f.Payload()))
		}
		if i == 0 {
			r.first, r.offset = f[:f.HeaderLength()], int(f.FragmentOffset())
		} else {
			p := r.first
			if f.ID() != p.ID() || f.Protocol() != p.Protocol() || f.SourceAddress() != p.SourceAddress() ||
				f.DestinationAddress() != p.DestinationAddress() || f.TTL() != p.TTL() {
				return r, fmt.Errorf("fragment %d: header differs from the first", i)
			}
			if got, want := int(f.FragmentOffset()), r.offset+len(r.data); got != want {
				return r, fmt.Errorf("fragment %d: offset %d, want %d", i, got, want)
			}
		}
		r.data = append(r.data, f.Payload()...)
		r.more = f.More()
	}
	return r, nil
}

// sameHeader reports whether two IPv4 headers agree in all but the fields
// fragmentation rewrites: total length, MF, offset and checksum.
func sameHeader(a, b header.IPv4) bool {
	norm := func(h header.IPv4) header.IPv4 {
		h = header.IPv4(bytes.Clone(h[:h.HeaderLength()]))
		h.SetTotalLength(0)
		h.SetFlagsFragmentOffset(h.Flags()&^header.IPv4FlagMoreFragments, 0)
		h.SetChecksum(0)
		return h
	}
	return bytes.Equal(norm(a), norm(b))
}

// checkFragments checks that out[:n] are the fragments of pkt for mtu and
// that the later ones carry wantOpts as their options.
func checkFragments(pkt []byte, mtu int, frags [][]byte, wantOpts []byte) error {
	orig := header.IPv4(pkt)
	r, err := reassemble(frags, mtu)
	if err != nil {
		return err
	}
	if !sameHeader(r.first, orig) {
		return fmt.Errorf("first fragment's header differs from the original's")
	}
	if r.offset != int(orig.FragmentOffset()) || r.more != orig.More() {
		return fmt.Errorf("fragments span offset %d MF %v, original %d MF %v", r.offset, r.more, orig.FragmentOffset(), orig.More())
	}
	if !bytes.Equal(r.data, orig.Payload()) {
		return fmt.Errorf("reassembled data differs: %d bytes, want %d", len(r.data), len(orig.Payload()))
	}
	for i, b := range frags[1:] {
		f := header.IPv4(b)
		if got := []byte(f.Options()); !bytes.Equal(got, wantOpts) {
			return fmt.Errorf("fragment %d options %x, want %x", i+1, got, wantOpts)
		}
	}
	return nil
}

func TestIPv4(t *testing.T) {
	allOpts := concat(optNOP, optRecordRoute, optLooseRoute, optRouterAlert, optEnd)
	for _, tc := range []struct {
		name     string
		pkt      []byte
		mtu      int
		wantN    int
		wantOpts []byte // options of the later fragments
		offsets  []int  // fragment offsets in bytes, when pinned
	}{
		{name: "three fragments", pkt: packet4(nil, 0, 0, 4000), mtu: 1500, wantN: 3, offsets: []int{0, 1480, 2960}},
		{name: "exact multiple", pkt: packet4(nil, 0, 0, 2960), mtu: 1500, wantN: 2, offsets: []int{0, 1480}},
		{name: "odd mtu rounds data down to blocks", pkt: packet4(nil, 0, 0, 3000), mtu: 1001, wantN: 4, offsets: []int{0, 976, 1952, 2928}},
		{name: "one byte over", pkt: packet4(nil, 0, 0, 1481), mtu: 1500, wantN: 2, offsets: []int{0, 1480}},
		{name: "fragment of a middle fragment keeps MF", pkt: packet4(nil, header.IPv4FlagMoreFragments, 1480, 2000), mtu: 1000, wantN: 3, offsets: []int{1480, 2456, 3432}},
		{name: "fragment of a last fragment", pkt: packet4(nil, 0, 2960, 2000), mtu: 1000, wantN: 3, offsets: []int{2960, 3936, 4912}},
		{name: "copied options only in later fragments", pkt: packet4(allOpts, 0, 0, 3000), mtu: 1000,
			wantN: 4, wantOpts: concat(optLooseRoute, optRouterAlert, []byte{0}), offsets: []int{0, 952, 1920, 2888}},
		{name: "no copied options", pkt: packet4(concat(optRecordRoute, optTimestamp), 0, 0, 2000), mtu: 576, wantN: 4, offsets: []int{0, 528, 1080, 1632}},
		{name: "minimum mtu with full header", pkt: packet4(concat(optLooseRoute, optLooseRoute, optLooseRoute, optLooseRoute, optLooseRoute, optRouterAlert, optNOP), 0, 0, 40), mtu: header.IPv4MinimumMTU,
			wantN: 5, wantOpts: concat(optLooseRoute, optLooseRoute, optLooseRoute, optLooseRoute, optLooseRoute, optRouterAlert, []byte{0}), offsets: []int{0, 8, 16, 24, 32}},
		{name: "reserved flag kept", pkt: packet4(nil, 4, 0, 3000), mtu: 1500, wantN: 3},
		{name: "trailing bytes ignored", pkt: concat(packet4(nil, 0, 0, 2000), []byte{0xee, 0xee}), mtu: 1500, wantN: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			orig := bytes.Clone(tc.pkt)
			out := buffers(8, tc.mtu)
			n, err := IPv4(tc.pkt, tc.mtu, out)
			if err != nil || n != tc.wantN {
				t.Fatalf("IPv4 = %d, %v; want %d fragments", n, err, tc.wantN)
			}
			if !bytes.Equal(tc.pkt, orig) {
				t.Fatal("IPv4 changed its input")
			}
			ip := header.IPv4(tc.pkt)
			if err := checkFragments(tc.pkt[:ip.TotalLength()], tc.mtu, out[:n], tc.wantOpts); err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.offsets {
				if got := int(header.IPv4(out[i]).FragmentOffset()); got != want {
					t.Errorf("fragment %d offset %d, want %d", i, got, want)
				}
			}
			if want := ip.Flags() &^ header.IPv4FlagMoreFragments; header.IPv4(out[n-1]).Flags()&^header.IPv4FlagMoreFragments != want {
				t.Errorf("flags besides MF not kept")
			}
		})
	}
}

// TestIPv4Fits checks that a packet within the MTU is copied as it is,
// DF or not.
func TestIPv4Fits(t *testing.T) {
	pkt := packet4(concat(optRecordRoute), header.IPv4FlagDontFragment, 0, 1000)
	out := buffers(1, len(pkt))
	n, err := IPv4(pkt, len(pkt), out)
	if err != nil || n != 1 || !bytes.Equal(out[0], pkt) {
		t.Fatalf("IPv4 = %d, %v; want the packet unchanged", n, err)
	}
}

func TestIPv4Errors(t *testing.T) {
	badLength := packet4(nil, 0, 0, 2000)
	header.IPv4(badLength).SetTotalLength(3000)
	for _, tc := range []struct {
		name string
		pkt  []byte
		mtu  int
		out  [][]byte
		want error
	}{
		{"DF set", packet4(nil, header.IPv4FlagDontFragment, 0, 2000), 1500, buffers(4, 1500), ErrDontFragment},
		{"mtu below header plus 8", packet4(optRouterAlert, 0, 0, 2000), 31, buffers(500, 31), ErrMTUTooSmall},
		{"mtu zero", packet4(nil, 0, 0, 100), 0, buffers(4, 100), ErrMTUTooSmall},
		{"mtu negative", packet4(nil, 0, 0, 100), -1, buffers(4, 100), ErrMTUTooSmall},
		{"too many fragments", packet4(nil, 0, 0, 4000), 1500, buffers(2, 1500), ErrTooManyFragments},
		{"no buffers for a fitting packet", packet4(nil, 0, 0, 100), 1500, nil, ErrTooManyFragments},
		{"buffers too small", packet4(nil, 0, 0, 4000), 1500, buffers(4, 1000), ErrShortBuffer},
		{"buffer too small for a fitting packet", packet4(nil, 0, 0, 100), 1500, buffers(1, 100), ErrShortBuffer},
		{"not IPv4", make([]byte, 100), 60, buffers(4, 60), ErrMalformed},
		{"total length past the bytes", badLength, 1500, buffers(4, 1500), ErrMalformed},
		{"option length zero", packet4([]byte{0x83, 0, 0, 0}, 0, 0, 2000), 1500, buffers(4, 1500), ErrMalformed},
		{"option past the header", packet4([]byte{0x83, 9, 4, 0}, 0, 0, 2000), 1500, buffers(4, 1500), ErrMalformed},
		{"option without length", packet4([]byte{1, 1, 1, 0x83}, 0, 0, 2000), 1500, buffers(4, 1500), ErrMalformed},
		{"offsets past 13 bits", packet4(nil, header.IPv4FlagMoreFragments, 64000, 3000), 1500, buffers(4, 1500), ErrMalformed},
	} {
		if n, err := IPv4(tc.pkt, tc.mtu, tc.out); !errors.Is(err, tc.want) || n != 0 {
			t.Errorf("%s: IPv4 = %d, %v; want %v", tc.name, n, err, tc.want)
		}
	}
}

func TestIPv4Allocs(t *testing.T) {
	pkt := packet4(concat(optLooseRoute, optRecordRoute), 0, 0, 8000)
	out := buffers(8, 1500)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := IPv4(pkt, 1500, out); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("IPv4 allocates %v times", allocs)
	}
}

func BenchmarkIPv4(b *testing.B) {
	pkt := packet4(nil, 0, 0, 8972)
	out := buffers(8, 1500)
	b.SetBytes(int64(len(pkt)))
	for b.Loop() {
		if _, err := IPv4(pkt, 1500, out); err != nil {
			b.Fatal(err)
		}
	}
}
