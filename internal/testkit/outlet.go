// Package testkit holds fakes for testing weir components without a running
// pipeline.
//
// Outlet stands in for the runtime side of an input: it records what the
// input emits and rejects, gives back acknowledgements (at once, or when the
// test says so), and can hold Emit to simulate backpressure. All its methods
// are safe for concurrent use, so a test can inspect or drive an Outlet while
// an input's Run goroutine is emitting into it.
package testkit

import (
	"context"
	"slices"
	"sync"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// Outlet is a runtime.Outlet that records emitted batches and rejected
// events. The zero value records everything and acknowledges every emitted
// event as soon as it has been recorded, like a pipeline whose outputs never
// fail.
//
// Recorded events are deep copies (Key, Value and Headers are copied), so the
// input may reuse nothing it was not allowed to and the test still sees what
// was emitted. A copy keeps the original Ack pointer for identity checks;
// tests must not give back references through it. Emitted batches are
// released to the pool after they have been recorded.
//
// Set the exported fields before the first Emit; do not change them later.
type Outlet struct {
	// ManualAck leaves emitted and rejected events unacknowledged until the
	// test calls Ack, AckBatch or AckReject.
	ManualAck bool
	// CountOnly counts emitted events and value bytes but records nothing,
	// so that benchmarks measure the input and not the copying.
	CountOnly bool
	// EmitErr, when non-nil, is returned by every Emit (after the batch has
	// been released, with its events neither recorded nor acknowledged), as
	// a failing or stopping pipeline would.
	EmitErr error
	// RejectErr, when non-nil, is returned by every Reject after the event
	// has been recorded and its reference given back, like an error policy
	// of "fail".
	RejectErr error

	mu sync.Mutex
	// notify, when non-nil, is closed at the next change of the recorded
	// state and set back to nil; waiters create it.
	notify  chan struct{}
	gate    chan struct{} // non-nil while Emit is blocked; closed by Unblock
	waiting int           // Emit calls waiting at the gate
	batches []Batch
	rejects []Rejected
	events  int64 // emitted events
	bytes   int64 // emitted value bytes
	pending int64 // references not yet given back (ManualAck)
}

var _ runtime.Outlet = (*Outlet)(nil)

// Batch is a recorded emitted batch.
type Batch struct {
	Events []event.Event
	// Born is the batch's Born field as the input set it.
	Born int64

	refs  []ackRun // references held until acknowledged (ManualAck)
	acked bool
}

// Rejected is a recorded rejected event and the error it was rejected with.
type Rejected struct {
	Event event.Event
	Err   error

	acked bool
}

// ackRun is n references on one Ack.
type ackRun struct {
	ack *event.Ack
	n   int
}

// Emit records b, releases it and, unless ManualAck is set, gives back its
// events' references. It waits while the outlet is blocked (see Block) and
// returns ctx.Err() if ctx ends first, without recording the batch.
func (o *Outlet) Emit(ctx context.Context, b *event.Batch) error {
	if err := o.waitGate(ctx); err != nil {
		b.Release()
		return err
	}
	if o.EmitErr != nil {
		b.Release()
		return o.EmitErr
	}
	var nbytes int64
	for i := range b.Events {
		nbytes += int64(len(b.Events[i].Value))
	}
	var rec Batch
	if !o.CountOnly {
		rec.Events = make([]event.Event, len(b.Events))
		for i := range b.Events {
			rec.Events[i] = copyEvent(b.Events[i])
		}
		rec.Born = b.Born
	}
	var refs int64
	if o.ManualAck {
		rec.refs = ackRuns(b.Events)
		for _, r := range rec.refs {
			refs += int64(r.n)
		}
	} else {
		event.DoneAll(b.Events)
		rec.acked = true
	}
	n := int64(len(b.Events))
	b.Release()

	o.mu.Lock()
	o.events += n
	o.bytes += nbytes
	o.pending += refs
	if !o.CountOnly || o.ManualAck {
		o.batches = append(o.batches, rec)
	}
	o.changedLocked()
	o.mu.Unlock()
	return nil
}

// Reject records e and err and, unless ManualAck is set, gives back e's
// reference. It returns RejectErr.
func (o *Outlet) Reject(ctx context.Context, e event.Event, err error) error {
	rec := Rejected{Event: copyEvent(e), Err: err}
	if !o.ManualAck {
		e.Ack.Done(1)
		rec.acked = true
	}
	o.mu.Lock()
	o.rejects = append(o.rejects, rec)
	if o.ManualAck && e.Ack != nil {
		o.pending++
	}
	o.changedLocked()
	o.mu.Unlock()
	return o.RejectErr
}

func (o *Outlet) waitGate(ctx context.Context) error {
	o.mu.Lock()
	gate := o.gate
	if gate == nil {
		o.mu.Unlock()
		return nil
	}
	o.waiting++
	o.changedLocked()
	o.mu.Unlock()

	var err error
	select {
	case <-gate:
	case <-ctx.Done():
		err = ctx.Err()
	}
	o.mu.Lock()
	o.waiting--
	o.changedLocked()
	o.mu.Unlock()
	return err
}

// Block makes later Emit calls wait until Unblock (or their context ends),
// as a full downstream queue would.
func (o *Outlet) Block() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gate == nil {
		o.gate = make(chan struct{})
	}
}

// Unblock lets waiting and later Emit calls through.
func (o *Outlet) Unblock() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.gate != nil {
		close(o.gate)
		o.gate = nil
	}
}

// Waiting reports how many Emit calls are waiting because of Block.
func (o *Outlet) Waiting() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.waiting
}

