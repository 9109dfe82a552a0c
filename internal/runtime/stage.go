package runtime

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
)

// instance is one parallel instance of a stage: one goroutine.
type instance struct {
	p     *Pipeline
	stage *dag.Stage
	idx   int
	stats *StageStats

	queue  *Queue  // input queue; nil for inputs
	outlet *outlet // for inputs

	input  Input
	procs  []Processor
	aware  []BatchAware // the procs that implement it
	output Output

	nodes    []*NodeStats  // parallel to stage.Nodes
	handlers []*errHandler // parallel to stage.Nodes
	routes   []*router     // one per outgoing edge of the stage's tail
	targets  []*Queue      // distinct queues this instance pushes to

	batchSeconds prometheus.Observer

	// origin is the graph index of the stage's head node (for inputs: the
	// Origin of unchecked batches). origins applies the error policy of
	// inputs that left the JSON check of their batches to this chain.
	origin  int
	origins map[int]*errHandler

	// key and keyErr are set when this chain computes the key of its
	// key-hash edge.
	key    *expr.Program
	keyErr *errHandler

	// Event time (see watermark.go): wmIn tracks the input queue's
	// watermark (nil when no sender carries one), wmOut is what this
	// instance passes on, iwm makes an input's watermark. opst is set for
	// operator stages.
	wmIn  *wmIn
	wmOut *wmOut
	iwm   *inputWM
	opst  *opState

	// ctap is set once inner nodes of this fused chain have been tapped
	// (tap.go).
	ctap *chainTap
}

func (inst *instance) addTargets(qs ...*Queue) {
	for _, q := range qs {
		found := false
		for _, t := range inst.targets {
			if t == q {
				found = true
				break
			}
		}
		if !found {
			inst.targets = append(inst.targets, q)
		}
	}
}

func (inst *instance) run(runCtx, inputCtx context.Context) error {
	defer func() {
		for _, q := range inst.targets {
			q.ProducerDone()
		}
	}()
	switch {
	case inst.input != nil:
		return inst.runInput(runCtx, inputCtx)
	case inst.output != nil:
		return inst.runOutput(runCtx)
	case inst.opst != nil:
		return inst.runOperator(runCtx)
	default:
		return inst.runChain(runCtx)
	}
}

// emit sends b over every outgoing edge (copies for all but the last).
func (inst *instance) emit(ctx context.Context, b *event.Batch) error {
	if len(b.Events) == 0 || len(inst.routes) == 0 {
		if len(inst.routes) == 0 {
			event.DoneAll(b.Events)
		}
		b.Release()
		return inst.syncWM(ctx)
	}
	last := len(inst.routes) - 1
	if last > 0 {
		event.AddAll(b.Events, last)
	}
	for i, r := range inst.routes {
		bb := b
		if i < last {
			bb = cloneBatch(b)
		}
		if err := r.send(ctx, bb); err != nil {
			if i < last {
				b.Release()
			}
			return err
		}
	}
	return inst.syncWM(ctx)
}

func (inst *instance) flushDeadLetters(ctx context.Context) error {
	for _, h := range inst.handlers {
		if err := h.flush(ctx); err != nil {
			return err
		}
	}
	for _, h := range inst.origins {
		if err := h.flush(ctx); err != nil {
			return err
		}
	}
	return inst.keyErr.flush(ctx)
}

// --- inputs ---

type outlet struct {
	inst *instance
	ctx  context.Context // the run context: a batch handed to Emit is delivered even while the input is being stopped
	// atGate counts Emit and Reject calls waiting for the checkpoint gate.
	atGate atomic.Int32
}

// enter passes the checkpoint gate (when checkpoints are on); the caller
// calls the returned function when done.
func (o *outlet) enter() func() {
	c := o.inst.p.ckpt
	if c == nil {
		return func() {}
	}
	o.atGate.Add(1)
	c.gate.RLock()
	o.atGate.Add(-1)
	return c.gate.RUnlock
}

