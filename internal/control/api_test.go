package control_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/control"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// live is a pipeline running from YAML with a control server serving it.
type live struct {
	p      *runtime.Pipeline
	srv    *control.Server
	base   string
	client *http.Client
	stream *http.Client // for tails: no timeout
	stop   func() error // stops the pipeline, returns Run's error
}

type liveOpts struct {
	factory func(runtime.Factory) runtime.Factory // wraps the app's factory
	noRun   bool
}

// startLive loads yaml, builds the pipeline with its metrics on the
// registry the control server serves, starts the server (fast sampling)
// and runs the pipeline until the test ends.
func startLive(t *testing.T, yaml string, lo liveOpts) *live {
	t.Helper()
	l, err := app.LoadBytes("api.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	reg := prometheus.NewRegistry()
	opts := l.RuntimeOptions()
	opts.Registerer = reg
	opts.Logger = discardLogger
	store, closeStore, err := l.OpenState(discardLogger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeStore() })
	var ckpts *control.Checkpoints
	if store != nil {
		ckpts = control.WatchCheckpoints(store)
		opts.Store = ckpts
	}
	f := l.Factory()
	if lo.factory != nil {
		f = lo.factory(f)
	}
	p, err := runtime.New(l.Graph, f, opts)
	if err != nil {
		t.Fatalf("runtime.New: %v", err)
	}
	srv, err := control.Start("127.0.0.1:0", control.Options{Gatherer: reg, Logger: discardLogger, Pipeline: p, Checkpoints: ckpts,
		SampleInterval: 50 * time.Millisecond, RateWindow: 500 * time.Millisecond, FailureWindow: 5 * time.Second, PingInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("control.Start: %v", err)
	}
	srv.SetReady(true)
	lv := &live{p: p, srv: srv, base: "http://" + srv.Addr(),
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}, stream: &http.Client{Transport: &http.Transport{}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	stopped := false
	lv.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return errors.New("the pipeline did not stop within 30s")
		}
	}
	if lo.noRun {
		close(done)
	} else {
		go func() { done <- p.Run(ctx) }()
	}
	t.Cleanup(func() {
		if err := lv.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer ccancel()
		if err := srv.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		lv.client.CloseIdleConnections()
		lv.stream.CloseIdleConnections()
	})
	return lv
}

// getJSON GETs path and decodes the JSON answer into v; it returns the
// status.
func (lv *live) getJSON(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := lv.client.Get(lv.base + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, body)
	}
	return resp.StatusCode
}

// eventually polls cond every 20ms for up to 10s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const apiPipeline = `
name: api-test
control: {address: ""}
inputs:
  gen: {type: generate, rate: 2000, seed: 7}
processors:
  purchases: {type: filter, from: gen, expr: 'type == "purchase"'}
  tagged: {type: map, from: purchases, set: {tagged: 'true'}}
  byuser: {type: map, from: gen, key_by: user_id, set: {seen: 'true'}, on_error: dead_letter, dead_letter: dlq}
outputs:
  sink: {type: discard, from: tagged}
  users: {type: discard, from: byuser}
  dlq: {type: discard}