// Ack gives back every outstanding reference (ManualAck) and returns how
// many events that acknowledged.
func (o *Outlet) Ack() int {
	o.mu.Lock()
	var runs []ackRun
	var rejected []*event.Ack
	for i := range o.batches {
		if !o.batches[i].acked {
			o.batches[i].acked = true
			runs = append(runs, o.batches[i].refs...)
		}
	}
	for i := range o.rejects {
		if !o.rejects[i].acked {
			o.rejects[i].acked = true
			rejected = append(rejected, o.rejects[i].Event.Ack)
		}
	}
	n := o.pending
	o.pending = 0
	o.changedLocked()
	o.mu.Unlock()

	// Acks run callbacks; call them without holding the lock.
	for _, r := range runs {
		r.ack.Done(r.n)
	}
	for _, a := range rejected {
		a.Done(1)
	}
	return int(n)
}

// AckBatch gives back the references of the i-th emitted batch (in emission
// order). It reports false if the batch does not exist or was acknowledged
// already.
func (o *Outlet) AckBatch(i int) bool {
	o.mu.Lock()
	if i < 0 || i >= len(o.batches) || o.batches[i].acked {
		o.mu.Unlock()
		return false
	}
	b := &o.batches[i]
	b.acked = true
	runs := b.refs
	for _, r := range runs {
		o.pending -= int64(r.n)
	}
	o.changedLocked()
	o.mu.Unlock()
	for _, r := range runs {
		r.ack.Done(r.n)
	}
	return true
}

// AckReject gives back the reference of the i-th rejected event. It reports
// false if there is no such reject or it was acknowledged already.
func (o *Outlet) AckReject(i int) bool {
	o.mu.Lock()
	if i < 0 || i >= len(o.rejects) || o.rejects[i].acked {
		o.mu.Unlock()
		return false
	}
	r := &o.rejects[i]
	r.acked = true
	a := r.Event.Ack
	if a != nil {
		o.pending--
	}
	o.changedLocked()
	o.mu.Unlock()
	a.Done(1)
	return true
}

// Pending reports how many events (emitted or rejected) still hold a
// reference that the outlet has not given back.
func (o *Outlet) Pending() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return int(o.pending)
}

// Counts reports how many events were emitted and the sum of their value
// lengths. It works with CountOnly too.
func (o *Outlet) Counts() (events, bytes int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.events, o.bytes
}

// Batches returns the recorded batches in emission order.
func (o *Outlet) Batches() []Batch {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Batch, len(o.batches))
	for i, b := range o.batches {
		out[i] = Batch{Events: b.Events, Born: b.Born}
	}
	return out
}

// Events returns all recorded emitted events in emission order.
func (o *Outlet) Events() []event.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []event.Event
	for _, b := range o.batches {
		out = append(out, b.Events...)
	}
	return out
}

// Values returns the values of all recorded emitted events, as strings, in
// emission order.
func (o *Outlet) Values() []string {
	evs := o.Events()
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = string(evs[i].Value)
	}
	return out
}

// Rejects returns the recorded rejects in order.
func (o *Outlet) Rejects() []Rejected {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.rejects)
}

// WaitEvents waits until at least n events have been emitted, or ctx ends.
func (o *Outlet) WaitEvents(ctx context.Context, n int) error {
	return o.Wait(ctx, func(o *Outlet) bool {
		ev, _ := o.countsLocked()
		return ev >= int64(n)
	})
}

// WaitRejects waits until at least n events have been rejected, or ctx ends.
func (o *Outlet) WaitRejects(ctx context.Context, n int) error {
	return o.Wait(ctx, func(o *Outlet) bool { return len(o.rejects) >= n })
}

// Wait waits until cond reports true or ctx ends. cond runs with the
// outlet's lock held, each time its recorded state changes: it may read
// the outlet only through methods ending in Locked.
func (o *Outlet) Wait(ctx context.Context, cond func(*Outlet) bool) error {
	for {
		o.mu.Lock()
		if cond(o) {
			o.mu.Unlock()
			return nil
		}
		if o.notify == nil {
			o.notify = make(chan struct{})
		}
		ch := o.notify
		o.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// countsLocked is Counts for use inside a Wait condition.
func (o *Outlet) countsLocked() (events, bytes int64) { return o.events, o.bytes }

// RejectsLocked returns the number of rejects, for use inside a Wait
// condition.
func (o *Outlet) RejectsLocked() int { return len(o.rejects) }

// EventsLocked returns the number of emitted events, for use inside a Wait
// condition.
func (o *Outlet) EventsLocked() int64 { return o.events }

// WaitingLocked returns the number of Emit calls held by Block, for use
// inside a Wait condition.
func (o *Outlet) WaitingLocked() int { return o.waiting }

func (o *Outlet) changedLocked() {
	if o.notify != nil {
		close(o.notify)
		o.notify = nil
	}
}

func copyEvent(e event.Event) event.Event {
	c := e
	c.Key = cloneBytes(e.Key)
	c.Value = cloneBytes(e.Value)
	if e.Checked() {
		c.MarkChecked() // the same bytes
	}
	if e.Headers != nil {
		c.Headers = make([]event.Header, len(e.Headers))
		for i, h := range e.Headers {
			c.Headers[i] = event.Header{Key: h.Key, Value: cloneBytes(h.Value)}
		}
	}
	return c
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func ackRuns(evs []event.Event) []ackRun {
	var runs []ackRun
	for i := range evs {
		a := evs[i].Ack
		if a == nil {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1].ack == a {
			runs[n-1].n++
			continue
		}
		runs = append(runs, ackRun{ack: a, n: 1})
	}
	return runs
}
