// Package generate is an input that makes synthetic events: a
// deterministic stream for demos, tests and benchmarks. Its schema picks
// the events: web-analytics events (web, the default), or the persons,
// auctions and bids of the Nexmark benchmark (nexmark, made by package
// nexmark).
//
// Each event is a pure function of the settings and its sequence number
// (see Event), so the stream is the same whatever the rate or parallelism:
// instance i of p produces sequence numbers i, i+p, i+2p, … below count, at
// rate/p events per second. Event.Offset is the sequence number and
// Event.Time the event's time (ts or date_time) in nanoseconds.
//
// Per event the input does not allocate: events are written into an arena
// allocated per batch, and each batch has one Ack.
//
// Threading: Run is called once, by one goroutine, per instance; Close after
// Run has returned. Ack callbacks may run on any goroutine.
package generate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/nexmark"
	"github.com/weir-dev/weir/internal/runtime"
)

// Schemas of generated events.
const (
	SchemaWeb     = "web"
	SchemaNexmark = "nexmark"
)

// Config is the YAML configuration of a generate input. Seed, Users and
// Weights shape the web schema only; Nexmark the nexmark schema only (its
// Start is ignored: StartTime sets it).
type Config struct {
	Schema    string         `yaml:"schema" enum:"web|nexmark" doc:"The events to make: web (synthetic web analytics) or nexmark (the persons, auctions and bids of the Nexmark benchmark); empty means web." default:"web"`
	Rate      float64        `yaml:"rate" doc:"Events per second over all instances; 0 generates as fast as the pipeline accepts them." default:"0"`
	Count     int64          `yaml:"count" doc:"Total number of events to generate, after which the input finishes; 0 means no limit." default:"0"`
	Seed      int64          `yaml:"seed" doc:"Seed of the pseudo-random stream: the same seed and settings give the same events (web schema only)." default:"1"`
	Users     int64          `yaml:"users" doc:"Number of distinct user ids, u_0 to u_<users-1> (web schema only)." default:"10000"`
	StartTime string         `yaml:"start_time" doc:"Event time of sequence number 0 (RFC 3339); empty means the wall clock when the input starts." default:""`
	Weights   []int          `yaml:"weights" doc:"Relative frequencies of the view, click and purchase event types, as three integers (web schema only)." default:"[70, 25, 5]"`
	Nexmark   nexmark.Config `yaml:"nexmark" doc:"Settings of the nexmark schema: event_rate, out_of_order_group_size, hot ratios, num_active_people, num_in_flight_auctions, padding."`
}

// DefaultConfig returns the defaults, to decode the YAML over.
func DefaultConfig() Config {
	return Config{Schema: SchemaWeb, Seed: 1, Users: 10000, Weights: []int{70, 25, 5}, Nexmark: nexmark.DefaultConfig()}
}

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil. Settings of the other schema than c's must be
// left at their defaults (or zero).
func (c Config) Validate() error {
	var errs []error
	web := c.Schema == "" || c.Schema == SchemaWeb
	if c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) {
		errs = append(errs, &config.FieldError{Field: "rate", Msg: fmt.Sprintf("invalid rate %v", c.Rate), Expected: "a number of events per second >= 0 (0 = as fast as possible)"})
	}
	if c.Count < 0 {
		errs = append(errs, &config.FieldError{Field: "count", Msg: fmt.Sprintf("negative count %d", c.Count), Expected: "a number of events >= 0 (0 = no limit)"})
	}
	if web && c.Users < 1 {
		errs = append(errs, &config.FieldError{Field: "users", Msg: fmt.Sprintf("users is %d", c.Users), Expected: "at least 1"})
	}
	if c.StartTime != "" {
		if _, err := time.Parse(time.RFC3339, c.StartTime); err != nil {
			errs = append(errs, &config.FieldError{Field: "start_time", Msg: fmt.Sprintf("cannot parse %q", c.StartTime), Expected: "an RFC 3339 time such as 2024-05-01T00:00:00Z", Hint: "leave it empty to start at the current time"})
		}
	}
	if web {
		errs = append(errs, validateWeights(c.Weights)...)
	}
	switch {
	case web:
		nc := c.Nexmark
		nc.Start = time.Time{}
		if nc != (nexmark.Config{}) && nc != nexmark.DefaultConfig() {
			errs = append(errs, &config.FieldError{Field: "nexmark", Msg: "nexmark settings with the web schema", Expected: "schema: nexmark, or no nexmark settings",
				Hint: "add schema: nexmark to generate the Nexmark stream"})
		}
	case c.Schema == SchemaNexmark:
		errs = append(errs, c.webOnly()...)
		for _, err := range unjoin(c.Nexmark.Validate()) {
			if fe, ok := errors.AsType[*config.FieldError](err); ok {
				nested := *fe
				nested.Field = "nexmark." + fe.Field
				err = &nested
			}
			errs = append(errs, err)
		}
	default:
		errs = append(errs, &config.FieldError{Field: "schema", Msg: fmt.Sprintf("unknown schema %q", c.Schema), Expected: "web or nexmark"})
	}
	return errors.Join(errs...)
}

