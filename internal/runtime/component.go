package runtime

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/event"
)

// Input produces events. One Input value is created per parallel instance.
//
// Run reads until the source is exhausted (it returns nil) or ctx is
// cancelled (it returns nil or ctx.Err(); both mean a clean stop). Run hands
// each batch to out.Emit, which blocks while downstream is full: that is how
// backpressure reaches the source. Every event of an emitted batch must hold a
// reference on an Ack; when the Ack completes, everything derived from those
// events has been written or dropped on purpose, and a replayable input may
// commit its progress up to them.
//
// Records the input cannot decode (a malformed JSON line) go to out.Reject,
// which applies the node's error policy. A non-nil error from Emit or Reject
// means the pipeline is failing or stopping: Run returns it.
type Input interface {
	Run(ctx context.Context, out Outlet) error
}

// Outlet is how an input delivers batches and rejected records.
type Outlet interface {
	// Emit takes ownership of b and sends it downstream. It blocks while the
	// downstream queue is full.
	Emit(ctx context.Context, b *event.Batch) error
	// Reject routes a record that could not be read by the node's error
	// policy: drop (counted), dead_letter (the event, with err and the
	// record's position attached, goes to the dead-letter output) or fail
	// (Reject returns a non-nil error and the pipeline stops). The event's
	// Ack reference, if any, is given back by Reject.
	Reject(ctx context.Context, e event.Event, err error) error
}

// Partitioned is implemented by inputs that read source partitions and set
// event.Batch.Partition. Partitions lists this instance's partitions before
// Run: each holds the input's watermark back from the start (until it sends
// events, or stays quiet for the idle timeout), so events of a partition not
// read yet are not made late by the others.
type Partitioned interface {
	Partitions() []int32
}

// PartitionForgetter is implemented by the Outlet the runtime hands an
// input: an input whose partitions can be taken away (a consumer-group
// rebalance) tells it which ones left, so that they stop holding the
// input's watermark back. A partition that comes back counts again from
// its next batch.
type PartitionForgetter interface {
	ForgetPartitions(parts []int32)
}

// InputCloser is implemented by inputs that have progress to commit or
// resources to release after the pipeline has drained. Close runs once,
// after every event the input emitted has been acknowledged or the pipeline
// has failed.
type InputCloser interface {
	Close(ctx context.Context) error
}

// Output writes events to the outside world. One Output value is created per
// parallel instance and is used by one goroutine.
//
// Write may buffer; an event counts as written, and is acknowledged, only
// after a later Flush has returned nil. Write must not retain evs or the
// events' byte slices after it returns unless it copies them. Close flushes
// what is left and releases resources.
type Output interface {
	Write(ctx context.Context, evs []event.Event) error
	Flush(ctx context.Context) error
	Close(ctx context.Context) error
}

// Env is what a component gets from the runtime when it is built.
type Env struct {
	// Pipeline and Node name the component, for logs and errors.
	Pipeline, Node string
	// Instance is this instance's index in [0, Parallelism).
	Instance, Parallelism int
	// BatchSize is the target number of events per batch.
	BatchSize int
	// Linger is how long an input may hold a partial batch before emitting
	// it, so that slow sources still deliver promptly.
	Linger time.Duration
	// DeferValidation tells an input whose records must be JSON that it may
	// skip checking them and emit its batches with Unchecked set: every edge
	// out of the input leads to a processor stage, which parses each event
	// anyway and applies this input's error policy to malformed ones. The
	// check then costs one parse instead of two. Events of such batches
	// should carry their source position (Offset, and a "source" header).
	DeferValidation bool
	// Checkpointing says the pipeline has a state store: Stateful
	// components get Restore, Snapshot and Committed calls, and must not
	// publish side effects (rename files, commit offsets) before Committed.
	Checkpointing bool
	// Sources are the input nodes the node's events derive from (every
	// input upstream of it).
	Sources []string
	// Changelog carries keyed state between processes that share the
	// partitions of a Kafka input (changelog.go); nil without checkpoints.
	Changelog *Changelog
	Logger    *slog.Logger
	// Registerer is where a component registers its own metrics (nil for
	// none). Metric names start with weir_; label them with the node name.
	Registerer prometheus.Registerer
}

// ErrFailed is returned (wrapped) by Outlet methods and by the runtime when
// an error policy of "fail" stopped the pipeline.
var ErrFailed = errors.New("pipeline failed")
