package runtime

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
)

// router sends the batches of one producer instance over one edge to the
// queues of the downstream instances.
type router struct {
	kind   dag.EdgeKind
	queues []*Queue
	self   int // producer instance, for forward edges
	rr     int
	bp     *LiveTime // the producing stage's backpressure time
	slot   int       // the producing instance's slot in bp

	// key-hash edges: when key is set, the router evaluates it (the
	// producer did not); keyErr applies the downstream node's error policy.
	key    *expr.Program
	keyErr *errHandler
	rec    Record
	arena  arena
	parts  []*event.Batch

	// wm is set when the edge carries watermarks.
	wm *wmRoute
}

// push sends b to queue qi of the router.
func (r *router) push(ctx context.Context, qi int, b *event.Batch) error {
	if r.wm != nil {
		r.wm.stamp(qi, b)
	}
	err := r.queues[qi].Push(ctx, b, r.bp, r.slot)
	if err != nil {
		b.Release()
	}
	return err
}

// send takes ownership of b.
func (r *router) send(ctx context.Context, b *event.Batch) error {
	if len(b.Events) == 0 {
		b.Release()
		return nil
	}
	switch r.kind {
	case dag.Forward:
		return r.push(ctx, r.self, b)
	case dag.RoundRobin:
		qi := r.rr % len(r.queues)
		r.rr++
		return r.push(ctx, qi, b)
	case dag.Broadcast:
		n := len(r.queues)
		event.AddAll(b.Events, n-1)
		for i := 0; i < n-1; i++ {
			if err := r.push(ctx, i, cloneBatch(b)); err != nil {
				b.Release()
				return err
			}
		}
		return r.push(ctx, n-1, b)
	default:
		return r.sendKeyed(ctx, b)
	}
}

func (r *router) sendKeyed(ctx context.Context, b *event.Batch) error {
	n := len(r.queues)
	if len(r.parts) != n {
		r.parts = make([]*event.Batch, n)
	}
	for i := range b.Events {
		ev := &b.Events[i]
		if r.key != nil {
			r.rec.Reset(ev)
			k, err := evalKey(r.key, &r.rec, &r.arena)
			if err != nil {
				if herr := r.keyErr.handle(ctx, ev, err); herr != nil {
					b.Release()
					return herr
				}
				continue
			}
			ev.Key = k
		}
		idx := KeyHash(ev.Key) % uint64(n)
		p := r.parts[idx]
		if p == nil {
			p = event.GetBatch()
			p.Born = b.Born
			p.Unchecked, p.Origin, p.Partition = b.Unchecked, b.Origin, b.Partition
			r.parts[idx] = p
		}
		p.Append(*ev)
	}
	b.Release()
	var firstErr error
	for i, p := range r.parts {
		if p == nil {
			continue
		}
		r.parts[i] = nil
		if firstErr != nil {
			p.Release()
			continue
		}
		firstErr = r.push(ctx, i, p)
	}
	if firstErr == nil && r.keyErr != nil {
		firstErr = r.keyErr.flush(ctx)
	}
	return firstErr
}

// evalKey computes a partitioning key and stores it in the arena.
func evalKey(p *expr.Program, rec *Record, a *arena) ([]byte, error) {
	v, err := p.Eval(rec)
	if err != nil {
		return nil, err
	}
	if v.Kind == jsondoc.String {
		return a.copy(v.S), nil
	}
	kb, err := keyBytes(rec.scratch[len(rec.scratch):], v)
	if err != nil {
		return nil, fmt.Errorf("key_by %q: %w", p.Source(), err)
	}
	return a.copy(kb), nil
}

