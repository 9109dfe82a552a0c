package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/log"
)

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstded(t testing.TB, b []byte, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func TestHappyPaths(t *testing.T) {
	app := &memAppender{}
	s := newServer(t, testConfig(), app, Options{})
	batch := `[{"event_id":"e1","type":"view"},{"messageId":"m2","type":"click"}]`
	ndjson := ndjsonOf(`{"event_id":"e1","type":"view"}`, `{"messageId":"m2","type":"click"}`)
	wrapper := `{"batch":[{"event_id":"e1","type":"view"},{"messageId":"m2","type":"click"}],"sentAt":"2024-05-01T00:00:00Z"}`
	two := []string{`{"event_id":"e1","type":"view"}`, `{"messageId":"m2","type":"click"}`}
	tests := []struct {
		name    string
		path    string
		body    []byte
		headers map[string]string
		want    []string
	}{
		{"single", pathEvents, []byte(`{"event_id":"e1","type":"view"}`), nil, two[:1]},
		{"single basic auth", pathEvents, []byte(`{"event_id":"e1","type":"view"}`), map[string]string{"Authorization": basicAuth(keyShop, "")}, two[:1]},
		{"single second key", pathEvents, []byte(`{"event_id":"e1","type":"view"}`), map[string]string{"Authorization": "bearer " + keyShop2}, two[:1]},
		{"single text/plain", pathEvents, []byte(`{"event_id":"e1","type":"view"}`), map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, two[:1]},
		{"single gzip", pathEvents, gzipped(t, []byte(`{"event_id":"e1","type":"view"}`)), map[string]string{"Content-Encoding": "gzip"}, two[:1]},
		{"array", pathBatch, []byte(batch), map[string]string{"Content-Type": "application/json"}, two},
		{"array basic auth", pathBatch, []byte(batch), map[string]string{"Authorization": basicAuth(keyShop, "")}, two},
		{"array text/plain", pathBatch, []byte(batch), map[string]string{"Content-Type": "text/plain"}, two},
		{"array gzip", pathBatch, gzipped(t, []byte(batch)), map[string]string{"Content-Encoding": "gzip"}, two},
		{"array zstd", pathBatch, zstded(t, []byte(batch)), map[string]string{"Content-Encoding": "zstd"}, two},
		{"ndjson by type", pathBatch, []byte(ndjson), map[string]string{"Content-Type": "application/x-ndjson"}, two},
		{"ndjson detected", pathBatch, []byte(ndjson), nil, two},
		{"ndjson zstd", pathBatch, zstded(t, []byte(ndjson)), map[string]string{"Content-Type": "application/x-ndjson", "Content-Encoding": "zstd"}, two},
		{"segment wrapper", pathBatch, []byte(wrapper), nil, two},
		{"segment wrapper gzip basic", pathBatch, gzipped(t, []byte(wrapper)), map[string]string{"Content-Encoding": "gzip", "Authorization": basicAuth(keyShop, "")}, two},
		{"one object on the batch path", pathBatch, []byte(two[0]), nil, two[:1]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(app.records())
			calls := app.numCalls()
			r := s.do(t, req{path: tt.path, body: tt.body, key: keyShop, headers: tt.headers})
			if r.code != http.StatusOK || intp(r.Accepted) != fmt.Sprint(len(tt.want)) || intp(r.Rejected) != "0" || r.Errors == nil || len(r.Errors) != 0 {
				t.Fatalf("got %d %s, want 200 with %d accepted, 0 rejected, errors []", r.code, r.body, len(tt.want))
			}
			if app.numCalls() != calls+1 {
				t.Errorf("%d Append calls for one request, want 1", app.numCalls()-calls)
			}
			recs := app.records()[before:]
			if len(recs) != len(tt.want) {
				t.Fatalf("%d records appended, want %d", len(recs), len(tt.want))
			}
			for i, rec := range recs {
				if string(rec.Value) != tt.want[i] {
					t.Errorf("record %d value %q, want %q", i, rec.Value, tt.want[i])
				}
				wantID := []string{"e1", "m2"}[i]
				if id, _ := header(rec, HeaderEventID); id != wantID || string(rec.Key) != wantID {
					t.Errorf("record %d: event_id %q key %q, want %q", i, id, rec.Key, wantID)
				}
				if tenant, _ := header(rec, HeaderTenant); tenant != "shop" {
					t.Errorf("record %d: tenant %q, want shop", i, tenant)
				}
			}
		})
	}
}

