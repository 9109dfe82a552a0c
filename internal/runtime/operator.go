package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
)

// Operator is a stateful processor that runs as a stage of its own (it is
// never fused): it absorbs the events of whole batches into its state and
// emits events of its own when event time or processing time says so —
// windows, joins, sessions. One Operator value is used by one goroutine,
// apart from the Stateful methods (see there).
//
// Process absorbs the events of one batch; the runtime gives back each
// event's Ack reference after Process returns. With checkpoints
// (Env.Checkpointing) that is all: the checkpoint covers what the operator
// absorbed. Without checkpoints, an operator must keep the acknowledgement
// open until what it derived from an event is written: it takes a reference
// (Ack.Add) and hands it on through the Ack of the event it emits.
//
// Advance is called when the watermark of the operator's input moves
// (watermark is Unix nanoseconds; event.NoWatermark before there is one,
// event.EndOfTime when every input has finished), and at least every
// Linger with the wall clock, for processing-time windows and timers.
type Operator interface {
	Process(ctx context.Context, evs []event.Event, out *Collector) error
	Advance(ctx context.Context, watermark, now int64, out *Collector) error
}

// OperatorFactory is implemented by factories that build operators. IsOperator
// says which processor nodes are operators; the graph must not fuse them
// (see dag.Fusable).
type OperatorFactory interface {
	IsOperator(n *dag.Node) bool
	NewOperator(n *dag.Node, env Env) (Operator, error)
}

// ErrLate is the error attached to an event an operator routes with Late.
var ErrLate = errors.New("late event: its window closed before it arrived")

// Collector gathers what an operator emits during one call.
type Collector struct {
	inst *instance
	ctx  context.Context
	b    *event.Batch
	err  error
	late atomic.Uint64
}

// Emit adds e to the operator's output. Its Value and Key must not be
// changed afterwards. An e without an Ack is tracked by the runtime (a
// checkpoint waits until it is written).
func (c *Collector) Emit(e event.Event) {
	if c.b == nil {
		c.b = event.GetBatch()
	}
	c.b.Append(e)
}

// Late routes an event that arrived after its window closed: to the node's
// dead-letter output when it has one, with ErrLate attached; else it is
// dropped. Either way it is counted. The runtime gives back its Ack
// reference as for every absorbed event.
func (c *Collector) Late(e *event.Event) {
	c.late.Add(1)
	if c.inst == nil {
		return
	}
	h := c.inst.handlers[0]
	if h.dlq == nil || c.err != nil {
		return
	}
	cp := *e
	if cp.Ack != nil {
		cp.Ack.Add(1) // the dead letter holds its own reference
	}
	c.err = h.handle(c.ctx, &cp, ErrLate)
}

// Reject applies the node's error policy to an event the operator cannot
// use (its value is not JSON, an expression fails). The runtime gives back
// its Ack reference as for every absorbed event.
func (c *Collector) Reject(e *event.Event, err error) {
	if c.err != nil || c.inst == nil {
		return
	}
	cp := *e
	if cp.Ack != nil {
		cp.Ack.Add(1) // the error handler gives back its own reference
	}
	c.err = c.inst.handlers[0].handle(c.ctx, &cp, err)
}

// LateCount returns how many late events this operator instance has seen.
func (c *Collector) LateCount() uint64 { return c.late.Load() }

// opState is the per-instance state of an operator stage.
type opState struct {
	op  Operator
	col Collector
	// mu is held while the operator runs; a checkpoint holds it to stop
	// the operator between calls.
	mu sync.Mutex
	// inFlight counts emitted batches not yet fully acknowledged.
	inFlight atomic.Int64
}

