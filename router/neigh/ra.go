package neigh

import (
	"encoding/binary"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// Router Advertisement timing, the defaults of RFC 4861 §6.2.1 and the
// constants of §10, for the interface that schedules RAs: one every
// MinRtrAdvInterval to MaxRtrAdvInterval (uniformly at random, §6.2.4),
// the first MaxInitialRtrAdvertisements of them at most
// MaxInitialRtrAdvertInterval apart, and an answer to a Router
// Solicitation no sooner than MinDelayBetweenRAs after the last RA
// (§6.2.6).
const (
	MaxRtrAdvInterval           = 600 * time.Second
	MinRtrAdvInterval           = MaxRtrAdvInterval / 3
	MaxInitialRtrAdvertInterval = 16 * time.Second
	MaxInitialRtrAdvertisements = 3
	MinDelayBetweenRAs          = 3 * time.Second
	// DefaultRouterLifetime is AdvDefaultLifetime, 3 × MaxRtrAdvInterval.
	DefaultRouterLifetime = 3 * MaxRtrAdvInterval
)

const (
	// curHopLimit is AdvCurHopLimit, "the value specified in the
	// 'Assigned Numbers' [...] in effect at the time of implementation":
	// 64.
	curHopLimit = 64
	// maxRouterLifetime: §6.2.1, AdvDefaultLifetime "MUST be either zero
	// or between MaxRtrAdvInterval and 9000 seconds".
	maxRouterLifetime = 9000 * time.Second
	// AdvValidLifetime and AdvPreferredLifetime defaults (§6.2.1): 30
	// days and 7 days.
	validLifetime     = 2592000
	preferredLifetime = 604800
	// slaacPrefixLen: SLAAC forms an address from a prefix and a 64-bit
	// interface identifier (RFC 2464 §4), so it ignores any other prefix
	// length (RFC 4862 §5.5.3 d).
	slaacPrefixLen = 64
)

// Field positions from the figures of RFC 4861, for what gVisor's header
// package can read but not write: NDPRouterAdvert and
// NDPPrefixInformation have getters only, and there is no MTU option.
// The tests read every field back with gVisor's getters.
const (
	// §4.2, in the message body after the ICMPv6 header.
	raCurHopLimitOffset    = 0
	raRouterLifetimeOffset = 2
	// §4.6.2, in the option body after Type and Length.
	piSize                    = 30
	piPrefixLengthOffset      = 0
	piFlagsOffset             = 1
	piValidLifetimeOffset     = 2
	piPreferredLifetimeOffset = 6
	piPrefixOffset            = 14
	piOnLinkFlag              = 1 << 7
	piAutonomousFlag          = 1 << 6
	// §4.6.4 and §4.6, the whole option: Type, Length (in units of 8
	// octets), Reserved, MTU.
	mtuOptionType         = 5
	mtuOptionSize         = 8
	mtuOptionTypeOffset   = 0
	mtuOptionLengthOffset = 1
	mtuOptionMTUOffset    = 4
)

// RA is what a Router Advertisement says (RFC 4861 §4.2).
type RA struct {
	// MAC is the interface's: the Source Link-Layer Address option, and
	// LinkLocal(MAC) the source address (§4.2: "MUST be the link-local
	// address assigned to the interface").
	MAC MAC
	// Lifetime is the router lifetime: DefaultRouterLifetime normally;
	// zero says "not a default router", as the final RAs of an interface
	// that stops advertising do (§6.2.5). At most 9000 s.
	Lifetime time.Duration
	// MTU, when not zero, is sent in an MTU option (§4.6.4) so that
	// hosts use the link's MTU.
	MTU uint32
	// Prefixes are the interface's IPv6 prefixes, each sent in a Prefix
	// Information option with the on-link flag, and with the autonomous
	// flag (SLAAC) when it is a /64. IPv4 and link-local prefixes are
	// left out.
	Prefixes []netip.Prefix
}

// BuildRA writes a Router Advertisement into out: a complete IPv6
// packet to the all-nodes group, hop limit 255, Cur Hop Limit 64, no
// managed or other-configuration flag, Reachable Time and Retrans Timer
// unspecified (0: hosts keep their own). Periodic and solicited RAs are
// the same message: §6.2.6 lets a router answer a solicitation by
// unicast, but "the usual case is to multicast the response to the
// all-nodes group". out needs 64 bytes, 8 more for the MTU option and
// 32 more per prefix; 0 is returned if it is too short.
func BuildRA(out []byte, ra RA) Msg {
	opts := header.NDPOptionsSerializer{header.NDPSourceLinkLayerAddressOption(ra.MAC.link())}
	for _, p := range ra.Prefixes {
		if pi, ok := prefixInformation(p); ok {
			opts = append(opts, pi)
		}
	}
	bodyLen := header.NDPRAMinimumSize + opts.Length()
	if ra.MTU > 0 {
		bodyLen += mtuOptionSize
	}
	lifetime := uint16(min(max(ra.Lifetime, 0), maxRouterLifetime) / time.Second)
	n := putICMPv6(out, LinkLocal(ra.MAC), AllNodes, header.ICMPv6RouterAdvert, bodyLen, func(body []byte) {
		body[raCurHopLimitOffset] = curHopLimit
		binary.BigEndian.PutUint16(body[raRouterLifetimeOffset:], lifetime)
		o := header.NDPRouterAdvert(body).Options()
		done := o.Serialize(opts)
		if ra.MTU > 0 {
			putMTUOption(o[done:], ra.MTU)
		}
	})
	return Msg{N: n, Dst: MulticastMAC(AllNodes)}
}

// prefixInformation is the Prefix Information option body for p (RFC
// 4861 §4.6.2) with the default lifetimes.
func prefixInformation(p netip.Prefix) (header.NDPPrefixInformation, bool) {
	a := p.Addr()
	if !a.Is6() || a.Is4In6() || a.IsLinkLocalUnicast() {
		return nil, false
	}
	pi := make(header.NDPPrefixInformation, piSize)
	pi[piPrefixLengthOffset] = uint8(p.Bits())
	pi[piFlagsOffset] = piOnLinkFlag
	if p.Bits() == slaacPrefixLen {
		pi[piFlagsOffset] |= piAutonomousFlag
	}
	binary.BigEndian.PutUint32(pi[piValidLifetimeOffset:], validLifetime)
	binary.BigEndian.PutUint32(pi[piPreferredLifetimeOffset:], preferredLifetime)
	prefix := p.Masked().Addr().As16()
	copy(pi[piPrefixOffset:], prefix[:])
	return pi, true
}

func putMTUOption(b []byte, mtu uint32) {
	b[mtuOptionTypeOffset] = mtuOptionType
	b[mtuOptionLengthOffset] = mtuOptionSize / 8
	binary.BigEndian.PutUint32(b[mtuOptionMTUOffset:], mtu)
}
