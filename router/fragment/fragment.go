// Package fragment splits an IPv4 packet that is larger than the egress
// link's MTU into fragments, as RFC 791 §2.3 and §3.2 describe and RFC
// 1812 §4.2.2.7 requires of a router: "Fragmentation, as described in
// [INTERNET:1], MUST be supported by a router."
//
// IPv6 routers never fragment (RFC 8200 §5); they send Packet Too Big.
package fragment

import (
	"errors"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Errors IPv4 returns. The caller drops the packet; for ErrDontFragment it
// answers with ICMP Fragmentation Needed (RFC 1191 §4).
var (
	// ErrDontFragment: the packet is too big and has DF set. RFC 791: "If
	// the Don't Fragment flag (DF) bit is set, then internet fragmentation
	// of this datagram is NOT permitted".
	ErrDontFragment = errors.New("fragment: too big with don't fragment set")
	// ErrMTUTooSmall: the MTU cannot carry the packet's header and 8
	// bytes of data, the least a fragment may hold.
	ErrMTUTooSmall = errors.New("fragment: MTU below header plus 8 bytes")
	// ErrTooManyFragments: the packet needs more fragments than out has
	// buffers.
	ErrTooManyFragments = errors.New("fragment: more fragments than buffers")
	// ErrShortBuffer: a buffer in out is smaller than its fragment.
	ErrShortBuffer = errors.New("fragment: buffer smaller than fragment")
	// ErrMalformed: the packet is not a valid IPv4 packet, its options do
	// not parse, or its fragments would lie past the largest offset.
	ErrMalformed = errors.New("fragment: malformed IPv4 packet")
)

const (
	// fragmentBlock is the unit of fragment offsets. RFC 791: "The
	// fragment offset is measured in units of 8 octets (64 bits)."
	fragmentBlock = header.MinIPFragmentPayloadSize

	// maxOffset is the largest fragment offset, in bytes. RFC 791: "This
	// format allows 2**13 = 8192 fragments of 8 octets each for a total
	// of 65,536 octets."
	maxOffset = header.IPv4MaximumPayloadSize - fragmentBlock

	// optionCopied is the copied flag of an option type. RFC 791: "The
	// option-type octet is viewed as having 3 fields: 1 bit copied flag,
	// 2 bits option class, 5 bits option number." and "The copied flag
	// indicates that this option is copied into all fragments on
	// fragmentation."
	optionCopied header.IPv4OptionType = 0x80
)

// IPv4 writes the fragments of the IPv4 packet pkt, none longer than mtu,
// into the buffers of out, reslicing out[i] to the i-th fragment, and
// returns how many it wrote: the caller sends out[:n] in order. Each
// buffer needs the capacity of the fragment it gets; mtu is always enough.
// A packet that fits the MTU is copied whole into out[0].
//
// pkt must be a valid IPv4 packet (bytes past its total length are
// ignored); it is not changed. On error the contents of out are
// undefined. IPv4 does not allocate.
func IPv4(pkt []byte, mtu int, out [][]byte) (int, error) {
	ip := header.IPv4(pkt)
	if !ip.IsValid(len(pkt)) {
		return 0, ErrMalformed
	}
	ip = ip[:ip.TotalLength()]
	if len(ip) <= mtu {
		if len(out) == 0 {
			return 0, ErrTooManyFragments
		}
		if cap(out[0]) < len(ip) {
			return 0, ErrShortBuffer
		}
		out[0] = append(out[0][:0], ip...)
		return 1, nil
	}
	if ip.Flags()&header.IPv4FlagDontFragment != 0 {
		return 0, ErrDontFragment
	}

	// RFC 1812 §4.2.2.7: "When a router fragments an IP datagram, it
	// SHOULD minimize the number of fragments." So every fragment but the
	// last is as large as the MTU allows, its data cut to whole blocks:
	// RFC 791 divides the data "into two portions on a 8 octet (64 bit)
	// boundary (the second portion might not be an integral multiple of 8
	// octets, but the first must be)".
	hlen := int(ip.HeaderLength())
	firstData := (mtu - hlen) &^ (fragmentBlock - 1)
	if firstData < fragmentBlock {
		return 0, ErrMTUTooSmall
	}
	// The later fragments carry only the copied options, so their header
	// may be shorter and their data longer.
	var opts [header.IPv4MaximumOptionsSize]byte
	optLen, ok := copiedOptions(ip.Options(), opts[:])
	if !ok {
		return 0, ErrMalformed
	}
	restHlen := header.IPv4MinimumSize + optLen
	restData := (mtu - restHlen) &^ (fragmentBlock - 1)

	payload := ip[hlen:]
	count := 1 + (len(payload)-firstData+restData-1)/restData
	if count > len(out) {
		return 0, ErrTooManyFragments
	}
	// RFC 791's procedure sets a later fragment's offset to "FO <- OFO +
	// NFB": a fragment of a fragment counts from the original's offset,
	// and must still fit the 13-bit field.
	origOffset := int(ip.FragmentOffset())
	if origOffset+firstData+(count-2)*restData > maxOffset {
		return 0, ErrMalformed
	}
	// RFC 791: the first fragment gets "MF <- 1", and the second "The
	// more-fragments flag carries the same value as the long datagram"
	// ("MF <- OMF"); applied in turn, only the last new fragment keeps
	// the original's flag. Other flag bits (DF is clear here) are copied.
	flags := ip.Flags() &^ header.IPv4FlagMoreFragments
	origMore := ip.More()

	off := 0
	for i := range count {
		fragHlen, data := restHlen, restData
		if i == 0 {
			fragHlen, data = hlen, firstData
		}
		data = min(data, len(payload)-off)
		size := fragHlen + data
		if cap(out[i]) < size {
			return 0, ErrShortBuffer
		}
		frag := header.IPv4(out[i][:size])
		if i == 0 {
			// RFC 791: "(1) Copy the original internet header", all
			// options included.
			copy(frag, ip[:hlen])
		} else {
			// "(7) Selectively copy the internet header (some options
			// are not copied, see option definitions)", and recompute
			// IHL. opts is zero past optLen: End of Option List, padding.
			copy(frag, ip[:header.IPv4MinimumSize])
			copy(frag[header.IPv4MinimumSize:], opts[:optLen])
			frag.SetHeaderLength(uint8(restHlen))
		}
		copy(frag[fragHlen:], payload[off:off+data])
		frag.SetTotalLength(uint16(size))
		fragFlags := flags
		if i < count-1 || origMore {
			fragFlags |= header.IPv4FlagMoreFragments
		}
		frag.SetFlagsFragmentOffset(fragFlags, uint16(origOffset+off))
		frag.SetChecksum(0)
		frag.SetChecksum(^frag.CalculateChecksum())
		out[i] = frag
		off += data
	}
	return count, nil
}

// copiedOptions copies the options of opts that have the copied flag into
// dst, which must be zero, and returns their length padded to a multiple
// of four (the padding is dst's zeros), or false if opts do not parse.
//
// RFC 791: "There are two cases for the format of an option: Case 1: A
// single octet of option-type. Case 2: An option-type octet, an
// option-length octet, and the actual option-data octets." Only End of
// Option List and No Operation are of case 1; neither is copied.
func copiedOptions(opts header.IPv4Options, dst []byte) (int, bool) {
	n := 0
	for len(opts) > 0 {
		opt := header.IPv4OptionGeneric(opts)
		switch opt.Type() {
		case header.IPv4OptionListEndType:
			// "This option code indicates the end of the option list."
			return pad(n), true
		case header.IPv4OptionNOPType:
			opts = opts[1:]
			continue
		}
		if len(opts) <= header.IPv4OptionLengthOffset {
			return 0, false
		}
		size := int(opts[header.IPv4OptionLengthOffset])
		if size <= header.IPv4OptionLengthOffset || size > len(opts) {
			return 0, false
		}
		if opt.Type()&optionCopied != 0 {
			n += copy(dst[n:], opts[:size])
		}
		opts = opts[size:]
	}
	return pad(n), true
}

// pad rounds an options length up to whole header words. RFC 791: "The
// internet header padding is used to ensure that the internet header ends
// on a 32 bit boundary."
func pad(n int) int {
	return (n + header.IPv4IHLStride - 1) &^ (header.IPv4IHLStride - 1)
}
