package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/control"
	"github.com/weir-dev/weir/internal/runtime"
)

var discardLogger = slog.New(slog.DiscardHandler)

// get fetches url and returns the status, the Content-Type and the body.
func get(t *testing.T, c *http.Client, url string) (int, string, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading body: %v", url, err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
}

// start starts a server on a free loopback port and closes it at the end of
// the test.
func start(t *testing.T, g prometheus.Gatherer) *control.Server {
	t.Helper()
	s, err := control.Start("127.0.0.1:0", control.Options{Gatherer: g, Logger: discardLogger})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

// metrics parses the Prometheus text exposition into "name{labels}" →
// value. Label sets are written as the server writes them (sorted by name).
func metrics(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad exposition line %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad value in exposition line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// withPrefix returns the series of m whose name is name.
func withPrefix(m map[string]float64, name string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			out[k] = v
		}
	}
	return out
}

func TestEndpoints(t *testing.T) {
	before := goruntime.NumGoroutine()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_test_things_total", Help: "Things."})
	reg.MustRegister(c)
	c.Add(42)

	s, err := control.Start("127.0.0.1:0", control.Options{Gatherer: reg, Logger: discardLogger})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	base := "http://" + s.Addr()
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("Addr = %q, want the bound 127.0.0.1 port", s.Addr())
	}
	client := &http.Client{Timeout: 5 * time.Second}

	code, _, body := get(t, client, base+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics status %d", code)
	}
	if got := metrics(t, body)["weir_test_things_total"]; got != 42 {
		t.Errorf("weir_test_things_total = %v, want 42\n%s", got, body)
	}

	code, ctype, body := get(t, client, base+"/healthz")
	var health struct {
		Status     string         `json:"status"`
		Components map[string]any `json:"components"`
	}
	if err := json.Unmarshal([]byte(body), &health); err != nil {
		t.Fatalf("/healthz body %q: %v", body, err)
	}
	if code != http.StatusOK || health.Status != "ok" || ctype != "application/json" {
		t.Errorf("/healthz = %d %q %q, want 200 application/json with status ok", code, ctype, body)
	}

	readyz := func(wantCode int, wantReady bool) {
		t.Helper()
		code, ctype, body := get(t, client, base+"/readyz")
		var r struct {
			Ready *bool `json:"ready"`
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil || r.Ready == nil {
			t.Fatalf("/readyz body %q: %v", body, err)
		}
		if code != wantCode || *r.Ready != wantReady || ctype != "application/json" {
			t.Errorf("/readyz = %d %q %q, want %d with ready %v", code, ctype, body, wantCode, wantReady)
		}
	}
	readyz(http.StatusServiceUnavailable, false)
	s.SetReady(true)
	readyz(http.StatusOK, true)
	s.SetReady(false)
	readyz(http.StatusServiceUnavailable, false)

	// Only GET is served, and nothing else.
	resp, err := client.Post(base+"/healthz", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz = %d, want 405", resp.StatusCode)
	}
	if code, _, _ := get(t, client, base+"/nope"); code != http.StatusNotFound {
		t.Errorf("/nope = %d, want 404", code)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	closed := make(chan error, 1)
	go func() { closed <- s.Close(ctx) }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	client.CloseIdleConnections()
	if _, err := client.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after Close")
	}

	// The serving goroutine and connection goroutines are gone.
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before Start, %d after Close:\n%s", before, goruntime.NumGoroutine(), buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestStartOnBusyAddress(t *testing.T) {
	s := start(t, prometheus.NewRegistry())
	s2, err := control.Start(s.Addr(), control.Options{Gatherer: prometheus.NewRegistry(), Logger: discardLogger})
	if err == nil {
		_ = s2.Close(context.Background())
		t.Fatalf("second Start on %s succeeded", s.Addr())
	}
	for _, want := range []string{s.Addr(), "control.address"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestStartOnBadAddress(t *testing.T) {
	if s, err := control.Start("127.0.0.1:notaport", control.Options{Gatherer: prometheus.NewRegistry(), Logger: discardLogger}); err == nil {
		_ = s.Close(context.Background())
		t.Fatal("Start on a bad address succeeded")
	}
}

// A real pipeline, its metrics registered on the registry the control plane
// serves: the scrape shows what ran.
func TestPipelineMetrics(t *testing.T) {
	l, err := app.LoadBytes("metrics.yaml", []byte(`
name: metrics-test
control: {address: ""}
inputs:
  gen: {type: generate, count: 1000, seed: 7}
processors:
  purchases: {type: filter, from: gen, expr: 'type == "purchase"'}
outputs:
  sink: {type: discard, from: purchases}
`))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	reg := prometheus.NewRegistry()
	opts := l.RuntimeOptions()
	opts.Registerer = reg
	opts.Logger = discardLogger
	p, err := runtime.New(l.Graph, l.Factory(), opts)
	if err != nil {
		t.Fatalf("runtime.New: %v", err)
	}
	s := start(t, reg)
	s.SetReady(true)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}

	code, _, body := get(t, &http.Client{Timeout: 5 * time.Second}, "http://"+s.Addr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics status %d", code)
	}
	m := metrics(t, body)
	value := func(series string) float64 {
		t.Helper()
		v, ok := m[series]
		if !ok {
			t.Fatalf("no series %s in the scrape:\n%s", series, body)
		}
		return v
	}
	if v := value(`weir_node_events_in_total{kind="input",node="gen"}`); v != 1000 {
		t.Errorf("events in of gen = %v, want 1000", v)
	}
	if v := value(`weir_node_events_in_total{kind="processor",node="purchases"}`); v != 1000 {
		t.Errorf("events in of purchases = %v, want 1000", v)
	}
	filtered := value(`weir_node_events_filtered_total{node="purchases"}`)
	passed := value(`weir_node_events_out_total{kind="processor",node="purchases"}`)
	if filtered <= 0 || passed <= 0 || filtered+passed != 1000 {
		t.Errorf("purchases filtered %v and passed %v; want both > 0, summing to 1000", filtered, passed)
	}
	if v := value(`weir_node_events_out_total{kind="output",node="sink"}`); v != passed {
		t.Errorf("sink wrote %v, want the %v events the filter passed", v, passed)
	}
	if v := value(`weir_node_errors_total{node="purchases"}`); v != 0 {
		t.Errorf("purchases errors = %v, want 0", v)
	}
	for _, name := range []string{"weir_stage_busy_seconds_total", "weir_queue_capacity_events"} {
		if len(withPrefix(m, name)) == 0 {
			t.Errorf("no %s series in the scrape", name)
		}
	}
	if v := value(`weir_queue_capacity_events{stage="sink"}`); v != float64(opts.QueueEvents) {
		t.Errorf("queue capacity of sink = %v, want %d", v, opts.QueueEvents)
	}
	if v := value(`weir_output_latency_seconds_count{node="sink"}`); v <= 0 {
		t.Errorf("weir_output_latency_seconds_count = %v, want > 0 flushed batches", v)
	}
}
