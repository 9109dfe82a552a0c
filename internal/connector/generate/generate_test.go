package generate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

const testStart = "2024-05-01T12:00:00Z"

func testConfig() Config {
	c := DefaultConfig()
	c.StartTime = testStart
	return c
}

func testEnv(instance, parallelism int) runtime.Env {
	return runtime.Env{
		Pipeline: "p", Node: "gen",
		Instance: instance, Parallelism: parallelism,
		BatchSize: 64, Linger: 50 * time.Millisecond,
	}
}

func mustNew(t testing.TB, cfg Config, env runtime.Env) *Input {
	t.Helper()
	in, err := New(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return in.(*Input)
}

type record struct {
	EventID   string          `json:"event_id"`
	UserID    string          `json:"user_id"`
	Type      string          `json:"type"`
	TS        int64           `json:"ts"`
	Price     json.RawMessage `json:"price"`
	Page      string          `json:"page"`
	UserAgent string          `json:"user_agent"`
}

var (
	uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	userRe = regexp.MustCompile(`^u_(0|[1-9][0-9]*)$`)
	price  = regexp.MustCompile(`^(0|[1-9][0-9]*)\.[0-9]{2}$`)
	pageRe = regexp.MustCompile(`^(/products/[1-9][0-9]*|/search\?q=[a-z+-]+|/[a-z/]*)$`)
)

func TestEventIsPureFunctionOfSeedAndSeq(t *testing.T) {
	cfg := testConfig()
	a := Event(7, 12345, cfg, nil)
	b := Event(7, 12345, cfg, []byte("prefix"))
	if !bytes.Equal(a, b[len("prefix"):]) {
		t.Fatalf("same seed and seq gave different events:\n%s\n%s", a, b)
	}
	if bytes.Equal(a, Event(8, 12345, cfg, nil)) {
		t.Fatal("different seeds gave the same event")
	}
	// seed^seq would collide here; the mixing must not.
	if bytes.Equal(Event(0, 1, cfg, nil)[:50], Event(1, 0, cfg, nil)[:50]) {
		t.Fatal("(seed 0, seq 1) and (seed 1, seq 0) share an event id")
	}
}

func TestEventFieldsAndDistribution(t *testing.T) {
	cfg := testConfig()
	cfg.Users = 500
	start, _ := time.Parse(time.RFC3339, testStart)
	sp := newSpec(cfg, start)
	maxLen := sp.maxEventLen()
	counts := map[string]int{}
	users := map[string]bool{}
	agents := map[string]bool{}
	const n = 20_000
	var buf []byte
	totalLen := 0
	for seq := int64(0); seq < n; seq++ {
		buf = Event(cfg.Seed, seq, cfg, buf[:0])
		totalLen += len(buf)
		if len(buf) > maxLen {
			t.Fatalf("event %d is %d bytes, above the bound %d", seq, len(buf), maxLen)
		}
		if seq < 100 {
			checkFieldOrder(t, buf)
		}
		var r record
		if err := json.Unmarshal(buf, &r); err != nil {
			t.Fatalf("event %d: %v: %s", seq, err, buf)
		}
		if !uuidV4.MatchString(r.EventID) {
			t.Fatalf("event_id %q is not a UUID v4", r.EventID)
		}
		if !userRe.MatchString(r.UserID) {
			t.Fatalf("bad user_id %q", r.UserID)
		}
		users[r.UserID] = true
		if want := start.UnixMilli() + seq; r.TS != want {
			t.Fatalf("event %d: ts %d, want %d", seq, r.TS, want)
		}
		if !price.Match(r.Price) {
			t.Fatalf("price %s does not have two decimals", r.Price)
		}
		if (r.Type == "view") != (string(r.Price) == "0.00") {
			t.Fatalf("%s event with price %s", r.Type, r.Price)
		}
		if !pageRe.MatchString(r.Page) {
			t.Fatalf("bad page %q", r.Page)
		}
		if r.Type == "purchase" && r.Page != "/checkout" {
			t.Fatalf("purchase on %q", r.Page)
		}
		agents[r.UserAgent] = true
		counts[r.Type]++
	}
	t.Logf("mean event length %d bytes", totalLen/n)
	for typ, want := range map[string]float64{"view": 0.70, "click": 0.25, "purchase": 0.05} {
		got := float64(counts[typ]) / n
		if got < want-0.01 || got > want+0.01 {
			t.Errorf("%s: %.3f of events, want about %.2f", typ, got, want)
		}
	}
	if len(users) < 490 || len(users) > 500 {
		t.Errorf("%d distinct users, want nearly all of 500", len(users))
	}
	if len(agents) != len(userAgents) {
		t.Errorf("%d distinct user agents, want %d", len(agents), len(userAgents))
	}
}

func checkFieldOrder(t *testing.T, ev []byte) {
	t.Helper()
	last := -1
	for _, k := range []string{`{"event_id":`, `,"user_id":`, `,"type":`, `,"ts":`, `,"price":`, `,"page":`, `,"user_agent":`} {
		i := bytes.Index(ev, []byte(k))
		if i <= last {
			t.Fatalf("field %s missing or out of order: %s", k, ev)
		}
		last = i
	}
}

func TestEventWeightsAndRate(t *testing.T) {
	cfg := testConfig()
	cfg.Weights = []int{0, 0, 1}
	cfg.Rate = 4 // 250 ms apart
	start, _ := time.Parse(time.RFC3339, testStart)
	for seq := int64(0); seq < 100; seq++ {
		var r record
		if err := json.Unmarshal(Event(1, seq, cfg, nil), &r); err != nil {
			t.Fatal(err)
		}
		if r.Type != "purchase" {
			t.Fatalf("type %q with weights [0,0,1]", r.Type)
		}
		if want := start.UnixMilli() + 250*seq; r.TS != want {
			t.Fatalf("ts %d, want %d", r.TS, want)
		}
	}
}

// runAll runs every instance of a p-way generate input to completion and
// returns the emitted values of each.
func runAll(t *testing.T, cfg Config, p int) [][]string {
	t.Helper()
	out := make([][]string, p)
	var wg sync.WaitGroup
	for i := range p {
		g := mustNew(t, cfg, testEnv(i, p))
		var o testkit.Outlet
		wg.Go(func() {
			if err := g.Run(t.Context(), &o); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			out[i] = o.Values()
			for _, e := range o.Events() {
				if (e.Offset-int64(i))%int64(p) != 0 {
					t.Errorf("instance %d of %d emitted seq %d", i, p, e.Offset)
				}
			}
		})
	}
	wg.Wait()
	return out
}

func TestRunCountAndParallelism(t *testing.T) {
	cfg := testConfig()
	cfg.Count = 1000
	var want []string
	for seq := range cfg.Count {
		want = append(want, string(Event(cfg.Seed, seq, cfg, nil)))
	}

	one := runAll(t, cfg, 1)[0]
	if !slices.Equal(one, want) {
		t.Fatalf("parallelism 1: got %d events, not the stream Event describes", len(one))
	}
	again := runAll(t, cfg, 1)[0]
	if !slices.Equal(one, again) {
		t.Fatal("two runs with the same seed differ")
	}

	var three []string
	for _, vs := range runAll(t, cfg, 3) {
		three = append(three, vs...)
	}
	slices.Sort(three)
	sorted := slices.Sorted(slices.Values(want))
	if !slices.Equal(three, sorted) {
		t.Fatalf("parallelism 3: %d events, not the same multiset as parallelism 1", len(three))
	}

	// More instances than events: the extra ones finish at once.
	var five int
	for _, vs := range runAll(t, Config{Count: 3, Seed: 1, Users: 10, Weights: []int{1, 1, 1}}, 5) {
		five += len(vs)
	}
	if five != 3 {
		t.Fatalf("count 3 over 5 instances gave %d events", five)
	}
}

func TestRunEventMetadata(t *testing.T) {
	cfg := testConfig()
	cfg.Count = 10
	g := mustNew(t, cfg, testEnv(0, 1))
	var o testkit.Outlet
	before := time.Now().UnixNano()
	if err := g.Run(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	start, _ := time.Parse(time.RFC3339, testStart)
	for i, e := range o.Events() {
		if e.Offset != int64(i) || e.Key != nil {
			t.Fatalf("event %d: offset %d key %q", i, e.Offset, e.Key)
		}
		if want := start.Add(time.Duration(i) * time.Millisecond).UnixNano(); e.Time != want {
			t.Fatalf("event %d: time %d, want %d", i, e.Time, want)
		}
	}
	for _, b := range o.Batches() {
		if b.Born < before || b.Born > time.Now().UnixNano() {
			t.Fatalf("batch born at %d, not during the run", b.Born)
		}
	}
}

func TestEveryEventAcked(t *testing.T) {
	cfg := testConfig()
	cfg.Count = 1000
	var logs bytes.Buffer
	env := testEnv(0, 1)
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	g := mustNew(t, cfg, env)
	o := testkit.Outlet{ManualAck: true}
	if err := g.Run(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	if g.Generated() != 1000 || g.Acked() != 0 || o.Pending() != 1000 {
		t.Fatalf("before ack: generated %d acked %d pending %d", g.Generated(), g.Acked(), o.Pending())
	}
	o.AckBatch(1)
	if g.Acked() != 64 {
		t.Fatalf("after acking batch 1 of 64 events: acked %d", g.Acked())
	}
	o.Ack()
	if g.Acked() != 1000 {
		t.Fatalf("after ack: acked %d of 1000", g.Acked())
	}
	if err := g.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s := logs.String(); !strings.Contains(s, "generated=1000") || !strings.Contains(s, "acknowledged=1000") {
		t.Fatalf("close log lacks counts: %s", s)
	}
}

// TestRateHonoursLinger checks, in fake time, that events are generated on
// schedule and that a partial batch waits at most the linger.
func TestRateHonoursLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := DefaultConfig() // start_time = wall clock, so ts = due time
		cfg.Rate = 100         // one event every 10 ms
		cfg.Count = 60
		env := testEnv(0, 1) // batch 64, linger 50 ms
		g := mustNew(t, cfg, env)
		var o testkit.Outlet
		start := time.Now()
		if err := g.Run(t.Context(), &o); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 590*time.Millisecond || d > 650*time.Millisecond {
			t.Fatalf("60 events at 100/s took %v, want about 590ms", d)
		}
		batches := o.Batches()
		if len(batches) < 10 || len(batches) > 14 {
			t.Errorf("%d batches for 600 ms with a 50 ms linger, want about 12", len(batches))
		}
		n := 0
		for _, b := range batches {
			for _, e := range b.Events {
				if e.Offset != int64(n) {
					t.Fatalf("event %d has offset %d", n, e.Offset)
				}
				n++
				if b.Born < e.Time {
					t.Fatalf("event %d emitted at %v, before it was due at %v", e.Offset, b.Born, e.Time)
				}
				if wait := time.Duration(b.Born - e.Time); wait > env.Linger+time.Millisecond {
					t.Fatalf("event %d waited %v in a partial batch, linger is %v", e.Offset, wait, env.Linger)
				}
			}
		}
		if n != 60 {
			t.Fatalf("%d events, want 60", n)
		}
	})
}

