package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
)

// Taps: a live, sampled view of what one node emits, for `weir tail` and
// the control plane's /api/v1/tail.
//
// What a node emits: an input, the batches it hands to Emit; a processor,
// the events it passed (inside a fused chain too, before the chain's
// final serialization, which the tap does itself for a changed document);
// an operator, its results; an output, the batches it wrote.
//
// Cost: every node has a tap point on its NodeStats. With no subscriber the
// pipeline pays one atomic load per batch at each point (a fused chain:
// one per node of the chain) and no per-event work. With subscribers, each
// one has a rate limit (GCRA: a token bucket kept as one atomic
// "theoretical arrival time"): a batch the limit does not admit costs a
// clock read and one more atomic load per subscriber; an admitted event is
// copied (value, key, time, headers) into the subscription's bounded
// queue, or dropped and counted when the queue is full. The pipeline never
// blocks on a subscriber, and the filter runs in the subscriber's
// goroutine (Next). Inner nodes of a fused chain are sampled by wrapping
// their processor for the batches their limit admits (chainTap).
//
// Memory: a subscription holds at most Buffer events and TapQueueBytes
// bytes; a copied key, value and headers are each cut at TapValueLimit
// bytes (TapEvent.Truncated).
//
// Threading: publish and the rate limit run on pipeline goroutines,
// concurrently for the instances of a node; Tap, Close, Pause and Resume
// on any goroutine; Next on the subscriber's one.

// Tap limits and defaults.
const (
	DefaultTapRate   = 100  // events per second a subscription samples by default
	MaxTapRate       = 1000 // the most a subscription may ask for
	DefaultTapBuffer = 128  // events a subscription queues for its reader by default
	MaxTapBuffer     = 1024
	MaxTapsPerNode   = 8        // open subscriptions per node
	TapValueLimit    = 64 << 10 // bytes of value, key and headers copied per event
	TapQueueBytes    = 4 << 20  // bytes of events a subscription may hold queued
)

// Errors of Tap and Subscription.Next.
var (
	ErrUnknownNode = errors.New("no such node")
	ErrTooManyTaps = fmt.Errorf("the node already has %d open taps; close one first", MaxTapsPerNode)
	// ErrTapClosed: the subscription was closed, or the pipeline stopped.
	ErrTapClosed = errors.New("tap closed: the pipeline stopped or the subscription was closed")
)

// TapOptions configure a subscription. Zero values take the defaults.
type TapOptions struct {
	// Rate is the most events per second the subscription samples from the
	// node (before Filter): DefaultTapRate when 0, at most MaxTapRate.
	Rate float64
	// Filter, when set, must hold for an event to be returned by Next. It
	// is evaluated by Next, on sampled events only: a rare match shows up
	// rarely. Events it fails on (not JSON, a type error) are skipped and
	// counted in TapStats.FilterErrors.
	Filter *expr.Program
	// Buffer is how many sampled events may wait for Next: DefaultTapBuffer
	// when 0, at most MaxTapBuffer. When it is full, sampled events are
	// dropped and counted.
	Buffer int
}

// TapEvent is a copy of one sampled event: it shares no memory with the
// pipeline.
type TapEvent struct {
	Node    string
	Time    int64 // event time, Unix nanoseconds; 0 when unknown
	Seen    int64 // when the tap sampled it, Unix nanoseconds
	Offset  int64 // position in the source, -1 when unknown
	Key     []byte
	Value   []byte
	Headers []event.Header
	// Truncated says Value was cut at TapValueLimit bytes (or headers were
	// left out to stay within it).
	Truncated bool
}

func (e *TapEvent) size() int64 {
	n := len(e.Key) + len(e.Value) + 64
	for _, h := range e.Headers {
		n += len(h.Key) + len(h.Value) + 32
	}
	return int64(n)
}

// TapStats count what happened to a subscription's events.
type TapStats struct {
	Sampled      uint64 // events the rate limit admitted
	Dropped      uint64 // sampled events dropped because the reader was behind
	Delivered    uint64 // events Next returned
	FilterErrors uint64 // sampled events the filter could not evaluate
}