`

func TestTopology(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{})
	var top control.Topology
	if code := lv.getJSON(t, "/api/v1/topology", &top); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if top.Pipeline != "api-test" || len(top.Nodes) != 7 {
		t.Fatalf("topology %+v: want pipeline api-test with 7 nodes", top)
	}
	nodes := map[string]control.TopologyNode{}
	for _, n := range top.Nodes {
		nodes[n.Name] = n
	}
	if n := nodes["byuser"]; n.Kind != "processor" || n.Type != "map" || n.OnError != "dead_letter" || n.DeadLetter != "dlq" || n.Parallelism != 1 {
		t.Errorf("byuser = %+v", n)
	}
	if a, b := nodes["purchases"], nodes["tagged"]; a.Stage != b.Stage || !top.Stages[a.Stage].Fused || top.Stages[a.Stage].Name != "purchases+tagged" {
		t.Errorf("purchases (stage %d) and tagged (stage %d) are not one fused stage: %+v", a.Stage, b.Stage, top.Stages)
	}
	edges := map[string]control.TopologyEdge{}
	for _, e := range top.Edges {
		edges[e.From+">"+e.To] = e
	}
	for key, want := range map[string]control.TopologyEdge{
		"gen>purchases": {From: "gen", To: "purchases", Kind: "forward"},
		"gen>byuser":    {From: "gen", To: "byuser", Kind: "key_hash", Key: "user_id"},
		"byuser>dlq":    {From: "byuser", To: "dlq", Kind: "dead_letter"},
		"tagged>sink":   {From: "tagged", To: "sink", Kind: "forward"},
	} {
		if got := edges[key]; got != want {
			t.Errorf("edge %s = %+v, want %+v", key, got, want)
		}
	}
}

func TestStatsAndSeries(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{})
	var st control.Stats
	eventually(t, "rates over a full window", func() bool {
		lv.getJSON(t, "/api/v1/stats", &st)
		return st.Window >= 0.45 && st.Nodes[0].InRate > 0
	})
	nodes := map[string]control.NodeStats{}
	for _, n := range st.Nodes {
		nodes[n.Name] = n
	}
	if !st.Running || st.Pipeline != "api-test" || st.Checkpoints != nil {
		t.Errorf("stats head: running %v pipeline %q checkpoints %+v", st.Running, st.Pipeline, st.Checkpoints)
	}
	gen := nodes["gen"]
	if gen.Kind != "input" || gen.InRate < 500 || gen.InRate > 5000 || gen.Queue != nil {
		t.Errorf("gen: %+v; want about 2000 events/s and no queue", gen)
	}
	pur := nodes["purchases"]
	if pur.In == 0 || pur.Filtered == 0 || pur.Filtered+pur.Out != pur.In || pur.Queue == nil || pur.Queue.CapacityEvents <= 0 {
		t.Errorf("purchases: %+v", pur)
	}
	if pur.Busy < 0 || pur.Busy > 1 || pur.Backpress < 0 || pur.Backpress > 1 {
		t.Errorf("purchases busy %v backpressure %v, want fractions", pur.Busy, pur.Backpress)
	}
	sink := nodes["sink"]
	if sink.LatencyP50 == nil || sink.LatencyP99 == nil || *sink.LatencyP50 <= 0 || *sink.LatencyP99 < *sink.LatencyP50 {
		t.Errorf("sink latency p50 %v p99 %v, want 0 < p50 <= p99", sink.LatencyP50, sink.LatencyP99)
	}
	if pur.BatchP50 == nil || *pur.BatchP50 <= 0 {
		t.Errorf("purchases batch p50 %v, want > 0", pur.BatchP50)
	}
	if len(st.Stages) != len(lv.p.Stages()) {
		t.Errorf("%d stages, want %d", len(st.Stages), len(lv.p.Stages()))
	}

	var series control.Series
	if code := lv.getJSON(t, "/api/v1/series?node=gen", &series); code != http.StatusOK {
		t.Fatalf("series status %d", code)
	}
	n := len(series.Time)
	if n < 5 || len(series.InRate) != n || len(series.OutRate) != n || len(series.Busy) != n || len(series.Queue) != n || series.Interval != 0.05 {
		t.Fatalf("series: %d times, %+v", n, series)
	}
	sum := 0.0
	for _, r := range series.InRate {
		sum += r
	}
	if avg := sum / float64(n); avg < 500 {
		t.Errorf("gen's average in rate over the series is %v, want about 2000", avg)
	}
	var short control.Series
	lv.getJSON(t, "/api/v1/series?node=gen&seconds=1", &short)
	if len(short.Time) > 21 {
		t.Errorf("seconds=1 gave %d points of 50ms", len(short.Time))
	}

	var e struct{ Error, Hint string }
	if code := lv.getJSON(t, "/api/v1/series?node=nope", &e); code != http.StatusNotFound || !strings.Contains(e.Error, `"nope"`) || !strings.Contains(e.Hint, `"gen"`) {
		t.Errorf("unknown node: %d %+v", code, e)
	}
	if code := lv.getJSON(t, "/api/v1/series?node=gen&seconds=x", &e); code != http.StatusBadRequest {
		t.Errorf("bad seconds: %d %+v", code, e)
	}
	if code := lv.getJSON(t, "/api/v1/nope", &e); code != http.StatusNotFound || !strings.Contains(e.Hint, "docs/api.md") {
		t.Errorf("unknown endpoint: %d %+v", code, e)
	}
}

// An input that can tell its lag (the log input) reports it.
func TestStatsInputLag(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	lv := startLive(t, fmt.Sprintf(`
name: lag-test
control: {address: ""}
inputs:
  gen: {type: generate, rate: 1000}
  logs: {type: log, dir: %q, durability: none}
