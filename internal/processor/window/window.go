package window

import (
	"container/heap"
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

type winKey struct {
	key   string
	start int64
}

// win is one open window of one key.
type win struct {
	end    int64
	accs   []acc
	fired  bool // emitted its final result; kept for allowed lateness
	dirty  bool // changed since its last (early or late) result
	listed bool // in Op.touched under its current key
	// held are acknowledgements kept open until the window's result is
	// written (without checkpoints only).
	held []heldAck
}

type heldAck struct {
	a *event.Ack
	n int
}

func (w *win) hold(a *event.Ack) {
	if a == nil {
		return
	}
	a.Add(1)
	if n := len(w.held); n > 0 && w.held[n-1].a == a {
		w.held[n-1].n++
		return
	}
	w.held = append(w.held, heldAck{a, 1})
}

// timer fires a window (purge false) or drops it after its lateness.
type timer struct {
	at    int64
	key   string
	start int64
	purge bool
}

type timers []timer

func (h timers) Len() int           { return len(h) }
func (h timers) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timers) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timers) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timers) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}

// Op is one instance of a window operator.
type Op struct {
	w     *Window
	env   runtime.Env
	keyed bool
	rng   opstate.Range // this instance's part of the checkpointed state
	hold  bool          // keep acknowledgements open (no checkpoints)

	wins      map[winKey]*win
	sessions  map[string][]int64 // session kind: open session starts per key, sorted
	timers    timers
	wm        int64 // the watermark last advanced to
	clock     int64 // event time or processing time, whichever closes windows
	lastEarly int64

	rec     runtime.Record
	vals    []jsondoc.Value
	byVals  []jsondoc.Value
	scratch []byte
	starts  []int64

	// touched lists the windows changed or removed since the last
	// snapshot (a window at most once while saved is false); full makes
	// the next snapshot rewrite everything (the first one after a start).
	touched []winKey
	full    bool

	late     prometheus.Counter
	open     prometheus.Gauge
	restored int64 // watermark restored from a checkpoint
}

var (
	_ runtime.Operator = (*Op)(nil)
	_ runtime.Stateful = (*Op)(nil)
)