// Subscription is one reader of a node's tap. Next is for one goroutine;
// the other methods are safe from any.
type Subscription struct {
	node   string
	tap    *tap
	filter *expr.Program
	ch     chan TapEvent
	// done is closed by Close or when the pipeline stops.
	done     chan struct{}
	doneOnce sync.Once

	// Rate limit (GCRA): an event is admitted at time now when tat <=
	// now+slack; each admitted event moves tat on by interval.
	tat      atomic.Int64
	interval int64
	slack    int64
	paused   atomic.Bool
	pick     atomic.Uint64 // varies which events of a batch are sampled

	queued       atomic.Int64 // bytes waiting in ch
	sampled      atomic.Uint64
	dropped      atomic.Uint64
	delivered    atomic.Uint64
	filterErrors atomic.Uint64

	// Owned by the goroutine calling Next.
	rec Record
	ev  event.Event
}

// Tap subscribes to what node emits. Close the subscription when done; the
// pipeline closes every subscription when Run returns.
func (p *Pipeline) Tap(node string, opts TapOptions) (*Subscription, error) {
	ns := p.Node(node)
	if ns == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownNode, node)
	}
	if opts.Rate == 0 {
		opts.Rate = DefaultTapRate
	}
	if !(opts.Rate > 0 && opts.Rate <= MaxTapRate) {
		return nil, fmt.Errorf("tap rate %v events/s is out of range: use more than 0 and at most %d", opts.Rate, MaxTapRate)
	}
	if opts.Buffer == 0 {
		opts.Buffer = DefaultTapBuffer
	}
	if opts.Buffer < 1 || opts.Buffer > MaxTapBuffer {
		return nil, fmt.Errorf("tap buffer %d is out of range: use 1 to %d events", opts.Buffer, MaxTapBuffer)
	}
	interval := int64(math.Ceil(1e9 / opts.Rate))
	burst := max(int64(opts.Rate/4), 1) // a quarter of a second's worth
	s := &Subscription{
		node:     node,
		tap:      &ns.tap,
		filter:   opts.Filter,
		ch:       make(chan TapEvent, opts.Buffer),
		done:     make(chan struct{}),
		interval: interval,
		slack:    (burst - 1) * interval,
	}
	s.tat.Store(time.Now().UnixNano())
	if err := ns.tap.add(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Node is the name of the tapped node.
func (s *Subscription) Node() string { return s.node }

// Next returns the next sampled event that passes the filter. It blocks
// until there is one, ctx ends (ctx.Err()) or the subscription closes
// (ErrTapClosed, once the events already queued have been returned).
func (s *Subscription) Next(ctx context.Context) (TapEvent, error) {
	for {
		var te TapEvent
		select {
		case te = <-s.ch:
		case <-ctx.Done():
			return TapEvent{}, ctx.Err()
		case <-s.done:
			select {
			case te = <-s.ch:
			default:
				return TapEvent{}, ErrTapClosed
			}
		}
		s.queued.Add(-te.size())
		if s.filter != nil && !s.match(&te) {
			continue
		}
		s.delivered.Add(1)
		return te, nil
	}
}

func (s *Subscription) match(te *TapEvent) bool {
	s.ev = event.Event{Key: te.Key, Value: te.Value, Time: te.Time, Offset: te.Offset, Headers: te.Headers}
	s.rec.Reset(&s.ev)
	ok, err := s.filter.EvalBool(&s.rec)
	if err != nil {
		s.filterErrors.Add(1)
		return false
	}
	return ok
}

// Pending is the number of sampled events waiting for Next.
func (s *Subscription) Pending() int { return len(s.ch) }

// QueuedBytes is the size of the events waiting for Next.
func (s *Subscription) QueuedBytes() int64 { return s.queued.Load() }

// Cap is the most events that can wait for Next.
func (s *Subscription) Cap() int { return cap(s.ch) }

// Stats returns the subscription's counters.
func (s *Subscription) Stats() TapStats {
	return TapStats{Sampled: s.sampled.Load(), Dropped: s.dropped.Load(), Delivered: s.delivered.Load(), FilterErrors: s.filterErrors.Load()}
}

// Pause stops sampling until Resume (a batch being sampled as Pause runs
// may still add to the queue); events already queued stay.
func (s *Subscription) Pause() { s.paused.Store(true) }

// Resume restarts sampling after Pause.
func (s *Subscription) Resume() { s.paused.Store(false) }

// Paused reports whether the subscription is paused.
func (s *Subscription) Paused() bool { return s.paused.Load() }

// Close ends the subscription: the node stops sampling for it (a batch
// being sampled as Close runs may still add to the queue), and Next returns
// ErrTapClosed once the queue is empty. Close may be called more than once.
func (s *Subscription) Close() {
	s.tap.remove(s)
	s.end()
}

func (s *Subscription) end() { s.doneOnce.Do(func() { close(s.done) }) }

// Ended reports whether the subscription was closed or the pipeline
// stopped.
func (s *Subscription) Ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// admits reports whether take would admit an event at now.
func (s *Subscription) admits(now int64) bool {
	return s.tat.Load() <= now+s.slack && !s.paused.Load()
}

// take admits up to want events at time now (Unix nanoseconds) and returns
// how many. It is called by pipeline goroutines, concurrently.
func (s *Subscription) take(now int64, want int) int {
	if !s.admits(now) {
		return 0
	}
	for {
		old := s.tat.Load()
		tat := max(old, now)
		room := now + s.slack - tat
		if room < 0 {
			return 0
		}
		n := min(int64(want), room/s.interval+1)
		if s.tat.CompareAndSwap(old, tat+n*s.interval) {
			return int(n)
		}
	}
}

// offer copies ev into the queue, or counts it dropped. rec, when not nil,
// is the chain's record of ev, whose document may have changed.
func (s *Subscription) offer(ev *event.Event, rec *Record, now int64) {
	s.sampled.Add(1)
	if len(s.ch) == cap(s.ch) || s.queued.Load() >= TapQueueBytes {
		s.dropped.Add(1)
		return
	}
	value := ev.Value
	if rec != nil && rec.Modified() {
		value = rec.doc.AppendJSON(nil)
	}
	te := copyTapEvent(s.node, ev, value, now)
	size := te.size()
	if s.queued.Add(size) > TapQueueBytes {
		s.queued.Add(-size)
		s.dropped.Add(1)
		return
	}
	select {
	case s.ch <- te:
	default:
		s.queued.Add(-size)
		s.dropped.Add(1)
	}
}

// copyTapEvent copies what a reader needs of ev into one allocation. Key
// and value are cut at TapValueLimit bytes each, and headers are left out
// when they sum to more, so that one event holds at most three times that.
func copyTapEvent(node string, ev *event.Event, value []byte, now int64) TapEvent {
	te := TapEvent{Node: node, Time: ev.Time, Seen: now, Offset: ev.Offset}
	key := ev.Key
	if len(key) > TapValueLimit {
		key, te.Truncated = key[:TapValueLimit], true
	}
	if len(value) > TapValueLimit {
		value, te.Truncated = value[:TapValueLimit], true
	}
	headers, hn := ev.Headers, 0
	for _, h := range headers {
		hn += len(h.Key) + len(h.Value)
	}
	if hn > TapValueLimit {
		headers, hn, te.Truncated = nil, 0, true
	}
	buf := make([]byte, 0, len(key)+len(value)+hn)
	buf = append(buf, key...)
	te.Key = buf[:len(key):len(key)]
	buf = append(buf, value...)
	te.Value = buf[len(key):len(buf):len(buf)]
	if len(headers) > 0 {
		te.Headers = make([]event.Header, len(headers))
		for i, h := range headers {
			start := len(buf)
			buf = append(buf, h.Value...)
			te.Headers[i] = event.Header{Key: h.Key, Value: buf[start:len(buf):len(buf)]}
		}
	}
	return te
}

// tap is a node's tap point.
type tap struct {
	// subs is nil when nobody listens: the only thing the hot path reads.
	subs atomic.Pointer[[]*Subscription]

	mu     sync.Mutex // guards list and closed; writers of subs hold it
	list   []*Subscription
	closed bool
}

// publish samples evs for the subscribers, if any. It is the hook called
// where a node emits a batch.
func (t *tap) publish(evs []event.Event) {
	if subs := t.subs.Load(); subs != nil {
		t.sample(*subs, evs)
	}
}

func (t *tap) sample(subs []*Subscription, evs []event.Event) {
	if len(evs) == 0 {
		return
	}
	now := time.Now().UnixNano()
	for _, s := range subs {
		n := s.take(now, len(evs))
		if n == 0 {
			continue
		}
		// Spread the picks over the batch, starting at a varying offset.
		step := len(evs) / n
		off := int(s.pick.Add(0x9e3779b97f4a7c15) >> 33 % uint64(step))
		for i := range n {
			s.offer(&evs[off+i*step], nil, now)
		}
	}
}

func (t *tap) add(s *Subscription) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrTapClosed
	}
	if len(t.list) >= MaxTapsPerNode {
		return ErrTooManyTaps
	}
	t.list = append(t.list[:len(t.list):len(t.list)], s)
	t.publishLocked()
	return nil
}