outputs:
  tolog: {type: log, from: gen, dir: %q, durability: none}
  sink: {type: discard, from: logs}
`, dir, dir), liveOpts{})
	eventually(t, "the log input reading", func() bool {
		var st control.Stats
		lv.getJSON(t, "/api/v1/stats", &st)
		for _, n := range st.Nodes {
			if n.Name == "logs" && n.In > 0 {
				if n.Lag == nil {
					t.Fatalf("the log input reports no lag: %+v", n)
				}
				return true
			}
			if n.Name == "gen" && n.Lag != nil {
				t.Fatalf("the generate input reports a lag: %+v", n)
			}
		}
		return false
	})
}

func TestCheckpointsAPI(t *testing.T) {
	t.Run("with a state store", func(t *testing.T) {
		lv := startLive(t, fmt.Sprintf(`
name: ckpt-test
control: {address: ""}
state: {dir: %q, checkpoint_interval: 50ms}
inputs:
  gen: {type: generate, rate: 1000}
processors:
  once: {type: dedup, from: gen, key: event_id, ttl: 1h}
outputs:
  sink: {type: discard, from: once}
`, t.TempDir()), liveOpts{})
		var list control.CheckpointList
		eventually(t, "three checkpoints", func() bool {
			lv.getJSON(t, "/api/v1/checkpoints", &list)
			return len(list.Checkpoints) >= 3
		})
		if !list.Enabled {
			t.Error("enabled = false with a state store")
		}
		for i, c := range list.Checkpoints {
			if c.ID != uint64(i+1) || c.Time.IsZero() || c.Duration <= 0 {
				t.Errorf("checkpoint %d: %+v", i, c)
			}
		}
		wroteDedup := false
		for _, c := range list.Checkpoints {
			for _, nw := range c.Nodes {
				wroteDedup = wroteDedup || (nw.Node == "once" && nw.Sets > 0)
			}
		}
		if !wroteDedup {
			t.Errorf("no checkpoint records the dedup node's writes: %+v", list.Checkpoints)
		}
		// The store lists a checkpoint as soon as it is durable; the
		// process's own record of it follows a moment later.
		var st control.Stats
		eventually(t, "three checkpoints in the stats", func() bool {
			lv.getJSON(t, "/api/v1/stats", &st)
			return st.Checkpoints != nil && st.Checkpoints.Taken >= 3
		})
		c := st.Checkpoints
		if c == nil || c.LastID < 3 || c.Age == nil || *c.Age > 5 || c.Duration == nil || c.Taken < 3 {
			t.Errorf("stats checkpoints = %+v", c)
		}
	})
	t.Run("without", func(t *testing.T) {
		lv := startLive(t, apiPipeline, liveOpts{})
		var list control.CheckpointList
		lv.getJSON(t, "/api/v1/checkpoints", &list)
		if list.Enabled || list.Checkpoints == nil || len(list.Checkpoints) != 0 {
			t.Errorf("without a store: %+v", list)
		}
	})
}

// /readyz waits for the pipeline's inputs to run, and says no once it
// has stopped.
func TestReadyzFollowsThePipeline(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{noRun: true})
	var r struct{ Ready bool }
	if code := lv.getJSON(t, "/readyz", &r); code != http.StatusServiceUnavailable || r.Ready {
		t.Errorf("before Run: %d %+v", code, r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lv.p.Run(ctx) }()
	eventually(t, "ready", func() bool { return lv.getJSON(t, "/readyz", &r) == http.StatusOK && r.Ready })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code := lv.getJSON(t, "/readyz", &r); code != http.StatusServiceUnavailable {
		t.Errorf("after Run: %d", code)
	}
}

// sse is a client reading a tail stream.
type sse struct {
	resp *http.Response
	r    *bufio.Reader
}

type sseEvent struct {
	name string
	data string
}

func openTail(t *testing.T, lv *live, query url.Values) (*sse, int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, lv.base+"/api/v1/tail?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := lv.stream.Do(req)
	if err != nil {
		t.Fatalf("GET tail: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return nil, resp.StatusCode, string(body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("tail Content-Type %q", ct)
	}
	s := &sse{resp: resp, r: bufio.NewReader(resp.Body)}
	t.Cleanup(func() { resp.Body.Close() })
	return s, resp.StatusCode, ""
}

// next returns the next event (pings included, as name ":").
func (s *sse) next(t *testing.T) (sseEvent, error) {
	t.Helper()
	var ev sseEvent
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case line == "":
			return ev, nil
		case strings.HasPrefix(line, ":"):
			ev.name = ":"
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
}

// data returns the next data event, skipping pings and notices.
func (s *sse) data(t *testing.T) control.TailEvent {
	t.Helper()
	for {
		ev, err := s.next(t)
		if err != nil {
			t.Fatalf("reading the tail: %v", err)
		}
		if ev.name != "" {
			continue
		}
		var te control.TailEvent
		if err := json.Unmarshal([]byte(ev.data), &te); err != nil {
			t.Fatalf("tail event %q: %v", ev.data, err)
		}
		return te
	}
}

func TestTail(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{})
	s, code, body := openTail(t, lv, url.Values{"node": {"tagged"}, "filter": {`price > 10`}, "rate": {"500"}})
	if code != http.StatusOK {
		t.Fatalf("tail: %d %s", code, body)
	}
	open, err := s.next(t)
	if err != nil || open.name != "open" {
		t.Fatalf("first event %+v %v, want open", open, err)
	}
	var hello struct {
		ID, Node, Filter string
		Rate             float64
	}
	if err := json.Unmarshal([]byte(open.data), &hello); err != nil || hello.ID == "" || hello.Node != "tagged" || hello.Rate != 500 || hello.Filter != "price > 10" {
		t.Fatalf("open event %s: %+v %v", open.data, hello, err)
	}
	for range 10 {
		te := s.data(t)
		var v struct {
			Type   string
			Tagged bool
			Price  float64
		}
		if err := json.Unmarshal(te.Value, &v); err != nil {
			t.Fatalf("tail value %s: %v", te.Value, err)
		}
		if te.Node != "tagged" || v.Type != "purchase" || !v.Tagged || v.Price <= 10 || te.Seen == "" {
			t.Errorf("tail event %+v value %+v: want a tagged purchase over 10", te, v)
		}
	}

	// Pause: the stream goes quiet (pings only); resume: events again.
	post := func(action string) int {
		resp, err := lv.client.Post(lv.base+"/api/v1/tail/"+hello.ID+"/"+action, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("pause"); code != http.StatusOK {
		t.Fatalf("pause: %d", code)
	}
	time.Sleep(50 * time.Millisecond) // let what was sampled drain
	quiet := time.Now()
	pings := 0
	for pings < 2 {
		ev, err := s.next(t)
		if err != nil {
			t.Fatal(err)
		}
		switch ev.name {
		case ":":
			pings++
		case "":
			if time.Since(quiet) > 200*time.Millisecond {
				t.Fatalf("a paused tail sent %s", ev.data)
			}
		}
	}
	if code := post("resume"); code != http.StatusOK {
		t.Fatalf("resume: %d", code)
	}
	s.data(t)
	if code := post("bogus"); code != http.StatusNotFound {
		t.Errorf("POST bogus action = %d", code)
	}
	resp, err := lv.client.Post(lv.base+"/api/v1/tail/t999/pause", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("pause of an unknown tail = %d", resp.StatusCode)
	}

	// The pipeline stops: the stream ends with an end event.
	if err := lv.stop(); err != nil {
		t.Fatal(err)
	}
	for {
		ev, err := s.next(t)
		if err != nil {
			t.Fatalf("the stream ended without an end event: %v", err)
		}
		if ev.name == "end" {
			break
		}
	}
	if _, err := s.next(t); !errors.Is(err, io.EOF) {
		t.Errorf("after the end event: %v, want EOF", err)
	}
}

// Sampled events the stream could not take in time are reported, with the
// count, in a dropped event. A buffer of one event and the initial burst
// of a quarter second's worth of events (250 at rate 1000) make drops.
func TestTailReportsDrops(t *testing.T) {
	lv := startLive(t, `
