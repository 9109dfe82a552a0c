package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		out = append(out, m)
	}
	buf.Reset()
	return out
}

// A storm of one error is cut to the burst plus one summary per interval;
// other kinds, other nodes and info records pass.
func TestLimiterSummarisesRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := NewLimiter(slog.NewJSONHandler(&buf, nil), 10*time.Second, 3)
	l.now = func() time.Time { return now }
	log := slog.New(l)
	for range 10000 {
		log.Error("write failed", "node", "out", "err", "disk full")
	}
	log.Error("write failed", "node", "other")
	log.Warn("slow")
	for range 5 {
		log.Info("progress")
	}
	got := lines(t, &buf)
	if len(got) != 3+1+1+5 {
		t.Fatalf("%d records in the first interval, want 10: %v", len(got), got)
	}
	now = now.Add(11 * time.Second)
	log.Error("write failed", "node", "out")
	got = lines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d records after the interval, want the summary and the new record: %v", len(got), got)
	}
	s := got[0]
	if s["suppressed"] != float64(9997) || s["node"] != "out" || !strings.Contains(s["msg"].(string), "...and 9997 more like this in the last 10s: write failed") {
		t.Fatalf("summary %v", s)
	}
	for range 5 {
		log.Error("write failed", "node", "out")
	}
	l.Flush(context.Background())
	got = lines(t, &buf)
	if len(got) != 2+1 || got[2]["suppressed"] != float64(3) {
		t.Fatalf("after Flush: %v", got)
	}
}

// Handlers derived with With share the limit.
func TestLimiterWithAttrsSharesState(t *testing.T) {
	var buf bytes.Buffer
	l := NewLimiter(slog.NewJSONHandler(&buf, nil), time.Minute, 2)
	a := slog.New(l).With("pipeline", "p")
	b := slog.New(l).With("pipeline", "p")
	for range 5 {
		a.Error("boom")
		b.Error("boom")
	}
	if got := lines(t, &buf); len(got) != 2 || got[0]["pipeline"] != "p" {
		t.Fatalf("%v", got)
	}
}