func (o *outlet) Emit(_ context.Context, b *event.Batch) error {
	defer o.enter()()
	if w := o.inst.iwm; w != nil {
		w.emitMu.Lock()
		defer w.emitMu.Unlock()
		if err := o.stampTimes(b); err != nil {
			return err
		}
		now := time.Now()
		w.gen.observe(b.Partition, b.Events, now)
		w.gen.update(now)
		o.inst.wmOut.cur, o.inst.wmOut.idle = w.gen.cur, w.gen.idle
	}
	n := uint64(len(b.Events))
	if b.Born == 0 {
		b.Born = time.Now().UnixNano()
	}
	b.Origin = o.inst.origin
	st := o.inst.nodes[0]
	if f := &o.inst.p.fates; f.tracing() {
		f.mark(st.Name, b)
	}
	st.In.Add(n)
	st.Out.Add(n)
	o.inst.stats.Batches.Add(1)
	st.tap.publish(b.Events)
	if err := o.inst.emit(o.ctx, b); err != nil {
		return err
	}
	return o.inst.handlers[0].flush(o.ctx)
}

// stampTimes computes the event time of every event of b from the input's
// event_time expression; events it fails on follow the input's error
// policy and leave the batch.
func (o *outlet) stampTimes(b *event.Batch) error {
	g := o.inst.iwm.gen
	if g.spec.Expr == nil {
		return nil
	}
	w := 0
	for i := range b.Events {
		ev := &b.Events[i]
		if err := g.stamp(ev); err != nil {
			b.Bytes -= ev.Size()
			o.inst.nodes[0].In.Add(1)
			if herr := o.inst.handlers[0].handle(o.ctx, ev, err); herr != nil {
				return herr
			}
			continue
		}
		if w != i {
			b.Events[w] = *ev
		}
		w++
	}
	clear(b.Events[w:])
	b.Events = b.Events[:w]
	return nil
}

// tickWM recomputes an input's watermark with the clock, so that partitions
// that went quiet stop holding it back, and tells downstream.
func (o *outlet) tickWM(ctx context.Context) error {
	w := o.inst.iwm
	w.emitMu.Lock()
	defer w.emitMu.Unlock()
	if !w.gen.update(time.Now()) {
		return nil
	}
	o.inst.wmOut.cur, o.inst.wmOut.idle = w.gen.cur, w.gen.idle
	return o.inst.syncWM(ctx)
}

// ForgetPartitions implements PartitionForgetter. The watermark moves on
// at the next batch or tick.
func (o *outlet) ForgetPartitions(parts []int32) {
	w := o.inst.iwm
	if w == nil {
		return
	}
	w.emitMu.Lock()
	defer w.emitMu.Unlock()
	for _, p := range parts {
		delete(w.gen.parts, p)
	}
}

// finishWM sends the end-of-time watermark of an input that has read
// everything.
func (o *outlet) finishWM(ctx context.Context) error {
	w := o.inst.iwm
	w.emitMu.Lock()
	defer w.emitMu.Unlock()
	w.gen.finish()
	o.inst.wmOut.cur, o.inst.wmOut.idle = w.gen.cur, w.gen.idle
	return o.inst.syncWM(ctx)
}

func (o *outlet) Reject(_ context.Context, e event.Event, err error) error {
	defer o.enter()()
	o.inst.nodes[0].In.Add(1)
	return o.inst.handlers[0].handle(o.ctx, &e, err)
}

func (inst *instance) runInput(runCtx, inputCtx context.Context) error {
	o := inst.outlet
	o.ctx = runCtx
	if pi, ok := inst.input.(Partitioned); ok && inst.iwm != nil {
		inst.iwm.gen.expect(pi.Partitions(), time.Now())
	}
	if w := inst.iwm; w != nil && w.gen.spec.IdleTimeout > 0 {
		tctx, stop := context.WithCancel(inputCtx)
		defer stop()
		go func() {
			t := time.NewTicker(max(w.gen.spec.IdleTimeout/4, time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-tctx.Done():
					return
				case <-t.C:
					if o.tickWM(runCtx) != nil {
						return
					}
				}
			}
		}()
	}
	err := inst.input.Run(inputCtx, o)
	if err == nil && inputCtx.Err() == nil && inst.iwm != nil {
		// The input read everything it will ever read (not a stop).
		err = o.finishWM(runCtx)
	}
	if ferr := inst.flushDeadLetters(runCtx); err == nil {
		err = ferr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		if errors.Is(err, ErrFailed) {
			return err
		}
		return fmt.Errorf("input %q: %w", inst.stage.Head().Name, err)
	}
	return nil
}

