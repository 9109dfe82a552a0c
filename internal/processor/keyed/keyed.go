// Package keyed runs custom per-key logic written in Go as a weir operator:
// a state value per key, event-time and processing-time timers, emits, and
// a state TTL — the building block for what the window and join operators
// do not cover (Flink's KeyedProcessFunction, Kafka Streams' Processor).
//
// The state of every key and its timers are part of every checkpoint (the
// state is encoded with encoding/json, so S must round-trip through it).
// Without checkpoints the state lives in memory only, and events are
// acknowledged as they are absorbed: use a state store for state that
// matters.
//
// Threading: the runtime calls the Func from the operator's goroutine only.
package keyed

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
)

// Func is the per-key logic. OnEvent sees each event of a key with the
// key's state; OnTimer sees each timer the key set, once the watermark
// (event-time timers) or the wall clock (processing-time timers) reaches
// its time.
type Func[S any] interface {
	OnEvent(c *Context[S], ev *event.Event) error
	OnTimer(c *Context[S], t Timer) error
}

// Timer is a timer of one key.
type Timer struct {
	At         int64 // Unix nanoseconds
	Processing bool  // the wall clock rather than event time
}

// Options tune an operator.
type Options struct {
	// TTL forgets the state (and timers) of a key that saw no event for
	// this long, by the wall clock; 0 keeps state until the Func clears it.
	TTL time.Duration
}

// Context is a key's view during one call.
type Context[S any] struct {
	op  *Op[S]
	key string
	ks  *keyState[S]
	out *runtime.Collector
}

// Key is the key of the event or timer.
func (c *Context[S]) Key() string { return c.key }

// State returns the key's state, zero for a new key. Changes through the
// pointer are kept.
func (c *Context[S]) State() *S { return &c.ks.State }

// Clear forgets the key's state and its timers.
func (c *Context[S]) Clear() {
	var zero S
	c.ks.State = zero
	c.ks.cleared = true
	c.ks.Timers = nil
}

// Watermark is the operator's event-time watermark.
func (c *Context[S]) Watermark() int64 { return c.op.wm }

// Now is the wall clock of the current call, Unix nanoseconds.
func (c *Context[S]) Now() int64 { return c.op.now }

// Emit sends an event downstream with the given JSON value and event time;
// its key is the current key.
func (c *Context[S]) Emit(value []byte, t int64) {
	e := event.Event{Value: value, Time: t, Offset: -1}
	if c.op.keyed {
		e.Key = []byte(c.key)
	}
	c.out.Emit(e)
}

// SetTimer registers a timer for the key (setting the same timer twice
// is one timer).
func (c *Context[S]) SetTimer(t Timer) {
	for _, x := range c.ks.Timers {
		if x == t {
			return
		}
	}
	c.ks.Timers = append(c.ks.Timers, t)
	c.op.push(t, c.key)
}

// DeleteTimer removes a timer of the key.
func (c *Context[S]) DeleteTimer(t Timer) {
	for i, x := range c.ks.Timers {
		if x == t {
			c.ks.Timers = append(c.ks.Timers[:i], c.ks.Timers[i+1:]...)
			return
		}
	}
}

// keyState is what the operator keeps per key.
type keyState[S any] struct {
	State    S       `json:"s"`
	Timers   []Timer `json:"t,omitempty"`
	LastSeen int64   `json:"l"` // wall clock of the last event (TTL)
	cleared  bool
	dirty    bool // changed since the last checkpoint (in Op.dirty)
}

type pending struct {
	t   Timer
	key string
}

type timerHeap []pending

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].t.At < h[j].t.At }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(pending)) }
func (h *timerHeap) Pop() any {
	old := *h
	p := old[len(old)-1]
	*h = old[:len(old)-1]
	return p
}

// Op is one instance of a keyed operator.
type Op[S any] struct {
	f     Func[S]
	keyed bool
	rng   opstate.Range // this instance's part of the checkpointed state
	opts  Options

	keys map[string]*keyState[S]
	// gone are the keys forgotten since the last checkpoint (their
	// deletion goes to a changelog).
	gone map[string]bool
	// dirty are the keys whose state changed since the last checkpoint;
	// full makes the next checkpoint rewrite the instance's range (after a
	// restore, which may have read other instances' ranges).
	dirty     []string
	full      bool
	keyBuf    []byte
	eventT    timerHeap
	procT     timerHeap
	ttlCheck  int64
	wm, now   int64
	restoredW int64
}

