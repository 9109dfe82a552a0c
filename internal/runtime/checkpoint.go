package runtime

import (
	"context"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/internal/faults"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// StateStore is where checkpoints go (internal/state implements it on
// Pebble). A pipeline without one takes no checkpoints.
type StateStore interface {
	// Reader reads node's state as of the last completed checkpoint.
	Reader(node string) StateReader
	// Begin starts a checkpoint's atomic write.
	Begin() StateTxn
	// Last is the ID of the last completed checkpoint.
	Last() (id uint64, ok bool)
}

// StateTxn is one checkpoint's write: all of it becomes durable at Commit,
// or none of it.
type StateTxn interface {
	Writer(node string) StateWriter
	// Commit writes the batch and the checkpoint record with fsync.
	Commit(id uint64) error
	Abort()
}

// CheckpointFailure describes a checkpoint that did not complete.
type CheckpointFailure struct {
	ID       uint64
	Time     time.Time
	Duration time.Duration
	Err      string
}

// CheckpointFailures is the number of checkpoints that failed since the
// start and the last of them (nil when none has failed, or when the
// pipeline takes no checkpoints).
func (p *Pipeline) CheckpointFailures() (n int64, last *CheckpointFailure) {
	if p.ckpt == nil {
		return 0, nil
	}
	return p.ckpt.failures.Load(), p.ckpt.lastFail.Load()
}

type drainer struct {
	node string
	d    Drainer
	o    *outlet
}

type statefulComp struct {
	node string
	s    Stateful
}

// coordinator takes checkpoints: it closes the gate inputs emit through,
// waits for replayable inputs to be fully acknowledged, snapshots every
// Stateful component into one atomic write, then tells them it is durable.
type coordinator struct {
	store    StateStore
	interval time.Duration
	log      *slog.Logger

	// gate: Emit holds it shared while handing a batch downstream; a
	// checkpoint holds it exclusively.
	gate sync.RWMutex

	mu       sync.Mutex // one checkpoint at a time
	finished bool       // the final checkpoint was taken: no more
	last     uint64
	drainers []drainer
	comps    []statefulComp
	// ops are the operator instances, in topological order.
	ops []*opState
	// cl is the pipeline's changelog of keyed state (changelog.go).
	cl *Changelog

	lastDone atomic.Int64 // Unix nanoseconds of the last completed checkpoint
	failures atomic.Int64
	lastFail atomic.Pointer[CheckpointFailure]

	duration prometheus.Histogram
	total    *prometheus.CounterVec
	size     prometheus.Gauge
}

func newCoordinator(store StateStore, interval time.Duration, log *slog.Logger, reg prometheus.Registerer) *coordinator {
	c := &coordinator{store: store, interval: interval, log: log,
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "weir_checkpoint_duration_seconds",
			Help:    "Time a checkpoint takes: drain, snapshot of every stateful component, synced write.",
			Buckets: prometheus.ExponentialBuckets(1e-3, 2, 14),
		}),
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_checkpoints_total",
			Help: "Checkpoints attempted, by result (completed, failed).",
		}, []string{"result"}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "weir_checkpoint_size_bytes",
			Help: "Size of the last completed checkpoint's write (only what changed since the one before).",
		}),
	}
	c.last, _ = store.Last()
	if reg != nil {
		age := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "weir_checkpoint_age_seconds",
			Help: "Seconds since the last completed checkpoint (since start when none has completed).",
		}, func() float64 { return time.Since(time.Unix(0, c.lastDone.Load())).Seconds() })
		reg.MustRegister(c.duration, c.total, c.size, age)
	}
	c.lastDone.Store(time.Now().UnixNano())
	return c
}

// add registers a component; o is the outlet of an input instance.
func (c *coordinator) add(node string, comp any, o *outlet) {
	if s, ok := comp.(Stateful); ok {
		c.comps = append(c.comps, statefulComp{node: node, s: s})
	}
	if d, ok := comp.(Drainer); ok && o != nil {
		c.drainers = append(c.drainers, drainer{node: node, d: d, o: o})
	}
}

// addOperator registers an operator instance: a checkpoint stops it and
// waits until everything it emitted is written.
func (c *coordinator) addOperator(o *opState) { c.ops = append(c.ops, o) }

// drainOperators stops every operator between calls, upstream first, and
// waits until what each emitted is acknowledged; with inputs drained,
// nothing then moves until unlock. It returns the unlock.
func (c *coordinator) drainOperators(ctx context.Context) (func(), error) {
	locked := 0
	unlock := func() {
		for _, o := range c.ops[:locked] {
			o.mu.Unlock()
		}
	}
	for _, o := range c.ops {
		o.mu.Lock()
		locked++
		wait := 50 * time.Microsecond
		for o.inFlight.Load() > 0 {
			select {
			case <-ctx.Done():
				unlock()
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 5*time.Millisecond)
		}
	}
	return unlock, nil
}