func TestRateFillsBatchesBeforeLinger(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Rate = 3000 // 3 instances at 1000/s each
		cfg.Count = 3000
		env := testEnv(1, 3)
		env.Linger = time.Second // batches of 64 fill in 64 ms
		g := mustNew(t, cfg, env)
		var o testkit.Outlet
		start := time.Now()
		if err := g.Run(t.Context(), &o); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 990*time.Millisecond || d > 1010*time.Millisecond {
			t.Fatalf("1000 events at 1000/s took %v", d)
		}
		bs := o.Batches()
		for i, b := range bs[:len(bs)-1] {
			if len(b.Events) != 64 {
				t.Fatalf("batch %d has %d events, want full batches of 64", i, len(b.Events))
			}
		}
		if ev, _ := o.Counts(); ev != 1000 {
			t.Fatalf("instance 1 of 3 emitted %d events, want 1000", ev)
		}
	})
}

func TestCancelStopsPromptly(t *testing.T) {
	t.Run("fast", func(t *testing.T) {
		g := mustNew(t, testConfig(), testEnv(0, 1)) // unlimited
		o := &testkit.Outlet{CountOnly: true}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, o) }()
		if err := o.WaitEvents(t.Context(), 10_000); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop after cancel")
		}
	})
	t.Run("sleeping", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			cfg := testConfig()
			cfg.Rate = 0.001 // one event, then a very long sleep
			g := mustNew(t, cfg, testEnv(0, 1))
			var o testkit.Outlet
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- g.Run(ctx, &o) }()
			time.Sleep(time.Minute)
			synctest.Wait()
			if ev, _ := o.Counts(); ev != 1 {
				t.Fatalf("%d events after a minute at 0.001/s, want 1", ev)
			}
			start := time.Now()
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run returned %v", err)
			}
			if time.Since(start) != 0 {
				t.Fatal("Run slept on after cancel")
			}
		})
	})
	t.Run("backpressure", func(t *testing.T) {
		g := mustNew(t, testConfig(), testEnv(0, 1))
		var o testkit.Outlet
		o.Block()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Run(ctx, &o) }()
		if err := o.Wait(t.Context(), func(o *testkit.Outlet) bool { return o.WaitingLocked() == 1 }); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
		if ev, _ := o.Counts(); ev != 0 {
			t.Fatalf("%d events got through a blocked outlet", ev)
		}
	})
}