var _ runtime.Operator = (*Op[int])(nil)
var _ runtime.Stateful = (*Op[int])(nil)

// New returns one instance of an operator running f; keyed says whether
// events arrive keyed (key_by).
func New[S any](f Func[S], env runtime.Env, keyed bool, opts Options) *Op[S] {
	return &Op[S]{f: f, keyed: keyed, rng: opstate.New(env, keyed), opts: opts, keys: map[string]*keyState[S]{}, gone: map[string]bool{}, full: true,
		wm: event.NoWatermark, restoredW: event.NoWatermark}
}

func (o *Op[S]) push(t Timer, key string) {
	if t.Processing {
		heap.Push(&o.procT, pending{t, key})
	} else {
		heap.Push(&o.eventT, pending{t, key})
	}
}

func (o *Op[S]) state(key string) *keyState[S] {
	ks := o.keys[key]
	if ks == nil {
		ks = &keyState[S]{}
		o.keys[key] = ks
		delete(o.gone, key)
	}
	return ks
}

// touch notes that the key's state is about to change.
func (o *Op[S]) touch(key string, ks *keyState[S]) {
	if !ks.dirty {
		ks.dirty = true
		o.dirty = append(o.dirty, key)
	}
}

// settle forgets a key whose state was cleared and has no timers.
func (o *Op[S]) settle(key string, ks *keyState[S]) {
	if ks.cleared && len(ks.Timers) == 0 {
		delete(o.keys, key)
		o.gone[key] = true
	}
	ks.cleared = false
}

// Process implements runtime.Operator.
func (o *Op[S]) Process(_ context.Context, evs []event.Event, out *runtime.Collector) error {
	o.now = time.Now().UnixNano()
	for i := range evs {
		ev := &evs[i]
		key := ""
		if o.keyed {
			key = string(ev.Key)
		}
		ks := o.state(key)
		ks.LastSeen = o.now
		o.touch(key, ks)
		c := Context[S]{op: o, key: key, ks: ks, out: out}
		if err := o.f.OnEvent(&c, ev); err != nil {
			out.Reject(ev, err)
		}
		o.settle(key, ks)
	}
	return nil
}

// Advance implements runtime.Operator.
func (o *Op[S]) Advance(_ context.Context, watermark, now int64, out *runtime.Collector) error {
	o.now = now
	if o.restoredW != event.NoWatermark && watermark < o.restoredW {
		watermark = o.restoredW
	}
	o.wm = max(o.wm, watermark)
	if err := o.fire(&o.eventT, o.wm, false, out); err != nil {
		return err
	}
	if err := o.fire(&o.procT, now, true, out); err != nil {
		return err
	}
	if o.opts.TTL > 0 && now-o.ttlCheck >= int64(o.opts.TTL)/4 {
		o.ttlCheck = now
		for k, ks := range o.keys {
			if now-ks.LastSeen >= int64(o.opts.TTL) {
				delete(o.keys, k)
				o.gone[k] = true
			}
		}
	}
	return nil
}

// fire calls OnTimer for every timer of h due at clock, in time order.
func (o *Op[S]) fire(h *timerHeap, clock int64, processing bool, out *runtime.Collector) error {
	for h.Len() > 0 && (*h)[0].t.At <= clock && clock != event.NoWatermark {
		p := heap.Pop(h).(pending)
		ks := o.keys[p.key]
		if ks == nil {
			continue
		}
		found := false
		for i, x := range ks.Timers {
			if x == p.t {
				ks.Timers = append(ks.Timers[:i], ks.Timers[i+1:]...)
				found = true
				break
			}
		}
		if !found {
			continue // deleted, or already fired
		}
		o.touch(p.key, ks)
		c := Context[S]{op: o, key: p.key, ks: ks, out: out}
		if err := o.f.OnTimer(&c, p.t); err != nil {
			return fmt.Errorf("timer of key %q at %d: %w", p.key, p.t.At, err)
		}
		o.settle(p.key, ks)
	}
	return nil
}

