package window

import (
	"container/heap"
	"context"
	"math"
	"strconv"
	"time"
	"unsafe"

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

// win is one open window of one key, held in memory.
type win struct {
	key        string
	start, end int64
	accs       []acc
	fired      bool // emitted its final result; kept for allowed lateness
	dirty      bool // changed since its last (early or late) result
	// unsaved: changed since the store last got a copy (or it has none).
	unsaved bool
	// stored: the store (scratch or checkpoint) holds a copy under
	// [sStart, sEnd) — a session's key may have moved since.
	stored       bool
	sStart, sEnd int64
	size         int   // estimated bytes in memory
	at           int64 // when its timer is due: fire at end-1, drop after lateness
	hidx         int   // index in Op.timers
	prev, next   *win  // the cache's recency list
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

// timers orders the windows in memory by when they are due.
type timers []*win

func (h timers) Len() int           { return len(h) }
func (h timers) Less(i, j int) bool { return h[i].at < h[j].at }
func (h timers) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *timers) Push(x any) {
	wd := x.(*win)
	wd.hidx = len(*h)
	*h = append(*h, wd)
}
func (h *timers) Pop() any {
	old := *h
	wd := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	wd.hidx = -1
	return wd
}

// Op is one instance of a window operator.
type Op struct {
	w     *Window
	env   runtime.Env
	keyed bool
	rng   opstate.Range // this instance's part of the checkpointed state
	hold  bool          // keep acknowledgements open (no checkpoints)

	// The windows in memory: a cache over the state store when there is
	// one (st), else every open window.
	wins      map[winKey]*win
	sessions  map[string][]int64 // session kind: open session starts per key, sorted
	timers    timers
	lru       win   // sentinel of the recency list: lru.next is the most recent
	bytes     int64 // estimated size of wins
	limit     int64 // bound of bytes, past which windows are evicted
	wm        int64 // the watermark last advanced to
	clock     int64 // event time or processing time, whichever closes windows
	lastEarly int64

	// st holds the windows not in memory (nil without checkpoints): the
	// store's scratch over its last checkpoint.
	st runtime.Scratch
	// fireFrom and purgeFrom: windows in st with an end below them have
	// been fired, and dropped, by scans of st.
	fireFrom, purgeFrom int64
	// maxStored bounds the ends of windows st may hold: a window ending
	// later is new without a lookup.
	maxStored int64

	rec     runtime.Record
	vals    []jsondoc.Value
	byVals  []jsondoc.Value
	scratch []byte
	keyBuf  []byte
	valBuf  []byte
	starts  []int64

	late     prometheus.Counter
	open     prometheus.Gauge
	cached   prometheus.Gauge
	spilled  prometheus.Counter
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
		wins: map[winKey]*win{}, sessions: map[string][]int64{}, wm: event.NoWatermark, clock: event.NoWatermark, restored: event.NoWatermark,
		limit: math.MaxInt64, fireFrom: math.MinInt64, purgeFrom: math.MinInt64, maxStored: math.MinInt64,
		vals: make([]jsondoc.Value, len(w.aggs)), byVals: make([]jsondoc.Value, len(w.aggs))}
	o.lru.next, o.lru.prev = &o.lru, &o.lru
	if env.Checkpointing {
		// Restore replaces it with the store's scratch.
		o.st = newMemScratch()
	}
	labels := prometheus.Labels{"node": env.Node, "instance": strconv.Itoa(env.Instance)}
	o.late = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_window_late_events_total", Help: "Events that arrived after every window they belong to had closed.", ConstLabels: labels})
	o.open = prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_window_open", Help: "Windows open in memory, over all keys (windows spilled to the state store are not counted).", ConstLabels: labels})
	o.cached = prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_window_cache_bytes", Help: "Estimated memory of the windows held in memory (bounded by cache_bytes with checkpoints).", ConstLabels: labels})
	o.spilled = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_window_spilled_total", Help: "Windows evicted from memory to the state store.", ConstLabels: labels})
	if env.Registerer != nil {
		for _, c := range []prometheus.Collector{o.late, o.open, o.cached, o.spilled} {
			if err := env.Registerer.Register(c); err != nil {
				return nil, err
			}
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
				var err error
				if wd, err = o.sessionFor(key, s, s+w.gap); err != nil {
					return err
				}
			} else {
				var err error
				if wd, err = o.window(key, s, s+w.size); err != nil {
					return err
				}
			}
			for j := range w.aggs {
				o.scratch = wd.accs[j].add(&w.aggs[j], o.vals[j], o.byVals[j], t, o.scratch)
			}
			o.resize(wd)
			o.used(wd)
			wd.dirty, wd.unsaved = true, true
			if o.hold {
				wd.hold(ev.Ack)
			}
			if wd.fired {
				// A late event within the allowed lateness: the window
				// emits an updated result, one per such event.
				o.emit(out, wd, true)
			}
		}
	}
	// Windows opened by events within the allowed lateness are due now.
	if err := o.fireDue(out); err != nil {
		return err
	}
	return o.evict(out)
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

