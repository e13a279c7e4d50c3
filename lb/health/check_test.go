package health

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseKind(t *testing.T) {
	for _, s := range []string{"tcp", "http", "none"} {
		if k, err := ParseKind(s); err != nil || string(k) != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "TCP", "https", "icmp"} {
		if _, err := ParseKind(s); err == nil {
			t.Errorf("ParseKind(%q) succeeded", s)
		}
	}
}

func TestNewChecker(t *testing.T) {
	d := &net.Dialer{}
	for _, tc := range []struct {
		kind Kind
		d    Dialer
		path string
		ok   bool
	}{
		{KindTCP, d, "", true},
		{KindTCP, nil, "", false},
		{KindHTTP, d, "", true},
		{KindHTTP, d, "/healthz?full=1", true},
		{KindHTTP, d, "healthz", false},
		{KindHTTP, d, "/a b", false},
		{KindHTTP, d, "/a\x7f", false},
		{KindHTTP, d, "/%zz", false},
		{KindHTTP, nil, "/", false},
		{KindNone, nil, "", true},
		{KindNone, nil, "/x", false},
		{"udp", d, "", false},
	} {
		c, err := NewChecker(tc.kind, tc.d, tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("NewChecker(%q, %v, %q) = %v, %v", tc.kind, tc.d, tc.path, c, err)
		}
	}
	if _, err := NewHTTPCheck(d, "/", "bad host"); err == nil {
		t.Error("NewHTTPCheck accepted a Host with a space")
	}
	c, _ := NewHTTPCheck(d, "", "")
	if c.Path() != DefaultPath {
		t.Errorf("default path %q, want %q", c.Path(), DefaultPath)
	}
}

func TestStackDialer(t *testing.T) {
	router, backend := pair(t)
	d := NewStackDialer(router.NetStack())
	for _, a := range []netip.Addr{backendV4, backendV6} {
		t.Run(a.String(), func(t *testing.T) {
			ap := netip.AddrPortFrom(a, 8080)
			l := listen(t, backend, ap)
			accepted := acceptAndClose(l)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			for _, network := range []string{"tcp", "tcp" + map[bool]string{true: "4", false: "6"}[a.Is4()]} {
				c, err := d.DialContext(ctx, network, ap.String())
				if err != nil {
					t.Fatalf("%s %v: %v", network, ap, err)
				}
				local, err := netip.ParseAddrPort(c.LocalAddr().String())
				if err != nil {
					t.Fatal(err)
				}
				if want := map[bool]netip.Addr{true: routerV4.Addr(), false: routerV6.Addr()}[a.Is4()]; local.Addr() != want {
					t.Errorf("source address %v, want the router's %v", local.Addr(), want)
				}
				if got := c.RemoteAddr().String(); got != ap.String() {
					t.Errorf("remote address %s, want %v", got, ap)
				}
				c.Close()
			}
			l.Close()
			<-accepted

			// Nothing listens any more: refused, at once.
			_, err := d.DialContext(ctx, "tcp", ap.String())
			var oe *net.OpError
			if !errors.As(err, &oe) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("dial to a closed port: %v, want a refused *net.OpError", err)
			}
		})
	}

	t.Run("no answer", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := d.DialContext(ctx, "tcp", netip.AddrPortFrom(blackhole, 80).String())
		var oe *net.OpError
		if !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &oe) {
			t.Fatalf("dial to a black hole: %v, want a *net.OpError wrapping context.DeadlineExceeded", err)
		}
	})

	t.Run("bad", func(t *testing.T) {
		for _, tc := range []struct{ network, addr string }{
			{"udp", "10.0.0.2:80"},
			{"tcp", "backend.example:80"},
			{"tcp", "10.0.0.2"},
			{"tcp4", "[fd00::2]:80"},
			{"tcp6", "10.0.0.2:80"},
			{"tcp6", "[::ffff:10.0.0.2]:80"},
			{"tcp", "[fe80::1%eth0]:80"},
			{"tcp", "0.0.0.0:80"},
			{"tcp", "[ff02::1]:80"},
		} {
			if c, err := d.DialContext(context.Background(), tc.network, tc.addr); err == nil {
				c.Close()
				t.Errorf("DialContext(%q, %q) succeeded", tc.network, tc.addr)
			} else if _, ok := err.(*net.OpError); !ok {
				t.Errorf("DialContext(%q, %q): %T %v, want *net.OpError", tc.network, tc.addr, err, err)
			}
		}
	})
}

