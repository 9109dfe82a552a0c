package join_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/processor/join"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func init() {
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && n.Type != "join" }
}

type ev struct {
	part int32
	key  string
	left bool
	t    int64 // ms
	id   int
}

func (e ev) value() string {
	side := "R"
	if e.left {
		side = "L"
	}
	return fmt.Sprintf(`{"k":%q,"s":%q,"id":%d}`, e.key, side, e.id)
}

// gen makes n events over parts partitions, times ~step ms apart with a
// jitter of up to disorder ms, in batches of random size from random
// partitions.
func gen(rng *rand.Rand, n, parts, keys int, step, disorder int64) [][]ev {
	per := make([][]ev, parts)
	for i := range n {
		p := rng.IntN(parts)
		per[p] = append(per[p], ev{part: int32(p), key: fmt.Sprintf("k%d", rng.IntN(keys)), left: rng.IntN(2) == 0,
			t: 1_000_000 + int64(i)*step + rng.Int64N(disorder+1) - disorder/2, id: i})
	}
	var out [][]ev
	for {
		var live []int
		for p := range per {
			if len(per[p]) > 0 {
				live = append(live, p)
			}
		}
		if len(live) == 0 {
			return out
		}
		p := live[rng.IntN(len(live))]
		k := min(1+rng.IntN(15), len(per[p]))
		out = append(out, per[p][:k])
		per[p] = per[p][k:]
	}
}

// reference pairs the events that are not late (the watermark before their
// batch is the least over partitions seen of highest time − ooo − 1) by
// the join's definition, with plain loops.
func reference(s [][]ev, mode string, size, lower, upper, ooo int64) (want []string, late int) {
	maxT := map[int32]int64{}
	wm := int64(-1 << 62)
	var kept []ev
	for _, batch := range s {
		for _, e := range batch {
			isLate := false
			switch mode {
			case "tumbling":
				start := e.t - ((e.t%size)+size)%size
				isLate = start+size-1 <= wm
			case "interval":
				isLate = e.t <= wm
			}
			if isLate {
				late++
				continue
			}
			kept = append(kept, e)
		}
		for _, e := range batch {
			maxT[e.part] = max(maxT[e.part], e.t)
		}
		low := int64(1 << 62)
		for _, m := range maxT {
			low = min(low, m-ooo-1)
		}
		wm = max(wm, low)
	}
	for _, l := range kept {
		if !l.left {
			continue
		}
		for _, r := range kept {
			if r.left || r.key != l.key {
				continue
			}
			switch mode {
			case "tumbling":
				ls, rs := l.t-((l.t%size)+size)%size, r.t-((r.t%size)+size)%size
				if ls == rs {
					want = append(want, fmt.Sprintf(`{"key":%q,"window_start":%d,"window_end":%d,"left":%s,"right":%s}`, l.key, ls, ls+size, l.value(), r.value()))
				}
			case "interval", "regular":
				if d := r.t - l.t; mode == "regular" || (d >= lower && d <= upper) {
					want = append(want, fmt.Sprintf(`{"key":%q,"left":%s,"right":%s}`, l.key, l.value(), r.value()))
				}
			}
		}
	}
	slices.Sort(want)
	return want, late
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

// TestJoinsMatchReference: tumbling, interval and regular joins of random
// out-of-order streams over three partitions, with late events, pair
// exactly the events a brute-force reference pairs.
func TestJoinsMatchReference(t *testing.T) {
	cases := []struct {
		mode                    string
		size, lower, upper, ooo int64 // ms
	}{
		{mode: "tumbling", size: 50, ooo: 10},
		{mode: "tumbling", size: 20, ooo: 0},
		{mode: "interval", lower: -10, upper: 20, ooo: 10},
		{mode: "interval", lower: 0, upper: 5, ooo: 2},
		{mode: "regular"},
	}
	for _, tc := range cases {
		lateSeen := 0
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/size=%d,lower=%d,upper=%d,ooo=%d/seed=%d", tc.mode, tc.size, tc.lower, tc.upper, tc.ooo, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 11))
				n := 2000
				if tc.mode == "regular" {
					n = 400
				}
				s := gen(rng, n, 3, 7, 1, 30)
				want, late := reference(s, tc.mode, tc.size, tc.lower, tc.upper, tc.ooo)
				lateSeen += late
				cfg := join.DefaultConfig()
				cfg.Left = config.Expr{Src: `s == "L"`}
				cfg.Join, cfg.Size, cfg.Lower, cfg.Upper = tc.mode, ms(tc.size), ms(tc.lower), ms(tc.upper)
				j, errs := join.Compile(cfg, "processors.j", func(string) config.Pos { return config.Pos{} })
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				var script testkit.Script
				for _, b := range s {
					var recs []testkit.Rec
					for _, e := range b {
						recs = append(recs, testkit.Rec{Part: e.part, Key: e.key, T: e.t, Value: e.value()})
					}
					script = append(script, recs)
				}
				r := &testkit.OperatorRun{Input: &testkit.ScriptInput{S: script}, OpType: "join",
					Operator: func(env runtime.Env) (runtime.Operator, error) { return j.New(env, true) }}
				err := r.RunFor(fmt.Sprintf(`
name: t
control: {address: ""}
inputs:
  in: {type: script, event_time: {max_out_of_orderness: %s}}
processors:
  j: {type: join, from: in, key_by: k, parallelism: 2}
outputs:
  out: {type: capture, from: j}
`, ms(tc.ooo)), runtime.Options{BatchSize: 32})
				if err != nil {
					t.Fatal(err)
				}
				got := r.Results()
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("%d pairs, want %d (late %d); first difference: %s", len(got), len(want), late, firstDiff(got, want))
				}
				if len(want) == 0 {
					t.Fatal("the reference pairs nothing: the test proves nothing")
				}
			})
		}
		if lateSeen == 0 && tc.mode != "regular" {
			t.Errorf("%s: no late events in any stream", tc.mode)
		}
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("got %s, want %s", got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return "extra " + got[len(want)]
	}
	if len(want) > len(got) {
		return "missing " + want[len(got)]
	}
	return ""
}
