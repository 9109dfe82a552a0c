// Package join is the join operator: it pairs events of two sides (told
// apart by an expression) that share a key, within a tumbling window, within
// a time interval of each other, or without a time bound.
//
//   - tumbling: every left and right event of a key in the same window
//     [start, start+size) are paired when the watermark closes the window.
//     Result time: the window's end − 1 ns.
//   - interval: a left event at tl and a right event at tr pair when
//     tr − tl is in [lower, upper]; a pair is emitted as soon as both are
//     there, and an event is dropped from the state once the watermark
//     says no partner can come. Result time: the later of the two.
//   - regular: every left and right event of a key pair, with no time
//     bound; the state grows with the input (filter first).
//
// An event at or before the watermark (tumbling: whose window has closed)
// is late: counted, and dead-lettered when the node has a dead_letter
// output. Each result is a JSON object: {"key":…, "left":{…}, "right":{…}},
// plus window_start and window_end (Unix ms) for tumbling joins.
//
// Threading: as for every runtime.Operator.
package join

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

// Config is the YAML configuration of a join processor.
type Config struct {
	Left     config.Expr   `yaml:"left" required:"true" doc:"expression that is true for events of the left side; the others are the right side"`
	Join     string        `yaml:"join" enum:"tumbling|interval|regular" required:"true" doc:"tumbling (size), interval (lower, upper) or regular (no time bound)"`
	Size     time.Duration `yaml:"size" doc:"window length of a tumbling join"`
	Lower    time.Duration `yaml:"lower" doc:"interval join: least right time minus left time (may be negative)"`
	Upper    time.Duration `yaml:"upper" doc:"interval join: greatest right time minus left time"`
	KeyField string        `yaml:"key_field" default:"key" doc:"name of the result field holding the key"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{KeyField: "key"} }

type mode uint8

const (
	tumbling mode = iota
	interval
	regular
)

// Join is a compiled join configuration.
type Join struct {
	mode         mode
	left         *expr.Program
	size         int64
	lower, upper int64
	keyField     string
}

// Compile checks cfg. field names the node in errors; pos gives the
// position of one of its keys.
func Compile(cfg Config, field string, pos func(key string) config.Pos) (*Join, config.Errors) {
	var errs config.Errors
	bad := func(key, msg, expected string) {
		errs.Add(&config.Error{Pos: pos(key), Field: field + "." + key, Msg: msg, Expected: expected})
	}
	j := &Join{size: int64(cfg.Size), lower: int64(cfg.Lower), upper: int64(cfg.Upper), keyField: cfg.KeyField}
	switch cfg.Join {
	case "tumbling":
		j.mode = tumbling
		if cfg.Size <= 0 {
			bad("size", "a tumbling join needs a size", "a duration greater than zero, e.g. size: 10s")
		}
	case "interval":
		j.mode = interval
		if cfg.Lower > cfg.Upper {
			bad("lower", fmt.Sprintf("lower %s is after upper %s", cfg.Lower, cfg.Upper), "lower ≤ upper, e.g. lower: 0s and upper: 1h")
		}
	case "regular":
		j.mode = regular
	}
	if cfg.KeyField == "" {
		bad("key_field", "key_field is empty", "an output field name")
	}
	prog, ce := cfg.Left.Compile(field + ".left")
	if ce == nil {
		if err := expr.CheckBool(prog); err != nil {
			ce = cfg.Left.ErrorAt(field+".left", err)
		}
	}
	if ce != nil {
		errs.Add(ce)
	}
	j.left = prog
	if len(errs) > 0 {
		return nil, errs
	}
	return j, nil
}

// stored is one event held in the join's state.
type stored struct {
	t     int64
	start int64 // window start (tumbling)
	value []byte
	ack   *event.Ack
	seq   uint64
}

// sides holds the events of one key (or one key and window).
type sides struct {
	ev [2][]stored // 0 left, 1 right
}

type bucket struct {
	key   string
	start int64
}

// expiry says when the events of a bucket may go.
type expiry struct {
	at     int64
	bucket bucket
}

type expiries []expiry

func (h expiries) Len() int           { return len(h) }
func (h expiries) Less(i, j int) bool { return h[i].at < h[j].at }
func (h expiries) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiries) Push(x any)        { *h = append(*h, x.(expiry)) }
func (h *expiries) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// Op is one instance of a join operator.
type Op struct {
	j     *Join
	env   runtime.Env
	keyed bool
	hold  bool
	rng   opstate.Range // this instance's part of the checkpointed state

	state map[bucket]*sides
	// gone are the state keys of the events dropped since the last
	// checkpoint, for their deletion in a changelog.
	gone [][]byte
	// added are the events taken in since the last checkpoint; full makes
	// the next checkpoint rewrite the instance's range (after a restore).
	added    []addedEvent
	full     bool
	expiries expiries
	wm       int64
	restored int64
	seq      uint64
	rec      runtime.Record

	late, pairs prometheus.Counter
	held        prometheus.Gauge
}

var (
	_ runtime.Operator = (*Op)(nil)
	_ runtime.Stateful = (*Op)(nil)
)

// New returns instance env.Instance of the join; keyed says whether events
// arrive keyed (the node has key_by).
func (j *Join) New(env runtime.Env, keyed bool) (*Op, error) {
	o := &Op{j: j, env: env, keyed: keyed, rng: opstate.New(env, keyed), hold: !env.Checkpointing && j.mode != regular,
		state: map[bucket]*sides{}, wm: event.NoWatermark, restored: event.NoWatermark, full: true}
	labels := prometheus.Labels{"node": env.Node, "instance": strconv.Itoa(env.Instance)}
	o.late = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_join_late_events_total", Help: "Events that arrived after the watermark had passed them.", ConstLabels: labels})
	o.pairs = prometheus.NewCounter(prometheus.CounterOpts{Name: "weir_join_results_total", Help: "Pairs emitted.", ConstLabels: labels})
	o.held = prometheus.NewGauge(prometheus.GaugeOpts{Name: "weir_join_events_held", Help: "Events held in the join's state, both sides.", ConstLabels: labels})
	if r := env.Registerer; r != nil {
		for _, c := range []prometheus.Collector{o.late, o.pairs, o.held} {
			if err := r.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return o, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Process implements runtime.Operator.
func (o *Op) Process(_ context.Context, evs []event.Event, out *runtime.Collector) error {
	j := o.j
	for i := range evs {
		ev := &evs[i]
		o.rec.Reset(ev)
		isLeft, err := j.left.EvalBool(&o.rec)
		if err != nil {
			out.Reject(ev, fmt.Errorf("join side: %w", err))
			continue
		}
		side := 1
		if isLeft {
			side = 0
		}
		key := ""
		if o.keyed {
			key = string(ev.Key)
		}
		// A copy: the event's bytes may share a large arena chunk that
		// the state would otherwise keep alive.
		s := stored{t: ev.Time, value: bytes.Clone(ev.Value), seq: o.seq}
		o.seq++
		switch j.mode {
		case tumbling:
			s.start = floorDiv(ev.Time, j.size) * j.size
			if o.wm != event.NoWatermark && s.start+j.size-1 <= o.wm {
				o.late.Inc()
				out.Late(ev)
				continue
			}
		case interval:
			if o.wm != event.NoWatermark && ev.Time <= o.wm {
				o.late.Inc()
				out.Late(ev)
				continue
			}
		}
		b := bucket{key: key, start: s.start}
		sd := o.bucket(b)
		if j.mode != tumbling {
			// Pair with what the other side holds now.
			for _, p := range sd.ev[1-side] {
				l, r := s, p
				if side == 1 {
					l, r = p, s
				}
				if j.mode == interval && (r.t-l.t < j.lower || r.t-l.t > j.upper) {
					continue
				}
				o.emit(out, b, &l, &r, max(l.t, r.t))
			}
		}
		if o.hold && ev.Ack != nil {
			ev.Ack.Add(1)
			s.ack = ev.Ack
		}
		o.keep(sd, b, side, s)
		if !o.full && o.env.Checkpointing {
			o.added = append(o.added, addedEvent{b: b, side: side, s: s})
		}
	}
	return nil
}

// addedEvent is an event taken in since the last checkpoint.
type addedEvent struct {
	b    bucket
	side int
	s    stored
}

// bucket returns the events held for b, creating the bucket (and, for a
// tumbling join, the expiry of its window).
func (o *Op) bucket(b bucket) *sides {
	sd := o.state[b]
	if sd == nil {
		sd = &sides{}
		o.state[b] = sd
		if o.j.mode == tumbling {
			heap.Push(&o.expiries, expiry{at: b.start + o.j.size - 1, bucket: b})
		}
	}
	return sd
}

// keep holds s on side of bucket b. In an interval join it stays until no
// partner can come: a left event until the watermark passes t+upper, a
// right one t−lower.
func (o *Op) keep(sd *sides, b bucket, side int, s stored) {
	if o.j.mode == interval {
		at := s.t + o.j.upper
		if side == 1 {
			at = s.t - o.j.lower
		}
		heap.Push(&o.expiries, expiry{at: at, bucket: b})
	}
	sd.ev[side] = append(sd.ev[side], s)
	o.held.Inc()
}

// emit sends one pair.
func (o *Op) emit(out *runtime.Collector, b bucket, l, r *stored, t int64) {
	j := o.j
	v := make([]byte, 0, len(l.value)+len(r.value)+len(b.key)+64)
	v = append(v, '{', '"')
	v = append(v, j.keyField...)
	v = append(v, '"', ':')
	v = jsondoc.AppendValue(v, jsondoc.Value{Kind: jsondoc.String, S: []byte(b.key)})
	if j.mode == tumbling {
		v = append(v, `,"window_start":`...)
		v = strconv.AppendInt(v, floorDiv(b.start, 1e6), 10)
		v = append(v, `,"window_end":`...)
		v = strconv.AppendInt(v, floorDiv(b.start+j.size, 1e6), 10)
	}
	v = append(v, `,"left":`...)
	v = append(v, l.value...)
	v = append(v, `,"right":`...)
	v = append(v, r.value...)
	v = append(v, '}')
	e := event.Event{Value: v, Time: t, Offset: -1}
	if o.keyed {
		e.Key = []byte(b.key)
	}
	if o.hold {
		la, ra := l.ack, r.ack
		la.Add(1)
		ra.Add(1)
		e.Ack = event.NewAck(1, func() { la.Done(1); ra.Done(1) })
	}
	o.pairs.Inc()
	out.Emit(e)
}

// Advance implements runtime.Operator.
func (o *Op) Advance(_ context.Context, watermark, _ int64, out *runtime.Collector) error {
	if o.restored != event.NoWatermark && watermark < o.restored {
		watermark = o.restored
	}
	if watermark <= o.wm {
		return nil
	}
	o.wm = watermark
	for len(o.expiries) > 0 && o.expiries[0].at <= o.wm {
		x := heap.Pop(&o.expiries).(expiry)
		sd := o.state[x.bucket]
		if sd == nil {
			continue
		}
		if o.j.mode == tumbling {
			for li := range sd.ev[0] {
				for ri := range sd.ev[1] {
					o.emit(out, x.bucket, &sd.ev[0][li], &sd.ev[1][ri], x.bucket.start+o.j.size-1)
				}
			}
			o.forget(x.bucket, sd.ev[0], 0)
			o.forget(x.bucket, sd.ev[1], 1)
			o.release(sd.ev[0])
			o.release(sd.ev[1])
			delete(o.state, x.bucket)
			continue
		}
		// interval: drop the events whose partners can no longer come.
		sd.ev[0] = o.expire(x.bucket, 0, sd.ev[0], func(s *stored) bool { return s.t+o.j.upper > o.wm })
		sd.ev[1] = o.expire(x.bucket, 1, sd.ev[1], func(s *stored) bool { return s.t-o.j.lower > o.wm })
		if len(sd.ev[0]) == 0 && len(sd.ev[1]) == 0 {
			delete(o.state, x.bucket)
		}
	}
	return nil
}

// expire drops the events that are no longer alive, giving back their
// acknowledgements.
func (o *Op) expire(b bucket, side int, ss []stored, alive func(*stored) bool) []stored {
	w := 0
	for i := range ss {
		if alive(&ss[i]) {
			ss[w] = ss[i]
			w++
			continue
		}
		o.forget(b, ss[i:i+1], side)
		if ss[i].ack != nil {
			ss[i].ack.Done(1)
		}
		o.held.Dec()
	}
	clear(ss[w:])
	return ss[:w]
}

// forget notes the state keys of events leaving the state, for the next
// checkpoint to delete (one that rewrites the range needs none).
func (o *Op) forget(b bucket, ss []stored, side int) {
	if !o.env.Checkpointing || o.full {
		return
	}
	for i := range ss {
		o.gone = append(o.gone, o.eventKey(nil, side, ss[i].seq, b.key))
	}
}

func (o *Op) release(ss []stored) {
	for i := range ss {
		if ss[i].ack != nil {
			ss[i].ack.Done(1)
		}
		o.held.Dec()
	}
}
