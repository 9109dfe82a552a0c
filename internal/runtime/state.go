package runtime

import "context"

// Checkpoints: a consistent cut of every stateful component's state and every
// replayable input's position, written in one atomic, synced write to the
// state store (internal/state, on Pebble).
//
// The mechanism is a short drain, not aligned barriers: on each interval the
// coordinator stops inputs from emitting (Outlet.Emit blocks), waits until
// every event emitted by an input implementing Drainer is acknowledged, asks
// every Stateful component for its Snapshot, commits the store's batch with
// fsync, tells every component the checkpoint is durable (Committed), and
// lets inputs emit again. docs/architecture.md says why.

// StateWriter receives one component's state at a checkpoint. Keys are the
// component's own: the runtime prefixes them with the node's name, so every
// instance of a node shares one key space (include env.Instance in a key if
// instances must not collide). Every write of one checkpoint, across all
// components, is applied atomically or not at all. Value slices may be
// reused by the caller after Set returns.
type StateWriter interface {
	Set(key, value []byte) error
	Delete(key []byte) error
	// DeleteRange deletes the keys in [start, end).
	DeleteRange(start, end []byte) error
}

// StateReader reads a component's state as of the last completed
// checkpoint. The slices passed to fn are valid only during the call.
type StateReader interface {
	Get(key []byte) (value []byte, ok bool, err error)
	// Scan calls fn for each key in [start, end) in order; a nil end means
	// to the end of the component's key space.
	Scan(start, end []byte, fn func(key, value []byte) error) error
}

// Stateful is implemented by inputs, processors and outputs whose state
// must survive a restart exactly (positions, dedup sets, open files). When
// the pipeline has no state store, none of these methods is called.
//
// Snapshot and Committed are called from the checkpoint coordinator's
// goroutine, not from the goroutine that runs the component: the component
// synchronizes (one uncontended mutex per batch costs nothing measurable).
// When Snapshot is called, every event emitted by replayable inputs before
// the cut has been processed, written and acknowledged, and no new one is
// emitted until Committed (or a failed checkpoint) returns.
type Stateful interface {
	// Restore is called once, before the component sees any event, with
	// the state of the last completed checkpoint (empty when there is none).
	Restore(ctx context.Context, r StateReader) error
	// Snapshot writes the component's state as of the cut.
	Snapshot(ctx context.Context, w StateWriter) error
	// Committed is called after checkpoint id is durable. It publishes
	// side effects that must not be seen before: renaming finished files,
	// committing offsets to a log for its retention.
	Committed(ctx context.Context, id uint64) error
}

// Drainer is implemented by replayable inputs. InFlight is the number of
// batches the input has registered for acknowledgement — handed to Emit, or
// about to be — whose events are not all acknowledged yet. An input
// registers a batch before calling Emit (its acknowledgement may come before
// Emit returns). The coordinator, holding the gate, waits until every
// in-flight batch of the input is one blocked at the gate: everything
// emitted is then acknowledged, and what is blocked is not part of the cut.
type Drainer interface {
	InFlight() int
}

// Scratch is a component's working space in the state store, for state
// that does not fit in memory between checkpoints (a window operator spills
// the windows its cache evicts there). Its keys are those of the
// component's checkpointed key space (the node's, shared by its
// instances). Reads see what was written to the node's scratch over the
// last completed checkpoint: Get and Scan of a key deleted in the scratch
// find nothing. Writes are not synced and belong to no checkpoint until the
// next one takes them: every checkpoint makes everything in the scratch
// part of the node's checkpointed state, atomically with its other writes,
// and the node's Snapshot writes win over the scratch's (internal/state
// does this without copying the scratch into the checkpoint's write). A
// start, after a crash too, forgets what was written after the last
// completed checkpoint.
//
// Threading: a node's instances share one Scratch, safe for concurrent
// use. A checkpoint takes the scratch while operators are stopped; a
// component that is not an operator must not write to it during Snapshot
// of another instance of its node.
type Scratch interface {
	StateReader
	Set(key, value []byte) error
	Delete(key []byte) error
}

// ScratchOpener is implemented by the StateReader a component gets in
// Restore when the store offers scratch space (internal/state does).
// Scratch returns the handle on the node's scratch; the reader and the
// handle stay usable for the life of the pipeline, reading the last
// completed checkpoint as it moves on.
type ScratchOpener interface {
	Scratch() Scratch
}
