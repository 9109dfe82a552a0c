package event

import (
	"math"
	"sync"
	"sync/atomic"
)

// Header is one piece of event metadata (a Kafka header, an HTTP attribute,
// an error attached to a dead letter).
type Header struct {
	Key   string
	Value []byte
}

// Event is one record. The zero value is an empty event with no
// acknowledgement tracking.
type Event struct {
	// Key is the record key: the partitioning key of a key-hash edge, the
	// Kafka key, or nil.
	Key []byte
	// Value is the payload, usually one JSON document.
	Value []byte
	// Time is the event time in Unix nanoseconds, 0 when unknown.
	Time int64
	// Offset is the position of the record in its source: a line number for
	// files (1-based), an offset for logs and Kafka, a sequence number for
	// generated events. -1 when the source has no positions.
	Offset int64
	// Headers carry metadata. Nil for most events.
	Headers []Header
	// Ack is the acknowledgement this event holds a reference on. Nil when
	// nobody waits for the event.
	Ack *Ack

	// checkedAt and checkedLen identify the Value MarkChecked marked.
	checkedAt  *byte
	checkedLen int
}

// MarkChecked records that Value, as it is now, is one JSON object that
// jsondoc.Parse accepts, with no top-level key twice: an input that
// validated it with rules at least as strict (the event collector) says
// so, and stages then read it without checking it again
// (jsondoc.Doc.ParseUnchecked). The mark is of these very bytes: once
// Value is replaced or re-sliced, Checked reports false.
func (e *Event) MarkChecked() {
	if len(e.Value) > 0 {
		e.checkedAt, e.checkedLen = &e.Value[0], len(e.Value)
	}
}

// Checked reports whether MarkChecked marked the current Value.
func (e *Event) Checked() bool {
	return e.checkedLen > 0 && len(e.Value) == e.checkedLen && &e.Value[0] == e.checkedAt
}

// Header returns the value of the first header named key.
func (e *Event) Header(key string) ([]byte, bool) {
	for i := range e.Headers {
		if e.Headers[i].Key == key {
			return e.Headers[i].Value, true
		}
	}
	return nil, false
}

// SetHeader replaces the header named key, or appends it. The header slice is
// copied first so that events sharing it (after a broadcast) are unaffected.
func (e *Event) SetHeader(key string, value []byte) {
	hs := make([]Header, 0, len(e.Headers)+1)
	for _, h := range e.Headers {
		if h.Key != key {
			hs = append(hs, h)
		}
	}
	e.Headers = append(hs, Header{Key: key, Value: value})
}

