// Package discard is an output that writes nothing: it counts events and
// value bytes and acknowledges everything at once. It measures pipelines
// without an output's cost, and drains streams nobody needs.
//
// Threading: each Output is used by one goroutine; Counts may be called from
// any goroutine.
package discard

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// Config is the YAML configuration of a discard output. It has no fields.
type Config struct{}

// DefaultConfig returns the (empty) defaults.
func DefaultConfig() Config { return Config{} }

// Validate always returns nil.
func (c Config) Validate() error { return nil }

// Output counts and drops events. Use New.
type Output struct {
	env    runtime.Env
	log    *slog.Logger
	events atomic.Int64
	bytes  atomic.Int64
}

var _ runtime.Output = (*Output)(nil)

// New returns a discard output.
func New(cfg Config, env runtime.Env) (runtime.Output, error) {
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Output{env: env, log: log}, nil
}

// Write counts evs.
func (o *Output) Write(ctx context.Context, evs []event.Event) error {
	var n int64
	for i := range evs {
		n += int64(len(evs[i].Value))
	}
	o.events.Add(int64(len(evs)))
	o.bytes.Add(n)
	return nil
}

// Flush does nothing.
func (o *Output) Flush(ctx context.Context) error { return nil }

// Close logs the counts.
func (o *Output) Close(ctx context.Context) error {
	o.log.LogAttrs(ctx, slog.LevelInfo, "discard output closed",
		slog.Int("instance", o.env.Instance),
		slog.Int64("events", o.events.Load()), slog.Int64("bytes", o.bytes.Load()))
	return nil
}

// Counts reports the events and value bytes written so far.
func (o *Output) Counts() (events, bytes int64) { return o.events.Load(), o.bytes.Load() }
