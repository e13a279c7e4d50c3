package pcp

import (
	"bytes"
	"testing"
)

// FuzzParse feeds datagrams to Parse, seeded with the requests of
// TestParse. Parse must not panic nor change its input. Every datagram
// it accepts must get a response, for its own result and for a server's
// success or error, of a valid length, which Parse in turn drops as a
// response, so that two servers never answer each other.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases() {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		req, res, ok := Parse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse changed its input")
		}
		if !ok {
			return
		}
		for _, rep := range []Reply{
			{Result: res, Epoch: 1, Lifetime: 600},
			{Result: Success, Epoch: 1, Lifetime: 3600, External: suggested4},
			{Result: NoResources, Epoch: 1, Lifetime: 30},
		} {
			out := AppendResponse(nil, req, rep)
			checkLength(t, req, out)
			if _, _, ok := Parse(out); ok {
				t.Fatalf("Parse accepted the response % x", out)
			}
		}
	})
}

// checkLength fails t unless out is as long as a response to req must be.
func checkLength(t *testing.T, req Request, out []byte) {
	t.Helper()
	if req.Version == natpmpVersion {
		want := 8 // RFC 6886 §3.5: an unsupported opcode
		switch out[1] &^ rBit {
		case 0:
			want = 12 // §3.2
		case natpmpMapUDP, natpmpMapTCP:
			want = 16 // §3.3
		}
		if len(out) != want {
			t.Fatalf("NAT-PMP response of %d bytes, want %d: % x", len(out), want, out)
		}
		return
	}
	if len(out)%4 != 0 || len(out) < headerLen || len(out) > maxLen {
		t.Fatalf("PCP response of %d bytes: % x", len(out), out)
	}
}
