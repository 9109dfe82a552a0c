package event_test

import (
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/weir-dev/weir/internal/event"
)

// counter returns an Ack callback and a function reporting how often it ran.
func counter() (func(), func() int64) {
	var n atomic.Int64
	return func() { n.Add(1) }, n.Load
}

func TestAckDoneToZeroCallsOnce(t *testing.T) {
	for _, steps := range [][]int{
		{3},
		{1, 1, 1},
		{2, 1},
		{1, 0, 2}, // Done(0) is a no-op
	} {
		done, calls := counter()
		a := event.NewAck(3, done)
		for i, n := range steps {
			if calls() != 0 {
				t.Fatalf("steps %v: callback ran before step %d", steps, i)
			}
			a.Done(n)
		}
		if calls() != 1 {
			t.Errorf("steps %v: callback ran %d times, want 1", steps, calls())
		}
		if a.Pending() != 0 {
			t.Errorf("steps %v: Pending = %d, want 0", steps, a.Pending())
		}
	}
}

func TestAckAddThenDone(t *testing.T) {
	done, calls := counter()
	a := event.NewAck(1, done)
	a.Add(2) // a split into three children, before the parent's reference is given back
	if a.Pending() != 3 {
		t.Fatalf("Pending after Add(2) = %d, want 3", a.Pending())
	}
	a.Done(1) // the parent
	a.Done(1)
	if calls() != 0 {
		t.Fatal("callback ran with a reference outstanding")
	}
	a.Add(0)
	a.Done(1)
	if calls() != 1 || a.Pending() != 0 {
		t.Errorf("callback ran %d times, Pending %d; want 1, 0", calls(), a.Pending())
	}
}

func TestAckNilCallback(t *testing.T) {
	a := event.NewAck(2, nil)
	a.Done(2) // must not panic
	if a.Pending() != 0 {
		t.Errorf("Pending = %d, want 0", a.Pending())
	}
}

func TestNilAckIsSafe(t *testing.T) {
	var a *event.Ack
	a.Add(3)
	a.Done(3)
	if a.Pending() != 0 {
		t.Errorf("nil Ack Pending = %d, want 0", a.Pending())
	}
	// Events without an Ack are skipped by the bulk helpers.
	evs := []event.Event{{}, {}, {}}
	event.AddAll(evs, 2)
	event.DoneAll(evs)
	event.DoneAll(nil)
	event.AddAll(nil, 1)
}

func TestAckOverReleasePanics(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(a *event.Ack)
	}{
		{"one too many", func(a *event.Ack) { a.Done(2); a.Done(1) }},
		{"more than held at once", func(a *event.Ack) { a.Done(3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := event.NewAck(2, nil)
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("over-release did not panic")
				}
				if s, _ := r.(string); !strings.Contains(s, "more references than it holds") {
					t.Errorf("panic value = %v", r)
				}
			}()
			tc.f(a)
		})
	}
	// The callback does not run a second time on the way to the panic.
	done, calls := counter()
	a := event.NewAck(1, done)
	a.Done(1)
	func() {
		defer func() { _ = recover() }()
		a.Done(1)
	}()
	if calls() != 1 {
		t.Errorf("callback ran %d times, want 1", calls())
	}
}

// ackSet makes Acks that record how often each completed.
type ackSet struct {
	acks  []*event.Ack
	calls []*atomic.Int64
}

func (s *ackSet) new(n int) *event.Ack {
	c := new(atomic.Int64)
	a := event.NewAck(n, func() { c.Add(1) })
	s.acks = append(s.acks, a)
	s.calls = append(s.calls, c)
	return a
}

// events builds a slice of events whose Acks follow pattern: the i-th event
// holds acks[pattern[i]], or no Ack for -1.
func events(acks []*event.Ack, pattern ...int) []event.Event {
	evs := make([]event.Event, len(pattern))
	for i, p := range pattern {
		if p >= 0 {
			evs[i].Ack = acks[p]
		}
	}
	return evs
}

func TestDoneAllRuns(t *testing.T) {
	var s ackSet
	a, b, c := s.new(3), s.new(2), s.new(2)
	// Runs a a | b | -1 | a | c c | b: a appears in two runs, b in two.
	evs := events(s.acks, 0, 0, 1, -1, 0, 2, 2, 1)
	event.DoneAll(evs)
	for i, ack := range []*event.Ack{a, b, c} {
		if ack.Pending() != 0 || s.calls[i].Load() != 1 {
			t.Errorf("ack %d: Pending %d, callback ran %d times; want 0, 1", i, ack.Pending(), s.calls[i].Load())
		}
	}
}

func TestDoneAllPartial(t *testing.T) {
	var s ackSet
	a, b := s.new(4), s.new(1)
	event.DoneAll(events(s.acks, 0, 0, 1, 0))
	if a.Pending() != 1 || s.calls[0].Load() != 0 {
		t.Errorf("a: Pending %d, calls %d; want 1, 0", a.Pending(), s.calls[0].Load())
	}
	if b.Pending() != 0 || s.calls[1].Load() != 1 {
		t.Errorf("b: Pending %d, calls %d; want 0, 1", b.Pending(), s.calls[1].Load())
	}
}

