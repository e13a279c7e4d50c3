// Package admin is tungate's admin API: HTTP with JSON bodies on a unix
// socket that only the running user may open (mode 0600), and the client
// the inspection commands use.
package admin

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tungate/tungate/router"
)

// Backend is what the API serves. *router.Router is one, with the reload
// wired by the caller.
type Backend interface {
	Routes() []router.RouteInfo
	Neighbors() []router.NeighborInfo
	Conntrack() []router.FlowInfo
	Stats() router.Stats
	Services() []router.ServiceInfo
	SetWeight(service string, backend netip.AddrPort, weight int) error
	Capture(ctx context.Context, iface string, w io.Writer, count int) (written int, lost uint64, err error)
}

// Weight is the body of POST /services/{name}/backends/{addr}/weight.
type Weight struct {
	Weight int `json:"weight"`
}

// Server serves the admin API for one router.
type Server struct {
	backend Backend
	reload  func() error
	srv     *http.Server
	ln      net.Listener
	path    string
}

// Listen opens the socket at path (replacing a stale one) with mode 0600.
// reload loads and applies the config file again; its error goes back to
// the client.
func Listen(path string, b Backend, reload func() error) (*Server, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// Listen creates the socket with the umask's mode; only the owner may
	// talk to the router.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	s := &Server{backend: b, reload: reload, ln: ln, path: path}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Routes()) })
	mux.HandleFunc("GET /neighbors", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Neighbors()) })
	mux.HandleFunc("GET /conntrack", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Conntrack()) })
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Stats()) })
	mux.HandleFunc("GET /services", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, b.Services()) })
	mux.HandleFunc("POST /reload", s.handleReload)
	mux.HandleFunc("POST /services/{name}/backends/{addr}/weight", s.handleWeight)
	mux.HandleFunc("GET /capture", s.handleCapture)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// removeStale deletes a socket left by a router that is gone, and refuses
// to take over one that still answers.
func removeStale(path string) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another tungate is running", path)
	}
	return os.Remove(path)
}

func (s *Server) handleReload(w http.ResponseWriter, _ *http.Request) {
	if err := s.reload(); err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, map[string]string{"status": "reloaded"})
}

// handleWeight changes a backend's weight live; 0 drains it. The backend
// is its ip:port, IPv6 in brackets (escaped in the path as needed).
func (s *Server) handleWeight(w http.ResponseWriter, req *http.Request) {
	addr, err := netip.ParseAddrPort(req.PathValue("addr"))
	if err != nil {
		http.Error(w, fmt.Sprintf("backend %q is not ip:port", req.PathValue("addr")), http.StatusBadRequest)
		return
	}
	var body Weight
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		http.Error(w, `the body must be {"weight": N}: `+err.Error(), http.StatusBadRequest)
		return
	}
	if err := s.backend.SetWeight(req.PathValue("name"), addr, body.Weight); err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, body)
}

// handleCapture streams pcap of ?iface=NAME until the client goes away,
// or ?count=N packets.
func (s *Server) handleCapture(w http.ResponseWriter, req *http.Request) {
	count, err := strconv.Atoi(cmp.Or(req.URL.Query().Get("count"), "0"))
	if err != nil || count < 0 {
		http.Error(w, "count must be a number of packets, 0 or more", http.StatusBadRequest)
		return
	}
	out := &streamWriter{w: w}
	_, _, err = s.backend.Capture(req.Context(), req.URL.Query().Get("iface"), out, count)
	if err != nil && !out.started {
		http.Error(w, err.Error(), http.StatusNotFound)
	}
}

// streamWriter sends each write to the client at once: a capture is
// read as it happens.
type streamWriter struct {
	w       http.ResponseWriter
	started bool
}

func (s *streamWriter) Write(b []byte) (int, error) {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
		s.started = true
	}
	n, err := s.w.Write(b)
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	os.Remove(s.path)
	return err
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// Client talks to a running router's admin socket.
type Client struct {
	http   *http.Client // bounded requests
	stream *http.Client // streams, bounded by their context
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	transport := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	return &Client{
		http:   &http.Client{Timeout: 10 * time.Second, Transport: transport},
		stream: &http.Client{Transport: transport},
	}
}

// Stream copies the body of GET path to w until it ends or ctx does.
func (c *Client) Stream(ctx context.Context, path string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tungate"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.stream.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w (is tungate running?)", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return errors.New(strings.TrimSpace(string(body)))
	}
	_, err = io.Copy(w, resp.Body)
	if ctx.Err() != nil {
		return nil // stopped, as asked
	}
	return err
}

// Get fetches path and decodes its JSON into v (or, with v a *[]byte,
// keeps the raw body).
func (c *Client) Get(path string, v any) error {
	return c.do(http.MethodGet, path, nil, v)
}

// Post sends body (JSON; none when nil) to path and decodes the JSON
// answer into v, if v is not nil.
func (c *Client) Post(path string, body, v any) error {
	return c.do(http.MethodPost, path, body, v)
}

func (c *Client) do(method, path string, body, v any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://tungate"+path, rd)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin socket: %w (is tungate running?)", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(strings.TrimSpace(string(answer)))
	}
	if raw, ok := v.(*[]byte); ok {
		*raw = answer
		return nil
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(answer, v)
}
