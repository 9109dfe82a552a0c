package runtime

import (
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
)

// Event fate: follow one input event through the graph and record what
// became of it at every node — passed on, changed (with the new value),
// filtered out, failed (with the error and what the node's on_error did),
// taken in by an operator, written by an output — and when it was
// acknowledged (everything derived from it written or dropped on purpose,
// so the input may commit past it).
//
// A request names an input and optionally a filter; the next event that
// input emits and the filter accepts is traced. Tracing works through the
// event's Ack: the traced event gets an Ack of its own that carries the
// trace ID (event.NewTracedAck) and passes its release on to the batch's
// Ack, and every event derived from it (a broadcast copy, a dead letter)
// shares that Ack. Stages look for traced events only while a trace is in
// progress (one atomic load per batch); otherwise tracing costs nothing.

const (
	// MaxFates is how many traces are kept, pending or done.
	MaxFates = 20
	// MaxPendingFates bounds the requests waiting for a matching event.
	MaxPendingFates = 5
	// FateRequestTTL is how long a request waits for a matching event, and
	// how long a traced event may stay unacknowledged before its trace no
	// longer keeps the stages looking.
	FateRequestTTL = 5 * time.Minute
	maxFateSteps   = 64
	fateValueMax   = 2 << 10
)

// Errors of RequestFate.
var (
	ErrNotAnInput    = errors.New("not an input: a fate starts at an input")
	ErrTooManyFates  = errors.New("too many fate requests are waiting for an event")
	ErrPipelineEnded = errors.New("the pipeline has stopped")
)

// Fate is what became of one traced event (or a request still waiting for
// one). Values are copies, cut at 2 KiB.
type Fate struct {
	ID        uint64
	Input     string
	Filter    string
	Requested time.Time
	// Pending: no event has matched yet. Expired: none matched in
	// FateRequestTTL (or the pipeline stopped first).
	Pending, Expired bool
	// The event as the input read it.
	Read      time.Time
	Offset    int64 // -1 when the source has no positions
	Source    string
	Key       []byte
	Value     []byte
	Truncated bool // Value was cut
	Steps     []FateStep
	// Acked is when every event derived from it was written or dropped
	// on purpose (zero until then).
	Acked time.Time
	// MoreSteps counts steps left out past the first 64 (a fan-out can
	// make many).
	MoreSteps int
}

// FateStep is one thing that happened to the traced event (or to an event
// derived from it) at a node.
type FateStep struct {
	Time time.Time
	Node string
	// What: "read", "passed", "changed", "filtered", "keyed", "failed",
	// "taken_in" (by an operator), "written", "acknowledged".
	What string
	// Detail says more: the error of a failure and what on_error did, the
	// key, the output's type.
	Detail string
	// Value is the event's value after a "changed" step.
	Value     []byte `json:",omitempty"`
	Truncated bool
}

type fateRec struct {
	Fate
	filter *expr.Program
	rec    Record
	ev     event.Event
	live   bool // counted in fates.active
}

type fates struct {
	// active counts requests waiting and traced events not yet
	// acknowledged: while it is above zero, stages look for traced events.
	active atomic.Int32

	mu     sync.Mutex
	next   uint64
	list   []*fateRec // oldest first
	closed bool
}

// RequestFate asks to trace the next event input emits that filter (nil:
// any) accepts. filterText is kept for display. It returns the trace's ID.
func (p *Pipeline) RequestFate(input string, filter *expr.Program, filterText string) (uint64, error) {
	n := p.Node(input)
	if n == nil || n.Kind != dag.Input {
		return 0, ErrNotAnInput
	}
	f := &p.fates
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, ErrPipelineEnded
	}
	now := time.Now()
	f.expireLocked(now)
	pending := 0
	for _, r := range f.list {
		if r.Pending {
			pending++
		}
	}
	if pending >= MaxPendingFates {
		return 0, ErrTooManyFates
	}
	f.next++
	r := &fateRec{Fate: Fate{ID: f.next, Input: input, Filter: filterText, Requested: now, Pending: true, Offset: -1}, filter: filter, live: true}
	f.list = append(f.list, r)
	f.active.Add(1)
	for len(f.list) > MaxFates {
		f.dropLocked(0)
	}
	return r.ID, nil
}

// Fates returns every kept trace, newest first.
func (p *Pipeline) Fates() []Fate {
	f := &p.fates
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(time.Now())
	out := make([]Fate, 0, len(f.list))
	for i := len(f.list) - 1; i >= 0; i-- {
		out = append(out, f.list[i].copyFate())
	}
	return out
}

// FateByID returns one trace.
func (p *Pipeline) FateByID(id uint64) (Fate, bool) {
	f := &p.fates
	f.mu.Lock()
	defer f.mu.Unlock()
	f.expireLocked(time.Now())
	if r := f.findLocked(id); r != nil {
		return r.copyFate(), true
	}
	return Fate{}, false
}

func (r *fateRec) copyFate() Fate {
	c := r.Fate
	// Branches of a fan-out record concurrently: show the steps in time
	// order.
	c.Steps = slices.Clone(r.Steps)
	slices.SortStableFunc(c.Steps, func(a, b FateStep) int { return a.Time.Compare(b.Time) })
	return c
}