func TestAddAllRuns(t *testing.T) {
	var s ackSet
	a, b := s.new(3), s.new(2)
	evs := events(s.acks, 0, 0, 1, -1, 0, 1)
	// A broadcast to three consumers: every event gains two references.
	event.AddAll(evs, 2)
	if a.Pending() != 3+3*2 || b.Pending() != 2+2*2 {
		t.Fatalf("after AddAll: Pending a=%d b=%d, want 9, 6", a.Pending(), b.Pending())
	}
	// Each of the three consumers gives back its copy.
	for i := range 3 {
		if s.calls[0].Load() != 0 || s.calls[1].Load() != 0 {
			t.Fatalf("a callback ran after %d of 3 copies", i)
		}
		event.DoneAll(evs)
	}
	if s.calls[0].Load() != 1 || s.calls[1].Load() != 1 {
		t.Errorf("callbacks ran %d and %d times, want 1 and 1", s.calls[0].Load(), s.calls[1].Load())
	}
	event.AddAll(evs, 0)
	if a.Pending() != 0 || b.Pending() != 0 {
		t.Errorf("AddAll(evs, 0) changed the counts: %d, %d", a.Pending(), b.Pending())
	}
}

// Many goroutines give back references to one Ack at once: the callback
// runs exactly once, after the last one. Run with -race.
func TestAckConcurrentDone(t *testing.T) {
	const goroutines, each = 64, 100
	for range 20 {
		var calls atomic.Int64
		var doneSeen atomic.Int64
		var gave atomic.Int64
		a := event.NewAck(goroutines*each, func() {
			calls.Add(1)
			doneSeen.Store(gave.Load())
		})
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range goroutines {
			wg.Go(func() {
				<-start
				for range each {
					gave.Add(1)
					a.Done(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if calls.Load() != 1 {
			t.Fatalf("callback ran %d times, want 1", calls.Load())
		}
		if doneSeen.Load() != goroutines*each {
			t.Fatalf("callback ran after %d of %d references were given back", doneSeen.Load(), goroutines*each)
		}
	}
}

// Concurrent DoneAll over shared batches (broadcast copies) completes every
// Ack exactly once.
func TestDoneAllConcurrent(t *testing.T) {
	const copies = 8
	var s ackSet
	for range 10 {
		s.new(5)
	}
	var evs []event.Event
	for i := range 50 {
		evs = append(evs, event.Event{Ack: s.acks[i/5]})
	}
	event.AddAll(evs, copies-1)
	var wg sync.WaitGroup
	for range copies {
		wg.Go(func() { event.DoneAll(evs) })
	}
	wg.Wait()
	for i, c := range s.calls {
		if c.Load() != 1 || s.acks[i].Pending() != 0 {
			t.Errorf("ack %d: callback ran %d times, Pending %d", i, c.Load(), s.acks[i].Pending())
		}
	}
}

func TestEventSize(t *testing.T) {
	e := event.Event{Key: []byte("k1"), Value: []byte("value"), Headers: []event.Header{{Key: "h", Value: []byte("vv")}}}
	base := (&event.Event{}).Size()
	if base <= 0 {
		t.Fatalf("empty event Size = %d, want the struct overhead > 0", base)
	}
	if got, want := e.Size(), base+2+5+1+2; got != want {
		t.Errorf("Size = %d, want %d", got, want)
	}
}

func TestBatch(t *testing.T) {
	b := event.GetBatch()
	if b.Len() != 0 || b.Bytes != 0 || b.Born != 0 {
		t.Fatalf("GetBatch returned a non-empty batch: len %d, bytes %d, born %d", b.Len(), b.Bytes, b.Born)
	}
	e1 := event.Event{Value: []byte(`{"a":1}`)}
	e2 := event.Event{Key: []byte("key"), Value: []byte(`{}`), Headers: []event.Header{{Key: "x", Value: []byte("y")}}}
	b.Append(e1)
	b.Append(e2)
	if b.Len() != 2 || string(b.Events[1].Key) != "key" {
		t.Fatalf("after two Appends: %d events", b.Len())
	}
	if want := e1.Size() + e2.Size(); b.Bytes != want {
		t.Errorf("Bytes = %d, want %d", b.Bytes, want)
	}
	b.Born = 12345
	held := b.Events[:2]
	b.Reset()
	if b.Len() != 0 || b.Bytes != 0 || b.Born != 0 {
		t.Errorf("after Reset: len %d, bytes %d, born %d; want all 0", b.Len(), b.Bytes, b.Born)
	}
	// Reset drops the references to event bytes so the pool does not keep
	// them alive.
	for i, e := range held {
		if e.Value != nil || e.Key != nil || e.Headers != nil || e.Ack != nil {
			t.Errorf("event %d still referenced after Reset: %+v", i, e)
		}
	}
	b.Append(e1)
	if b.Len() != 1 || b.Bytes != e1.Size() {
		t.Errorf("Append after Reset: len %d, bytes %d", b.Len(), b.Bytes)
	}
	b.Release()
}

func TestBatchRelease(t *testing.T) {
	// Release does not touch acknowledgements.
	done, calls := counter()
	a := event.NewAck(1, done)
	b := event.GetBatch()
	b.Append(event.Event{Value: []byte("x"), Ack: a})
	b.Release()
	if calls() != 0 || a.Pending() != 1 {
		t.Errorf("Release changed the Ack: Pending %d, calls %d", a.Pending(), calls())
	}
	// A released batch comes back empty (whether or not the pool returns
	// the same one).
	for range 10 {
		b := event.GetBatch()
		if b.Len() != 0 || b.Bytes != 0 || b.Born != 0 {
			t.Fatalf("GetBatch after Release: len %d, bytes %d, born %d", b.Len(), b.Bytes, b.Born)
		}
		b.Append(event.Event{Value: []byte("y")})
		b.Born = 1
		b.Release()
	}
	// An oversized batch is not pooled: it is left alone.
	big := &event.Batch{Events: make([]event.Event, 5000)}
	big.Release()
	if len(big.Events) != 5000 {
		t.Errorf("oversized batch was reset on Release (len %d); it should be dropped untouched", len(big.Events))
	}
}

func TestHeader(t *testing.T) {
	e := event.Event{Headers: []event.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte("2")}, {Key: "a", Value: []byte("3")}}}
	if v, ok := e.Header("a"); !ok || string(v) != "1" {
		t.Errorf(`Header("a") = %q, %v; want the first, "1"`, v, ok)
	}
	if v, ok := e.Header("zz"); ok || v != nil {
		t.Errorf(`Header("zz") = %q, %v; want nil, false`, v, ok)
	}
}

func TestSetHeaderCopies(t *testing.T) {
	shared := make([]event.Header, 2, 8) // spare capacity: an in-place append would be visible
	shared[0] = event.Header{Key: "a", Value: []byte("1")}
	shared[1] = event.Header{Key: "b", Value: []byte("2")}
	orig := append([]event.Header(nil), shared...)

	e1 := event.Event{Headers: shared}
	e2 := event.Event{Headers: shared} // a broadcast copy

	e1.SetHeader("c", []byte("3")) // append
	e1.SetHeader("a", []byte("9")) // replace

	for i := range orig {
		if shared[i].Key != orig[i].Key || string(shared[i].Value) != string(orig[i].Value) {
			t.Errorf("shared header %d changed to %s=%s", i, shared[i].Key, shared[i].Value)
		}
	}
	if full := shared[:cap(shared)]; full[2].Key != "" {
		t.Errorf("SetHeader wrote into the shared slice's spare capacity: %+v", full[2])
	}
	if len(e2.Headers) != 2 {
		t.Errorf("the other event's headers changed: %+v", e2.Headers)
	}
	if v, _ := e1.Header("a"); string(v) != "9" {
		t.Errorf(`e1 Header("a") = %q, want 9`, v)
	}
	if v, _ := e1.Header("c"); string(v) != "3" {
		t.Errorf(`e1 Header("c") = %q, want 3`, v)
	}
	if v, _ := e2.Header("a"); string(v) != "1" {
		t.Errorf(`e2 Header("a") = %q, want 1`, v)
	}
	// Replacing leaves exactly one header with that key.
	n := 0
	for _, h := range e1.Headers {
		if h.Key == "a" {
			n++
		}
	}
	if n != 1 || len(e1.Headers) != 3 {
		t.Errorf("e1 headers = %+v, want b, c, a once each", e1.Headers)
	}
}

// The checked mark belongs to the marked bytes: copies of the event keep
// it, a replaced or re-sliced Value loses it.
func TestMarkChecked(t *testing.T) {
	v := []byte(`{"a":1}`)
	e := event.Event{Value: v}
	if e.Checked() {
		t.Fatal("a new event is checked")
	}
	e.MarkChecked()
	if !e.Checked() {
		t.Fatal("MarkChecked did not mark")
	}
	c := e
	if !c.Checked() {
		t.Fatal("a copy lost the mark")
	}
	for name, nv := range map[string][]byte{
		"same text, other bytes": []byte(`{"a":1}`),
		"a prefix":               v[:3],
		"a suffix":               v[1:],
		"empty":                  nil,
	} {
		c := e
		c.Value = nv
		if c.Checked() {
			t.Errorf("%s: still checked", name)
		}
	}
	empty := event.Event{}
	empty.MarkChecked()
	if empty.Checked() {
		t.Error("an empty value is checked")
	}
}
