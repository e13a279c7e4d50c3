package nat

import "net/netip"

// Map keys are addresses packed into byte arrays, without netip.Addr's
// zone pointer: a key without pointers or padding is hashed in one go,
// which matters on the Inbound path. Zones are ignored; a zoned
// (link-local) address has no business in a NAT mapping.

// mappingKey names a mapping: the protocol, the internal endpoint and the
// part of the remote the mapping behaviour keeps (MappingBehavior).
type mappingKey struct {
	internal, remote [16]byte
	iport, rport     uint16
	proto            uint8
	family           uint8 // bit 0: internal is IPv4; bit 1: remote is IPv4
}

func keyOf(proto uint8, internal, remote netip.AddrPort) mappingKey {
	k := mappingKey{
		internal: internal.Addr().As16(),
		iport:    internal.Port(),
		proto:    proto,
	}
	if internal.Addr().Is4() {
		k.family |= 1
	}
	if remote.IsValid() {
		k.remote, k.rport = remote.Addr().As16(), remote.Port()
		if remote.Addr().Is4() {
			k.family |= 2
		}
	}
	return k
}

// host is the key of the internal address's host record.
func (k mappingKey) host() hostKey { return hostKey{k.internal, k.family&1 != 0} }

// hostKey names an internal address.
type hostKey struct {
	addr [16]byte
	is4  bool
}

// extKey names an external endpoint of one protocol.
type extKey struct {
	addr  [16]byte
	port  uint16
	proto uint8
	is4   bool
}

func extKeyOf(proto uint8, external netip.AddrPort) extKey {
	a := external.Addr()
	return extKey{a.As16(), external.Port(), proto, a.Is4()}
}