// Size is the number of bytes the event accounts for in queue limits.
func (e *Event) Size() int {
	n := len(e.Key) + len(e.Value) + eventOverhead
	for _, h := range e.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// eventOverhead approximates the in-memory size of the Event struct itself,
// so that queues of tiny events are bounded too.
const eventOverhead = 112

// Ack counts the outstanding events derived from one unit of input (usually
// one batch). When the count reaches zero its callback runs, once, on the
// goroutine that gave back the last reference.
type Ack struct {
	pending atomic.Int64
	done    func()
	// trace is non-zero on the Ack of an event whose fate is being
	// followed (runtime's event fate): every event derived from it shares
	// the Ack, so the stages can tell them apart.
	trace uint64
}

// NewTracedAck returns an Ack holding one reference for a traced event:
// trace identifies the trace, done runs when the reference and every one
// derived from it are given back.
func NewTracedAck(trace uint64, done func()) *Ack {
	a := NewAck(1, done)
	a.trace = trace
	return a
}

// TraceID is the trace of the event holding a, 0 when it is not traced.
func (a *Ack) TraceID() uint64 {
	if a == nil {
		return 0
	}
	return a.trace
}

// NewAck returns an Ack holding n references that calls done when all of
// them are given back. done may be nil.
func NewAck(n int, done func()) *Ack {
	a := &Ack{done: done}
	a.pending.Store(int64(n))
	return a
}

// Add takes n more references, for events derived from one that already
// holds a reference (a split, a broadcast copy). Add must be called before
// the reference it derives from is given back.
func (a *Ack) Add(n int) {
	if a == nil || n == 0 {
		return
	}
	a.pending.Add(int64(n))
}

// Done gives back n references.
func (a *Ack) Done(n int) {
	if a == nil || n == 0 {
		return
	}
	left := a.pending.Add(-int64(n))
	if left == 0 {
		if a.done != nil {
			a.done()
		}
	} else if left < 0 {
		panic("event: Ack released more references than it holds")
	}
}

// Pending reports how many references are outstanding.
func (a *Ack) Pending() int64 {
	if a == nil {
		return 0
	}
	return a.pending.Load()
}

// DoneAll gives back one reference for every event in evs, grouping runs of
// events that share an Ack into one atomic operation.
func DoneAll(evs []Event) {
	var cur *Ack
	n := 0
	for i := range evs {
		a := evs[i].Ack
		if a != cur {
			cur.Done(n)
			cur, n = a, 0
		}
		n++
	}
	cur.Done(n)
}

// AddAll takes one more reference for every event in evs (used when a batch
// is broadcast to several consumers).
func AddAll(evs []Event, times int) {
	var cur *Ack
	n := 0
	for i := range evs {
		a := evs[i].Ack
		if a != cur {
			cur.Add(n * times)
			cur, n = a, 0
		}
		n++
	}
	cur.Add(n * times)
}

// Batch is the unit that crosses goroutines.
type Batch struct {
	Events []Event
	// Bytes is the sum of Event.Size over Events, maintained by Append.
	Bytes int
	// Born is the wall-clock time (Unix nanoseconds) at which the input
	// emitted the batch; outputs use it for end-to-end latency.
	Born int64
	// Unchecked marks values an input did not check for being JSON because
	// the next stage parses them anyway (see runtime.Env.DeferValidation):
	// that stage applies the input's error policy to malformed ones.
	Unchecked bool
	// Origin identifies the input that emitted an Unchecked batch; the
	// runtime sets it.
	Origin int

	// Event time, set by the runtime when the pipeline has event-time
	// operators. Watermark is the sender's watermark after this batch
	// (NoWatermark when it has none yet): no event with a time at or
	// before it follows from that sender. Sender is the sending instance's
	// index among the receiving queue's watermark senders, plus one (0: the
	// batch carries no watermark, such as a dead letter). Idle says the
	// sender has seen no events for its idle timeout and must not hold
	// the receiver's watermark back. A batch may be empty and carry only a
	// watermark.
	Watermark int64
	Sender    int32
	Idle      bool
	// Partition is the source partition of every event in the batch, set
	// by inputs that read partitions (-1 when unknown): watermarks are
	// tracked per partition.
	Partition int32
}

// NoWatermark is the watermark of a sender that has not made one yet.
const NoWatermark int64 = math.MinInt64

// EndOfTime is the watermark of a sender that has finished: every window
// may close.
const EndOfTime int64 = math.MaxInt64

var batchPool = sync.Pool{New: func() any {
	return &Batch{Events: make([]Event, 0, 256), Watermark: NoWatermark, Partition: -1}
}}

// GetBatch returns an empty batch from the pool.
func GetBatch() *Batch {
	return batchPool.Get().(*Batch)
}

// Append adds e to the batch and accounts for its size.
func (b *Batch) Append(e Event) {
	b.Events = append(b.Events, e)
	b.Bytes += e.Size()
}

// Len is the number of events in the batch.
func (b *Batch) Len() int { return len(b.Events) }

// Reset empties the batch, dropping references to event bytes.
func (b *Batch) Reset() {
	clear(b.Events)
	b.Events = b.Events[:0]
	b.Bytes = 0
	b.Born = 0
	b.Unchecked = false
	b.Origin = 0
	b.Watermark, b.Sender, b.Idle, b.Partition = NoWatermark, 0, false, -1
}

// Release resets the batch and returns it to the pool. The caller must not
// use it afterwards. It does not touch acknowledgements.
func (b *Batch) Release() {
	if cap(b.Events) > 4096 {
		return // do not keep oversized batches alive
	}
	b.Reset()
	batchPool.Put(b)
}