func TestPartialBatch(t *testing.T) {
	app := &memAppender{}
	reg := prometheus.NewRegistry()
	s := newServer(t, testConfig(), app, Options{Registerer: reg})
	r := s.post(t, pathBatch, `[{"a":1},{"a":1,"a":2},7,{"b":2}]`)
	if r.code != http.StatusOK || intp(r.Accepted) != "2" || intp(r.Rejected) != "2" || len(r.Errors) != 2 ||
		r.Errors[0].Index != 1 || !strings.Contains(r.Errors[0].Reason, `duplicate key "a"`) ||
		r.Errors[1].Index != 2 || !strings.Contains(r.Errors[1].Reason, "not a JSON object") {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	recs := app.records()
	if len(recs) != 2 || string(recs[0].Value) != `{"a":1}` || string(recs[1].Value) != `{"b":2}` {
		t.Fatalf("records %v", recs)
	}
	// All invalid: 400 with the reasons, nothing appended.
	r = s.post(t, pathBatch, `[{"a":1,"a":2},[]]`)
	if r.code != http.StatusBadRequest || intp(r.Accepted) != "0" || intp(r.Rejected) != "2" || len(r.Errors) != 2 {
		t.Fatalf("all invalid: got %d %s", r.code, r.body)
	}
	if app.numCalls() != 1 {
		t.Errorf("%d Append calls, want 1", app.numCalls())
	}
	for series, want := range map[string]float64{
		`weir_collector_events_accepted_total{tenant="shop"}`:                        2,
		`weir_collector_events_rejected_total{reason="duplicate_key",tenant="shop"}`: 2,
		`weir_collector_events_rejected_total{reason="not_object",tenant="shop"}`:    2,
		`weir_collector_requests_total{code="200"}`:                                  1,
		`weir_collector_requests_total{code="400"}`:                                  1,
	} {
		if got := metricValue(t, reg, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

// metricValue returns the value of one series, as "name{label="v",...}"
// with labels sorted, or -1 if there is none.
func metricValue(t *testing.T, g prometheus.Gatherer, series string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			if len(m.GetLabel()) > 0 {
				var ls []string
				for _, l := range m.GetLabel() {
					ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
				}
				name += "{" + strings.Join(ls, ",") + "}"
			}
			if name != series {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := newServer(t, testConfig(), &memAppender{}, Options{Registerer: reg})
	_ = s.m
	body := `[{"a":1},{"b":2}]`
	s.post(t, pathBatch, body)
	s.do(t, req{path: pathBatch, body: gzipped(t, []byte(body)), key: keyBlog, headers: map[string]string{"Content-Encoding": "gzip"}})
	s.do(t, req{path: pathBatch, body: []byte(body), key: "nope"})
	for series, want := range map[string]float64{
		`weir_collector_events_accepted_total{tenant="shop"}`: 2,
		`weir_collector_events_accepted_total{tenant="blog"}`: 2,
		`weir_collector_requests_total{code="200"}`:           2,
		`weir_collector_requests_total{code="401"}`:           1,
		`weir_collector_decoded_bytes_total`:                  2 * float64(len(body)),
		`weir_collector_append_duration_seconds`:              2,
		`weir_collector_request_duration_seconds`:             3,
		`weir_collector_in_flight_requests`:                   0,
	} {
		if got := metricValue(t, reg, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if got, min := metricValue(t, reg, "weir_collector_received_bytes_total"), float64(len(body)+20); got < min {
		t.Errorf("received bytes %v, want at least %v", got, min)
	}
	// Registering a second collector on the same registry is an error.
	if _, err := New(testConfig(), &memAppender{}, Options{Registerer: reg}); err == nil {
		t.Error("New with metrics already registered succeeded")
	}
	// Only configured tenants ever appear as labels.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "weir_collector_events_accepted_total" && len(mf.GetMetric()) != 2 {
			t.Errorf("%d tenant series, want 2", len(mf.GetMetric()))
		}
	}
}

func TestAnswerOnlyAfterAppend(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var returned atomic.Bool
	app := &memAppender{hook: func(ctx context.Context, _ []log.Record) error {
		close(entered)
		<-release
		returned.Store(true)
		return nil
	}}
	s := newServer(t, testConfig(), app, Options{})
	answered := make(chan response, 1)
	go func() {
		r := s.post(t, pathEvents, `{"a":1}`)
		if !returned.Load() {
			t.Error("the answer arrived before Append returned")
		}
		answered <- r
	}()
	<-entered
	select {
	case r := <-answered:
		t.Fatalf("answered %d while Append was blocked", r.code)
	default:
	}
	close(release)
	if r := <-answered; r.code != http.StatusOK {
		t.Fatalf("got %d %s", r.code, r.body)
	}
}

func TestMetadata(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 5, 1, 12, 30, 45, 123456789, time.FixedZone("X", 3600))}
	cfg := testConfig()
	cfg.UserAgent = true
	cfg.UserAgentCacheSize = 2
	cfg.ClientIP = ClientIPRemoteAddr
	app := &memAppender{}
	s := newServer(t, cfg, app, Options{Now: clock.Now})
	chrome := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
	r := s.do(t, req{body: []byte(`[{"event_id":"e\u0031"},{"messageId":"m"},{"x":1},{"event_id":""}]`), key: keyBlog, headers: map[string]string{"User-Agent": chrome}})
	if r.code != http.StatusOK {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	recs := app.records()
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	ids := map[string]bool{}
	for i, rec := range recs {
		want := map[string]string{
			HeaderTenant: "blog", HeaderReceivedAt: "2024-05-01T11:30:45.123Z", HeaderClientIP: "127.0.0.1",
			HeaderUABrowser: "Chrome", HeaderUAOS: "Windows", HeaderUADevice: "desktop",
		}
		var keys []string
		for _, h := range rec.Headers {
			keys = append(keys, h.Key)
		}
		if got := strings.Join(keys, ","); got != "tenant,received_at,event_id,client_ip,ua_browser,ua_os,ua_device" {
			t.Errorf("record %d headers %s", i, got)
		}
		for k, v := range want {
			if got, _ := header(rec, k); got != v {
				t.Errorf("record %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if !rec.Timestamp.Equal(clock.Now()) {
			t.Errorf("record %d timestamp %v, want %v", i, rec.Timestamp, clock.Now())
		}
		id, _ := header(rec, HeaderEventID)
		if string(rec.Key) != id {
			t.Errorf("record %d key %q, event_id %q", i, rec.Key, id)
		}
		switch i {
		case 0:
			if id != "e1" {
				t.Errorf("escaped id: %q, want e1", id)
			}
		case 1:
			if id != "m" {
				t.Errorf("fallback id: %q, want m", id)
			}
		default:
			if !uuid.MatchString(id) {
				t.Errorf("generated id %q is not a version 4 UUID", id)
			}
		}
		if ids[id] {
			t.Errorf("id %q twice", id)
		}
		ids[id] = true
	}

	// No User-Agent header: no ua_ headers.
	before := len(app.records())
	hr, _ := http.NewRequest(http.MethodPost, s.url+pathEvents, strings.NewReader(`{"a":1}`))
	hr.Header.Set("Authorization", "Bearer "+keyShop)
	hr.Header["User-Agent"] = nil
	resp, err := s.client.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d", resp.StatusCode)
	}
	if rec := app.records()[before]; len(rec.Headers) != 4 {
		t.Errorf("without a User-Agent: %d headers, want 4", len(rec.Headers))
	}
}

func TestClientIPFromXForwardedFor(t *testing.T) {
	for _, tt := range []struct {
		proxies int
		xff     []string
		want    string
	}{
		{1, []string{"203.0.113.7"}, "203.0.113.7"},
		{1, []string{"10.0.0.1, 203.0.113.7"}, "203.0.113.7"},
		{2, []string{"198.51.100.1, 203.0.113.7, 10.0.0.2"}, "203.0.113.7"},
		{2, []string{"198.51.100.1, 203.0.113.7", "10.0.0.2"}, "203.0.113.7"},
		{3, []string{"203.0.113.7"}, "203.0.113.7"},
		{1, []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{1, []string{"::ffff:192.0.2.1"}, "192.0.2.1"},
		{1, []string{"not an ip"}, "127.0.0.1"},
		{1, nil, "127.0.0.1"},
	} {
		cfg := testConfig()
		cfg.ClientIP = ClientIPXForwardedFor
		cfg.TrustedProxies = tt.proxies
		app := &memAppender{}
		s := newServer(t, cfg, app, Options{})
		hr, _ := http.NewRequest(http.MethodPost, s.url+pathEvents, strings.NewReader(`{"a":1}`))
		hr.Header.Set("Authorization", "Bearer "+keyShop)
		for _, v := range tt.xff {
			hr.Header.Add("X-Forwarded-For", v)
		}
		resp, err := s.client.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("got %d %s", resp.StatusCode, b)
		}
		if got, _ := header(app.records()[0], HeaderClientIP); got != tt.want {
			t.Errorf("%d proxies, X-Forwarded-For %q: client_ip %q, want %q", tt.proxies, tt.xff, got, tt.want)
		}
	}
}

func TestBadInputs(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxBodyBytes = 64 << 10
	cfg.Limits.MaxDecompressedBytes = 1 << 20
	cfg.Limits.MaxEventsPerBatch = 10
	cfg.Limits.MaxDepth = 8
	cfg.CORS.AllowedOrigins = []string{"https://shop.example.com"}
	app := &memAppender{}
	s := newServer(t, cfg, app, Options{})
	zeros := make([]byte, 10<<20)
	big := `[{"x":"` + strings.Repeat("y", 70<<10) + `"}]`
	tests := []struct {
		name   string
		r      req
		status int
		msg    string // in "error", or in the first per-event reason
	}{
		{"oversized body", req{body: []byte(big), key: keyShop}, 413, "limits.max_body_bytes"},
		{"oversized chunked body", req{reader: strings.NewReader(big), key: keyShop}, 413, "limits.max_body_bytes"},
		{"gzip bomb", req{body: gzipped(t, zeros), key: keyShop, headers: map[string]string{"Content-Encoding": "gzip"}}, 413, "limits.max_decompressed_bytes"},
		{"zstd bomb", req{body: zstded(t, zeros, zstd.WithWindowSize(1<<20)), key: keyShop, headers: map[string]string{"Content-Encoding": "zstd"}}, 413, "limits.max_decompressed_bytes"},
		{"zstd huge window", req{body: zstded(t, zeros, zstd.WithWindowSize(64<<20)), key: keyShop, headers: map[string]string{"Content-Encoding": "zstd"}}, 413, "window"},
		{"bad gzip", req{body: []byte("not gzip"), key: keyShop, headers: map[string]string{"Content-Encoding": "gzip"}}, 400, "invalid gzip data"},
		{"truncated gzip", req{body: gzipped(t, []byte(`[{"a":1}]`))[:15], key: keyShop, headers: map[string]string{"Content-Encoding": "gzip"}}, 400, "invalid gzip data"},
		{"bad zstd", req{body: []byte("not zstd"), key: keyShop, headers: map[string]string{"Content-Encoding": "zstd"}}, 400, "invalid zstd data"},
		{"deep nesting", req{path: pathEvents, body: []byte(strings.Repeat(`{"a":`, 20) + "1" + strings.Repeat("}", 20)), key: keyShop}, 400, "limits.max_depth"},
		{"very deep nesting", req{body: []byte("[" + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + "]"), key: keyShop}, 400, "nested deeper than 1024 levels"},
		{"invalid utf8", req{path: pathEvents, body: []byte("{\"a\":\"\xc3\x28\"}"), key: keyShop}, 400, "invalid UTF-8"},
		{"duplicate keys", req{path: pathEvents, body: []byte(`{"a":1,"b":{"c":1,"c":2}}`), key: keyShop}, 400, `duplicate key "c"`},
		{"duplicate keys in a batch", req{body: []byte(`[{"a":1,"\u0061":2}]`), key: keyShop}, 400, `duplicate key "a"`},
		{"unparseable", req{body: []byte(`[{"a":1},{"a"}]`), key: keyShop}, 400, "invalid JSON at byte 13"},
		{"empty body", req{body: nil, key: keyShop}, 400, "empty body"},
		{"array to /v1/events", req{path: pathEvents, body: []byte(`[{}]`), key: keyShop}, 400, "/v1/batch"},
		{"missing write key", req{body: []byte(`{}`)}, 401, "missing write key"},
		{"wrong write key", req{body: []byte(`{}`), key: "shop-key-0123456788"}, 401, "unknown write key"},
		{"basic auth with key as password", req{body: []byte(`{}`), headers: map[string]string{"Authorization": basicAuth("", keyShop)}}, 401, "missing write key"},
		{"unknown auth scheme", req{body: []byte(`{}`), headers: map[string]string{"Authorization": "Token " + keyShop}}, 401, "missing write key"},
		{"disallowed origin", req{body: []byte(`{}`), key: keyShop, headers: map[string]string{"Origin": "https://evil.example.com"}}, 403, "cors.allowed_origins"},
		{"too many events", req{body: []byte("[" + strings.TrimSuffix(strings.Repeat(`{},`, 11), ",") + "]"), key: keyShop}, 413, "limits.max_events_per_batch"},
		{"too many ndjson events", req{body: []byte(strings.Repeat("{}\n", 11)), key: keyShop}, 413, "limits.max_events_per_batch"},
		{"unsupported encoding", req{body: []byte(`{}`), key: keyShop, headers: map[string]string{"Content-Encoding": "br"}}, 415, "Content-Encoding"},
		{"unsupported content type", req{body: []byte(`{}`), key: keyShop, headers: map[string]string{"Content-Type": "application/xml"}}, 415, "Content-Type"},
		{"wrong method", req{method: http.MethodGet, key: keyShop}, 405, "POST"},
		{"unknown path", req{path: "/v1/track", body: []byte(`{}`), key: keyShop}, 404, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := app.numCalls()
			r := s.do(t, tt.r)
			msg := r.Error
			if msg == "" && len(r.Errors) > 0 {
				msg = r.Errors[0].Reason
			}
			if r.code != tt.status || !strings.Contains(msg, tt.msg) {
				t.Errorf("got %d %s, want %d with %q", r.code, r.body, tt.status, tt.msg)
			}
			if tt.status == http.StatusMethodNotAllowed && r.header.Get("Allow") != "POST, OPTIONS" {
				t.Errorf("Allow: %q", r.header.Get("Allow"))
			}
			if app.numCalls() != calls {
				t.Errorf("a refused request was appended")
			}
			s.expectGood(t)
		})
	}
}

func TestBombMemory(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxDecompressedBytes = 1 << 20
	s := newServer(t, cfg, &memAppender{}, Options{})
	zeros := make([]byte, 64<<20)
	for _, tt := range []struct {
		enc  string
		body []byte
	}{
		{"gzip", gzipped(t, zeros)},
		{"zstd", zstded(t, zeros, zstd.WithWindowSize(1<<20))},
	} {
		s.expectGood(t) // warm pools and connections
		var before, after runtimeMem
		before.read()
		r := s.do(t, req{body: tt.body, key: keyShop, headers: map[string]string{"Content-Encoding": tt.enc}})
		after.read()
		if r.code != http.StatusRequestEntityTooLarge {
			t.Fatalf("%s bomb: got %d %s", tt.enc, r.code, r.body)
		}
		// 64 MiB inflates; reading stops at the 1 MiB limit. Allow for the
		// body buffer growing by doubling, decoder state and the test's own
		// request.
		if alloc := after.total - before.total; alloc > 8<<20 {
			t.Errorf("%s bomb of %d compressed bytes: %d bytes allocated, want < 8 MiB", tt.enc, len(tt.body), alloc)
		}
		s.expectGood(t)
	}
}

func TestRateLimit(t *testing.T) {
	clock := &fakeClock{t: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)}
	cfg := testConfig()
	cfg.Limits.MaxEventsPerBatch = 5
	cfg.RateLimit = RateLimitConfig{EventsPerSecond: 2, Burst: 5, Tenants: map[string]TenantRate{"blog": {EventsPerSecond: 0}}}
	var failing atomic.Bool
	app := &memAppender{hook: func(context.Context, []log.Record) error {
		if failing.Load() {
			return log.ErrFull
		}
		return nil
	}}
	s := newServer(t, cfg, app, Options{Now: clock.Now})
	five := "[" + strings.TrimSuffix(strings.Repeat(`{"a":1},`, 5), ",") + "]"
	if r := s.post(t, pathBatch, five); r.code != http.StatusOK {
		t.Fatalf("first batch: %d %s", r.code, r.body)
	}
	r := s.post(t, pathEvents, `{"a":1}`)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || !strings.Contains(r.Error, "rate limit") {
		t.Fatalf("over the limit: %d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body)
	}
	// Another tenant is not limited.
	for range 3 {
		if r := s.do(t, req{body: []byte(five), key: keyBlog}); r.code != http.StatusOK {
			t.Fatalf("blog: %d %s", r.code, r.body)
		}
	}
	clock.Advance(time.Second) // 2 tokens
	if r := s.post(t, pathBatch, `[{"a":1},{"a":2}]`); r.code != http.StatusOK {
		t.Fatalf("after a second: %d %s", r.code, r.body)
	}
	clock.Advance(time.Second) // 2 tokens; a batch of 5 needs 1.5 s more
	r = s.post(t, pathBatch, five)
	if r.code != http.StatusTooManyRequests || r.header.Get("Retry-After") != "2" {
		t.Fatalf("batch over the limit: %d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body)
	}
	// The refused batch took no tokens: 2 events still pass.
	if r := s.post(t, pathBatch, `[{"a":1},{"a":2}]`); r.code != http.StatusOK {
		t.Fatalf("after a refused batch: %d %s", r.code, r.body)
	}
	// A failed append gives its tokens back.
	clock.Advance(10 * time.Second)
	failing.Store(true)
	if r := s.post(t, pathBatch, five); r.code != http.StatusServiceUnavailable {
		t.Fatalf("failing append: %d %s", r.code, r.body)
	}
	failing.Store(false)
	if r := s.post(t, pathBatch, five); r.code != http.StatusOK {
		t.Fatalf("after a failed append: %d %s", r.code, r.body)
	}
}

func TestOverloaded(t *testing.T) {
	var overloaded atomic.Bool
	overloaded.Store(true)
	app := &memAppender{}
	s := newServer(t, testConfig(), app, Options{Overloaded: overloaded.Load})
	// The answer comes with only the start of the body sent: the body is
	// not read.
	conn := dial(t, s)
	fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100000\r\n\r\n[{\"a\":", keyShop)
	resp := readResponse(t, conn)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if app.numCalls() != 0 {
		t.Error("an overloaded request was appended")
	}
	overloaded.Store(false)
	s.expectGood(t)
}

func TestAppendErrors(t *testing.T) {
	cfg := testConfig()
	cfg.AppendTimeout = 50 * time.Millisecond
	cfg.RetryAfter = 3 * time.Second
	var fail atomic.Pointer[error] // nil: succeed
	app := &memAppender{hook: func(ctx context.Context, _ []log.Record) error {
		var err error
		if p := fail.Load(); p != nil {
			err = *p
		}
		if errors.Is(err, context.DeadlineExceeded) {
			<-ctx.Done()
			return fmt.Errorf("log: append not acknowledged: %w", ctx.Err())
		}
		return err
	}}
	s := newServer(t, cfg, app, Options{})
	for _, tt := range []struct {
		err        error
		status     int
		retryAfter string
		msg        string
	}{
		{fmt.Errorf("wrapped: %w", log.ErrFull), 503, "3", "full"},
		{fmt.Errorf("%w: disk on fire", log.ErrFailed), 503, "3", "unavailable"},
		{log.ErrClosed, 503, "3", "unavailable"},
		{context.DeadlineExceeded, 503, "3", "timed out"},
		{fmt.Errorf("%w: 9 MiB", log.ErrTooLarge), 413, "", "too large"},
		{errors.New("secret internal detail"), 500, "", "internal error"},
	} {
		fail.Store(&tt.err)
		r := s.post(t, pathBatch, `[{"a":1}]`)
		if r.code != tt.status || r.header.Get("Retry-After") != tt.retryAfter || !strings.Contains(r.Error, tt.msg) || strings.Contains(r.body, "secret") {
			t.Errorf("append error %v: got %d Retry-After %q %s", tt.err, r.code, r.header.Get("Retry-After"), r.body)
		}
		fail.Store(nil)
		s.expectGood(t)
	}
}

func TestInFlightLimit(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxInFlight = 1
	entered, release := make(chan struct{}, 1), make(chan struct{})
	app := &memAppender{hook: func(context.Context, []log.Record) error {
		select {
		case entered <- struct{}{}:
			<-release
		default:
		}
		return nil
	}}
	s := newServer(t, cfg, app, Options{})
	first := make(chan response, 1)
	go func() { first <- s.post(t, pathEvents, `{"a":1}`) }()
	<-entered // the only slot is taken
	r := s.post(t, pathEvents, `{"a":2}`)
	if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" || !strings.Contains(r.Error, "limits.max_in_flight") {
		t.Fatalf("second request: %d Retry-After %q %s", r.code, r.header.Get("Retry-After"), r.body)
	}
	close(release)
	if r := <-first; r.code != http.StatusOK {
		t.Fatalf("first request: %d %s", r.code, r.body)
	}
	s.expectGood(t)
}

func TestCORS(t *testing.T) {
	cfg := testConfig()
	cfg.CORS = CORSConfig{AllowedOrigins: []string{"https://shop.example.com", "http://localhost:3000"}, MaxAge: 90 * time.Second}
	s := newServer(t, cfg, &memAppender{}, Options{})
	preflight := func(origin string) response {
		return s.do(t, req{method: http.MethodOptions, path: pathBatch, headers: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}})
	}
	r := preflight("https://shop.example.com")
	if r.code != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" ||
		r.header.Get("Access-Control-Allow-Methods") != "POST, OPTIONS" || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") ||
		r.header.Get("Access-Control-Max-Age") != "90" || r.header.Get("Vary") != "Origin" {
		t.Errorf("allowed preflight: %d %v", r.code, r.header)
	}
	if r := preflight("https://evil.example.com"); r.code != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed preflight: %d %v", r.code, r.header)
	}
	if r := preflight("https://shop.example.com:8443"); r.code != http.StatusForbidden {
		t.Errorf("other port: %d", r.code)
	}
	r = s.do(t, req{body: []byte(`{}`), key: keyShop, headers: map[string]string{"Origin": "http://localhost:3000"}})
	if r.code != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" || r.header.Get("Access-Control-Expose-Headers") != "Retry-After" {
		t.Errorf("allowed request: %d %v", r.code, r.header)
	}
	// Errors carry the CORS headers too, so the page can read them.
	r = s.do(t, req{body: []byte(`{}`), key: "wrong", headers: map[string]string{"Origin": "http://localhost:3000"}})
	if r.code != http.StatusUnauthorized || r.header.Get("Access-Control-Allow-Origin") != "http://localhost:3000" {
		t.Errorf("allowed origin, bad key: %d %v", r.code, r.header)
	}
	// Without Origin (a server or an app), CORS does not apply.
	if r := s.do(t, req{method: http.MethodOptions}); r.code != http.StatusNoContent || r.header.Get("Allow") != "POST, OPTIONS" {
		t.Errorf("OPTIONS without Origin: %d %v", r.code, r.header)
	}

	cfg.CORS.AllowedOrigins = []string{"*"}
	any := newServer(t, cfg, &memAppender{}, Options{})
	r = any.do(t, req{method: http.MethodOptions, headers: map[string]string{"Origin": "https://anywhere.example"}})
	if r.code != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("wildcard preflight: %d %v", r.code, r.header)
	}
}

func TestQueryKey(t *testing.T) {
	cfg := testConfig()
	cfg.QueryKeyParam = "writeKey"
	app := &memAppender{}
	s := newServer(t, cfg, app, Options{})
	// navigator.sendBeacon: text/plain, key in the URL.
	r := s.do(t, req{path: pathBatch + "?writeKey=" + keyBlog, body: []byte(`[{"a":1}]`), headers: map[string]string{"Content-Type": "text/plain;charset=UTF-8"}})
	if r.code != http.StatusOK {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	if tenant, _ := header(app.records()[0], HeaderTenant); tenant != "blog" {
		t.Errorf("tenant %q", tenant)
	}
	if r := s.do(t, req{path: pathBatch + "?writeKey=nope", body: []byte(`[{"a":1}]`)}); r.code != http.StatusUnauthorized {
		t.Errorf("wrong query key: %d", r.code)
	}
}

func TestSlowHeaderClient(t *testing.T) {
	cfg := testConfig()
	cfg.HTTP.ReadHeaderTimeout = 100 * time.Millisecond
	s := newServer(t, cfg, &memAppender{}, Options{})
	conn := dial(t, s)
	if _, err := io.WriteString(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthor"); err != nil {
		t.Fatal(err)
	}
	// The server closes the connection once ReadHeaderTimeout passes; the
	// read deadline only guards against a hang.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading: %v (the server did not close the connection)", err)
	}
	// net/http may say why before closing (400 for a partial header).
	if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
		t.Errorf("the server answered %q", b)
	}
	s.expectGood(t)
}