func (t *tap) remove(s *Subscription) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := make([]*Subscription, 0, len(t.list))
	for _, x := range t.list {
		if x != s {
			list = append(list, x)
		}
	}
	t.list = list
	t.publishLocked()
}

// publishLocked makes the hot path see t.list. The slice it stores is never
// changed afterwards.
func (t *tap) publishLocked() {
	if len(t.list) == 0 {
		t.list = nil
		t.subs.Store(nil)
		return
	}
	list := t.list
	t.subs.Store(&list)
}

// close ends every subscription and refuses new ones.
func (t *tap) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	for _, s := range t.list {
		s.end()
	}
	t.list = nil
	t.subs.Store(nil)
}

// closeTaps ends every subscription of the pipeline: Run has returned.
func (p *Pipeline) closeTaps() {
	for _, n := range p.nodes {
		n.tap.close()
	}
}

// chainTap samples the inner nodes of a fused chain (the last node's
// output is the batch itself, tapped whole by publish). For a batch in
// which a subscriber of inner node j may take an event, the chain runs
// with processor j wrapped in a tapProc, which samples what it passes;
// other batches run the plain processors, so processBatch itself carries
// no tap code.
type chainTap struct {
	plain   []Processor
	wrapped []Processor
	taps    []tapProc
	now     int64 // the batch's start, Unix nanoseconds
	active  bool  // procs is wrapped
}

