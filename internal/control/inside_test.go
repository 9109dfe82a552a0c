package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/weir-dev/weir/internal/control"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
)

// GET /api/v1/errors shows recent failed events with the error, what the
// policy did and the event itself (its value and source position).
func TestErrorSamples(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.ndjson")
	writeTestFile(t, in, "{\"a\":1}\n{\"a\":\n{\"a\":3}\n")
	lv := startLive(t, fmt.Sprintf(`
name: errors-test
control: {address: ""}
inputs:
  in: {type: file, path: %q, on_error: drop}
outputs:
  out: {type: discard, from: in}
`, in), liveOpts{})
	var list control.ErrorList
	eventually(t, "an error sample", func() bool {
		lv.getJSON(t, "/api/v1/errors", &list)
		return len(list.Errors) > 0
	})
	if len(list.Errors) != 1 {
		t.Fatalf("%d samples for one bad line: %+v", len(list.Errors), list.Errors)
	}
	e := list.Errors[0]
	var value string
	if err := json.Unmarshal(e.Value, &value); err != nil || value != `{"a":` {
		t.Errorf("sample value %s, want the broken line as a string", e.Value)
	}
	if e.Node != "in" || e.Action != "dropped" || e.Error == "" || e.Offset == nil || *e.Offset != 2 || e.Source != in || e.Time.IsZero() {
		t.Errorf("sample = %+v", e)
	}
	var bad map[string]any
	if code := lv.getJSON(t, "/api/v1/errors?limit=0", &bad); code != 400 {
		t.Errorf("limit=0: status %d, want 400", code)
	}
}

// Event-time operators report their watermark and how far it trails the
// clock; nodes that watermarks do not reach report none.
func TestStatsWatermark(t *testing.T) {
	lv := startLive(t, `
name: wm-test
control: {address: ""}
inputs:
  web: {type: generate, rate: 2000, event_time: {max_out_of_orderness: 1s}}
processors:
  per_page: {type: window, from: web, key_by: page, window: tumbling, size: 1s, aggregates: {n: count()}}
outputs:
  out: {type: discard, from: per_page}
  raw: {type: discard, from: web}
`, liveOpts{})
	eventually(t, "a watermark on the window", func() bool {
		var st control.Stats
		lv.getJSON(t, "/api/v1/stats", &st)
		for _, n := range st.Nodes {
			switch n.Name {
			case "per_page":
				if n.Watermark == nil {
					return false
				}
				if n.WatermarkLag == nil || *n.WatermarkLag < 0.5 || *n.WatermarkLag > 30 {
					t.Fatalf("watermark %v lags %v s behind the clock, want about max_out_of_orderness (1 s)", n.Watermark, n.WatermarkLag)
				}
			case "raw":
				if n.Watermark != nil {
					t.Fatalf("a node no watermark reaches reports one: %+v", n)
				}
			}
		}
		return true
	})
}

// failingSnapshot is a discard output whose checkpoint snapshot fails from
// the second checkpoint on.
type failingSnapshot struct {
	runtime.Output
	n *atomic.Int32
}

func (f failingSnapshot) Restore(context.Context, runtime.StateReader) error { return nil }
func (f failingSnapshot) Snapshot(context.Context, runtime.StateWriter) error {
	if f.n.Add(1) >= 2 {
		return errors.New("disk quota exceeded")
	}
	return nil
}
func (f failingSnapshot) Committed(context.Context, uint64) error { return nil }

type failingSnapshotFactory struct {
	runtime.Factory
	n *atomic.Int32
}

func (f failingSnapshotFactory) NewOutput(n *dag.Node, env runtime.Env) (runtime.Output, error) {
	o, err := f.Factory.NewOutput(n, env)
	if err != nil || n.Name != "sink" {
		return o, err
	}
	return failingSnapshot{o, f.n}, nil
}

// A failed checkpoint is counted in the stats with its id and error (and
// stops the pipeline: a checkpoint that cannot be taken is a failure).
func TestStatsCheckpointFailure(t *testing.T) {
	var n atomic.Int32
	lv := startLive(t, fmt.Sprintf(`
name: ckpt-fail
control: {address: ""}
state: {dir: %q, checkpoint_interval: 50ms}
inputs:
  gen: {type: generate, rate: 1000}
outputs:
  sink: {type: discard, from: gen}
`, t.TempDir()), liveOpts{factory: func(f runtime.Factory) runtime.Factory { return failingSnapshotFactory{f, &n} }})
	var st control.Stats
	eventually(t, "a failed checkpoint in the stats", func() bool {
		lv.getJSON(t, "/api/v1/stats", &st)
		return st.Checkpoints != nil && st.Checkpoints.Failed > 0
	})
	c := st.Checkpoints
	if c.Failed != 1 || c.LastFailure == nil || c.LastFailure.ID != 2 || !strings.Contains(c.LastFailure.Error, "disk quota exceeded") || c.LastID != 1 {
		t.Errorf("checkpoint stats = %+v, last failure %+v", c, c.LastFailure)
	}
	if err := lv.stop(); err == nil || !strings.Contains(err.Error(), "disk quota exceeded") {
		t.Errorf("Run = %v, want the checkpoint's failure", err)
	}
}

// A log output whose log nears its max_bytes makes /healthz degraded,
// naming the log and the partition.
func TestHealthLogNearlyFull(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	lv := startLive(t, fmt.Sprintf(`
name: log-full
control: {address: ""}
inputs:
  gen: {type: generate, rate: 5000}
outputs:
  tolog: {type: log, from: gen, dir: %q, durability: none, segment_bytes: 256KiB, max_bytes: 1MiB, on_error: drop}
`, dir), liveOpts{})
	var h struct {
		Status     string
		Components map[string]control.Component
	}
	eventually(t, "the log reported nearly full", func() bool {
		lv.getJSON(t, "/healthz", &h)
		return h.Status == "degraded"
	})
	c := h.Components["outputs.tolog"]
	if c.Status != control.Degraded || !strings.Contains(c.Detail, "nearly full") || !strings.Contains(c.Detail, "partition 0") {
		t.Errorf("log component = %+v", c)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
