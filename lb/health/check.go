package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
)

// Kind names a check, as SPEC's [service.health] check key does.
type Kind string

// The kinds of check.
const (
	KindTCP  Kind = "tcp"  // a TCP connect succeeds
	KindHTTP Kind = "http" // GET path answers 2xx or 3xx
	KindNone Kind = "none" // no probe: always healthy
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case KindTCP, KindHTTP, KindNone:
		return k, nil
	}
	return "", fmt.Errorf("health: unknown check %q (want tcp, http or none)", s)
}

// DefaultPath is the HTTP check's path when none is given.
const DefaultPath = "/"

// Checker probes one backend. Check returns nil when addr is healthy and
// otherwise the reason it is not; it must give up when ctx ends (the
// Monitor puts the timeout there). Check may be called concurrently for
// different backends.
type Checker interface {
	Check(ctx context.Context, addr netip.AddrPort) error
}

// NewChecker builds the check of kind for SPEC's [service.health]; path is
// for http only ("" is DefaultPath). d is unused by none.
func NewChecker(kind Kind, d Dialer, path string) (Checker, error) {
	switch kind {
	case KindTCP:
		if d == nil {
			return nil, fmt.Errorf("health: tcp check without a dialer")
		}
		return TCPCheck{Dialer: d}, nil
	case KindHTTP:
		return NewHTTPCheck(d, path, "")
	case KindNone:
		if path != "" {
			return nil, fmt.Errorf("health: path is for http checks only")
		}
		return NoneCheck{}, nil
	}
	return nil, fmt.Errorf("health: unknown check %q (want tcp, http or none)", string(kind))
}

// TCPCheck is healthy when a TCP connection to the backend opens; it is
// closed again at once (keepalived's TCP_CHECK).
type TCPCheck struct {
	Dialer Dialer
}

// Check implements Checker.
func (c TCPCheck) Check(ctx context.Context, addr netip.AddrPort) error {
	conn, err := c.Dialer.DialContext(ctx, "tcp", addr.String())
	if err != nil {
		return err
	}
	conn.Close()
	return nil
}

// NoneCheck is always healthy. A Monitor with it sends no probes.
type NoneCheck struct{}

// Check implements Checker.
func (NoneCheck) Check(context.Context, netip.AddrPort) error { return nil }

// maxHeaderBytes bounds the response header an HTTP check reads, and
// maxBodyDrain how much of the body it reads before closing.
const (
	maxHeaderBytes = 16 << 10
	maxBodyDrain   = 4 << 10
)

// HTTPCheck is healthy when GET path answers with a 2xx or 3xx status
// (keepalived's HTTP_GET with the usual status_code range, HAProxy's
// httpchk). Redirects are not followed: a 3xx is the answer. Each probe is
// a fresh HTTP/1.1 connection (no keep-alive, no proxy, no compression).
type HTTPCheck struct {
	path   string
	url    *url.URL // path and query; Check fills in the rest
	host   string
	client *http.Client
}

// NewHTTPCheck returns an HTTP check of path ("" is DefaultPath; it may
// carry a query) through d. host is the Host header; "" means the
// backend's ip:port, as keepalived sends when no virtualhost is set.
func NewHTTPCheck(d Dialer, path, host string) (*HTTPCheck, error) {
	if d == nil {
		return nil, fmt.Errorf("health: http check without a dialer")
	}
	if path == "" {
		path = DefaultPath
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("health: http path %q must start with /", path)
	}
	u, err := url.ParseRequestURI(path)
	if err != nil || u.Host != "" || u.Scheme != "" || strings.ContainsFunc(path, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("health: http path %q is not a valid request path", path)
	}
	if strings.ContainsAny(host, " \t\r\n/") {
		return nil, fmt.Errorf("health: http host %q is not a valid Host header", host)
	}
	tr := &http.Transport{
		DialContext:            probeDial(d),
		Proxy:                  nil,
		DisableKeepAlives:      true,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxHeaderBytes,
	}
	return &HTTPCheck{
		path: path,
		url:  u,
		host: host,
		client: &http.Client{
			Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// probeKey holds, in a request's context, the probe's own context.
type probeKey struct{}

// probeDial wraps d so that a dial ends with the probe it is for. The
// Transport detaches its dials from the request's context (a late
// connection might serve the next request), so without this a probe of an
// unreachable backend that timed out would leave its dial retransmitting
// SYNs for minutes, and one more such dial would pile up every interval.
func probeDial(d Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if probe, ok := ctx.Value(probeKey{}).(context.Context); ok {
			// The probe's deadline, so that a dial it outlives fails with
			// context.DeadlineExceeded as it would have, and its
			// cancellation (Stop) for the rest.
			var cancel context.CancelFunc
			if dl, ok := probe.Deadline(); ok {
				ctx, cancel = context.WithDeadline(ctx, dl)
			} else {
				ctx, cancel = context.WithCancel(ctx)
			}
			defer cancel()
			stop := context.AfterFunc(probe, func() {
				if !errors.Is(probe.Err(), context.DeadlineExceeded) {
					cancel()
				}
			})
			defer stop()
		}
		return d.DialContext(ctx, network, addr)
	}
}

// Path is the path the check requests.
func (c *HTTPCheck) Path() string { return c.path }

// Check implements Checker.
func (c *HTTPCheck) Check(ctx context.Context, addr netip.AddrPort) error {
	u := *c.url
	u.Scheme = "http"
	u.Host = addr.String()
	ctx = context.WithValue(ctx, probeKey{}, ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	if c.host != "" {
		req.Host = c.host
	}
	req.Header.Set("User-Agent", "tungate-health")
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxBodyDrain)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("GET %s: HTTP %s", c.path, resp.Status)
	}
	return nil
}
