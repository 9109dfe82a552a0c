package runtime

import (
	"sync/atomic"
	"time"
)

// procStart is the base of the monotonic clock LiveTime keeps.
var procStart = time.Now()

// monoNow is nanoseconds since procStart on the monotonic clock, never 0.
func monoNow() int64 { return int64(time.Since(procStart)) + 1 }

// LiveTime is the time a stage's instances spent in one activity (working,
// or blocked on a full downstream queue). An interval still open counts up
// to now: a stage stuck for a minute in a write or a full queue reads as
// stuck during that minute, not only once it moves again, which is what a
// live view of pressure needs. Each instance has at most one open interval
// (an instance is one goroutine), kept in its own slot: no lock, no shared
// write between instances beyond one atomic add per closed interval.
type LiveTime struct {
	done atomic.Int64   // nanoseconds of closed intervals
	open []atomic.Int64 // per instance: monoNow at the open interval's start, or 0
	last atomic.Int64   // the highest value Load returned: Load never goes back
}

func newLiveTime(instances int) LiveTime {
	return LiveTime{open: make([]atomic.Int64, instances)}
}

// Begin opens an interval for instance slot and returns its start.
func (t *LiveTime) Begin(slot int) int64 {
	now := monoNow()
	if slot < len(t.open) {
		t.open[slot].Store(now)
	}
	return now
}

// End closes the interval that Begin opened and returns its length.
func (t *LiveTime) End(slot int, start int64) time.Duration {
	d := monoNow() - start
	if slot < len(t.open) {
		t.open[slot].Store(0)
	}
	t.done.Add(d)
	return time.Duration(d)
}

// Add counts a closed interval of d nanoseconds.
func (t *LiveTime) Add(d int64) { t.done.Add(d) }

// Load is the total in nanoseconds, open intervals included up to now. It
// never decreases (it is exported as a Prometheus counter): when an
// interval closes between the reads of done and of its slot, the sum dips
// for a moment and the last value is returned instead.
func (t *LiveTime) Load() int64 {
	v := t.done.Load() // before the slots: a race can only under-count
	now := monoNow()
	for i := range t.open {
		if s := t.open[i].Load(); s != 0 && now > s {
			v += now - s
		}
	}
	for {
		last := t.last.Load()
		if v <= last {
			return last
		}
		if t.last.CompareAndSwap(last, v) {
			return v
		}
	}
}