func TestEmitErrorStopsRun(t *testing.T) {
	g := mustNew(t, testConfig(), testEnv(0, 1))
	o := testkit.Outlet{EmitErr: runtime.ErrFailed}
	if err := g.Run(t.Context(), &o); !errors.Is(err, runtime.ErrFailed) {
		t.Fatalf("Run returned %v, want ErrFailed", err)
	}
}

func TestValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{Rate: -1, Count: -5, Users: 0, StartTime: "yesterday", Weights: []int{1, 2}}
	err := bad.Validate()
	var fields []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var fe *config.FieldError
		if !errors.As(e, &fe) {
			t.Fatalf("%v is not a FieldError", e)
		}
		fields = append(fields, fe.Field)
	}
	if want := []string{"rate", "count", "users", "start_time", "weights"}; !slices.Equal(fields, want) {
		t.Fatalf("fields %v, want %v", fields, want)
	}
	for _, w := range [][]int{{0, 0, 0}, {1, -1, 1}} {
		c := DefaultConfig()
		c.Weights = w
		if c.Validate() == nil {
			t.Errorf("weights %v accepted", w)
		}
	}
	if _, err := New(bad, testEnv(0, 1)); err == nil {
		t.Fatal("New accepted an invalid config")
	}
	if _, err := New(DefaultConfig(), testEnv(3, 2)); err == nil {
		t.Fatal("New accepted instance 3 of 2")
	}
}

func BenchmarkEvent(b *testing.B) {
	cfg := testConfig()
	start, _ := time.Parse(time.RFC3339, testStart)
	sp := newSpec(cfg, start)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf, _ = sp.appendEvent(buf[:0], int64(i))
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkRun generates b.N events as fast as possible into an outlet that
// counts and acknowledges them.
func BenchmarkRun(b *testing.B) {
	for _, batch := range []int{256, 1024} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			cfg := testConfig()
			cfg.Count = int64(b.N)
			env := testEnv(0, 1)
			env.BatchSize = batch
			g := mustNew(b, cfg, env)
			o := &testkit.Outlet{CountOnly: true}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := g.Run(context.Background(), o); err != nil {
				b.Fatal(err)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			ev, bytes := o.Counts()
			if ev != int64(b.N) {
				b.Fatalf("%d events, want %d", ev, b.N)
			}
			b.SetBytes(bytes / int64(b.N))
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}