func (f *fates) findLocked(id uint64) *fateRec {
	for _, r := range f.list {
		if r.ID == id {
			return r
		}
	}
	return nil
}

// release stops counting r in active.
func (f *fates) releaseLocked(r *fateRec) {
	if r.live {
		r.live = false
		f.active.Add(-1)
	}
}

func (f *fates) dropLocked(i int) {
	f.releaseLocked(f.list[i])
	f.list = slices.Delete(f.list, i, i+1)
}

// expireLocked ends requests that found no event, and stops looking for
// traced events that stayed unacknowledged, after FateRequestTTL.
func (f *fates) expireLocked(now time.Time) {
	for _, r := range f.list {
		if !r.live {
			continue
		}
		if r.Pending && now.Sub(r.Requested) > FateRequestTTL {
			r.Pending, r.Expired = false, true
			f.releaseLocked(r)
		} else if !r.Pending && now.Sub(r.Read) > FateRequestTTL {
			f.releaseLocked(r)
		}
	}
}

// close ends pending requests when the pipeline stops.
func (f *fates) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for _, r := range f.list {
		if r.Pending {
			r.Pending, r.Expired = false, true
		}
		f.releaseLocked(r)
	}
}

// tracing reports whether stages should look for traced events.
func (f *fates) tracing() bool { return f.active.Load() > 0 }

// clip copies b, cut at fateValueMax bytes.
func clip(b []byte) ([]byte, bool) {
	if len(b) > fateValueMax {
		return slices.Clone(b[:fateValueMax]), true
	}
	return slices.Clone(b), false
}

// mark runs in an input's Emit while tracing: events of b that a pending
// request of input accepts become traced.
func (f *fates) mark(input string, b *event.Batch) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	var waiting []*fateRec
	for _, r := range f.list {
		if r.Pending && r.Input == input {
			waiting = append(waiting, r)
		}
	}
	if len(waiting) == 0 {
		return
	}
	for i := range b.Events {
		ev := &b.Events[i]
		if ev.Ack.TraceID() != 0 {
			continue
		}
		for wi, r := range waiting {
			if r.filter != nil {
				r.ev = *ev
				r.rec.Reset(&r.ev)
				ok, err := r.filter.EvalBool(&r.rec)
				if err != nil || !ok {
					continue
				}
			}
			r.Pending = false
			r.Read = now
			r.Offset = ev.Offset
			if src, ok := ev.Header("source"); ok {
				r.Source = string(src)
			}
			r.Key = slices.Clone(ev.Key)
			r.Value, r.Truncated = clip(ev.Value)
			detail := "read"
			if r.Offset >= 0 {
				detail += " at offset " + strconv.FormatInt(r.Offset, 10)
			}
			r.Steps = append(r.Steps, FateStep{Time: now, Node: input, What: "read", Detail: detail})
			parent, id := ev.Ack, r.ID
			ev.Ack = event.NewTracedAck(id, func() {
				f.acked(id)
				parent.Done(1)
			})
			waiting = slices.Delete(waiting, wi, wi+1)
			break
		}
		if len(waiting) == 0 {
			return
		}
	}
}

func (f *fates) acked(id uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.findLocked(id)
	if r == nil {
		return
	}
	r.Acked = time.Now()
	r.addStepLocked(FateStep{Time: r.Acked, What: "acknowledged",
		Detail: "every event derived from it is written or dropped on purpose: the input may commit past it"})
	f.releaseLocked(r)
}

func (r *fateRec) addStepLocked(s FateStep) {
	if len(r.Steps) >= maxFateSteps {
		r.MoreSteps++
		return
	}
	r.Steps = append(r.Steps, s)
}

// step records what happened to a traced event at node.
func (f *fates) step(id uint64, node, what, detail string, value []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.findLocked(id)
	if r == nil {
		return
	}
	s := FateStep{Time: time.Now(), Node: node, What: what, Detail: detail}
	if value != nil {
		s.Value, s.Truncated = clip(value)
	}
	r.addStepLocked(s)
}

// afterProcessor records the outcome of one processor of a fused chain for
// a traced event that it passed on: "changed" with the new value when its
// JSON differs from prev (which is updated), else "passed".
func (f *fates) afterProcessor(id uint64, node string, rec *Record, prev *[]byte) {
	cur := rec.Event.Value
	if rec.Modified() {
		cur = rec.doc.AppendJSON(nil)
	}
	if string(cur) == string(*prev) {
		f.step(id, node, "passed", "", nil)
		return
	}
	*prev = cur
	f.step(id, node, "changed", "", cur)
}

// errorAction describes what an error policy did.
func errorAction(h *errHandler) string {
	switch h.node.OnError {
	case dag.Fail:
		return "on_error: fail — the pipeline stops"
	case dag.DeadLetter:
		return "on_error: dead_letter — sent to " + h.node.DeadLetter.Name
	}
	return "on_error: drop — dropped and counted"
}
