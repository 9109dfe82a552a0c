package runtime

import (
	"context"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
)

// A producer stuck on a full queue shows as blocked while it is stuck, not
// only once it gets through: the live view of backpressure depends on it.
// Once it got through, the time stops growing.
func TestBlockedTimeCountsWhileBlocked(t *testing.T) {
	q := NewQueue(1, 1<<20, 1)
	lt := newLiveTime(2)
	batch := func() *event.Batch {
		b := &event.Batch{Events: []event.Event{{Value: []byte("x")}}}
		b.Bytes = 1
		return b
	}
	if err := q.Push(context.Background(), batch(), &lt, 1); err != nil {
		t.Fatal(err)
	}
	if v := lt.Load(); v != 0 {
		t.Fatalf("a push into a queue with room counted %d ns blocked", v)
	}
	done := make(chan error, 1)
	go func() { done <- q.Push(context.Background(), batch(), &lt, 1) }()
	deadline := time.Now().Add(10 * time.Second)
	for lt.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a producer blocked for 10 s shows no blocked time")
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("the push returned (%v) before the queue had room", err)
	default:
	}
	during := lt.Load()
	if _, ok := q.TryPop(); !ok {
		t.Fatal("queue empty")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	after := lt.Load()
	if after < during {
		t.Fatalf("blocked time went back from %d to %d", during, after)
	}
	if again := lt.Load(); again != after {
		t.Fatalf("blocked time still grows (%d → %d) after the producer got through", after, again)
	}
}

// Load never decreases, even when intervals close while it reads.
func TestLiveTimeMonotonic(t *testing.T) {
	lt := newLiveTime(4)
	stop := make(chan struct{})
	for slot := range 4 {
		go func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := lt.Begin(slot)
				lt.End(slot, s)
			}
		}()
	}
	last := int64(0)
	for range 100000 {
		v := lt.Load()
		if v < last {
			close(stop)
			t.Fatalf("Load went back from %d to %d", last, v)
		}
		last = v
	}
	close(stop)
}
