package generate

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/nexmark"
	"github.com/weir-dev/weir/internal/testkit"
)

func nexmarkConfig() Config {
	c := testConfig()
	c.Schema = SchemaNexmark
	return c
}

// runEvents runs every instance of a p-way generate input to completion
// and returns the events of each.
func runEvents(t *testing.T, cfg Config, p int) [][]event.Event {
	t.Helper()
	out := make([][]event.Event, p)
	var wg sync.WaitGroup
	for i := range p {
		g := mustNew(t, cfg, testEnv(i, p))
		var o testkit.Outlet
		wg.Go(func() {
			if err := g.Run(t.Context(), &o); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
			out[i] = o.Events()
		})
	}
	wg.Wait()
	return out
}

// TestNexmarkRun checks that p instances emit every event number below
// count exactly once, each the event the nexmark package defines for it.
func TestNexmarkRun(t *testing.T) {
	start, _ := time.Parse(time.RFC3339, testStart)
	for _, c := range []struct {
		p     int
		count int64
		group int64
	}{{1, 500, 1}, {2, 1001, 1}, {3, 1000, 5}} {
		t.Run("p="+strconv.Itoa(c.p)+"/group="+strconv.FormatInt(c.group, 10), func(t *testing.T) {
			cfg := nexmarkConfig()
			cfg.Count = c.count
			cfg.Nexmark.OutOfOrderGroupSize = c.group
			nc := cfg.Nexmark
			nc.Start = start
			g, err := nexmark.NewGenerator(nc)
			if err != nil {
				t.Fatal(err)
			}
			seen := make([]bool, c.count)
			for i, evs := range runEvents(t, cfg, c.p) {
				for _, e := range evs {
					n := e.Offset
					if n < 0 || n >= c.count || seen[n] {
						t.Fatalf("instance %d emitted event number %d (count %d, seen %v)", i, n, c.count, n >= 0 && n < c.count && seen[n])
					}
					if n%int64(c.p) != int64(i) {
						t.Fatalf("instance %d of %d emitted event number %d", i, c.p, n)
					}
					seen[n] = true
					want, ns := g.AppendEvent(nil, n)
					if string(e.Value) != string(want) || e.Time != ns {
						t.Fatalf("event %d: %s at %d, want %s at %d", n, e.Value, e.Time, want, ns)
					}
					if got := Event(99, n, cfg, nil); string(got) != string(want) {
						t.Fatalf("Event(%d) = %s, want %s", n, got, want)
					}
				}
			}
			if i := slices.Index(seen, false); i >= 0 {
				t.Fatalf("event number %d was not emitted", i)
			}
		})
	}
}

func TestNexmarkEventTime(t *testing.T) {
	cfg := nexmarkConfig()
	cfg.Count = 100
	cfg.Nexmark.EventRate = 50 // 20 ms apart
	evs := runEvents(t, cfg, 1)[0]
	start, _ := time.Parse(time.RFC3339, testStart)
	for i, e := range evs {
		if want := start.Add(time.Duration(i) * 20 * time.Millisecond).UnixNano(); e.Time != want {
			t.Fatalf("event %d at %d, want %d", i, e.Time, want)
		}
	}
	if len(evs) != 100 {
		t.Fatalf("%d events, want 100", len(evs))
	}
}