// window returns the window [start, end) of key: from memory, else from
// the store, else a new one.
func (o *Op) window(key string, start, end int64) (*win, error) {
	if wd := o.wins[winKey{key, start}]; wd != nil {
		return wd, nil
	}
	if o.st != nil && end <= o.maxStored {
		wd, err := o.load(key, start, end)
		if wd != nil || err != nil {
			return wd, err
		}
	}
	wd := &win{key: key, start: start, end: end, accs: make([]acc, len(o.w.aggs)), unsaved: true}
	o.insert(wd)
	return wd, nil
}

// insert puts wd in memory: the map, the recency list, the timers.
func (o *Op) insert(wd *win) {
	o.wins[winKey{wd.key, wd.start}] = wd
	wd.prev, wd.next = &o.lru, o.lru.next
	wd.prev.next, wd.next.prev = wd, wd
	wd.hidx = -1
	o.schedule(wd)
	wd.size = winBytes(wd)
	o.bytes += int64(wd.size)
	o.open.Inc()
}

// remove takes wd out of memory.
func (o *Op) remove(wd *win) {
	delete(o.wins, winKey{wd.key, wd.start})
	wd.prev.next, wd.next.prev = wd.next, wd.prev
	wd.prev, wd.next = nil, nil
	if wd.hidx >= 0 {
		heap.Remove(&o.timers, wd.hidx)
	}
	o.bytes -= int64(wd.size)
	o.open.Dec()
}

// used moves wd to the front of the recency list.
func (o *Op) used(wd *win) {
	if o.lru.next == wd {
		return
	}
	wd.prev.next, wd.next.prev = wd.next, wd.prev
	wd.prev, wd.next = &o.lru, o.lru.next
	wd.prev.next, wd.next.prev = wd, wd
}

// winOverhead is the memory of a window besides its key and its
// accumulators: the struct and its entry in the map (with the map's slack).
const winOverhead = int(unsafe.Sizeof(win{})) + 96

func winBytes(wd *win) int {
	n := winOverhead + len(wd.key) + len(wd.accs)*int(accSize)
	for i := range wd.accs {
		n += wd.accs[i].mem
	}
	return n
}

// resize updates wd's size after its accumulators changed.
func (o *Op) resize(wd *win) {
	n := winBytes(wd)
	o.bytes += int64(n - wd.size)
	wd.size = n
}

// schedule sets wd's timer: its end, or after its result the end of its
// allowed lateness.
func (o *Op) schedule(wd *win) {
	wd.at = wd.end - 1
	if wd.fired {
		wd.at += o.w.allowedLateness
	}
	if wd.hidx < 0 {
		heap.Push(&o.timers, wd)
	} else {
		heap.Fix(&o.timers, wd.hidx)
	}
}