func TestTCPCheck(t *testing.T) {
	router, backend := pair(t)
	c, err := NewChecker(KindTCP, NewStackDialer(router.NetStack()), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []netip.Addr{backendV4, backendV6} {
		ap := netip.AddrPortFrom(a, 9000)
		l := listen(t, backend, ap)
		accepted := acceptAndClose(l)
		if err := check(c, ap, time.Second); err != nil {
			t.Errorf("%v listening: %v", ap, err)
		}
		l.Close()
		<-accepted
		if err := check(c, ap, time.Second); err == nil {
			t.Errorf("%v closed: healthy", ap)
		}
	}
	start := time.Now()
	err = check(c, netip.AddrPortFrom(blackhole, 80), 50*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("black hole: %v, want a timeout", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a 50ms check took %v", d)
	}
}

// check runs one check with a timeout.
func check(c Checker, ap netip.AddrPort, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Check(ctx, ap)
}

// request is what an HTTP backend saw.
type request struct {
	method, path, host, ua string
	close                  bool
}

// httpBackend answers /status/N with N, /slow never (until the client
// goes away), and records every request.
type httpBackend struct {
	mu   sync.Mutex
	reqs []request
}

func (b *httpBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.reqs = append(b.reqs, request{r.Method, r.URL.RequestURI(), r.Host, r.UserAgent(), r.Close})
	b.mu.Unlock()
	switch r.URL.Path {
	case "/slow":
		<-r.Context().Done()
	case "/status/200":
		w.Write([]byte("ok\n"))
	case "/status/204":
		w.WriteHeader(http.StatusNoContent)
	case "/status/302":
		http.Redirect(w, r, "/status/500", http.StatusFound)
	case "/status/304":
		w.WriteHeader(http.StatusNotModified)
	case "/status/404":
		http.NotFound(w, r)
	case "/status/500":
		http.Error(w, "broken", http.StatusInternalServerError)
	case "/status/503":
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	default:
		w.Write([]byte(strings.Repeat("x", 1<<20))) // more than a check reads
	}
}

func (b *httpBackend) last() request {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.reqs) == 0 {
		return request{}
	}
	return b.reqs[len(b.reqs)-1]
}

func (b *httpBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.reqs)
}

// httpCases checks the status rules against an httpBackend at ap, reached
// through d.
func httpCases(t *testing.T, d Dialer, b *httpBackend, ap netip.AddrPort) {
	for _, tc := range []struct {
		path    string
		healthy bool
	}{
		{"/status/200", true},
		{"/status/204", true},
		{"/status/302", true}, // not followed: the redirect is the answer
		{"/status/304", true},
		{"/status/404", false},
		{"/status/500", false},
		{"/status/503", false},
		{"/big?q=1", true},
	} {
		c, err := NewChecker(KindHTTP, d, tc.path)
		if err != nil {
			t.Fatal(err)
		}
		n := b.count()
		err = check(c, ap, 2*time.Second)
		if (err == nil) != tc.healthy {
			t.Errorf("GET %s: %v, want healthy %v", tc.path, err, tc.healthy)
		}
		if got := b.count() - n; got != 1 {
			t.Errorf("GET %s: %d requests, want 1", tc.path, got)
		}
		want := request{"GET", tc.path, ap.String(), "tungate-health", true}
		if got := b.last(); got != want {
			t.Errorf("GET %s: backend saw %+v, want %+v", tc.path, got, want)
		}
	}
	if err := check(mustHTTP(t, d, "/status/500"), ap, 2*time.Second); err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("500: error %v, want one naming the status", err)
	}

	// A Host header of our choosing.
	c, err := NewHTTPCheck(d, "/status/200", "www.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := check(c, ap, 2*time.Second); err != nil {
		t.Errorf("with Host: %v", err)
	}
	if got := b.last().host; got != "www.example.com" {
		t.Errorf("Host %q, want www.example.com", got)
	}

	// A backend that accepts and never answers.
	start := time.Now()
	err = check(mustHTTP(t, d, "/slow"), ap, 100*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("/slow: %v, want a timeout", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("/slow with a 100ms timeout took %v", el)
	}
}

func mustHTTP(t *testing.T, d Dialer, path string) Checker {
	t.Helper()
	c, err := NewChecker(KindHTTP, d, path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestHTTPCheckStack(t *testing.T) {
	router, backend := pair(t)
	d := NewStackDialer(router.NetStack())
	for _, a := range []netip.Addr{backendV4, backendV6} {
		t.Run(a.String(), func(t *testing.T) {
			ap := netip.AddrPortFrom(a, 80)
			b := &httpBackend{}
			serveHTTP(t, listen(t, backend, ap), b)
			httpCases(t, d, b, ap)
		})
	}
	// Nothing listening, and nobody there.
	c := mustHTTP(t, d, "/")
	if err := check(c, netip.AddrPortFrom(backendV4, 81), time.Second); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("closed port: %v, want refused", err)
	}
	if err := check(c, netip.AddrPortFrom(blackhole, 80), 50*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("black hole: %v, want a timeout", err)
	}
}

func TestHTTPCheckLoopback(t *testing.T) {
	b := &httpBackend{}
	srv := httptest.NewServer(b)
	defer srv.Close()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	httpCases(t, &net.Dialer{}, b, ap)
}

func TestNoneCheck(t *testing.T) {
	if err := (NoneCheck{}).Check(context.Background(), netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
}

// countingDialer counts the dials under way.
type countingDialer struct {
	d        Dialer
	inFlight atomic.Int64
}

func (c *countingDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	return c.d.DialContext(ctx, network, addr)
}

// TestHTTPCheckAbandonedDial checks that a timed-out HTTP probe of an
// unreachable backend does not leave its dial running: net/http detaches
// dials from the request's context, and gVisor would retransmit the SYN
// for minutes.
func TestHTTPCheckAbandonedDial(t *testing.T) {
	router, _ := pair(t)
	d := &countingDialer{d: NewStackDialer(router.NetStack())}
	c := mustHTTP(t, d, "/")
	for range 5 {
		if err := check(c, netip.AddrPortFrom(blackhole, 80), 20*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("black hole: %v, want a timeout", err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for d.inFlight.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d dials still under way 2s after their probes timed out", d.inFlight.Load())
		}
		time.Sleep(time.Millisecond)
	}
}