// --- fused processor chains ---

type nodeCounts struct{ in, out, filtered uint64 }

type acker struct {
	a *event.Ack
	n int
}

func (k *acker) done(a *event.Ack) {
	if a != k.a {
		k.a.Done(k.n)
		k.a, k.n = a, 0
	}
	k.n++
}

func (k *acker) flush() {
	k.a.Done(k.n)
	k.a, k.n = nil, 0
}

func (inst *instance) runChain(ctx context.Context) error {
	var (
		rec    Record
		ar     arena
		ack    acker
		counts = make([]nodeCounts, len(inst.procs))
	)
	for {
		b, res := inst.queue.Pop(ctx, 0)
		if res != Popped {
			break
		}
		if inst.wmIn != nil && inst.wmIn.observe(b) {
			inst.wmOut.cur, inst.wmOut.idle = inst.wmIn.cur, inst.wmIn.allIdle
		}
		if len(b.Events) == 0 {
			b.Release()
			if err := inst.syncWM(ctx); err != nil {
				return err
			}
			continue
		}
		t0 := time.Now()
		busyStart := inst.stats.Busy.Begin(inst.idx)
		inst.chainTaps(t0)
		for _, a := range inst.aware {
			a.BeginBatch(t0.UnixNano())
		}
		err := inst.processBatch(ctx, b, &rec, &ar, &ack, counts)
		for _, a := range inst.aware {
			a.EndBatch()
		}
		ack.flush()
		for j := range counts {
			st := inst.nodes[j]
			st.In.Add(counts[j].in)
			st.Out.Add(counts[j].out)
			if counts[j].filtered > 0 {
				st.Filtered.Add(counts[j].filtered)
			}
			counts[j] = nodeCounts{}
		}
		busy := inst.stats.Busy.End(inst.idx, busyStart)
		if err != nil {
			b.Release()
			return err
		}
		inst.stats.Batches.Add(1)
		inst.batchSeconds.Observe(busy.Seconds())
		inst.nodes[len(inst.nodes)-1].tap.publish(b.Events)
		if err := inst.emit(ctx, b); err != nil {
			return err
		}
		if err := inst.flushDeadLetters(ctx); err != nil {
			return err
		}
	}
	return inst.flushDeadLetters(ctx)
}

// processBatch runs every event of b through the chain, in place: events
// that survive are compacted to the front of b.Events, so no second batch
// and no copy of a kept event is needed unless an earlier one was dropped.
func (inst *instance) processBatch(ctx context.Context, b *event.Batch, rec *Record, ar *arena, ack *acker, counts []nodeCounts) error {
	w, size := 0, 0
	var check *errHandler
	if b.Unchecked {
		check = inst.origins[b.Origin]
		b.Unchecked = false
	}
	fates := &inst.p.fates
	tracing := fates.tracing()
	for i := range b.Events {
		ev := &b.Events[i]
		rec.Reset(ev)
		var trace uint64 // non-zero: the event's fate is being followed (fate.go)
		var traceVal []byte
		if tracing {
			trace, traceVal = ev.Ack.TraceID(), ev.Value
		}
		if check != nil {
			if _, err := rec.Doc(); err != nil {
				if herr := check.handle(ctx, ev, newMalformed(ev, err)); herr != nil {
					return herr
				}
				continue
			}
		}
		keep := true
		for j, proc := range inst.procs {
			counts[j].in++
			ok, err := proc.Process(rec)
			if err != nil {
				if herr := inst.handlers[j].handle(ctx, ev, err); herr != nil {
					return herr
				}
				keep = false
				break
			}
			if !ok {
				counts[j].filtered++
				if trace != 0 {
					fates.step(trace, inst.handlers[j].node.Name, "filtered", "filtered out: dropped on purpose", nil)
				}
				ack.done(ev.Ack)
				keep = false
				break
			}
			counts[j].out++
			if trace != 0 {
				fates.afterProcessor(trace, inst.handlers[j].node.Name, rec, &traceVal)
			}
		}
		if !keep {
			continue
		}
		if rec.Modified() {
			ev.Value = ar.appendDoc(&rec.doc, len(ev.Value))
		}
		if inst.key != nil {
			k, err := evalKey(inst.key, rec, ar)
			if err != nil {
				if herr := inst.keyErr.handle(ctx, ev, err); herr != nil {
					return herr
				}
				continue
			}
			ev.Key = k
			if trace != 0 {
				fates.step(trace, inst.stage.Tail().Name, "keyed", "key "+string(k)+": its instance downstream is chosen by this key", nil)
			}
		}
		if w != i {
			b.Events[w] = *ev
		}
		size += b.Events[w].Size()
		w++
	}
	clear(b.Events[w:])
	b.Events = b.Events[:w]
	b.Bytes = size
	return nil
}

