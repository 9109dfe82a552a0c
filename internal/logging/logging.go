// Package logging keeps weir's own logs from flooding a disk: a slog.Handler
// that lets the first few records of each kind through per interval and
// then counts the rest, and at the end of the interval writes one summary:
// "...and 12345 more like this in the last 10s".
//
// Records are of one kind when they have the same level, message and node
// attribute (so the errors of one node stay apart from another's). Records
// below Warn pass untouched: the limit is for repeated warnings and errors,
// which is what an incident produces.
package logging

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Limiter wraps a handler; see the package documentation.
type Limiter struct {
	next     slog.Handler
	interval time.Duration
	burst    int
	now      func() time.Time
	st       *limitState
}

type limitState struct {
	mu     sync.Mutex
	start  time.Time
	counts map[kind]*tally
}

type kind struct {
	level slog.Level
	msg   string
	node  string
}

type tally struct {
	seen       int
	suppressed int
	handler    slog.Handler // the handler (with attrs/groups) of the first suppressed record
}

// NewLimiter lets burst records of each kind through per interval.
func NewLimiter(next slog.Handler, interval time.Duration, burst int) *Limiter {
	return &Limiter{next: next, interval: interval, burst: burst, now: time.Now,
		st: &limitState{counts: map[kind]*tally{}}}
}

// Enabled implements slog.Handler.
func (l *Limiter) Enabled(ctx context.Context, level slog.Level) bool {
	return l.next.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler.
func (l *Limiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *l
	c.next = l.next.WithAttrs(attrs)
	return &c
}

// WithGroup implements slog.Handler.
func (l *Limiter) WithGroup(name string) slog.Handler {
	c := *l
	c.next = l.next.WithGroup(name)
	return &c
}

// Handle implements slog.Handler.
func (l *Limiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return l.next.Handle(ctx, r)
	}
	k := kind{level: r.Level, msg: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "node" {
			k.node = a.Value.String()
			return false
		}
		return true
	})
	now := l.now()
	summaries := l.roll(now)
	st := l.st
	st.mu.Lock()
	t := st.counts[k]
	if t == nil {
		t = &tally{}
		st.counts[k] = t
	}
	t.seen++
	pass := t.seen <= l.burst
	if !pass {
		t.suppressed++
		if t.handler == nil {
			t.handler = l.next
		}
	}
	st.mu.Unlock()
	for _, s := range summaries {
		_ = s.handler.Handle(ctx, s.record)
	}
	if !pass {
		return nil
	}
	return l.next.Handle(ctx, r)
}

type summary struct {
	handler slog.Handler
	record  slog.Record
}

// roll ends the interval when it is over and returns the summaries of what
// it suppressed.
func (l *Limiter) roll(now time.Time) []summary {
	st := l.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.start.IsZero() {
		st.start = now
		return nil
	}
	if now.Sub(st.start) < l.interval {
		return nil
	}
	var out []summary
	for k, t := range st.counts {
		if t.suppressed == 0 {
			continue
		}
		r := slog.NewRecord(now, k.level, fmt.Sprintf("...and %d more like this in the last %s: %s", t.suppressed, l.interval, k.msg), 0)
		r.AddAttrs(slog.Int("suppressed", t.suppressed))
		if k.node != "" {
			r.AddAttrs(slog.String("node", k.node))
		}
		out = append(out, summary{handler: t.handler, record: r})
	}
	clear(st.counts)
	st.start = now
	return out
}

// Flush writes the summaries of the current interval now (at exit).
func (l *Limiter) Flush(ctx context.Context) {
	st := l.st
	st.mu.Lock()
	st.start = time.Time{}.Add(1) // any past start: the next roll ends the interval
	st.mu.Unlock()
	for _, s := range l.roll(l.now().Add(l.interval)) {
		_ = s.handler.Handle(ctx, s.record)
	}
}
