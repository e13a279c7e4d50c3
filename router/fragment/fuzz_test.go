package fragment

import (
	"bytes"
	"errors"
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// FuzzIPv4 fragments arbitrary bytes for an arbitrary MTU. IPv4 must never
// panic or change its input; when it succeeds the fragments must
// reassemble to the packet, and the later ones carry exactly the options
// gVisor's own option parser finds copied.
func FuzzIPv4(f *testing.F) {
	f.Add(packet4(nil, 0, 0, 4000), uint16(1500), uint8(8))
	f.Add(packet4(concat(optNOP, optRecordRoute, optLooseRoute, optRouterAlert, optEnd), 0, 0, 3000), uint16(1000), uint8(8))
	f.Add(packet4(concat(optTimestamp, optLooseRoute), header.IPv4FlagMoreFragments, 1480, 500), uint16(68), uint8(64))
	f.Add(packet4(nil, header.IPv4FlagDontFragment, 0, 2000), uint16(1500), uint8(4))
	f.Add(packet4(optRouterAlert, 0, 0, 100), uint16(1500), uint8(1))
	f.Fuzz(func(t *testing.T, pkt []byte, mtu uint16, nbuf uint8) {
		orig := bytes.Clone(pkt)
		// No fragment is longer than the packet, so buffers of that size
		// keep the memory per input small whatever the MTU.
		out := buffers(int(nbuf), min(int(mtu), len(pkt)))
		n, err := IPv4(pkt, int(mtu), out)
		if !bytes.Equal(pkt, orig) {
			t.Fatal("IPv4 changed its input")
		}
		ip := header.IPv4(pkt)
		switch {
		case errors.Is(err, ErrDontFragment):
			if ip.Flags()&header.IPv4FlagDontFragment == 0 || int(ip.TotalLength()) <= int(mtu) {
				t.Fatal("ErrDontFragment without DF on a packet too big")
			}
			return
		case err != nil:
			return
		}
		pkt = pkt[:ip.TotalLength()]
		if int(ip.TotalLength()) <= int(mtu) {
			if n != 1 || !bytes.Equal(out[0], pkt) {
				t.Fatal("a packet within the MTU was not copied as it is")
			}
			return
		}
		wantOpts, ok := gvisorCopiedOptions(ip.Options())
		if !ok {
			// gVisor refuses some options by their kind's rules (say, a
			// short timestamp); only the fragments themselves are checked.
			wantOpts = header.IPv4(out[min(1, n-1)]).Options()
		}
		if err := checkFragments(pkt, int(mtu), out[:n], wantOpts); err != nil {
			t.Fatal(err)
		}
	})
}

// gvisorCopiedOptions lists the options with the copied flag as gVisor's
// option iterator parses them, padded to a whole word, or false if gVisor
// finds a problem in them.
func gvisorCopiedOptions(opts header.IPv4Options) ([]byte, bool) {
	var copied []byte
	it := opts.MakeIterator()
	for {
		opt, done, problem := it.Next()
		if problem != nil {
			return nil, false
		}
		if done || opt.Type() == header.IPv4OptionListEndType {
			break
		}
		if opt.Type()&optionCopied != 0 {
			copied = append(copied, opt.Contents()...)
		}
	}
	for len(copied)%header.IPv4IHLStride != 0 {
		copied = append(copied, byte(header.IPv4OptionListEndType))
	}
	return copied, true
}
