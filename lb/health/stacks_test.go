package health

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"

	"github.com/tungate/tungate/router/local"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// The router's stack and the backend's stack, wired back to back.
var (
	routerV4  = netip.MustParsePrefix("10.0.0.1/24")
	routerV6  = netip.MustParsePrefix("fd00::1/64")
	backendV4 = netip.MustParseAddr("10.0.0.2")
	backendV6 = netip.MustParseAddr("fd00::2")
	// Nobody owns this address: the backend's stack drops what is sent
	// to it, so a probe gets no answer at all.
	blackhole = netip.MustParseAddr("10.0.0.99")
)

// pair returns the router's stack and a backend's stack, each one's output
// delivered to the other, as across a link.
func pair(t *testing.T) (router, backend *local.Stack) {
	t.Helper()
	router, err := local.New(local.Options{Addresses: []netip.Prefix{routerV4, routerV6}})
	if err != nil {
		t.Fatal(err)
	}
	backend, err = local.New(local.Options{Addresses: []netip.Prefix{
		netip.PrefixFrom(backendV4, 24), netip.PrefixFrom(backendV6, 64),
	}})
	if err != nil {
		router.Close()
		t.Fatal(err)
	}
	done := make(chan struct{}, 2)
	go pump(router, backend, done)
	go pump(backend, router, done)
	t.Cleanup(func() {
		router.Close()
		backend.Close()
		<-done
		<-done
	})
	return router, backend
}

// pump delivers what from sends to to, until from is closed.
func pump(from, to *local.Stack, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	bufs := make([][]byte, from.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, local.DefaultMTU)
	}
	sizes := make([]int, len(bufs))
	for {
		n, err := from.Read(bufs, sizes, 0)
		for i := range n {
			to.Deliver(bufs[i][:sizes[i]])
		}
		if err != nil && !errors.Is(err, io.ErrShortBuffer) {
			return
		}
	}
}

// listen opens a gonet TCP listener on the backend's stack. Like a real
// server it sets SO_REUSEADDR, so that a listener closed and opened again
// on its port is not refused for the old connections in TIME-WAIT.
func listen(t *testing.T, backend *local.Stack, ap netip.AddrPort) *gonet.TCPListener {
	t.Helper()
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	var wq waiter.Queue
	ep, terr := backend.NetStack().NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if terr != nil {
		t.Fatalf("endpoint for %v: %s", ap, terr)
	}
	ep.SocketOptions().SetReuseAddress(true)
	if terr := ep.Bind(tcpip.FullAddress{Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}); terr != nil {
		ep.Close()
		t.Fatalf("bind %v: %s", ap, terr)
	}
	if terr := ep.Listen(16); terr != nil {
		ep.Close()
		t.Fatalf("listen on %v: %s", ap, terr)
	}
	return gonet.NewTCPListener(backend.NetStack(), &wq, ep)
}

// acceptAndClose accepts connections on l and closes them, until l is
// closed; done is closed then.
func acceptAndClose(l net.Listener) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return done
}

// serveHTTP serves h on l until the test ends.
func serveHTTP(t *testing.T, l net.Listener, h http.Handler) {
	t.Helper()
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
}
