package logio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
)

// SourceOptions configure a Source.
type SourceOptions struct {
	// Reader is the name progress is committed under in the log.
	Reader string
	// Start is where a partition with no checkpointed or committed
	// position is read from: "earliest" or "latest".
	Start string
	// MaxBatchBytes bounds the key, value and header bytes of one batch.
	MaxBatchBytes int
	// Checked says every value in the log is a JSON object that the writer
	// validated (the http input's log): events are marked so
	// (event.Event.MarkChecked) and not checked again downstream.
	Checked bool
	// Poll is how often an idle source looks for new records when nobody
	// notifies it.
	Poll time.Duration
	// CommitInterval is how often acknowledged progress is committed to
	// the log when the pipeline has no checkpoints.
	CommitInterval time.Duration
	// StopAtEnd makes Run return once every partition is read up to the
	// high watermark it had when Run started: a bounded replay.
	StopAtEnd bool
}

// Source reads the partitions of a log assigned to one input instance:
// partition p goes to instance p mod parallelism.
type Source struct {
	sh    *Shared
	opts  SourceOptions
	env   runtime.Env
	log   *slog.Logger
	parts []*partSource
	wake  <-chan struct{}
	// coalesce is how long a partial read waits before the next one.
	coalesce time.Duration
}

type partSource struct {
	id   int
	p    *log.Partition
	next int64 // the next offset to read
	prog lines.Progress
	// start is the position the partition was started from: the committed
	// position before any batch completes. Atomic: Lag reads it from
	// request goroutines.
	start atomic.Int64
	// logged is the offset last committed to the log.
	logged int64
	// snap is the position recorded by the last Snapshot.
	snap int64
}

// NewSource returns the source of one instance. It takes no reference on sh.
func NewSource(sh *Shared, opts SourceOptions, env runtime.Env) (*Source, error) {
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1 << 20
	}
	if opts.Poll <= 0 {
		opts.Poll = 20 * time.Millisecond
	}
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = time.Second
	}
	if opts.Start == "" {
		opts.Start = "earliest"
	}
	s := &Source{sh: sh, opts: opts, env: env, log: env.Logger, wake: sh.Subscribe(),
		coalesce: min(max(env.Linger/10, 100*time.Microsecond), 2*time.Millisecond)}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	par := max(env.Parallelism, 1)
	for id := env.Instance; id < sh.Log.Partitions(); id += par {
		ps := &partSource{id: id, p: sh.Log.Partition(id)}
		s.startFresh(ps, env.Checkpointing)
		s.parts = append(s.parts, ps)
	}
	if len(s.parts) == 0 {
		s.log.Warn("more input instances than log partitions: this instance reads nothing",
			slog.Int("instance", env.Instance), slog.Int("partitions", sh.Log.Partitions()))
	}
	return s, nil
}

func partKey(id int) []byte {
	k := []byte("p/\x00\x00\x00\x00")
	binary.BigEndian.PutUint32(k[2:], uint32(id))
	return k
}

// Restore sets each partition's position from the checkpoint; partitions
// the checkpoint does not know start as configured.
func (s *Source) Restore(_ context.Context, r runtime.StateReader) error {
	for _, ps := range s.parts {
		v, ok, err := r.Get(partKey(ps.id))
		if err != nil {
			return err
		}
		if !ok {
			continue // as set by NewSource
		}
		if len(v) != 8 {
			return fmt.Errorf("partition %d: checkpointed position has %d bytes, want 8", ps.id, len(v))
		}
		off := int64(binary.BigEndian.Uint64(v))
		if lso, hw := ps.p.LogStartOffset(), ps.p.HighWatermark(); off < lso || off > hw {
			return fmt.Errorf("partition %d: checkpointed offset %d is outside the log [%d, %d]: the log was replaced or cut back; move the state directory aside to start over", ps.id, off, lso, hw)
		}
		ps.setStart(off)
	}
	return nil
}

// startFresh positions a partition with no checkpointed position. Without
// checkpoints it resumes at the reader's commit in the log; with them (the
// checkpoint, not the log commit, is the truth) and for a new reader it
// starts as configured.
func (s *Source) startFresh(ps *partSource, checkpointing bool) {
	if !checkpointing {
		if off, ok := ps.p.Committed()[s.opts.Reader]; ok {
			ps.setStart(off)
			return
		}
	}
	if s.opts.Start == "latest" {
		ps.setStart(ps.p.HighWatermark())
		return
	}
	ps.setStart(ps.p.LogStartOffset())
}

func (ps *partSource) setStart(off int64) {
	ps.next, ps.logged, ps.snap = off, off, off
	ps.start.Store(off)
}

// committed is the offset below which every emitted record is acknowledged.
func (ps *partSource) committed() int64 {
	if c := ps.prog.Committed(); c.Source != "" {
		return c.Offset
	}
	return ps.start.Load()
}

// Partitions implements runtime.Partitioned: the partitions this instance
// reads.
func (s *Source) Partitions() []int32 {
	out := make([]int32, len(s.parts))
	for i, ps := range s.parts {
		out[i] = int32(ps.id)
	}
	return out
}