// drain waits, with the gate held, until every batch the input has in
// flight is one blocked at the gate.
func (dr drainer) drain(ctx context.Context) error {
	wait := 50 * time.Microsecond
	for {
		// atGate first: with the gate held it only grows, and a batch
		// counted there is counted in InFlight too. Reading InFlight first
		// could miss a batch that registered and reached the gate between
		// the two reads, and take an unacknowledged batch for a blocked one.
		blocked := int(dr.o.atGate.Load())
		if dr.d.InFlight() <= blocked {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Millisecond)
	}
	return nil
}

// restore hands every Stateful component its state from the last
// completed checkpoint.
func (c *coordinator) restore(ctx context.Context) error {
	for _, sc := range c.comps {
		r, err := c.cl.readerFor(sc.node, sc.s, c.store.Reader(sc.node))
		if err != nil {
			return fmt.Errorf("node %q: restore from checkpoint %d: %w", sc.node, c.last, err)
		}
		if err := sc.s.Restore(ctx, r); err != nil {
			return fmt.Errorf("node %q: restore from checkpoint %d: %w", sc.node, c.last, err)
		}
	}
	if c.last > 0 {
		c.log.Info("restored from checkpoint", slog.Uint64("checkpoint", c.last))
	}
	return nil
}

// run takes a checkpoint every interval until ctx ends.
func (c *coordinator) run(ctx context.Context, fail func(error)) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := c.checkpoint(ctx, false); err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
		}
	}
}

// checkpoint takes one checkpoint; final marks the last one (a graceful
// stop), after which outputs close and checkpoint does nothing.
func (c *coordinator) checkpoint(ctx context.Context, final bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return nil
	}
	c.finished = final
	start := time.Now()
	c.gate.Lock()
	defer c.gate.Unlock()
	err := c.take(ctx)
	if err != nil {
		c.total.WithLabelValues("failed").Inc()
		c.failures.Add(1)
		c.lastFail.Store(&CheckpointFailure{ID: c.last + 1, Time: time.Now(), Duration: time.Since(start), Err: err.Error()})
		return fmt.Errorf("checkpoint %d: %w", c.last+1, err)
	}
	c.total.WithLabelValues("completed").Inc()
	c.duration.Observe(time.Since(start).Seconds())
	c.lastDone.Store(time.Now().UnixNano())
	return nil
}

// stopAll, with the gate held, waits until every input's emitted batches
// are acknowledged and stops the operators; it returns their unlock.
func (c *coordinator) stopAll(ctx context.Context) (func(), error) {
	for _, d := range c.drainers {
		if err := d.drain(ctx); err != nil {
			return nil, fmt.Errorf("drain of input %q: %w", d.node, err)
		}
	}
	unlock, err := c.drainOperators(ctx)
	if err != nil {
		return nil, fmt.Errorf("drain of operators: %w", err)
	}
	return unlock, nil
}

func (c *coordinator) take(ctx context.Context) error {
	unlock, err := c.stopAll(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if c.cl != nil {
		if err := c.cl.releaseDue(); err != nil {
			return err
		}
	}
	faults.Point("checkpoint.before-snapshot")
	id := c.last + 1
	tx := c.store.Begin()
	for _, sc := range c.comps {
		if err := sc.s.Snapshot(ctx, c.cl.writerFor(sc.node, sc.s, tx.Writer(sc.node))); err != nil {
			tx.Abort()
			return fmt.Errorf("node %q: snapshot: %w", sc.node, err)
		}
	}
	if sz, ok := tx.(interface{ Size() int }); ok {
		c.size.Set(float64(sz.Size()))
	}
	faults.Point("checkpoint.before-commit")
	if err := tx.Commit(id); err != nil {
		return err
	}
	faults.Point("checkpoint.after-commit")
	c.last = id
	for _, sc := range c.comps {
		faults.Point("checkpoint.committed-step")
		if err := sc.s.Committed(ctx, id); err != nil {
			return fmt.Errorf("node %q: after commit: %w", sc.node, err)
		}
	}
	if c.cl != nil {
		c.cl.committed()
	}
	return nil
}

// exclusive runs fn with the pipeline stopped as for a checkpoint: inputs
// held at the gate with everything they emitted acknowledged, operators
// stopped between calls.
func (c *coordinator) exclusive(ctx context.Context, fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return errors.New("the pipeline is stopping")
	}
	c.gate.Lock()
	defer c.gate.Unlock()
	unlock, err := c.stopAll(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