func TestGracefulShutdown(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	app := &memAppender{hook: func(ctx context.Context, _ []log.Record) error {
		close(entered)
		<-release
		return ctx.Err() // the request context is not cancelled by shutdown
	}}
	s, err := New(testConfig(), app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	<-s.Ready()
	srv := &server{Server: s, url: "http://" + s.Addr().String(), client: &http.Client{}}
	answered := make(chan response, 1)
	go func() { answered <- srv.post(t, pathEvents, `{"a":1}`) }()
	<-entered
	cancel()
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case r := <-answered:
		t.Fatalf("answered %d before Append returned", r.code)
	default:
	}
	close(release)
	if r := <-answered; r.code != http.StatusOK {
		t.Errorf("in-flight request: %d %s", r.code, r.body)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v", err)
	}
	srv.client.CloseIdleConnections()
	if _, err := srv.client.Post(srv.url+pathEvents, "application/json", strings.NewReader(`{}`)); err == nil {
		t.Error("the server still answers after shutdown")
	}
	if err := s.Serve(context.Background()); err == nil {
		t.Error("a second Serve succeeded")
	}
}

func TestServeBusyAddress(t *testing.T) {
	s := newServer(t, testConfig(), &memAppender{}, Options{})
	cfg := testConfig()
	cfg.Address = s.Addr().String()
	s2, err := New(cfg, &memAppender{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = s2.Serve(context.Background())
	if err == nil || !strings.Contains(err.Error(), cfg.Address) || !strings.Contains(err.Error(), "set address") {
		t.Fatalf("Serve on a busy address = %v", err)
	}
	<-s2.Ready()
	if s2.Addr() != nil {
		t.Error("Addr set after a failed Serve")
	}
}

func TestListenBacklog(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		cfg := testConfig()
		cfg.Address = addr
		cfg.HTTP.ListenBacklog = 16
		s, err := New(cfg, &memAppender{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Serve(ctx) }()
		<-s.Ready()
		if s.Addr() == nil {
			cancel()
			err := <-done
			if addr == "[::1]:0" {
				t.Logf("no IPv6 loopback: %v", err)
				continue
			}
			t.Fatalf("%s: %v", addr, err)
		}
		srv := &server{Server: s, url: "http://" + s.Addr().String(), client: &http.Client{}}
		srv.expectGood(t)
		srv.client.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Serve = %v", addr, err)
		}
	}
}

func TestNewChecksConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Limits.MaxDepth = 0
	if _, err := New(cfg, &memAppender{}, Options{}); err == nil || !strings.Contains(err.Error(), "max_depth") {
		t.Errorf("New with a bad config = %v", err)
	}
	if _, err := New(testConfig(), nil, Options{}); err == nil {
		t.Error("New with a nil Appender succeeded")
	}
}