// Run reads until ctx ends.
func (s *Source) Run(ctx context.Context, out runtime.Outlet) error {
	if len(s.parts) == 0 {
		if s.opts.StopAtEnd {
			return nil
		}
		<-ctx.Done()
		return nil
	}
	poll := time.NewTimer(s.opts.Poll)
	defer poll.Stop()
	lastCommit := time.Now()
	var ends []int64
	if s.opts.StopAtEnd {
		for _, ps := range s.parts {
			ends = append(ends, ps.p.HighWatermark())
		}
	}
	for {
		got := 0
		for _, ps := range s.parts {
			n, err := s.readOnce(ctx, ps, out)
			if err != nil {
				return err
			}
			got += n
		}
		if ends != nil {
			done := true
			for i, ps := range s.parts {
				done = done && ps.next >= ends[i]
			}
			if done {
				return nil
			}
		}
		if !s.env.Checkpointing && time.Since(lastCommit) >= s.opts.CommitInterval {
			if err := s.commitAcked(); err != nil {
				return err
			}
			lastCommit = time.Now()
		}
		if ctx.Err() != nil {
			return nil
		}
		if got > 0 && got >= s.env.BatchSize {
			continue
		}
		if got > 0 {
			// A partial read: let a few more appends land before reading
			// again, so that a stream of small appends (one event per
			// request) still makes batches of many events downstream.
			poll.Reset(s.coalesce)
			select {
			case <-ctx.Done():
				return nil
			case <-poll.C:
			}
			continue
		}
		poll.Reset(s.opts.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-poll.C:
		}
	}
}

func (s *Source) readOnce(ctx context.Context, ps *partSource, out runtime.Outlet) (int, error) {
	recs, next, err := ps.p.ReadFrom(ps.next, s.opts.MaxBatchBytes)
	if err != nil && len(recs) == 0 {
		if errors.Is(err, log.ErrOffsetOutOfRange) {
			return 0, fmt.Errorf("partition %d: offset %d is no longer in the log (it starts at %d): %w", ps.id, ps.next, ps.p.LogStartOffset(), err)
		}
		return 0, fmt.Errorf("partition %d: read at %d: %w", ps.id, ps.next, err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	b := event.GetBatch()
	b.Unchecked = s.env.DeferValidation
	b.Partition = int32(ps.id)
	ticket := ps.prog.Add(lines.Position{Source: "log", Offset: next})
	ack := event.NewAck(len(recs), func() { ps.prog.Done(ticket) })
	for i := range recs {
		r := &recs[i]
		ev := event.Event{Key: r.Key, Value: r.Value, Time: r.Timestamp.UnixNano(), Offset: r.Offset, Headers: r.Headers, Ack: ack}
		if s.opts.Checked {
			ev.MarkChecked()
		}
		b.Append(ev)
	}
	ps.next = next
	if err := out.Emit(ctx, b); err != nil {
		return 0, err
	}
	if err != nil {
		// Records before damaged data were delivered; stop at the damage.
		return 0, fmt.Errorf("partition %d: %w", ps.id, err)
	}
	return len(recs), nil
}

// commitAcked commits acknowledged progress to the log (no checkpoints).
func (s *Source) commitAcked() error {
	for _, ps := range s.parts {
		off := ps.committed()
		if off == ps.logged {
			continue
		}
		if err := ps.p.Commit(s.opts.Reader, off); err != nil {
			return fmt.Errorf("partition %d: commit offset %d: %w", ps.id, off, err)
		}
		ps.logged = off
	}
	return nil
}

// InFlight is the number of batches emitted (or being emitted) whose
// events are not all acknowledged.
func (s *Source) InFlight() int {
	n := 0
	for _, ps := range s.parts {
		n += ps.prog.InFlight()
	}
	return n
}

// Snapshot records each partition's acknowledged position.
func (s *Source) Snapshot(_ context.Context, w runtime.StateWriter) error {
	var v [8]byte
	for _, ps := range s.parts {
		ps.snap = ps.committed()
		binary.BigEndian.PutUint64(v[:], uint64(ps.snap))
		if err := w.Set(partKey(ps.id), v[:]); err != nil {
			return err
		}
	}
	return nil
}

// Committed commits the checkpointed positions to the log, which lets
// retention delete what every reader is past.
func (s *Source) Committed(context.Context, uint64) error {
	for _, ps := range s.parts {
		if ps.snap == ps.logged {
			continue
		}
		faults.Point("log.commit")
		if err := ps.p.Commit(s.opts.Reader, ps.snap); err != nil {
			return fmt.Errorf("partition %d: commit offset %d: %w", ps.id, ps.snap, err)
		}
		ps.logged = ps.snap
	}
	return nil
}

// Close commits what was acknowledged (without checkpoints; with them the
// final checkpoint did).
func (s *Source) Close(context.Context) error {
	if s.env.Checkpointing {
		return nil
	}
	return s.commitAcked()
}

// Lag returns the records not yet acknowledged over this source's
// partitions: high watermark minus acknowledged position.
func (s *Source) Lag() int64 {
	var lag int64
	for _, ps := range s.parts {
		lag += ps.p.HighWatermark() - ps.committed()
	}
	return lag
}

// Health implements runtime.HealthReporter for the instance's partitions
// (Shared.Health).
func (s *Source) Health() (degraded bool, detail string) {
	ids := make([]int, len(s.parts))
	for i, ps := range s.parts {
		ids[i] = ps.id
	}
	return s.sh.Health(ids)
}
