package window_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/processor/window"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func init() {
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && n.Type != "window" }
}

// rec is one generated event.
type rec struct {
	part int32
	key  string
	t    int64 // ms
	v    int64
}

// script is a stream in the order the input emits it: batches, each from
// one partition.
type script [][]rec

// toKit converts a script for testkit.ScriptInput.
func toKit(s script) testkit.Script {
	out := make(testkit.Script, len(s))
	for i, batch := range s {
		for _, r := range batch {
			out[i] = append(out[i], testkit.Rec{Part: r.part, Key: r.key, T: r.t, Value: fmt.Sprintf(`{"k":%q,"v":%d}`, r.key, r.v)})
		}
	}
	return out
}

func newRun(in runtime.Input, w *window.Window) *testkit.OperatorRun {
	return &testkit.OperatorRun{Input: in, OpType: "window",
		Operator: func(env runtime.Env) (runtime.Operator, error) { return w.New(env, true) }}
}

func compile(t *testing.T, cfg window.Config) *window.Window {
	t.Helper()
	w, errs := window.Compile(cfg, "processors.w", func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return w
}

func aggs(kv ...string) config.Ordered[config.Expr] {
	var o config.Ordered[config.Expr]
	for i := 0; i < len(kv); i += 2 {
		o = append(o, config.Entry[config.Expr]{Key: kv[i], Value: config.Expr{Src: kv[i+1]}})
	}
	return o
}

// run runs script through input → window (2 instances, keyed) → capture.
func run(t *testing.T, s script, w *window.Window, ooo time.Duration) []string {
	t.Helper()
	r := newRun(&testkit.ScriptInput{S: toKit(s)}, w)
	err := r.RunFor(fmt.Sprintf(`
name: t
control: {address: ""}
inputs:
  in: {type: script, event_time: {max_out_of_orderness: %s}}
processors:
  w: {type: window, from: in, key_by: k, parallelism: 2}
outputs:
  out: {type: capture, from: w}
`, ooo), runtime.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	return r.Results()
}

// genScript makes n events over parts partitions and keys keys, times
// advancing ~step ms per event with a jitter of up to disorder ms, in
// batches of random size from random partitions.
func genScript(rng *rand.Rand, n, parts, keys int, step, disorder int64) script {
	perPart := make([][]rec, parts)
	for i := range n {
		p := rng.IntN(parts)
		t := int64(i)*step + rng.Int64N(disorder+1) - disorder/2 + 1_000_000
		perPart[p] = append(perPart[p], rec{part: int32(p), key: fmt.Sprintf("k%d", rng.IntN(keys)), t: t, v: rng.Int64N(1000)})
	}
	var s script
	for {
		live := []int{}
		for p, rs := range perPart {
			if len(rs) > 0 {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			return s
		}
		p := live[rng.IntN(len(live))]
		k := min(1+rng.IntN(20), len(perPart[p]))
		s = append(s, perPart[p][:k])
		perPart[p] = perPart[p][k:]
	}
}

// result is one window result, as the reference computes it.
type result struct {
	Key      string `json:"k"`
	Start    int64  `json:"window_start"`
	End      int64  `json:"window_end"`
	N        int64  `json:"n"`
	Sum      int64  `json:"s"`
	Min      int64  `json:"lo"`
	Max      int64  `json:"hi"`
	Distinct int64  `json:"d"`
	MaxBy    int64  `json:"mb"`
	MinBy    int64  `json:"nb"`
}

type refWin struct {
	start, end int64
	vals       []int64
	fired      bool
}

func (w *refWin) result(key string) result {
	r := result{Key: key, Start: w.start, End: w.end, N: int64(len(w.vals)), Min: w.vals[0], Max: w.vals[0]}
	seen := map[int64]bool{}
	for _, v := range w.vals {
		r.Sum += v
		r.Min, r.Max = min(r.Min, v), max(r.Max, v)
		seen[((v%7)+7)%7] = true
	}
	r.Distinct = int64(len(seen))
	r.MaxBy, r.MinBy = r.Max*3, r.Min*3
	return r
}

// reference runs the window semantics on the script with plain maps: the
// watermark after each batch is the least over partitions seen so far of
// (highest time − ooo − 1); an event is late when every window it falls in
// has end−1+lateness ≤ the watermark before its batch. It returns the last
// result of every window and the number of late events.
func reference(s script, kind string, size, slide, gap, ooo, lateness int64) (map[string]result, int) {
	maxT := map[int32]int64{}
	wm := int64(-1 << 62)
	open := map[string]map[int64]*refWin{} // key → start → window
	final := map[string]result{}
	late := 0
	id := func(key string, start int64) string { return fmt.Sprintf("%s@%d", key, start) }
	closed := func(end int64) bool { return end-1+lateness <= wm }
	fire := func() {
		for key, ws := range open {
			for start, w := range ws {
				if !w.fired && w.end-1 <= wm {
					w.fired = true
					final[id(key, start)] = w.result(key)
				}
				if w.end-1+lateness <= wm {
					delete(ws, start)
				}
			}
		}
	}
	for _, batch := range s {
		for _, r := range batch {
			ws := open[r.key]
			if ws == nil {
				ws = map[int64]*refWin{}
				open[r.key] = ws
			}
			switch kind {
			case "session":
				if closed(r.t + gap) {
					late++
					continue
				}
				nw := &refWin{start: r.t, end: r.t + gap, vals: []int64{r.v}}
				for start, w := range ws {
					if w.start < nw.end && nw.start < w.end {
						nw.start, nw.end = min(nw.start, w.start), max(nw.end, w.end)
						nw.vals = append(nw.vals, w.vals...)
						nw.fired = nw.fired || w.fired
						delete(ws, start)
					}
				}
				ws[nw.start] = nw
				if nw.fired {
					final[id(r.key, nw.start)] = nw.result(r.key)
				}
			default:
				var starts []int64
				last := r.t - ((r.t%slide)+slide)%slide
				for st := last; st > r.t-size; st -= slide {
					if !closed(st + size) {
						starts = append(starts, st)
					}
				}
				if len(starts) == 0 {
					late++
					continue
				}
				for _, st := range starts {
					w := ws[st]
					if w == nil {
						w = &refWin{start: st, end: st + size}
						ws[st] = w
					}
					w.vals = append(w.vals, r.v)
					if w.fired {
						final[id(r.key, st)] = w.result(r.key)
					}
				}
			}
		}
		maxT[batch[0].part] = max(maxT[batch[0].part], slices.Max(times(batch)))
		low := int64(1 << 62)
		for _, m := range maxT {
			low = min(low, m-ooo-1)
		}
		wm = max(wm, low)
		fire()
	}
	wm = 1 << 62
	fire()
	return final, late
}

func times(rs []rec) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.t
	}
	return out
}

// TestWindowsMatchReference: tumbling, sliding and session windows over
// random out-of-order streams from several partitions, with late events
// and allowed lateness, equal a brute-force reference, seed after seed.
func TestWindowsMatchReference(t *testing.T) {
	cases := []struct {
		kind                    string
		size, slide, gap        int64 // ms
		ooo, lateness, disorder int64 // ms
	}{
		{kind: "tumbling", size: 100, ooo: 20, disorder: 30},
		{kind: "tumbling", size: 100, ooo: 5, lateness: 40, disorder: 60},
		{kind: "sliding", size: 100, slide: 25, ooo: 10, disorder: 30},
		{kind: "session", gap: 15, ooo: 10, disorder: 20},
		{kind: "session", gap: 15, ooo: 0, lateness: 10, disorder: 40},
	}
	for _, tc := range cases {
		lateSeen := 0
		for seed := range uint64(4) {
			name := fmt.Sprintf("%s/size=%d,slide=%d,gap=%d,ooo=%d,lateness=%d/seed=%d", tc.kind, tc.size, tc.slide, tc.gap, tc.ooo, tc.lateness, seed)
			t.Run(name, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				s := genScript(rng, 3000, 3, 5, 2, tc.disorder)
				cfg := window.DefaultConfig()
				cfg.Window, cfg.KeyField = tc.kind, "k"
				cfg.Size, cfg.Slide, cfg.Gap = ms(tc.size), ms(tc.slide), ms(tc.gap)
				cfg.AllowedLateness = ms(tc.lateness)
				cfg.Aggregates = aggs("n", "count()", "s", "sum(v)", "lo", "min(v)", "hi", "max(v)", "d", "count_distinct(v % 7)", "mb", "max_by(v * 3, v)", "nb", "min_by(v * 3, v)")
				slide := tc.slide
				if tc.kind == "tumbling" {
					slide = tc.size
				}
				want, wantLate := reference(s, tc.kind, tc.size, slide, tc.gap, tc.ooo, tc.lateness)
				got := map[string]result{}
				for _, v := range run(t, s, compile(t, cfg), ms(tc.ooo)) {
					var r result
					if err := json.Unmarshal([]byte(v), &r); err != nil {
						t.Fatalf("result %s: %v", v, err)
					}
					got[fmt.Sprintf("%s@%d", r.Key, r.Start)] = r // the last result of a window counts
				}
				if len(got) != len(want) {
					t.Errorf("%d windows, want %d", len(got), len(want))
				}
				keys := make([]string, 0, len(want))
				for k := range want {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				bad := 0
				for _, k := range keys {
					if got[k] != want[k] && bad < 5 {
						bad++
						t.Errorf("window %s: got %+v, want %+v", k, got[k], want[k])
					}
				}
				inWindows := int64(0)
				for _, r := range want {
					inWindows += r.N
				}
				if tc.kind == "tumbling" && int(inWindows)+wantLate != 3000 {
					t.Errorf("reference lost events: %d in windows + %d late", inWindows, wantLate)
				}
				lateSeen += wantLate
			})
		}
		if lateSeen == 0 {
			t.Errorf("%s: no stream had late events: make them more out of order", tc.kind)
		}
	}
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// busyPartition0 keeps partition 0 busy with one event every 2 ms (times
// going on from 1 s) until the pipeline stops: a source that stays open,
// one of whose partitions went quiet.
func busyPartition0(ctx context.Context, out runtime.Outlet) error {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for t := int64(1000); ; t++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := testkit.EmitRecs(ctx, out, []testkit.Rec{{Part: 0, Key: "b", T: t, Value: `{"k":"b","v":1}`}}); err != nil {
			return err
		}
	}
}

// TestIdlePartitionStopsHoldingWatermark: partition 1 goes quiet early;
// with an idle_timeout its watermark stops holding windows back, so they
// close while the source is still open. Without one they stay open.
func TestIdlePartitionStopsHoldingWatermark(t *testing.T) {
	var s script
	s = append(s, []rec{{part: 1, key: "a", t: 50, v: 1}})
	for i := range int64(100) {
		s = append(s, []rec{{part: 0, key: "a", t: i * 10, v: 1}})
	}
	for _, idle := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprintf("idle_timeout=%s", idle), func(t *testing.T) {
			cfg := window.DefaultConfig()
			cfg.Window, cfg.Size, cfg.Aggregates = "tumbling", ms(100), aggs("n", "count()")
			r := newRun(&testkit.ScriptInput{S: toKit(s), Then: busyPartition0}, compile(t, cfg))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- r.Run(ctx, fmt.Sprintf(`
name: t
control: {address: ""}
inputs:
  in: {type: script, event_time: {idle_timeout: %s}}
processors:
  w: {type: window, from: in, key_by: k}
outputs:
  out: {type: capture, from: w}
`, idle), runtime.Options{BatchSize: 64, Linger: 5 * time.Millisecond})
			}()
			results := func() int { return len(r.Results()) }
			// Windows [0,100) … [900,1000) of key a can close on
			// partition 0 alone.
			deadline := time.Now().Add(10 * time.Second)
			for results() < 10 && time.Now().Before(deadline) && idle > 0 {
				time.Sleep(5 * time.Millisecond)
			}
			if idle == 0 {
				time.Sleep(300 * time.Millisecond) // give a wrong implementation time to close windows
			}
			n := results()
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if idle > 0 && n < 10 {
				t.Fatalf("%d windows closed while the source was open, want 10: the idle partition held the watermark", n)
			}
			if idle == 0 && n != 0 {
				t.Fatalf("%d windows closed, want 0: partition 1 (last event at 50 ms) must hold the watermark at 49 ms", n)
			}
		})
	}
}

