package neigh

import (
	"fmt"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// MAC is an Ethernet address. A value, not a slice, so that the cache
// hands it out without allocating and compares it with ==.
type MAC [header.EthernetAddressSize]byte

// Broadcast is the Ethernet broadcast address, where ARP requests go.
var Broadcast = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats the address as six colon-separated hex bytes.
func (m MAC) String() string { return net.HardwareAddr(m[:]).String() }

// MarshalText writes the String form, so the address reads the same in
// `tungate arp --json` as in the table.
func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads the String form back.
func (m *MAC) UnmarshalText(b []byte) error {
	hw, err := net.ParseMAC(string(b))
	if err != nil {
		return err
	}
	if len(hw) != len(m) {
		return fmt.Errorf("neigh: %q is not an Ethernet address", b)
	}
	*m = MAC(hw)
	return nil
}

// unicast reports whether m may name a neighbor. RFC 1812 §3.3.2: a router
// must not believe an ARP reply that claims a broadcast or multicast
// link-layer address for a unicast IP address; the zero address is no
// interface at all.
func (m MAC) unicast() bool {
	return header.IsValidUnicastEthernetAddress(m.link())
}

func (m MAC) link() tcpip.LinkAddress { return tcpip.LinkAddress(m[:]) }

func macFrom(l tcpip.LinkAddress) (MAC, bool) {
	if len(l) != header.EthernetAddressSize {
		return MAC{}, false
	}
	return MAC([]byte(l)), true
}

// AllNodes is ff02::1, the link-local all-nodes group: where periodic
// Router Advertisements and unsolicited Neighbor Advertisements go.
var AllNodes = fromTcpip6(header.IPv6AllNodesMulticastAddress)

// LinkLocal is the IPv6 link-local address of an interface with this MAC:
// fe80::/64 with the modified EUI-64 interface identifier (RFC 4291 §2.5.1
// and Appendix A). Router Advertisements must come from it (RFC 4861
// §4.2: "Source Address MUST be the link-local address assigned to the
// interface from which this message is sent").
func LinkLocal(mac MAC) netip.Addr {
	return fromTcpip6(header.LinkLocalAddr(mac.link()))
}

// SolicitedNode is the solicited-node multicast group of ip,
// ff02::1:ffXX:XXXX (RFC 4291 §2.7.1), where a Neighbor Solicitation for
// ip is sent.
func SolicitedNode(ip netip.Addr) netip.Addr {
	return fromTcpip6(header.SolicitedNodeAddr(toTcpip(ip)))
}

// MulticastMAC is the Ethernet group address an IP multicast packet to ip
// is sent to: 33:33 and the last four bytes of an IPv6 group (RFC 2464
// §7), 01:00:5e and the low 23 bits of an IPv4 group (RFC 1112 §6.4). ip
// must be multicast.
func MulticastMAC(ip netip.Addr) MAC {
	var l tcpip.LinkAddress
	if ip.Is4() {
		l = header.EthernetAddressFromMulticastIPv4Address(toTcpip(ip))
	} else {
		l = header.EthernetAddressFromMulticastIPv6Address(toTcpip(ip))
	}
	m, _ := macFrom(l)
	return m
}

func toTcpip(ip netip.Addr) tcpip.Address {
	if ip.Is4() {
		return tcpip.AddrFrom4(ip.As4())
	}
	return tcpip.AddrFrom16(ip.As16())
}

// fromTcpip6 converts an IPv6 address back; NDP carries no other kind.
func fromTcpip6(a tcpip.Address) netip.Addr { return netip.AddrFrom16(a.As16()) }
