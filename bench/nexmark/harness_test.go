package nexmark_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/nexmark"
	"github.com/weir-dev/weir/internal/runtime"
)

// events is how many events every check generates.
const events = 1_000_000

// eventRate is the event time rate the checks give the generator: 100 s of
// event time for a million events.
const eventRate = 10_000

// genConfig is the generator configuration of the query files with the
// environment runQuery sets: the defaults, event_rate and start_time.
func genConfig() nexmark.Config {
	cfg := nexmark.DefaultConfig()
	cfg.EventRate = eventRate
	cfg.Start = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	return cfg
}

// eachEvent calls f with events 0 to n-1 of the stream of cfg, in order.
func eachEvent(cfg nexmark.Config, n int64, f func(e *nexmark.Event)) {
	for i := range n {
		e := nexmark.Generate(cfg, i)
		f(&e)
	}
}

// result is what a run of a query left behind.
type result struct {
	files   []string           // output files, in the order written
	late    map[string]float64 // late events counted per operator node
	elapsed time.Duration
	started time.Time
}

// runQuery runs bench/nexmark/<query>.yaml in this process, through the
// app and the runtime as weir run does, on n events with checkpoints on,
// and returns its output files. It fails the test on a run error, on any
// node error, or when the input did not read n events. It skips under the
// race detector, and when the query needs a component this build lacks.
func runQuery(t *testing.T, query string, n int64) *result {
	t.Helper()
	if raceDetector {
		t.Skip("the Nexmark checks run a million events per query: too slow under -race; make nexmark-check runs them")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for k, v := range map[string]string{
		"NEXMARK_EVENTS":      strconv.FormatInt(n, 10),
		"NEXMARK_RATE":        "0",
		"NEXMARK_EVENT_RATE":  strconv.Itoa(eventRate),
		"NEXMARK_PARALLELISM": "1",
		"NEXMARK_OUT":         out,
		"NEXMARK_STATE_DIR":   filepath.Join(dir, "state"),
	} {
		t.Setenv(k, v)
	}
	l, err := app.Load(query + ".yaml")
	if err != nil {
		if missing := missingType(err); missing != "" {
			t.Skipf("%s: this build has no %s processor yet", query, missing)
		}
		t.Fatalf("load %s: %v", query, err)
	}
	defer debug.SetGCPercent(debug.SetGCPercent(l.Config.Runtime.GCPercent))
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.DiscardHandler)
	opts := l.RuntimeOptions()
	opts.Logger, opts.Registerer = logger, reg
	store, closeStore, err := l.OpenState(logger)
	if err != nil {
		t.Fatal(err)
	}
	opts.Store = store
	p, err := runtime.New(l.Graph, l.Factory(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &result{started: time.Now(), late: map[string]float64{}}
	err = p.Run(ctx)
	r.elapsed = time.Since(r.started)
	if cerr := closeStore(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("run %s: %v", query, err)
	}
	for _, ns := range p.Nodes() {
		if e := ns.Errors.Load(); e > 0 {
			t.Errorf("%s: node %s: %d errors", query, ns.Name, e)
		}
	}
	if got := p.Node("nexmark").Out.Load(); got != uint64(n) {
		t.Fatalf("%s: the input produced %d events, want %d", query, got, n)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if name := mf.GetName(); name != "weir_window_late_events_total" && name != "weir_join_late_events_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "node" {
					r.late[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	entries, err := os.ReadDir(out)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	for _, e := range entries {
		if name := e.Name(); !strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".ndjson") {
			r.files = append(r.files, filepath.Join(out, name))
		} else {
			t.Errorf("%s: unexpected file %s in the output directory", query, name)
		}
	}
	// Names hold the time of the first event and then the sequence number:
	// sorted, they are in the order written.
	slices.Sort(r.files)
	t.Logf("%s: %d events in %v, %d output file(s)", query, n, r.elapsed.Round(time.Millisecond), len(r.files))
	return r
}

// missingType returns the type named by an "unknown processor type" error
// in err, or "".
func missingType(err error) string {
	var errs config.Errors
	if !errors.As(err, &errs) {
		return ""
	}
	for _, e := range errs {
		if rest, ok := strings.CutPrefix(e.Msg, "unknown processor type "); ok {
			if s, err := strconv.Unquote(rest); err == nil {
				return s
			}
		}
	}
	return ""
}

// noLateEvents fails the test when an operator of the run counted late
// events: with in-order input there must be none.
func noLateEvents(t *testing.T, r *result) {
	t.Helper()
	for node, n := range r.late {
		if n > 0 {
			t.Errorf("node %s counted %.0f late events; the input is in event-time order, so none may be late", node, n)
		}
	}
}

// eachLine calls f with every line of the output files, in order. The
// line is only valid during the call.
func eachLine(t *testing.T, r *result, f func(line []byte)) {
	t.Helper()
	for _, name := range r.files {
		fh, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			f(sc.Bytes())
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			t.Fatalf("read %s: %v", name, err)
		}
	}
}

// decodeAll decodes every output line into a T, rejecting fields T does
// not have.
func decodeAll[T any](t *testing.T, r *result) []T {
	t.Helper()
	var rows []T
	eachLine(t, r, func(line []byte) {
		var v T
		d := json.NewDecoder(bytes.NewReader(line))
		d.DisallowUnknownFields()
		if err := d.Decode(&v); err != nil {
			t.Fatalf("output line %q: %v", line, err)
		}
		rows = append(rows, v)
	})
	return rows
}

// compareRows sorts got and want by order, a total order (0 only for equal
// rows), and reports the rows missing from got and those it should not
// have, as multisets.
func compareRows[T comparable](t *testing.T, got, want []T, order func(a, b T) int) {
	t.Helper()
	slices.SortFunc(got, order)
	slices.SortFunc(want, order)
	var missing, extra []T
	i, j := 0, 0
	for i < len(got) || j < len(want) {
		switch {
		case j == len(want):
			extra = append(extra, got[i])
			i++
		case i == len(got):
			missing = append(missing, want[j])
			j++
		case got[i] == want[j]:
			i++
			j++
		case order(got[i], want[j]) < 0:
			extra = append(extra, got[i])
			i++
		default:
			missing = append(missing, want[j])
			j++
		}
	}
	if len(missing) == 0 && len(extra) == 0 {
		t.Logf("%d rows, all as the reference computes them", len(got))
		return
	}
	show := func(rows []T) string {
		var b strings.Builder
		for k, r := range rows[:min(len(rows), 5)] {
			fmt.Fprintf(&b, "\n\t%+v", r)
			if k == 4 && len(rows) > 5 {
				fmt.Fprintf(&b, "\n\t… and %d more", len(rows)-5)
			}
		}
		return b.String()
	}
	t.Errorf("got %d rows, the reference %d: %d missing, %d unexpected\nmissing:%s\nunexpected:%s",
		len(got), len(want), len(missing), len(extra), show(missing), show(extra))
}
