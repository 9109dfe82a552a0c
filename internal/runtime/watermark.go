package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
)

// Event time and watermarks.
//
// Watermarks travel in band, on the batches themselves (event.Batch's
// Watermark, Sender and Idle), so a watermark always arrives after the
// events it covers. Each input instance makes its watermark from the event
// times it emits, per source partition: the highest time seen minus the
// input's max_out_of_orderness, minus one nanosecond (a watermark W says no
// event at or before W follows). The instance's watermark is the least over
// its partitions that are not idle. Every stage instance downstream takes
// the least over its senders that are not idle, and passes it on with the
// batches it sends. When a batch sent on a key-hash or round-robin edge does
// not reach every downstream instance, the others get an empty batch that
// carries only the watermark.
//
// Only edges that lead, directly or through other stages, to an event-time
// operator carry watermarks; pipelines without such operators pay nothing.

// wmIn tracks the watermark of a stage instance's input queue: the least
// watermark over its senders that are not idle.
type wmIn struct {
	senders []int64
	idle    []bool
	cur     int64
	allIdle bool
	pub     atomic.Int64 // cur, for readers on other goroutines (Pipeline.Watermark)
}

func newWMIn(senders int) *wmIn {
	w := &wmIn{senders: make([]int64, senders), idle: make([]bool, senders), cur: event.NoWatermark}
	w.pub.Store(event.NoWatermark)
	for i := range w.senders {
		w.senders[i] = event.NoWatermark
	}
	return w
}

// observe takes the watermark a batch carries; it reports whether the
// instance's watermark or idleness changed.
func (w *wmIn) observe(b *event.Batch) bool {
	i := int(b.Sender) - 1
	if i < 0 || i >= len(w.senders) {
		return false
	}
	if b.Watermark > w.senders[i] {
		w.senders[i] = b.Watermark // never goes back
	}
	w.idle[i] = b.Idle
	return w.recompute()
}

func (w *wmIn) recompute() bool {
	low, active := int64(event.EndOfTime), false
	for i, s := range w.senders {
		if w.idle[i] {
			continue
		}
		active = true
		low = min(low, s)
	}
	wasIdle := w.allIdle
	w.allIdle = !active && len(w.senders) > 0
	if active && low > w.cur {
		w.cur = low
		w.pub.Store(low)
		return true
	}
	return wasIdle != w.allIdle
}

// wmGen makes an input instance's watermark from the event times it emits.
type wmGen struct {
	spec  *dag.EventTime
	parts map[int32]*partWM
	cur   int64
	idle  bool
	rec   Record
}

type partWM struct {
	maxTime  int64
	lastSeen time.Time
}

func newWMGen(spec *dag.EventTime) *wmGen {
	if spec == nil {
		spec = &dag.EventTime{Unit: time.Millisecond}
	}
	return &wmGen{spec: spec, parts: map[int32]*partWM{}, cur: event.NoWatermark}
}

// ErrEventTime wraps the error of an event whose event time could not be
// computed from its event_time expression.
var ErrEventTime = errors.New("event time")

// stamp sets ev.Time from the input's event_time expression.
func (g *wmGen) stamp(ev *event.Event) error {
	g.rec.Reset(ev)
	v, err := g.spec.Expr.Eval(&g.rec)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEventTime, err)
	}
	t, err := timeValue(v, g.spec.Unit)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrEventTime, err)
	}
	ev.Time = t
	return nil
}

// timeValue converts an expression result into Unix nanoseconds.
func timeValue(v jsondoc.Value, unit time.Duration) (int64, error) {
	switch v.Kind {
	case jsondoc.Int:
		if v.I > math.MaxInt64/int64(unit) || v.I < math.MinInt64/int64(unit) {
			return 0, fmt.Errorf("%d is out of range", v.I)
		}
		return v.I * int64(unit), nil
	case jsondoc.Float:
		f := v.F * float64(unit)
		if math.IsNaN(f) || f > math.MaxInt64 || f < math.MinInt64 {
			return 0, fmt.Errorf("%v is out of range", v.F)
		}
		return int64(f), nil
	case jsondoc.String:
		t, err := time.Parse(time.RFC3339Nano, string(v.S))
		if err != nil {
			if n, nerr := strconv.ParseFloat(string(v.S), 64); nerr == nil {
				return int64(n * float64(unit)), nil
			}
			return 0, fmt.Errorf("%q is neither a number nor an RFC 3339 time", v.S)
		}
		return t.UnixNano(), nil
	default:
		return 0, fmt.Errorf("the event time is %s, not a number or an RFC 3339 string", v.Kind)
	}
}