// sessionFor returns the session of key that [start, end) falls in,
// merging every session it overlaps into one.
func (o *Op) sessionFor(key string, start, end int64) (*win, error) {
	starts := o.sessions[key]
	var merged *win
	mStart, mEnd := start, end
	keep := starts[:0:0]
	for _, s := range starts {
		wd := o.wins[winKey{key, s}]
		if s >= end || start >= wd.end { // no overlap
			keep = append(keep, s)
			continue
		}
		mStart, mEnd = min(mStart, s), max(mEnd, wd.end)
		o.remove(wd)
		if merged == nil {
			merged = wd
			continue
		}
		for j := range o.w.aggs {
			merged.accs[j].merge(&o.w.aggs[j], &wd.accs[j])
		}
		merged.held = append(merged.held, wd.held...)
		merged.fired = merged.fired || wd.fired
		if err := o.unstore(wd); err != nil {
			return nil, err
		}
	}
	if merged == nil {
		merged = &win{key: key, accs: make([]acc, len(o.w.aggs))}
	}
	merged.start, merged.end, merged.unsaved = mStart, mEnd, true
	if merged.stored && (merged.sStart != mStart || merged.sEnd != mEnd) {
		// Its stored copy is under the key it no longer has.
		if err := o.unstore(merged); err != nil {
			return nil, err
		}
	}
	// It took events after its result (if fired): its timer drops it
	// after its lateness.
	o.insert(merged)
	o.sessions[key] = insertSorted(keep, mStart)
	return merged, nil
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
	if err := o.fireDue(out); err != nil {
		return err
	}
	if err := o.fireStored(out); err != nil {
		return err
	}
	if o.w.earlyFire > 0 && now-o.lastEarly >= o.w.earlyFire {
		o.lastEarly = now
		for _, wd := range o.wins {
			if !wd.fired && wd.dirty {
				o.emit(out, wd, false)
			}
		}
	}
	return o.evict(out)
}

// fireDue emits the windows in memory whose end the clock has passed and
// drops those past their lateness.
func (o *Op) fireDue(out *runtime.Collector) error {
	for len(o.timers) > 0 && o.clock != event.NoWatermark && o.timers[0].at <= o.clock {
		wd := o.timers[0]
		if !wd.fired {
			o.emit(out, wd, true)
			wd.fired, wd.unsaved = true, true
			if o.w.allowedLateness > 0 {
				o.schedule(wd)
				continue
			}
		}
		if err := o.drop(wd); err != nil {
			return err
		}
	}
	return nil
}

// drop forgets a window, in memory and in the store.
func (o *Op) drop(wd *win) error {
	o.remove(wd)
	if o.w.kind == session {
		ss := o.sessions[wd.key]
		for i, s := range ss {
			if s == wd.start {
				ss = append(ss[:i], ss[i+1:]...)
				break
			}
		}
		if len(ss) == 0 {
			delete(o.sessions, wd.key)
		} else {
			o.sessions[wd.key] = ss
		}
	}
	return o.unstore(wd)
}

// emit sends the window's result; final results release the
// acknowledgements the window held.
func (o *Op) emit(out *runtime.Collector, wd *win, final bool) {
	w := o.w
	b := make([]byte, 0, 64+16*len(w.aggs))
	b = append(b, '{', '"')
	b = append(b, w.keyField...)
	b = append(b, '"', ':')
	b = jsondoc.AppendValue(b, jsondoc.Value{Kind: jsondoc.String, S: []byte(wd.key)})
	b = append(b, `,"window_start":`...)
	b = strconv.AppendInt(b, floorDiv(wd.start, 1e6), 10)
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
	e := event.Event{Key: []byte(wd.key), Value: b, Time: wd.end - 1, Offset: -1}
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
	if wd.dirty {
		wd.dirty, wd.unsaved = false, true
	}
	out.Emit(e)
}
