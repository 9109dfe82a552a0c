package window_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor/window"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

// driver runs window instances by hand over a real state store, the way
// the runtime does with checkpoints: events go to the instance their key
// hashes to, the watermark follows the highest time seen, a checkpoint
// snapshots every instance into one synced batch, and a crash forgets
// everything since it (the ops, the store's scratch, results not yet
// covered by a checkpoint) and replays the input from the checkpoint's
// position. Results count once a checkpoint covers them, as the file
// output publishes them.
type driver struct {
	t   *testing.T
	w   *window.Window
	dir string
	st  *state.Store
	ops []*window.Op
	col *testkit.Collector

	published, pending []string
	id                 uint64
	reg                *prometheus.Registry
	crashes, restores  int
}

func (d *driver) start(parallelism int) {
	d.t.Helper()
	st, err := state.Open(d.dir, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	d.st, d.ops, d.pending = st, nil, nil
	for i := range parallelism {
		op, err := d.w.New(runtime.Env{Node: "w", Instance: i, Parallelism: parallelism, Checkpointing: true, Registerer: prometheus.WrapRegistererWith(prometheus.Labels{"run": fmt.Sprint(d.restores)}, d.reg)}, true)
		if err != nil {
			d.t.Fatal(err)
		}
		if err := op.Restore(context.Background(), st.Reader("w")); err != nil {
			d.t.Fatal(err)
		}
		d.ops = append(d.ops, op)
	}
	d.id, _ = st.Last()
	d.restores++
}

// spilled is how many windows the instances of every run evicted.
func (d *driver) spilled() float64 {
	mfs, err := d.reg.Gather()
	if err != nil {
		d.t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "weir_window_spilled_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func (d *driver) crash() {
	if err := d.st.Close(); err != nil {
		d.t.Fatal(err)
	}
	d.col.Values()
}

func (d *driver) collect() { d.pending = append(d.pending, d.col.Values()...) }

func (d *driver) checkpoint() {
	d.t.Helper()
	tx := d.st.Begin()
	for _, op := range d.ops {
		if err := op.Snapshot(context.Background(), tx.Writer("w")); err != nil {
			d.t.Fatal(err)
		}
	}
	d.id++
	if err := tx.Commit(d.id); err != nil {
		d.t.Fatal(err)
	}
	d.published, d.pending = append(d.published, d.pending...), nil
}

func (d *driver) process(batch []rec, wm int64) {
	d.t.Helper()
	per := make([][]event.Event, len(d.ops))
	for _, r := range batch {
		i := runtime.KeyHash([]byte(r.key)) % uint64(len(d.ops))
		per[i] = append(per[i], event.Event{Key: []byte(r.key), Value: fmt.Appendf(nil, `{"k":%q,"v":%d}`, r.key, r.v), Time: r.t * 1e6})
	}
	for i, op := range d.ops {
		if err := op.Process(context.Background(), per[i], d.col.Collector()); err != nil {
			d.t.Fatal(err)
		}
		if err := op.Advance(context.Background(), wm, 0, d.col.Collector()); err != nil {
			d.t.Fatal(err)
		}
	}
	d.collect()
}

// runDriven runs script s through the window; with crashes, it checkpoints
// and crashes at random batches and restarts at a random parallelism.
func runDriven(t *testing.T, w *window.Window, s script, ooo int64, crashes bool, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := &driver{t: t, w: w, dir: t.TempDir(), col: testkit.NewCollector(), reg: prometheus.NewRegistry()}
	d.start(2)
	ckptAt, maxT := 0, int64(-1<<62)
	wmAt := map[int]int64{}
	for i := 0; i < len(s); {
		for _, r := range s[i] {
			maxT = max(maxT, r.t)
		}
		wm := (maxT - ooo - 1) * 1e6
		wmAt[i] = maxT
		d.process(s[i], wm)
		i++
		if rng.IntN(10) == 0 {
			d.checkpoint()
			ckptAt = i
		}
		if crashes && rng.IntN(40) == 0 {
			d.crash()
			d.crashes++
			d.start(1 + rng.IntN(3))
			i = ckptAt
			maxT = int64(-1 << 62)
			if i > 0 {
				maxT = wmAt[i-1]
			}
		}
	}
	for _, op := range d.ops {
		if err := op.Advance(context.Background(), event.EndOfTime, 0, d.col.Collector()); err != nil {
			t.Fatal(err)
		}
	}
	d.collect()
	d.checkpoint()
	if err := d.st.Close(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(d.published)
	t.Logf("crashes=%v: %d results, %d crashes, %.0f windows spilled", crashes, len(d.published), d.crashes, d.spilled())
	return d.published
}

// TestSpillAndRestoreMatchInMemory: with a cache too small for a single
// window, every window goes to the store between batches and comes back;
// with crashes and restarts at another parallelism on top, the published
// results equal those of a run that keeps every window in memory and
// never crashes.
func TestSpillAndRestoreMatchInMemory(t *testing.T) {
	cases := []struct {
		kind                    string
		size, slide, gap        int64
		ooo, lateness, disorder int64
	}{
		{kind: "tumbling", size: 100, ooo: 20, disorder: 30},
		{kind: "tumbling", size: 100, ooo: 5, lateness: 40, disorder: 60},
		{kind: "sliding", size: 100, slide: 25, ooo: 10, disorder: 30},
		{kind: "session", gap: 15, ooo: 10, lateness: 10, disorder: 20},
	}
	for _, tc := range cases {
		for seed := range uint64(2) {
			t.Run(fmt.Sprintf("%s/lateness=%d/seed=%d", tc.kind, tc.lateness, seed), func(t *testing.T) {
				s := genScript(rand.New(rand.NewPCG(seed, 9)), 1500, 1, 40, 2, tc.disorder)
				mk := func(cache config.ByteSize) *window.Window {
					cfg := window.DefaultConfig()
					cfg.Window, cfg.KeyField, cfg.CacheBytes = tc.kind, "k", cache
					cfg.Size, cfg.Slide, cfg.Gap = ms(tc.size), ms(tc.slide), ms(tc.gap)
					cfg.AllowedLateness = ms(tc.lateness)
					cfg.Aggregates = aggs("n", "count()", "s", "sum(v)", "lo", "min(v)", "d", "count_distinct(v % 7)",
						"a", "approx_count_distinct(v)", "top", "top_k(v % 3, 2)", "c", "collect(v, 3)", "mb", "max_by(v * 3, v)", "avg", "avg(v / 2)", "f", "first(v)")
					return compile(t, cfg)
				}
				want := runDriven(t, mk(1<<30), s, tc.ooo, false, seed)
				if len(want) < 50 {
					t.Fatalf("only %d results", len(want))
				}
				// Crashes or not by seed: both spill every window.
				crashes := seed%2 == 1
				{
					got := runDriven(t, mk(0), s, tc.ooo, crashes, seed)
					if !slices.Equal(got, want) {
						missing, extra := testkit.DiffLines(want, got)
						t.Fatalf("crashes=%v: %d results, want %d; %d missing (e.g. %v), %d extra (e.g. %v)", crashes, len(got), len(want), len(missing), first3(missing), len(extra), first3(extra))
					}
				}
			})
		}
	}
}

func first3(s []string) []string { return s[:min(3, len(s))] }