// expect registers partitions before any event, as of now: each holds the
// watermark back until it sends events or idles.
func (g *wmGen) expect(parts []int32, now time.Time) {
	for _, p := range parts {
		if g.parts[p] == nil {
			g.parts[p] = &partWM{maxTime: math.MinInt64, lastSeen: now}
		}
	}
}

// observe accounts for the events of a batch from partition part.
func (g *wmGen) observe(part int32, evs []event.Event, now time.Time) {
	if len(evs) == 0 {
		return
	}
	p := g.parts[part]
	if p == nil {
		p = &partWM{maxTime: math.MinInt64}
		g.parts[part] = p
	}
	for i := range evs {
		p.maxTime = max(p.maxTime, evs[i].Time)
	}
	p.lastSeen = now
}

// update recomputes the watermark at now; it reports a change.
func (g *wmGen) update(now time.Time) bool {
	if g.cur == event.EndOfTime {
		return false
	}
	low, active := int64(math.MaxInt64), false
	ooo := int64(g.spec.MaxOutOfOrderness)
	for _, p := range g.parts {
		if g.spec.IdleTimeout > 0 && now.Sub(p.lastSeen) >= g.spec.IdleTimeout {
			continue
		}
		active = true
		wm := event.NoWatermark
		if p.maxTime != math.MinInt64 && p.maxTime > math.MinInt64+ooo+1 {
			wm = p.maxTime - ooo - 1
		}
		low = min(low, wm)
	}
	idle := !active && g.spec.IdleTimeout > 0 && len(g.parts) > 0
	changed := idle != g.idle
	g.idle = idle
	if active && low > g.cur {
		g.cur = low
		changed = true
	}
	return changed
}

// finish marks the end of the input: every window may close.
func (g *wmGen) finish() {
	g.cur, g.idle = event.EndOfTime, false
}

// wmOut is what an instance tells downstream: its current watermark.
type wmOut struct {
	cur  int64
	idle bool
}

// wmRoute is a router's part in watermark propagation.
type wmRoute struct {
	src      *wmOut
	sender   []int32 // per queue of the router: this instance's Sender there
	sentWM   []int64
	sentIdle []bool
	sent     []bool
}

func (w *wmRoute) stamp(qi int, b *event.Batch) {
	b.Sender = w.sender[qi]
	b.Watermark, b.Idle = w.src.cur, w.src.idle
	w.sentWM[qi], w.sentIdle[qi], w.sent[qi] = b.Watermark, b.Idle, true
}

// sync sends an empty batch carrying the watermark to every queue of r that
// has not been told the current one.
func (r *router) syncWM(ctx context.Context) error {
	w := r.wm
	if w == nil {
		return nil
	}
	for qi := range r.queues {
		if r.kind == dag.Forward && qi != r.self {
			continue
		}
		if w.sent[qi] && w.sentWM[qi] == w.src.cur && w.sentIdle[qi] == w.src.idle {
			continue
		}
		b := event.GetBatch()
		w.stamp(qi, b)
		if err := r.push(ctx, qi, b); err != nil {
			return err
		}
	}
	return nil
}

// syncWM brings every route of the instance up to date with its watermark.
func (inst *instance) syncWM(ctx context.Context) error {
	for _, r := range inst.routes {
		if err := r.syncWM(ctx); err != nil {
			return err
		}
	}
	return nil
}

// inputWM is an input instance's watermark machinery; emitMu serializes
// the input's Emit calls with the idle ticker's watermark updates.
type inputWM struct {
	gen    *wmGen
	emitMu sync.Mutex
}

// Watermark is the event-time watermark of the stage that runs node, as its
// instances last saw it on their input: the least over instances, in Unix
// nanoseconds. ok is false when no watermark reaches the node (no
// event-time operator downstream of it, or none has arrived yet).
func (p *Pipeline) Watermark(node string) (wm int64, ok bool) {
	wm = event.EndOfTime
	for _, inst := range p.insts {
		if inst.wmIn == nil || !slices.ContainsFunc(inst.stage.Nodes, func(n *dag.Node) bool { return n.Name == node }) {
			continue
		}
		v := inst.wmIn.pub.Load()
		if v == event.NoWatermark {
			return 0, false
		}
		wm, ok = min(wm, v), true
	}
	return wm, ok
}