// State layout, per node, in the operators' shared layout (opstate: an
// instance prefix, its watermark under 'm'): 'k' + key → the key's state
// and timers as JSON.

// Snapshot implements runtime.Stateful: the keys changed since the last
// checkpoint, and deletions of those forgotten; after a restore, the
// instance's whole range.
func (o *Op[S]) Snapshot(_ context.Context, w runtime.StateWriter) error {
	if o.full {
		if err := o.rng.Clear(w); err != nil {
			return err
		}
	}
	if err := o.rng.SaveWatermark(w, o.wm); err != nil {
		return err
	}
	if o.full {
		for k, ks := range o.keys {
			if err := o.write(w, k, ks); err != nil {
				return err
			}
			ks.dirty = false
		}
	} else {
		for _, k := range o.dirty {
			if ks := o.keys[k]; ks != nil && ks.dirty {
				if err := o.write(w, k, ks); err != nil {
					return err
				}
				ks.dirty = false
			}
		}
	}
	o.dirty, o.full = o.dirty[:0], false
	for k := range o.gone {
		if err := o.write(w, k, nil); err != nil {
			return err
		}
	}
	clear(o.gone)
	return nil
}

// write writes the state of key k to w, or deletes it when ks is nil.
func (o *Op[S]) write(w runtime.StateWriter, k string, ks *keyState[S]) error {
	o.keyBuf = append(o.rng.Key(o.keyBuf[:0], 'k'), k...)
	if ks == nil {
		return w.Delete(o.keyBuf)
	}
	v, err := json.Marshal(ks)
	if err != nil {
		return fmt.Errorf("state of key %q: %w", k, err)
	}
	return w.Set(o.keyBuf, v)
}

// load takes in a key's stored state and its timers.
func (o *Op[S]) load(key string, v []byte) error {
	ks := &keyState[S]{}
	if err := json.Unmarshal(v, ks); err != nil {
		return fmt.Errorf("keyed state: key %q: %w", key, err)
	}
	o.keys[key] = ks
	delete(o.gone, key)
	for _, t := range ks.Timers {
		o.push(t, key)
	}
	return nil
}

var _ runtime.KeyedState = (*Op[int])(nil)

// EventKey implements runtime.KeyedState.
func (o *Op[S]) EventKey(stateKey []byte) ([]byte, bool) {
	if len(stateKey) < 3 || stateKey[2] != 'k' {
		return nil, false
	}
	return stateKey[3:], true
}

// Release implements runtime.KeyedState: the state of the keys drop
// selects goes to w, and they are forgotten.
func (o *Op[S]) Release(drop func(key []byte) bool, w runtime.StateWriter) error {
	for k, ks := range o.keys {
		if drop([]byte(k)) {
			if err := o.write(w, k, ks); err != nil {
				return err
			}
			delete(o.keys, k)
		}
	}
	for k := range o.gone {
		if drop([]byte(k)) {
			if err := o.write(w, k, nil); err != nil {
				return err
			}
			delete(o.gone, k)
		}
	}
	return nil
}

// Acquire implements runtime.KeyedState: the keys accept selects are read
// from this instance's range.
func (o *Op[S]) Acquire(accept func(key []byte) bool, r runtime.StateReader) error {
	return r.Scan(o.rng.Key(nil, 'k'), o.rng.Key(nil, 'k'+1), func(k, v []byte) error {
		k = k[3:]
		if !accept(k) || o.keys[string(k)] != nil {
			return nil
		}
		return o.load(string(k), v)
	})
}

// Restore implements runtime.Stateful.
func (o *Op[S]) Restore(_ context.Context, r runtime.StateReader) error {
	wm, err := opstate.Restore(r, "keyed", func(kind byte, k, v []byte) error {
		if kind != 'k' {
			return fmt.Errorf("keyed state: unknown key %q %x", kind, k)
		}
		if !o.rng.Owns(k) {
			return nil
		}
		return o.load(string(k), v)
	})
	if err != nil {
		return err
	}
	o.restoredW, o.wm = wm, max(o.wm, wm)
	return nil
}

// Committed implements runtime.Stateful.
func (o *Op[S]) Committed(context.Context, uint64) error { return nil }