name: drops
control: {address: ""}
inputs:
  gen: {type: generate}
outputs:
  sink: {type: discard, from: gen}
`, liveOpts{})
	for attempt := range 5 {
		s, code, body := openTail(t, lv, url.Values{"node": {"gen"}, "rate": {"1000"}, "buffer": {"1"}})
		if code != http.StatusOK {
			t.Fatalf("tail: %d %s", code, body)
		}
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			ev, err := s.next(t)
			if err != nil {
				t.Fatal(err)
			}
			if ev.name != "dropped" {
				continue
			}
			var d struct{ Dropped, Sampled uint64 }
			if err := json.Unmarshal([]byte(ev.data), &d); err != nil || d.Dropped == 0 || d.Sampled < d.Dropped {
				t.Fatalf("dropped event %s: %+v %v", ev.data, d, err)
			}
			return
		}
		t.Logf("attempt %d: no drops", attempt)
		s.resp.Body.Close()
	}
	t.Fatal("no dropped event in 5 tails with a one-event buffer")
}

func TestTailBadRequests(t *testing.T) {
	lv := startLive(t, apiPipeline, liveOpts{})
	for _, tc := range []struct {
		query url.Values
		code  int
		want  []string
	}{
		{url.Values{}, http.StatusBadRequest, []string{"node parameter is required", `\"gen\"`}},
		{url.Values{"node": {"nope"}}, http.StatusNotFound, []string{`no node named \"nope\"`}},
		{url.Values{"node": {"gen"}, "filter": {"type = 1"}}, http.StatusBadRequest, []string{"filter, column 6", "hint", "=="}},
		{url.Values{"node": {"gen"}, "filter": {"lower(type)"}}, http.StatusBadRequest, []string{"filter"}},
		{url.Values{"node": {"gen"}, "rate": {"5000"}}, http.StatusBadRequest, []string{`rate \"5000\" is out of range`, "at most 1000"}},
		{url.Values{"node": {"gen"}, "rate": {"x"}}, http.StatusBadRequest, []string{"rate"}},
		{url.Values{"node": {"gen"}, "buffer": {"0"}}, http.StatusBadRequest, []string{"buffer"}},
	} {
		_, code, body := openTail(t, lv, tc.query)
		if code != tc.code {
			t.Errorf("tail?%s = %d %s, want %d", tc.query.Encode(), code, body, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("tail?%s: %s lacks %q", tc.query.Encode(), body, w)
			}
		}
	}
	// The per-node limit on open taps answers 429.
	for range runtime.MaxTapsPerNode {
		if _, code, body := openTail(t, lv, url.Values{"node": {"gen"}}); code != http.StatusOK {
			t.Fatalf("tail: %d %s", code, body)
		}
	}
	if _, code, body := openTail(t, lv, url.Values{"node": {"gen"}}); code != http.StatusTooManyRequests {
		t.Errorf("tail %d on one node = %d %s, want 429", runtime.MaxTapsPerNode+1, code, body)
	}
}