type tapProc struct {
	Processor
	inst *instance
	j    int
}

func (t *tapProc) Process(r *Record) (bool, error) {
	keep, err := t.Processor.Process(r)
	if keep && err == nil {
		t.inst.tapChain(t.j, r)
	}
	return keep, err
}

// chainTaps picks the processors of a fused chain for the batch starting
// at t0: wrapped where an inner node has a subscriber whose rate limit
// admits an event now, plain otherwise. Most batches of a busy node find
// no such subscriber. The hook costs one atomic load per inner node.
func (inst *instance) chainTaps(t0 time.Time) {
	if len(inst.nodes) < 2 {
		return
	}
	var m uint64
	now := int64(0)
	for j := 0; j < len(inst.nodes)-1 && j < 64; j++ {
		subs := inst.nodes[j].tap.subs.Load()
		if subs == nil {
			continue
		}
		if now == 0 {
			now = t0.UnixNano()
		}
		for _, s := range *subs {
			if s.admits(now) {
				m |= 1 << j
				break
			}
		}
	}
	c := inst.ctap
	if m == 0 {
		if c != nil && c.active {
			inst.procs, c.active = c.plain, false
		}
		return
	}
	if c == nil {
		c = &chainTap{plain: inst.procs, wrapped: make([]Processor, len(inst.procs)), taps: make([]tapProc, len(inst.procs))}
		for j, p := range c.plain {
			c.taps[j] = tapProc{Processor: p, inst: inst, j: j}
		}
		inst.ctap = c
	}
	for j, p := range c.plain {
		if m>>j&1 != 0 {
			c.wrapped[j] = &c.taps[j]
		} else {
			c.wrapped[j] = p
		}
	}
	c.now, c.active = now, true
	inst.procs = c.wrapped
}

// tapChain samples the event in rec after chain node j passed it.
func (inst *instance) tapChain(j int, rec *Record) {
	subs := inst.nodes[j].tap.subs.Load()
	if subs == nil {
		return
	}
	now := inst.ctap.now
	for _, s := range *subs {
		if s.take(now, 1) == 0 {
			continue
		}
		s.offer(rec.Event, rec, now)
	}
}
