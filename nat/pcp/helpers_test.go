package pcp

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

var be = binary.BigEndian

var (
	client4 = netip.MustParseAddr("192.168.1.10")
	client6 = netip.MustParseAddr("fd00::10")
	nonce   = [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}

	noSuggestion4 = netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	noSuggestion6 = netip.AddrPortFrom(netip.IPv6Unspecified(), 0)
	suggested4    = netip.MustParseAddrPort("203.0.113.5:40000")
	suggested6    = netip.MustParseAddrPort("[2001:db8::1]:443")
)

// pcpRequest builds a PCP request of version 2: the common header, then
// the parts that follow it.
func pcpRequest(op uint8, lifetime uint32, client netip.Addr, rest ...[]byte) []byte {
	return versionRequest(pcpVersion, op, lifetime, client, rest...)
}

// versionRequest builds a request with a PCP header of any version.
func versionRequest(version, op uint8, lifetime uint32, client netip.Addr, rest ...[]byte) []byte {
	b := []byte{version, op, 0, 0}
	b = be.AppendUint32(b, lifetime)
	c := client.As16()
	b = append(b, c[:]...)
	return slices.Concat(append([][]byte{b}, rest...)...)
}

// mapData builds the MAP data of a request or response.
func mapData(proto uint8, internal uint16, external netip.AddrPort) []byte {
	b := slices.Clone(nonce[:])
	b = append(b, proto, 0, 0, 0)
	b = be.AppendUint16(b, internal)
	b = be.AppendUint16(b, external.Port())
	a := external.Addr().As16()
	return append(b, a[:]...)
}

// option builds a PCP option, padded to a multiple of 4 octets.
func option(code uint8, data ...byte) []byte {
	b := []byte{code, 0}
	b = be.AppendUint16(b, uint16(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// pcpResponse builds a PCP response header, then the parts that follow it.
func pcpResponse(op uint8, res Result, lifetime, epoch uint32, reserved [12]byte, rest ...[]byte) []byte {
	b := []byte{pcpVersion, rBit | op, 0, byte(res)}
	b = be.AppendUint32(b, lifetime)
	b = be.AppendUint32(b, epoch)
	b = append(b, reserved[:]...)
	return slices.Concat(append([][]byte{b}, rest...)...)
}

// lastBits96 is what an error response copies of the client's address.
func lastBits96(client netip.Addr) (r [12]byte) {
	c := client.As16()
	copy(r[:], c[4:])
	return r
}

// natpmpMapRequest builds a NAT-PMP mapping request.
func natpmpMapRequest(op uint8, internal, external uint16, lifetime uint32) []byte {
	b := []byte{natpmpVersion, op, 0, 0}
	b = be.AppendUint16(b, internal)
	b = be.AppendUint16(b, external)
	return be.AppendUint32(b, lifetime)
}

// natpmpResponse builds the common part of a NAT-PMP response, then the
// parts that follow it.
func natpmpResponse(op uint8, code uint16, epoch uint32, rest ...[]byte) []byte {
	b := []byte{natpmpVersion, rBit | op}
	b = be.AppendUint16(b, code)
	b = be.AppendUint32(b, epoch)
	return slices.Concat(append([][]byte{b}, rest...)...)
}