// Close ends open tail streams at once: a stream never holds the server,
// and nothing the server or the tail started is left running.
func TestCloseEndsTails(t *testing.T) {
	before := goruntime.NumGoroutine()
	lv := startLive(t, apiPipeline, liveOpts{})
	s, code, body := openTail(t, lv, url.Values{"node": {"gen"}})
	if code != http.StatusOK {
		t.Fatalf("tail: %d %s", code, body)
	}
	s.data(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := lv.srv.Close(ctx); err != nil {
		t.Fatalf("Close with an open tail: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with an open tail", d)
	}
	for {
		if _, err := s.next(t); err != nil {
			break
		}
	}
	s.resp.Body.Close()
	if err := lv.stop(); err != nil {
		t.Fatal(err)
	}
	lv.client.CloseIdleConnections()
	lv.stream.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, goruntime.NumGoroutine(), buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flakyOutput fails every write while failing is set.
type flakyOutput struct{ failing *atomic.Bool }

func (f flakyOutput) Write(context.Context, []event.Event) error {
	if f.failing.Load() {
		return errors.New("connection refused by the warehouse")
	}
	return nil
}
func (flakyOutput) Flush(context.Context) error { return nil }
func (flakyOutput) Close(context.Context) error { return nil }

type flakyFactory struct {
	runtime.Factory
	failing *atomic.Bool
}

func (f flakyFactory) NewOutput(n *dag.Node, env runtime.Env) (runtime.Output, error) {
	if n.Name == "flaky" {
		return flakyOutput{f.failing}, nil
	}
	return f.Factory.NewOutput(n, env)
}

// /healthz answers 200 throughout; its body turns degraded while an
// output's writes fail, naming the output and the error, and back to ok
// once writes succeed again.
func TestHealthDegradedAndBack(t *testing.T) {
	var failing atomic.Bool
	lv := startLive(t, `
name: health-test
control: {address: ""}
inputs:
  gen: {type: generate, rate: 500}
outputs:
  flaky: {type: discard, from: gen}
  fine: {type: discard, from: gen}
`, liveOpts{factory: func(f runtime.Factory) runtime.Factory { return flakyFactory{f, &failing} }})
	var h struct {
		Status     string
		Components map[string]control.Component
	}
	health := func() string {
		t.Helper()
		if code := lv.getJSON(t, "/healthz", &h); code != http.StatusOK {
			t.Fatalf("/healthz = %d, want 200 always", code)
		}
		return h.Status
	}
	eventually(t, "events flushed", func() bool { return lv.p.Node("flaky").Out.Load() > 0 })
	if s := health(); s != "ok" || h.Components["outputs.flaky"].Status != control.OK || h.Components["outputs.fine"].Status != control.OK {
		t.Fatalf("healthy pipeline: %s %+v", s, h.Components)
	}
	failing.Store(true)
	eventually(t, "degraded", func() bool { return health() == "degraded" })
	c := h.Components["outputs.flaky"]
	if c.Status != control.Degraded || !strings.Contains(c.Detail, "connection refused by the warehouse") || c.Time.IsZero() {
		t.Errorf("failing output component = %+v", c)
	}
	if h.Components["outputs.fine"].Status != control.OK {
		t.Errorf("the other output = %+v, want ok", h.Components["outputs.fine"])
	}
	failing.Store(false)
	eventually(t, "ok again", func() bool { return health() == "ok" })

	// Components registered by other parts of the process count too.
	lv.srv.Health().Set("log", control.Degraded, "partition 0 is 93% of max_bytes")
	if s := health(); s != "degraded" || h.Components["log"].Detail != "partition 0 is 93% of max_bytes" {
		t.Errorf("after Set degraded: %s %+v", s, h.Components["log"])
	}
	lv.srv.Health().Set("log", control.Failing, "full")
	if s := health(); s != "failing" {
		t.Errorf("after Set failing: %s", s)
	}
	lv.srv.Health().Remove("log")
	if s := health(); s != "ok" {
		t.Errorf("after Remove: %s", s)
	}
}