// TestWindowOfWindows: the results of a window reach a second window
// before the watermark that closed them (so none is late), and key_by on
// the second window regroups them: per-key counts per 100 ms, then one
// total per 100 ms.
func TestWindowOfWindows(t *testing.T) {
	var s script
	n := 0
	for i := range int64(300) {
		s = append(s, []rec{{part: 0, key: fmt.Sprintf("k%d", i%3), t: i * 3, v: 1}})
		n++
	}
	first := window.DefaultConfig()
	first.Window, first.Size, first.KeyField = "tumbling", ms(100), "k"
	first.Aggregates = aggs("n", "count()")
	second := window.DefaultConfig()
	second.Window, second.Size, second.KeyField = "tumbling", ms(100), "k"
	second.Aggregates = aggs("total", "sum(n)", "keys", "count()")
	w1, w2 := compile(t, first), compile(t, second)
	r := &testkit.OperatorRun{Input: &testkit.ScriptInput{S: toKit(s)}, OpType: "window",
		Operator: func(env runtime.Env) (runtime.Operator, error) {
			if env.Node == "per_key" {
				return w1.New(env, true)
			}
			return w2.New(env, true)
		}}
	err := r.RunFor(`
name: t
control: {address: ""}
inputs:
  in: {type: script}
processors:
  per_key: {type: window, from: in, key_by: k, parallelism: 2}
  all: {type: window, from: per_key, key_by: '"all"'}
outputs:
  out: {type: capture, from: all}
`, runtime.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, v := range r.Results() {
		var x struct {
			K     string
			Total int
			Keys  int
		}
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatal(err)
		}
		if x.K != "all" || x.Keys != 3 {
			t.Fatalf("result %s: want key all over 3 per-key results", v)
		}
		total += x.Total
	}
	if got := len(r.Results()); got != 9 || total != n {
		t.Fatalf("%d results totalling %d, want 9 totalling %d: %v", got, total, n, r.Results())
	}
}