// --- outputs ---

func (inst *instance) runOutput(ctx context.Context) (err error) {
	out := inst.output
	st := inst.nodes[0]
	var (
		pending  []*event.Batch
		nPending int
	)
	maxPending := max(inst.p.opts.QueueEvents/2, inst.p.opts.BatchSize)
	latency := inst.p.m.latencySeconds.WithLabelValues(st.Name)

	flush := func() error {
		busyStart := inst.stats.Busy.Begin(inst.idx)
		ferr := out.Flush(ctx)
		inst.stats.Busy.End(inst.idx, busyStart)
		if ferr != nil {
			err := inst.outputFailed(ctx, pending, ferr)
			pending, nPending = pending[:0], 0
			return err
		}
		now := time.Now().UnixNano()
		if len(pending) > 0 {
			st.FlushedAt.Store(now)
		}
		for _, b := range pending {
			st.Out.Add(uint64(len(b.Events)))
			latency.Observe(float64(now-b.Born) / 1e9)
			event.DoneAll(b.Events)
			b.Release()
		}
		pending, nPending = pending[:0], 0
		return nil
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), inst.p.opts.ShutdownTimeout)
		defer cancel()
		if cerr := out.Close(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("output %q: close: %w", st.Name, cerr)
		}
	}()
	for {
		b, ok := inst.queue.TryPop()
		if !ok {
			if nPending > 0 {
				if err := flush(); err != nil {
					return err
				}
			}
			var res PopResult
			b, res = inst.queue.Pop(ctx, inst.p.opts.Linger)
			switch res {
			case TimedOut:
				// Idle: let the output do time-based work (rotation).
				if err := flush(); err != nil {
					return err
				}
				continue
			case Drained:
				if err := flush(); err != nil {
					return err
				}
				return inst.p.outputDrained(ctx)
			case Cancelled:
				for _, pb := range pending {
					pb.Release()
				}
				return nil
			}
		}
		if len(b.Events) == 0 {
			b.Release() // a watermark only
			continue
		}
		st.In.Add(uint64(len(b.Events)))
		busyStart := inst.stats.Busy.Begin(inst.idx)
		werr := out.Write(ctx, b.Events)
		busy := inst.stats.Busy.End(inst.idx, busyStart)
		if werr == nil && inst.p.fates.tracing() {
			inst.traceWritten(b.Events)
		}
		inst.stats.Batches.Add(1)
		inst.batchSeconds.Observe(busy.Seconds())
		if werr != nil {
			if err := inst.outputFailed(ctx, []*event.Batch{b}, werr); err != nil {
				return err
			}
			continue
		}
		st.tap.publish(b.Events)
		pending = append(pending, b)
		nPending += len(b.Events)
		if nPending >= maxPending {
			if err := flush(); err != nil {
				return err
			}
		}
	}
}

// outputFailed applies the output's error policy to the events of batches
// whose write or flush failed, and releases the batches.
func (inst *instance) outputFailed(ctx context.Context, batches []*event.Batch, cause error) error {
	h := inst.handlers[0]
	cause = fmt.Errorf("write: %w", cause)
	inst.nodes[0].failed(cause)
	var err error
	for _, b := range batches {
		for i := range b.Events {
			if err == nil {
				err = h.handle(ctx, &b.Events[i], cause)
			}
		}
		b.Release()
	}
	if err != nil {
		return err
	}
	return h.flush(ctx)
}

// traceWritten records the traced events an output wrote.
func (inst *instance) traceWritten(evs []event.Event) {
	for i := range evs {
		if id := evs[i].Ack.TraceID(); id != 0 {
			inst.p.fates.step(id, inst.stage.Head().Name, "written", "written by the "+inst.stage.Head().Type+" output; acknowledged once flushed", nil)
		}
	}
}