func TestOversizedHeaders(t *testing.T) {
	cfg := testConfig()
	cfg.HTTP.MaxHeaderBytes = 2 * config.KiB
	s := newServer(t, cfg, &memAppender{}, Options{})
	r := s.do(t, req{body: []byte(`{}`), key: keyShop, headers: map[string]string{"X-Padding": strings.Repeat("a", 4096)}})
	if r.code != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(r.Error, "http.max_header_bytes") {
		t.Fatalf("got %d %s", r.code, r.body)
	}
	s.expectGood(t)
}

func TestSlowBodyClient(t *testing.T) {
	cfg := testConfig()
	cfg.HTTP.ReadTimeout = 100 * time.Millisecond
	app := &memAppender{}
	s := newServer(t, cfg, app, Options{})
	conn := dial(t, s)
	// Headers and the start of the body, then nothing.
	fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n[{\"a\":", keyShop)
	resp := readResponse(t, conn)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("got %d", resp.StatusCode)
	}
	if app.numCalls() != 0 {
		t.Error("a request cut short was appended")
	}
	s.expectGood(t)
}

func TestExpectContinue(t *testing.T) {
	app := &memAppender{}
	s := newServer(t, testConfig(), app, Options{})
	conn := dial(t, s)
	body := `[{"event_id":"e1"},{"event_id":"e2"}]`
	fmt.Fprintf(conn, "POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n", keyShop, len(body))
	br := bufio.NewReader(conn)
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("interim answer %q, %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // the empty line after it
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(app.records()) != 2 {
		t.Fatalf("got %d with %d records", resp.StatusCode, len(app.records()))
	}
}

func TestPanicAnswers500(t *testing.T) {
	var boom atomic.Bool
	boom.Store(true)
	app := &memAppender{hook: func(context.Context, []log.Record) error {
		if boom.Load() {
			panic("boom")
		}
		return nil
	}}
	s := newServer(t, testConfig(), app, Options{})
	if r := s.post(t, pathEvents, `{"a":1}`); r.code != http.StatusInternalServerError || !strings.Contains(r.Error, "not stored") {
		t.Fatalf("a panicking append: %d %s", r.code, r.body)
	}
	boom.Store(false)
	s.expectGood(t)
}

// TestShutdownTimeoutCutsOff checks that a request still in flight at
// http.shutdown_timeout has its connection closed and Serve says so, and
// that nothing keeps serving afterwards.
func TestShutdownTimeoutCutsOff(t *testing.T) {
	cfg := testConfig()
	cfg.HTTP.ShutdownTimeout = 100 * time.Millisecond
	entered, release := make(chan struct{}), make(chan struct{})
	app := &memAppender{hook: func(context.Context, []log.Record) error {
		close(entered)
		<-release
		return nil
	}}
	s, err := New(cfg, app, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	<-s.Ready()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 7\r\n\r\n{\"a\":1}", keyShop)
	<-entered
	cancel()
	err = <-served
	if err == nil || !strings.Contains(err.Error(), "shutdown_timeout") {
		t.Fatalf("Serve = %v, want a shutdown_timeout error", err)
	}
	// The connection was closed under the request.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(conn); err != nil || len(b) != 0 {
		t.Fatalf("read %q, %v after the cut: want the connection closed without an answer", b, err)
	}
	close(release) // the handler ends; TestMain checks that it does not keep serving
}

// TestShutdownRightAfterStart stops collectors right after they bind: Serve
// must return every time (a shutdown racing the server's start once left it
// accepting for ever).
func TestShutdownRightAfterStart(t *testing.T) {
	for i := range 200 {
		s, err := New(testConfig(), &memAppender{}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx) }()
		<-s.Ready()
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("round %d: Serve = %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Serve did not return after its context ended", i)
		}
	}
}
