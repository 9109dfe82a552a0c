package runtime

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/event"
)

// Error samples: the last few failed events of each node, with the error
// and what the error policy did, for the control plane's "recent errors"
// (the UI shows them next to the counters). Recording is rate-limited per
// node, so an error storm costs one atomic load per failed event.

const (
	errSamplesPerNode = 16
	errSampleEvery    = 100 * time.Millisecond // at most 10 samples/s per node
	errSampleValueMax = 4 << 10                // bytes of value and key kept
)

// ErrorSample is one failed event.
type ErrorSample struct {
	Time      time.Time
	Node      string
	Error     string
	Action    string // "dropped", "dead_letter" or "fail"
	Offset    int64  // the event's position in its source, -1 if none
	Source    string // the "source" header (a file name, a partition), if any
	Key       []byte
	Value     []byte
	Truncated bool // Value or Key was cut at errSampleValueMax bytes
}

type errSamples struct {
	last atomic.Int64 // Unix nanoseconds of the last sample taken

	mu   sync.Mutex
	ring [errSamplesPerNode]ErrorSample
	n    int // samples taken in all
}

func (s *errSamples) record(node, action string, ev *event.Event, err error) {
	now := time.Now()
	last := s.last.Load()
	if last != 0 && now.UnixNano()-last < int64(errSampleEvery) {
		return
	}
	if !s.last.CompareAndSwap(last, now.UnixNano()) {
		return // another instance is recording one right now
	}
	smp := ErrorSample{Time: now, Node: node, Error: err.Error(), Action: action, Offset: ev.Offset}
	if src, ok := ev.Header("source"); ok {
		smp.Source = string(src)
	}
	cut := func(b []byte) []byte {
		if len(b) > errSampleValueMax {
			smp.Truncated = true
			b = b[:errSampleValueMax]
		}
		return slices.Clone(b)
	}
	smp.Key, smp.Value = cut(ev.Key), cut(ev.Value)
	s.mu.Lock()
	s.ring[s.n%errSamplesPerNode] = smp
	s.n++
	s.mu.Unlock()
}

// appendTo appends the samples, oldest first.
func (s *errSamples) appendTo(dst []ErrorSample) []ErrorSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := min(s.n, errSamplesPerNode)
	for i := s.n - k; i < s.n; i++ {
		dst = append(dst, s.ring[i%errSamplesPerNode])
	}
	return dst
}

// ErrorSamples returns recent failed events of every node, newest first, at
// most limit (≤ 0: all that are kept, errSamplesPerNode per node).
func (p *Pipeline) ErrorSamples(limit int) []ErrorSample {
	var all []ErrorSample
	for _, ns := range p.nodes {
		all = ns.errs.appendTo(all)
	}
	slices.SortStableFunc(all, func(a, b ErrorSample) int { return b.Time.Compare(a.Time) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all
}