func TestNexmarkValidate(t *testing.T) {
	if err := nexmarkConfig().Validate(); err != nil {
		t.Fatalf("nexmark defaults invalid: %v", err)
	}
	for _, c := range []struct {
		name   string
		edit   func(*Config)
		fields []string
	}{
		{"web-only settings", func(c *Config) { c.Seed, c.Users, c.Weights = 42, 5, []int{1, 1, 1} }, []string{"seed", "users", "weights"}},
		{"zero web settings", func(c *Config) { c.Seed, c.Users, c.Weights = 0, 0, nil }, nil},
		{"bad nexmark settings", func(c *Config) { c.Nexmark.HotAuctionRatio, c.Nexmark.EventRate = 0, -1 }, []string{"nexmark.event_rate", "nexmark.hot_auction_ratio"}},
		{"bad group size", func(c *Config) { c.Nexmark.OutOfOrderGroupSize = 4 }, []string{"nexmark.out_of_order_group_size"}},
		{"nexmark with web", func(c *Config) { c.Schema = SchemaWeb; c.Nexmark.HotBiddersRatio = 10 }, []string{"nexmark"}},
		{"zero nexmark with web", func(c *Config) { c.Schema = ""; c.Nexmark = nexmark.Config{} }, nil},
		{"unknown schema", func(c *Config) { c.Schema = "tpch" }, []string{"schema"}},
		{"shared settings", func(c *Config) { c.Rate, c.Count, c.StartTime = -1, -1, "soon" }, []string{"rate", "count", "start_time"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := nexmarkConfig()
			c.edit(&cfg)
			err := cfg.Validate()
			var fields []string
			for _, e := range unjoin(err) {
				fe, ok := errors.AsType[*config.FieldError](e)
				if !ok {
					t.Fatalf("%v is not a FieldError", e)
				}
				fields = append(fields, fe.Field)
			}
			if !slices.Equal(fields, c.fields) {
				t.Fatalf("fields %v, want %v (%v)", fields, c.fields, err)
			}
		})
	}
}

// TestNexmarkYAML decodes the documented YAML shape and checks that errors
// in the nexmark block name their field.
func TestNexmarkYAML(t *testing.T) {
	decode := func(t *testing.T, spec string) (Config, config.Errors) {
		t.Helper()
		p, err := config.Parse("p.yaml", []byte("name: p\ninputs:\n  gen:\n    type: generate\n"+spec+"outputs:\n  out: {type: discard, from: gen}\n"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := DefaultConfig()
		return cfg, p.Node("gen").Decode(&cfg)
	}
	t.Run("valid", func(t *testing.T) {
		cfg := DefaultConfig()
		p, err := config.Parse("p.yaml", []byte(`
name: p
inputs:
  bids:
    type: generate
    schema: nexmark
    rate: 10000
    count: 1000000
    start_time: 2024-05-01T00:00:00Z
    nexmark:
      event_rate: 10000
      out_of_order_group_size: 5
      hot_auction_ratio: 10
      avg_bid_byte_size: 1KiB
outputs:
  out: {type: discard, from: bids}
`))
		if err != nil {
			t.Fatal(err)
		}
		if errs := p.Node("bids").Decode(&cfg); errs != nil {
			t.Fatal(errs)
		}
		want := nexmark.DefaultConfig()
		want.OutOfOrderGroupSize, want.HotAuctionRatio, want.AvgBidByteSize = 5, 10, config.KiB
		if cfg.Schema != SchemaNexmark || cfg.Nexmark != want || cfg.Count != 1_000_000 {
			t.Fatalf("decoded %+v", cfg)
		}
		if _, err := New(cfg, testEnv(0, 1)); err != nil {
			t.Fatal(err)
		}
	})
	for _, c := range []struct {
		name, spec, field string
	}{
		{"nested", "    schema: nexmark\n    nexmark:\n      hot_bidders_ratio: 0\n", "inputs.gen.nexmark.hot_bidders_ratio"},
		{"unknown key", "    schema: nexmark\n    nexmark:\n      hot_ratio: 3\n", "inputs.gen.nexmark.hot_ratio"},
		{"web only", "    schema: nexmark\n    users: 7\n", "inputs.gen.users"},
		{"block with web", "    nexmark: {event_rate: 5}\n", "inputs.gen.nexmark"},
		{"schema", "    schema: nexmarks\n", "inputs.gen.schema"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, errs := decode(t, c.spec)
			if len(errs) != 1 || errs[0].Field != c.field {
				t.Fatalf("errors %v, want one about %s", errs, c.field)
			}
		})
	}
}

func BenchmarkRunNexmark(b *testing.B) {
	cfg := nexmarkConfig()
	cfg.Count = int64(b.N)
	env := testEnv(0, 1)
	env.BatchSize = 1024
	g := mustNew(b, cfg, env)
	o := &testkit.Outlet{CountOnly: true}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	if err := g.Run(b.Context(), o); err != nil {
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
}