func validateWeights(weights []int) []error {
	if len(weights) != 3 {
		return []error{&config.FieldError{Field: "weights", Msg: fmt.Sprintf("%d weights given", len(weights)), Expected: "three integers for view, click and purchase, such as [70, 25, 5]"}}
	}
	sum := 0
	for _, w := range weights {
		if w < 0 || w > math.MaxInt32 {
			return []error{&config.FieldError{Field: "weights", Msg: fmt.Sprintf("weight %d out of range", w), Expected: "integers between 0 and 2147483647"}}
		}
		sum += w
	}
	if sum == 0 {
		return []error{&config.FieldError{Field: "weights", Msg: "all weights are 0", Expected: "at least one positive weight"}}
	}
	return nil
}

// webOnly reports the settings of the web schema that a nexmark config
// changes from their defaults.
func (c Config) webOnly() []error {
	var errs []error
	def := DefaultConfig()
	const hint = "the nexmark stream is defined by its nexmark settings alone (each event is seeded with its number, as in Beam); remove it"
	if c.Seed != 0 && c.Seed != def.Seed {
		errs = append(errs, &config.FieldError{Field: "seed", Msg: "seed applies to the web schema only", Expected: "no seed with schema nexmark", Hint: hint})
	}
	if c.Users != 0 && c.Users != def.Users {
		errs = append(errs, &config.FieldError{Field: "users", Msg: "users applies to the web schema only", Expected: "no users with schema nexmark", Hint: hint})
	}
	if len(c.Weights) != 0 && !slices.Equal(c.Weights, def.Weights) {
		errs = append(errs, &config.FieldError{Field: "weights", Msg: "weights apply to the web schema only", Expected: "no weights with schema nexmark",
			Hint: "the nexmark stream has persons, auctions and bids in the fixed proportions 1:3:46; remove it"})
	}
	return errs
}