// flushOut sends what the operator emitted, then the watermark.
func (inst *instance) flushOut(ctx context.Context) error {
	c := &inst.opst.col
	if err := c.err; err != nil {
		c.err = nil
		return err
	}
	if b := c.b; b != nil {
		c.b = nil
		untracked := 0
		for i := range b.Events {
			if b.Events[i].Ack == nil {
				untracked++
			}
		}
		if untracked > 0 {
			inst.opst.inFlight.Add(1)
			ack := event.NewAck(untracked, func() { inst.opst.inFlight.Add(-1) })
			for i := range b.Events {
				if b.Events[i].Ack == nil {
					b.Events[i].Ack = ack
				}
			}
		}
		n := uint64(len(b.Events))
		inst.nodes[0].Out.Add(n)
		b.Born = time.Now().UnixNano()
		inst.nodes[0].tap.publish(b.Events)
		if err := inst.emit(ctx, b); err != nil {
			return err
		}
	}
	if err := inst.flushDeadLetters(ctx); err != nil {
		return err
	}
	return inst.syncWM(ctx)
}

func (inst *instance) runOperator(ctx context.Context) error {
	st := inst.opst
	st.col = Collector{inst: inst, ctx: ctx}
	var ack acker
	linger := inst.p.opts.Linger
	lastTick := time.Now()
	// st.mu is held from a call into the operator until what it emitted
	// is handed downstream, so a checkpoint never sees state without the
	// results derived from it counted in flight.
	//
	// The watermark passed downstream moves only after Advance: results
	// fired by a new watermark go out ahead of it, in time for the windows
	// of a later operator that they belong to.
	tick := func(now time.Time) error {
		lastTick = now
		st.mu.Lock()
		defer st.mu.Unlock()
		wm := inst.wmOut.cur
		if inst.wmIn != nil {
			wm = inst.wmIn.cur
		}
		if err := st.op.Advance(ctx, wm, now.UnixNano(), &st.col); err != nil {
			return fmt.Errorf("%s %q: %w", dag.Processor, inst.stage.Head().Name, err)
		}
		if inst.wmIn != nil {
			inst.wmOut.cur, inst.wmOut.idle = inst.wmIn.cur, inst.wmIn.allIdle
		}
		return inst.flushOut(ctx)
	}
	process := func(b *event.Batch) error {
		st.mu.Lock()
		defer st.mu.Unlock()
		err := st.op.Process(ctx, b.Events, &st.col)
		if inst.p.fates.tracing() {
			for i := range b.Events {
				if id := b.Events[i].Ack.TraceID(); id != 0 {
					inst.p.fates.step(id, inst.stage.Head().Name, "taken_in",
						"taken into the state of the "+inst.stage.Head().Type+" operator, which holds its acknowledgement until its result is written (or a checkpoint has the state); what the operator emits is a new event", nil)
				}
			}
		}
		for i := range b.Events {
			ack.done(b.Events[i].Ack)
		}
		ack.flush()
		if err != nil {
			return fmt.Errorf("%s %q: %w", dag.Processor, inst.stage.Head().Name, err)
		}
		return inst.flushOut(ctx)
	}
	for {
		b, res := inst.queue.Pop(ctx, linger)
		switch res {
		case TimedOut:
			if err := tick(time.Now()); err != nil {
				return err
			}
			continue
		case Drained, Cancelled:
			return inst.flushDeadLetters(ctx)
		}
		t0 := time.Now()
		changed := inst.wmIn != nil && inst.wmIn.observe(b)
		if n := len(b.Events); n > 0 {
			inst.nodes[0].In.Add(uint64(n))
			inst.stats.Batches.Add(1)
			if err := process(b); err != nil {
				b.Release()
				return err
			}
		}
		b.Release()
		if changed || t0.Sub(lastTick) >= linger {
			if err := tick(t0); err != nil {
				return err
			}
		} else if err := inst.syncWM(ctx); err != nil {
			return err
		}
		busy := time.Since(t0)
		inst.stats.Busy.Add(int64(busy))
		inst.batchSeconds.Observe(busy.Seconds())
	}
}

// NewCollector returns a Collector that belongs to no pipeline, for calling
// an operator directly (tests, tools): emitted events accumulate until
// Take; late and rejected events are counted and dropped.
func NewCollector() *Collector { return &Collector{ctx: context.Background()} }

// Take returns the events emitted so far and forgets them.
func (c *Collector) Take() []event.Event {
	if c.b == nil {
		return nil
	}
	evs := append([]event.Event(nil), c.b.Events...)
	c.b.Release()
	c.b = nil
	return evs
}
