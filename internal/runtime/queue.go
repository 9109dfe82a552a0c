package runtime

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/event"
)

// Queue is the bounded FIFO of batches in front of one stage instance. It is
// bounded in events and in bytes: Push blocks while adding a batch would
// exceed either bound, except that an empty queue always accepts one batch
// (so a single oversized batch cannot deadlock the pipeline). The memory a
// queue holds is therefore at most its bounds plus one batch.
//
// Any number of producers may Push; one consumer Pops. The queue is closed
// when every registered producer has called ProducerDone; Pop then drains
// what is left and reports the end.
type Queue struct {
	maxEvents, maxBytes int

	mu sync.Mutex
	// ring buffer of batches
	buf            []*event.Batch
	head, n        int
	events, bytes  int
	producers      int
	closed         bool
	notEmpty       chan struct{} // signalled (cap 1) when a batch arrives or the queue closes
	notFull        chan struct{} // signalled (cap 1) when space frees up
	highEvents     int
	depthE, depthB atomic.Int64 // mirrors of events/bytes for lock-free readers
}

// NewQueue returns a queue with the given bounds and number of producers.
func NewQueue(maxEvents, maxBytes, producers int) *Queue {
	return &Queue{
		maxEvents: max(maxEvents, 1),
		maxBytes:  max(maxBytes, 1),
		buf:       make([]*event.Batch, 16),
		producers: producers,
		closed:    producers == 0,
		notEmpty:  make(chan struct{}, 1),
		notFull:   make(chan struct{}, 1),
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (q *Queue) fitsLocked(b *event.Batch) bool {
	return q.n == 0 || (q.events+len(b.Events) <= q.maxEvents && q.bytes+b.Bytes <= q.maxBytes)
}

// Push appends b, blocking while the queue is full; the time blocked is
// counted in blocked's slot (nil: not counted) while it lasts. It returns
// ctx.Err() if ctx ended first (b is then not enqueued and still belongs to
// the caller).
func (q *Queue) Push(ctx context.Context, b *event.Batch, blocked *LiveTime, slot int) error {
	var waitStart int64 // 0: not blocked (yet)
	for {
		q.mu.Lock()
		if q.fitsLocked(b) {
			q.pushLocked(b)
			more := q.fitsRoomLocked()
			q.mu.Unlock()
			signal(q.notEmpty)
			if more {
				signal(q.notFull) // let another waiting producer try
			}
			if waitStart != 0 && blocked != nil {
				blocked.End(slot, waitStart)
			}
			return nil
		}
		q.mu.Unlock()
		if waitStart == 0 {
			if blocked != nil {
				waitStart = blocked.Begin(slot)
			} else {
				waitStart = monoNow()
			}
		}
		select {
		case <-q.notFull:
		case <-ctx.Done():
			if blocked != nil {
				blocked.End(slot, waitStart)
			}
			return ctx.Err()
		}
	}
}

func (q *Queue) fitsRoomLocked() bool {
	return q.events < q.maxEvents && q.bytes < q.maxBytes
}

func (q *Queue) pushLocked(b *event.Batch) {
	if q.n == len(q.buf) {
		nb := make([]*event.Batch, len(q.buf)*2)
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = b
	q.n++
	q.events += len(b.Events)
	q.bytes += b.Bytes
	q.highEvents = max(q.highEvents, q.events)
	q.depthE.Store(int64(q.events))
	q.depthB.Store(int64(q.bytes))
}

// TryPop removes the oldest batch without blocking.
func (q *Queue) TryPop() (*event.Batch, bool) {
	q.mu.Lock()
	b := q.popLocked()
	q.mu.Unlock()
	if b != nil {
		signal(q.notFull)
	}
	return b, b != nil
}

func (q *Queue) popLocked() *event.Batch {
	if q.n == 0 {
		return nil
	}
	b := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.events -= len(b.Events)
	q.bytes -= b.Bytes
	q.depthE.Store(int64(q.events))
	q.depthB.Store(int64(q.bytes))
	return b
}

// PopResult says why Pop returned.
type PopResult int

// Pop results.
const (
	Popped PopResult = iota
	// Drained: the queue is closed and empty; no batch will ever arrive.
	Drained
	// TimedOut: nothing arrived within the timeout.
	TimedOut
	// Cancelled: ctx ended.
	Cancelled
)

// Pop removes the oldest batch, waiting up to timeout (forever if timeout
// is 0) for one to arrive.
func (q *Queue) Pop(ctx context.Context, timeout time.Duration) (*event.Batch, PopResult) {
	var timer *time.Timer
	var timerC <-chan time.Time
	for {
		q.mu.Lock()
		b := q.popLocked()
		closed := q.closed
		q.mu.Unlock()
		if b != nil {
			signal(q.notFull)
			if timer != nil {
				timer.Stop()
			}
			return b, Popped
		}
		if closed {
			return nil, Drained
		}
		if timeout > 0 && timer == nil {
			timer = time.NewTimer(timeout)
			timerC = timer.C
		}
		select {
		case <-q.notEmpty:
		case <-timerC:
			return nil, TimedOut
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return nil, Cancelled
		}
	}
}

// ProducerDone records that one producer will push no more. When the last
// one is done the queue closes.
func (q *Queue) ProducerDone() {
	q.mu.Lock()
	q.producers--
	if q.producers <= 0 {
		q.closed = true
	}
	q.mu.Unlock()
	signal(q.notEmpty)
}

// Depth reports the events and bytes currently queued.
func (q *Queue) Depth() (events, bytes int64) { return q.depthE.Load(), q.depthB.Load() }

// Capacity reports the queue's bounds.
func (q *Queue) Capacity() (events, bytes int) { return q.maxEvents, q.maxBytes }

// HighWater reports the largest number of events the queue ever held.
func (q *Queue) HighWater() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.highEvents
}
