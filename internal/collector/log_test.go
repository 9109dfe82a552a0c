package collector

import (
	"net/http"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/log"
)

// openLog opens a partition in a temporary directory, with fsync, closed at
// the end of the test.
func openLog(t testing.TB, opts log.Options) *log.Partition {
	t.Helper()
	p, err := log.Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("closing the log: %v", err)
		}
	})
	return p
}

// TestRealLog sends events through HTTP into a real log with fsync and
// reads back exactly what was acknowledged.
func TestRealLog(t *testing.T) {
	p := openLog(t, log.Options{Durability: log.DurabilityFsync})
	cfg := testConfig()
	cfg.ClientIP = ClientIPRemoteAddr
	s := newServer(t, cfg, partitionAppender{p}, Options{})
	sent := []string{`{"event_id":"a","n":1}`, `{"messageId":"b","n":2}`, `{"n":3}`, `{"event_id":"d","n":4}`}
	if r := s.post(t, pathBatch, "["+strings.Join(sent[:3], ",")+"]"); r.code != http.StatusOK || intp(r.Accepted) != "3" {
		t.Fatalf("batch: %d %s", r.code, r.body)
	}
	if r := s.do(t, req{path: pathEvents, body: gzipped(t, []byte(sent[3])), key: keyBlog, headers: map[string]string{"Content-Encoding": "gzip"}}); r.code != http.StatusOK {
		t.Fatalf("single: %d %s", r.code, r.body)
	}
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("high watermark %d after 4 acknowledged events", hw)
	}
	if m := p.Metrics(); m.Syncs == 0 {
		t.Error("no fsync happened")
	}
	recs, _, err := p.ReadFrom(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 {
		t.Fatalf("read %d records, want 4", len(recs))
	}
	for i, rec := range recs {
		if string(rec.Value) != sent[i] {
			t.Errorf("record %d value %q, want %q", i, rec.Value, sent[i])
		}
		wantTenant := "shop"
		if i == 3 {
			wantTenant = "blog"
		}
		tenant, _ := header(rec, HeaderTenant)
		id, _ := header(rec, HeaderEventID)
		at, _ := header(rec, HeaderReceivedAt)
		ip, _ := header(rec, HeaderClientIP)
		if tenant != wantTenant || id == "" || string(rec.Key) != id || ip != "127.0.0.1" || at != rec.Timestamp.UTC().Format(receivedAtLayout) {
			t.Errorf("record %d: tenant %q id %q key %q ip %q received_at %q timestamp %v", i, tenant, id, rec.Key, ip, at, rec.Timestamp)
		}
	}
}

// TestRealLogFull fills a real log whose only reader does not commit: the
// collector answers 503 with Retry-After, and recovers once the reader
// commits.
func TestRealLogFull(t *testing.T) {
	p := openLog(t, log.Options{SegmentBytes: 16 << 10, MaxBytes: 32 << 10})
	if err := p.Commit("pipeline", 0); err != nil { // a reader that holds everything
		t.Fatal(err)
	}
	s := newServer(t, testConfig(), partitionAppender{p}, Options{})
	batch := "[" + strings.TrimSuffix(strings.Repeat(`{"pad":"`+strings.Repeat("x", 200)+`"},`, 10), ",") + "]"
	full := false
	for i := range 100 {
		r := s.post(t, pathBatch, batch)
		if r.code == http.StatusOK {
			continue
		}
		if r.code != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.Error, "full") {
			t.Fatalf("request %d: %d Retry-After %q %s", i, r.code, r.header.Get("Retry-After"), r.body)
		}
		full = true
		break
	}
	if !full {
		t.Fatal("the log never filled up")
	}
	hw := p.HighWatermark()
	if m := p.Metrics(); m.FullRejections == 0 {
		t.Error("the log counted no full rejection")
	}
	// Once the reader has consumed everything, old segments can go.
	if err := p.Commit("pipeline", hw); err != nil {
		t.Fatal(err)
	}
	if r := s.post(t, pathBatch, batch); r.code != http.StatusOK {
		t.Fatalf("after the reader committed: %d %s", r.code, r.body)
	}
	if got := p.HighWatermark(); got != hw+10 {
		t.Errorf("high watermark %d, want %d", got, hw+10)
	}
}