// New returns instance env.Instance of the window operator; keyed says
// whether events arrive keyed (the node has key_by).
func (w *Window) New(env runtime.Env, keyed bool) (*Op, error) {
	o := &Op{w: w, env: env, keyed: keyed, rng: opstate.New(env, keyed), hold: !env.Checkpointing,
		wins: map[winKey]*win{}, sessions: map[string][]int64{}, wm: event.NoWatermark, clock: event.NoWatermark, restored: event.NoWatermark, full: true,
		vals: make([]jsondoc.Value, len(w.aggs)), byVals: make([]jsondoc.Value, len(w.aggs))}
	labels := prometheus.Labels{"node": env.Node, "instance": strconv.Itoa(env.Instance)}
	o.late = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_window_late_events_total", Help: "Events that arrived after every window they belong to had closed.", ConstLabels: labels})
	o.open = prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_window_open", Help: "Windows open (holding state), over all keys.", ConstLabels: labels})
	if env.Registerer != nil {
		if err := env.Registerer.Register(o.late); err != nil {
			return nil, err
		}
		if err := env.Registerer.Register(o.open); err != nil {
			return nil, err
		}
	}
	return o, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Process implements runtime.Operator.
func (o *Op) Process(_ context.Context, evs []event.Event, out *runtime.Collector) error {
	w := o.w
	var now int64
	if w.processing {
		now = time.Now().UnixNano()
	}
	for i := range evs {
		ev := &evs[i]
		t := ev.Time
		if w.processing {
			t = now
		}
		key := ""
		if o.keyed {
			key = string(ev.Key)
		}
		// Which windows, and are they all closed?
		o.starts = o.starts[:0]
		switch w.kind {
		case tumbling, sliding:
			last := floorDiv(t, w.slide) * w.slide
			for s := last; s > t-w.size; s -= w.slide {
				if !o.closed(s + w.size) {
					o.starts = append(o.starts, s)
				}
			}
		case session:
			if !o.closed(t + w.gap) {
				o.starts = append(o.starts, t)
			}
		}
		if len(o.starts) == 0 {
			o.late.Inc()
			out.Late(ev)
			continue
		}
		o.eval(ev)
		for _, s := range o.starts {
			var wd *win
			if w.kind == session {
				wd, s = o.sessionFor(key, s, s+w.gap)
			} else {
				wd = o.window(key, s, s+w.size)
			}
			for j := range w.aggs {
				o.scratch = wd.accs[j].add(&w.aggs[j], o.vals[j], o.byVals[j], t, o.scratch)
			}
			wd.dirty = true
			o.touch(winKey{key, s}, wd)
			if o.hold {
				wd.hold(ev.Ack)
			}
			if wd.fired {
				// A late event within the allowed lateness: the window
				// emits an updated result, one per such event.
				o.emit(out, winKey{key, s}, wd, true)
			}
		}
	}
	// Windows opened by events within the allowed lateness are due now.
	o.fireDue(out)
	return nil
}

// closed reports whether a window ending at end no longer takes events.
func (o *Op) closed(end int64) bool {
	return o.clock != event.NoWatermark && end-1+o.w.allowedLateness <= o.clock
}

// eval computes the aggregates' arguments for ev into o.vals.
func (o *Op) eval(ev *event.Event) {
	o.rec.Reset(ev)
	for j := range o.w.aggs {
		a := &o.w.aggs[j]
		o.vals[j], o.byVals[j] = jsondoc.Value{}, jsondoc.Value{}
		if a.arg == nil {
			continue
		}
		if v, err := a.arg.Eval(&o.rec); err == nil {
			o.vals[j] = v
		}
		if a.by != nil {
			if v, err := a.by.Eval(&o.rec); err == nil {
				o.byVals[j] = v
			}
		}
	}
}

// window returns the window [start, end) of key, creating it.
func (o *Op) window(key string, start, end int64) *win {
	k := winKey{key, start}
	wd := o.wins[k]
	if wd == nil {
		wd = &win{end: end, accs: make([]acc, len(o.w.aggs))}
		o.wins[k] = wd
		heap.Push(&o.timers, timer{at: end - 1, key: key, start: start})
		o.open.Inc()
	}
	return wd
}

// sessionFor returns the session of key that [start, end) falls in, and
// its start, merging every session it overlaps into one.
func (o *Op) sessionFor(key string, start, end int64) (*win, int64) {
	starts := o.sessions[key]
	var merged *win
	mStart, mEnd := start, end
	keep := starts[:0:0]
	for _, s := range starts {
		wd := o.wins[winKey{key, s}]
		if s < end && start < wd.end { // overlaps
			mStart, mEnd = min(mStart, s), max(mEnd, wd.end)
			if merged == nil {
				merged = wd
			} else {
				for j := range o.w.aggs {
					merged.accs[j].merge(&o.w.aggs[j], &wd.accs[j])
				}
				merged.held = append(merged.held, wd.held...)
				merged.fired = merged.fired || wd.fired
				o.open.Dec()
			}
			delete(o.wins, winKey{key, s})
			o.touched = append(o.touched, winKey{key, s})
			continue
		}
		keep = append(keep, s)
	}
	if merged == nil {
		merged = &win{accs: make([]acc, len(o.w.aggs))}
		o.open.Inc()
	}
	merged.end = mEnd
	merged.listed = false // listed, if at all, under a key it no longer has
	o.wins[winKey{key, mStart}] = merged
	if merged.fired {
		// It took events after its result: drop it after its lateness.
		heap.Push(&o.timers, timer{at: mEnd - 1 + o.w.allowedLateness, key: key, start: mStart, purge: true})
	} else {
		heap.Push(&o.timers, timer{at: mEnd - 1, key: key, start: mStart})
	}
	o.sessions[key] = insertSorted(keep, mStart)
	return merged, mStart
}

// Advance implements runtime.Operator.
func (o *Op) Advance(_ context.Context, watermark, now int64, out *runtime.Collector) error {
	if o.restored != event.NoWatermark && watermark < o.restored {
		watermark = o.restored
	}
	if watermark > o.wm {
		o.wm = watermark
	}
	if o.w.processing {
		o.clock = now
		if watermark == event.EndOfTime {
			o.clock = watermark // every input ended: close every window
		}
	} else {
		o.clock = o.wm
	}
	o.fireDue(out)
	if o.w.earlyFire > 0 && now-o.lastEarly >= o.w.earlyFire {
		o.lastEarly = now
		for k, wd := range o.wins {
			if !wd.fired && wd.dirty {
				o.emit(out, k, wd, false)
			}
		}
	}
	return nil
}

// fireDue emits the windows whose end the clock has passed and drops those
// past their lateness.
func (o *Op) fireDue(out *runtime.Collector) {
	for len(o.timers) > 0 && o.timers[0].at <= o.clock && o.clock != event.NoWatermark {
		t := heap.Pop(&o.timers).(timer)
		k := winKey{t.key, t.start}
		wd := o.wins[k]
		if wd == nil {
			continue
		}
		switch {
		case !t.purge && !wd.fired && wd.end-1 == t.at:
			o.emit(out, k, wd, true)
			wd.fired = true
			if o.w.allowedLateness > 0 {
				heap.Push(&o.timers, timer{at: wd.end - 1 + o.w.allowedLateness, key: t.key, start: t.start, purge: true})
				continue
			}
			o.drop(k)
		case t.purge && wd.end-1+o.w.allowedLateness == t.at:
			o.drop(k)
		}
	}
}

// touch records that window k changed since the last snapshot.
func (o *Op) touch(k winKey, wd *win) {
	if !wd.listed {
		wd.listed = true
		o.touched = append(o.touched, k)
	}
}

// drop forgets a window.
func (o *Op) drop(k winKey) {
	delete(o.wins, k)
	o.touched = append(o.touched, k)
	o.open.Dec()
	if o.w.kind == session {
		ss := o.sessions[k.key]
		for i, s := range ss {
			if s == k.start {
				ss = append(ss[:i], ss[i+1:]...)
				break
			}
		}
		if len(ss) == 0 {
			delete(o.sessions, k.key)
		} else {
			o.sessions[k.key] = ss
		}
	}
}

// emit sends the window's result; final results release the
// acknowledgements the window held.
func (o *Op) emit(out *runtime.Collector, k winKey, wd *win, final bool) {
	w := o.w
	b := make([]byte, 0, 64+16*len(w.aggs))
	b = append(b, '{', '"')
	b = append(b, w.keyField...)
	b = append(b, '"', ':')
	b = jsondoc.AppendValue(b, jsondoc.Value{Kind: jsondoc.String, S: []byte(k.key)})
	b = append(b, `,"window_start":`...)
	b = strconv.AppendInt(b, floorDiv(k.start, 1e6), 10)
	b = append(b, `,"window_end":`...)
	b = strconv.AppendInt(b, floorDiv(wd.end, 1e6), 10)
	for j := range w.aggs {
		b = append(b, ',', '"')
		b = append(b, w.aggs[j].name...)
		b = append(b, '"', ':')
		b = wd.accs[j].appendResult(b, &w.aggs[j])
	}
	if w.earlyFire > 0 {
		if final {
			b = append(b, `,"final":true`...)
		} else {
			b = append(b, `,"final":false`...)
		}
	}
	b = append(b, '}')
	e := event.Event{Key: []byte(k.key), Value: b, Time: wd.end - 1, Offset: -1}
	if o.hold && final && len(wd.held) > 0 {
		held := wd.held
		wd.held = nil
		e.Ack = event.NewAck(1, func() {
			for _, h := range held {
				h.a.Done(h.n)
			}
		})
	}
	if !o.keyed {
		e.Key = nil
	}
	wd.dirty = false
	out.Emit(e)
}