// TestProcessingTimeWindowsCloseAtEnd: when every input has ended,
// processing-time windows still open emit their results.
func TestProcessingTimeWindowsCloseAtEnd(t *testing.T) {
	s := script{{{part: 0, key: "a", t: 1, v: 1}, {part: 0, key: "a", t: 2, v: 1}, {part: 0, key: "b", t: 3, v: 1}}}
	cfg := window.DefaultConfig()
	cfg.Window, cfg.Size, cfg.Time, cfg.KeyField = "tumbling", 10*time.Second, "processing", "k"
	cfg.Aggregates = aggs("n", "count()")
	got := run(t, s, compile(t, cfg), 0)
	slices.Sort(got)
	if len(got) != 2 || !strings.Contains(got[0], `"k":"a"`) || !strings.Contains(got[0], `"n":2`) || !strings.Contains(got[1], `"n":1`) {
		t.Fatalf("results %v, want a:2 and b:1", got)
	}
}

// TestLateEventsDeadLettered: with on_error: dead_letter, an event whose
// windows have all closed goes to the dead-letter output with the error.
func TestLateEventsDeadLettered(t *testing.T) {
	s := script{
		{{part: 0, key: "a", t: 10, v: 1}, {part: 0, key: "a", t: 500, v: 1}},
		{{part: 0, key: "a", t: 20, v: 7}}, // its window [0,100) closed at 499
	}
	cfg := window.DefaultConfig()
	cfg.Window, cfg.Size, cfg.KeyField = "tumbling", ms(100), "k"
	cfg.Aggregates = aggs("n", "count()")
	w := compile(t, cfg)
	r := newRun(&testkit.ScriptInput{S: toKit(s)}, w)
	err := r.RunFor(`
name: t
control: {address: ""}
inputs:
  in: {type: script}
processors:
  w: {type: window, from: in, key_by: k, on_error: dead_letter, dead_letter: late}
outputs:
  out: {type: capture, from: w}
  late: {type: capture}
`, runtime.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	var late, results int
	for _, v := range r.Results() {
		switch {
		case strings.Contains(v, "late event") && strings.Contains(v, `"v":7`):
			late++
		case strings.Contains(v, `"window_start"`):
			results++
		default:
			t.Fatalf("unexpected output %s", v)
		}
	}
	if late != 1 || results != 2 {
		t.Fatalf("%d dead letters and %d results, want 1 and 2: %v", late, results, r.Results())
	}
}