// unjoin returns the errors joined in err.
func unjoin(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// defaultBatchSize is used when the runtime does not set Env.BatchSize.
const defaultBatchSize = 256

// Input is one instance of a generate input.
type Input struct {
	cfg       Config
	env       runtime.Env
	log       *slog.Logger
	generated atomic.Int64 // events emitted
	acked     atomic.Int64 // events whose batch was acknowledged
}

var (
	_ runtime.Input       = (*Input)(nil)
	_ runtime.InputCloser = (*Input)(nil)
)

// New returns instance env.Instance of a generate input.
func New(cfg Config, env runtime.Env) (runtime.Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Parallelism < 1 {
		env.Parallelism = 1
	}
	if env.Instance < 0 || env.Instance >= env.Parallelism {
		return nil, fmt.Errorf("generate: instance %d out of range [0, %d)", env.Instance, env.Parallelism)
	}
	if env.BatchSize <= 0 {
		env.BatchSize = defaultBatchSize
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Weights = append([]int(nil), cfg.Weights...)
	return &Input{cfg: cfg, env: env, log: log}, nil
}

// Generated reports how many events this instance has emitted.
func (g *Input) Generated() int64 { return g.generated.Load() }

// Acked reports how many emitted events have been acknowledged.
func (g *Input) Acked() int64 { return g.acked.Load() }

// Run generates events until count is reached (it returns nil) or ctx ends
// (it returns ctx.Err()). A partial batch is dropped on cancellation.
func (g *Input) Run(ctx context.Context, out runtime.Outlet) error {
	start := time.Now()
	startTime := start
	if g.cfg.StartTime != "" {
		startTime, _ = time.Parse(time.RFC3339, g.cfg.StartTime)
	}
	r := run{
		g:         g,
		out:       out,
		src:       newStream(g.cfg, startTime),
		start:     start,
		stride:    int64(g.env.Parallelism),
		first:     int64(g.env.Instance),
		total:     -1,
		rate:      g.cfg.Rate / float64(g.env.Parallelism),
		batchSize: g.env.BatchSize,
		linger:    g.env.Linger,
	}
	if g.cfg.Count > 0 {
		r.total = 0
		if r.first < g.cfg.Count {
			r.total = (g.cfg.Count-1-r.first)/r.stride + 1
		}
	}
	r.maxLen = r.src.maxEventLen()
	r.avgLen = r.maxLen
	return r.loop(ctx)
}

// run is the state of one Run call.
type run struct {
	g   *Input
	out runtime.Outlet
	src stream

	start         time.Time
	first, stride int64 // sequence numbers are first + k*stride
	k             int64 // next instance-local index
	total         int64 // events this instance generates; -1 = unlimited
	rate          float64
	batchSize     int
	linger        time.Duration

	maxLen, avgLen int   // bounds and running mean of event length
	genBytes       int64 // bytes generated, for avgLen
	b              *event.Batch
	bornAt         time.Time // when the first event of b was generated
	arena          []byte
	timer          *time.Timer
}

func (r *run) loop(ctx context.Context) error {
	defer func() {
		if r.timer != nil {
			r.timer.Stop()
		}
		if r.b != nil {
			r.b.Release() // events without references: nothing to give back
		}
	}()
	for {
		if r.total >= 0 && r.k >= r.total {
			return r.emit(ctx)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		want := r.batchSize
		if r.b != nil {
			want -= r.b.Len()
		}
		if r.total >= 0 {
			want = int(min(int64(want), r.total-r.k))
		}
		if r.rate > 0 {
			now := time.Now()
			elapsed := now.Sub(r.start)
			avail := r.due(elapsed) - r.k
			if avail <= 0 {
				if r.b != nil && now.Sub(r.bornAt) >= r.linger {
					if err := r.emit(ctx); err != nil {
						return err
					}
					continue
				}
				wait := r.dueAt(r.k) - elapsed
				if r.b != nil {
					wait = min(wait, r.linger-now.Sub(r.bornAt))
				}
				if err := r.sleep(ctx, wait); err != nil {
					return err
				}
				continue
			}
			want = int(min(int64(want), avail))
		}
		r.fill(want)
		if r.b.Len() >= r.batchSize || r.k == r.total {
			if err := r.emit(ctx); err != nil {
				return err
			}
		}
	}
}

// due is the number of this instance's events due after elapsed: event k
// is due at dueAt(k).
func (r *run) due(elapsed time.Duration) int64 {
	n := int64(float64(elapsed)*r.rate/1e9) + 1
	// Float rounding must never leave an event that dueAt says is due
	// waiting: that would sleep for zero forever.
	if n <= r.k && r.dueAt(r.k) <= elapsed {
		n = r.k + 1
	}
	return n
}

// dueAt is when event k is due, relative to the start.
func (r *run) dueAt(k int64) time.Duration {
	return time.Duration(math.Ceil(float64(k) * 1e9 / r.rate))
}

func (r *run) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	if r.timer == nil {
		r.timer = time.NewTimer(d)
	} else {
		r.timer.Reset(d)
	}
	select {
	case <-r.timer.C:
		return nil
	case <-ctx.Done():
		r.timer.Stop()
		return ctx.Err()
	}
}

// fill generates n events into the current batch, opening it if needed.
func (r *run) fill(n int) {
	if r.b == nil {
		r.b = event.GetBatch()
		r.bornAt = time.Now()
	}
	for range n {
		if cap(r.arena)-len(r.arena) < r.maxLen {
			r.arena = make([]byte, 0, r.chunkSize(n))
		}
		seq := r.first + r.k*r.stride
		off := len(r.arena)
		var ts int64
		r.arena, ts = r.src.appendEvent(r.arena, seq)
		v := r.arena[off:len(r.arena):len(r.arena)]
		r.genBytes += int64(len(v))
		r.b.Append(event.Event{Value: v, Time: ts, Offset: seq})
		r.k++
		n--
	}
	r.avgLen = int(r.genBytes / r.k)
}

// chunkSize sizes a new arena for the events expected in the rest of the
// batch: those due now, or the rest of a full batch at full speed, or what
// the rate brings within a linger.
func (r *run) chunkSize(dueNow int) int {
	expect := dueNow
	if r.rate > 0 {
		expect = max(expect, int(r.rate*r.linger.Seconds())+1)
	}
	expect = min(expect, r.batchSize-r.b.Len())
	return expect*(r.avgLen+r.avgLen/16) + r.maxLen
}

// emit sends the current batch, if any, with one Ack for all its events.
func (r *run) emit(ctx context.Context) error {
	b := r.b
	if b == nil {
		return nil
	}
	r.b, r.arena = nil, nil
	n := b.Len()
	g := r.g
	ack := event.NewAck(n, func() { g.acked.Add(int64(n)) })
	for i := range b.Events {
		b.Events[i].Ack = ack
	}
	g.generated.Add(int64(n))
	b.Born = time.Now().UnixNano()
	return r.out.Emit(ctx, b)
}

// Close logs how many events were generated and acknowledged.
func (g *Input) Close(ctx context.Context) error {
	g.log.LogAttrs(ctx, slog.LevelInfo, "generate input finished",
		slog.Int("instance", g.env.Instance),
		slog.Int64("generated", g.generated.Load()), slog.Int64("acknowledged", g.acked.Load()))
	return nil
}