// KeyHash is FNV-1a, 64 bit: stable across processes and versions, so the
// same key always lands on the same instance (and, in the log output, the
// same partition).
func KeyHash(k []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range k {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func cloneBatch(b *event.Batch) *event.Batch {
	nb := event.GetBatch()
	nb.Events = append(nb.Events, b.Events...)
	nb.Bytes = b.Bytes
	nb.Born = b.Born
	nb.Unchecked = b.Unchecked
	nb.Origin = b.Origin
	nb.Partition = b.Partition
	return nb
}

// errHandler applies one node's error policy inside one stage instance.
type errHandler struct {
	node   *dag.Node
	stats  *NodeStats
	logger *slog.Logger
	dlq    *router // round-robin to the dead-letter output; nil unless DeadLetter
	batch  *event.Batch
	arena  arena
	limit  int

	lastLog    time.Time
	suppressed int

	fates *fates // the pipeline's, for traced events (nil in some tests)
}

// handle applies the policy to ev, which failed with err. It gives back the
// event's Ack reference (drop) or hands it to the dead letter. A non-nil
// return means the pipeline must stop.
func (h *errHandler) handle(ctx context.Context, ev *event.Event, err error) error {
	h.stats.Errors.Add(1)
	if id := ev.Ack.TraceID(); id != 0 && h.fates != nil {
		h.fates.step(id, h.node.Name, "failed", err.Error()+" ("+errorAction(h)+")", nil)
	}
	switch h.node.OnError {
	case dag.Fail:
		h.stats.errs.record(h.node.Name, "fail", ev, err)
		return fmt.Errorf("%w: %s %q: %w (on_error: fail)", ErrFailed, h.node.Kind, h.node.Name, err)
	case dag.DeadLetter:
		h.stats.DeadLetters.Add(1)
		h.stats.errs.record(h.node.Name, "dead_letter", ev, err)
		h.logThrottled(ev, err)
		if h.batch == nil {
			h.batch = event.GetBatch()
		}
		dl := *ev
		dl.Value = h.arena.copy(appendEnvelope(nil, h.node.Name, err, ev))
		dl.SetHeader("weir_error", []byte(err.Error()))
		dl.SetHeader("weir_node", []byte(h.node.Name))
		h.batch.Append(dl)
		if len(h.batch.Events) >= h.limit {
			return h.flush(ctx)
		}
		return nil
	default:
		h.stats.Dropped.Add(1)
		h.stats.errs.record(h.node.Name, "dropped", ev, err)
		h.logThrottled(ev, err)
		ev.Ack.Done(1)
		return nil
	}
}

// flush sends pending dead letters.
func (h *errHandler) flush(ctx context.Context) error {
	if h == nil || h.batch == nil || len(h.batch.Events) == 0 {
		return nil
	}
	b := h.batch
	h.batch = nil
	if b.Born == 0 {
		b.Born = time.Now().UnixNano()
	}
	return h.dlq.send(ctx, b)
}

// logThrottled logs the first error and then at most one line every 10 s
// per node and instance, with a count of what it held back, so an incident
// cannot flood the log.
func (h *errHandler) logThrottled(ev *event.Event, err error) {
	now := time.Now()
	if !h.lastLog.IsZero() && now.Sub(h.lastLog) < 10*time.Second {
		h.suppressed++
		return
	}
	attrs := []any{slog.String("node", h.node.Name), slog.String("policy", h.node.OnError.String()), slog.Any("err", err)}
	if ev.Offset >= 0 {
		attrs = append(attrs, slog.Int64("offset", ev.Offset))
	}
	if h.suppressed > 0 {
		attrs = append(attrs, slog.Int("more_like_this", h.suppressed))
	}
	h.logger.Warn("event failed", attrs...)
	h.lastLog, h.suppressed = now, 0
}

// appendEnvelope writes the dead-letter record: which node failed, why, the
// event's source position, and the original value (embedded as JSON when it
// is valid JSON, as a string otherwise).
func appendEnvelope(dst []byte, node string, err error, ev *event.Event) []byte {
	dst = append(dst, `{"node":`...)
	dst = jsondoc.AppendString(dst, []byte(node))
	dst = append(dst, `,"error":`...)
	dst = jsondoc.AppendString(dst, []byte(err.Error()))
	if src, ok := ev.Header("source"); ok {
		dst = append(dst, `,"source":`...)
		dst = jsondoc.AppendString(dst, src)
	}
	if ev.Offset >= 0 {
		dst = append(dst, `,"offset":`...)
		dst = jsondoc.AppendValue(dst, jsondoc.IntValue(ev.Offset))
	}
	if len(ev.Key) > 0 {
		dst = append(dst, `,"key":`...)
		dst = jsondoc.AppendString(dst, ev.Key)
	}
	dst = append(dst, `,"value":`...)
	if len(ev.Value) > 0 && jsondoc.Validate(ev.Value) == nil {
		dst = append(dst, trimSpace(ev.Value)...)
	} else {
		dst = jsondoc.AppendString(dst, ev.Value)
	}
	return append(dst, '}')
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}
