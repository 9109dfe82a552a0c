package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/log"
)

// TestMain fails the run if a server goroutine outlives the tests: every
// Serve must have returned, with its connections closed.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := buf[:runtime.Stack(buf, true)]
			if !bytes.Contains(stacks, []byte("collector.(*Server).Serve")) && !bytes.Contains(stacks, []byte("fasthttp.(*Server).serveConn")) {
				break
			}
			if time.Now().After(deadline) {
				fmt.Fprintf(os.Stderr, "goroutine leak: a collector server goroutine is still running\n%s", stacks)
				code = 1
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Exit(code)
}

// Write keys of the test tenants.
const (
	keyShop  = "shop-key-0123456789"
	keyShop2 = "shop-key-second-one"
	keyBlog  = "blog-key-9876543210"
)

// testConfig is a valid config on a free loopback port with two tenants.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.Tenants = map[string][]string{"shop": {keyShop, keyShop2}, "blog": {keyBlog}}
	return cfg
}

// memAppender records copies of what it is given. hook, if set, runs
// first and its error is returned.
type memAppender struct {
	mu    sync.Mutex
	calls [][]log.Record
	hook  func(ctx context.Context, recs []log.Record) error
}

func (a *memAppender) Append(ctx context.Context, recs []log.Record) error {
	if a.hook != nil {
		if err := a.hook(ctx, recs); err != nil {
			return err
		}
	}
	cp := make([]log.Record, len(recs))
	for i, r := range recs {
		cp[i] = log.Record{Timestamp: r.Timestamp, Key: bytes.Clone(r.Key), Value: bytes.Clone(r.Value)}
		for _, h := range r.Headers {
			cp[i].Headers = append(cp[i].Headers, log.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
		}
	}
	a.mu.Lock()
	a.calls = append(a.calls, cp)
	a.mu.Unlock()
	return nil
}

// records returns every record appended so far, in call order.
func (a *memAppender) records() []log.Record {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []log.Record
	for _, c := range a.calls {
		out = append(out, c...)
	}
	return out
}

func (a *memAppender) numCalls() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.calls)
}

// partitionAppender appends to a real log partition.
type partitionAppender struct{ p *log.Partition }

func (a partitionAppender) Append(ctx context.Context, recs []log.Record) error {
	_, err := a.p.Append(ctx, recs)
	return err
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// server is a collector serving on a loopback port for one test.
type server struct {
	*Server
	url    string
	client *http.Client
}

// start serves s until the end of the test, then stops it and checks that
// Serve returned nil.
func start(t testing.TB, s *Server) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	<-s.Ready()
	if s.Addr() == nil {
		cancel()
		t.Fatalf("Serve: %v", <-done)
	}
	srv := &server{Server: s, url: "http://" + s.Addr().String(), client: &http.Client{Timeout: 20 * time.Second}}
	t.Cleanup(func() {
		cancel()
		srv.client.CloseIdleConnections()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return srv
}

// newServer makes and starts a collector.
func newServer(t testing.TB, cfg Config, app Appender, opts Options) *server {
	t.Helper()
	s, err := New(cfg, app, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return start(t, s)
}

// response is what a test request got back.
type response struct {
	code   int
	header http.Header
	body   string
	// Decoded JSON body.
	Accepted *int   `json:"accepted"`
	Rejected *int   `json:"rejected"`
	Error    string `json:"error"`
	Errors   []struct {
		Index  int    `json:"index"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// req describes a test request.
type req struct {
	method  string // default POST
	path    string // default /v1/batch
	body    []byte
	reader  io.Reader // instead of body: sent without Content-Length
	key     string    // Bearer key; "" for none
	headers map[string]string
}

func (s *server) do(t testing.TB, r req) response {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = pathBatch
	}
	var body io.Reader = bytes.NewReader(r.body)
	if r.reader != nil {
		body = r.reader
	}
	hr, err := http.NewRequest(r.method, s.url+r.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if r.key != "" {
		hr.Header.Set("Authorization", "Bearer "+r.key)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the response: %v", r.method, r.path, err)
	}
	out := response{code: resp.StatusCode, header: resp.Header, body: string(b)}
	if len(b) > 0 {
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: Content-Type %q, want application/json", r.method, r.path, ct)
		}
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: response %q is not JSON: %v", r.method, r.path, b, err)
		}
	}
	return out
}

// post sends body to path with the shop key.
func (s *server) post(t testing.TB, path, body string) response {
	t.Helper()
	return s.do(t, req{path: path, body: []byte(body), key: keyShop})
}

// expectGood checks that the server still accepts a good request.
func (s *server) expectGood(t testing.TB) {
	t.Helper()
	if r := s.post(t, pathEvents, `{"event_id":"good","type":"view"}`); r.code != http.StatusOK {
		t.Fatalf("a good request after that got %d %s", r.code, r.body)
	}
}

func header(r log.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

func intp(p *int) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

// ndjsonOf joins lines with newlines.
func ndjsonOf(lines ...string) string { return strings.Join(lines, "\n") + "\n" }

// dial opens a raw connection to s, closed at the end of the test.
func dial(t testing.TB, s *server) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readResponse reads one response from conn, body included.
func readResponse(t testing.TB, conn net.Conn) *http.Response {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// runtimeMem is a snapshot of the allocation counter.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.total = ms.TotalAlloc
}
