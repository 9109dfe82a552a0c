// Package logio connects pipelines to weir's embedded durable log
// (internal/log): the replayable `log` input, the `log` output, and the
// Source that the `http` collector input also reads its log with.
//
// A log directory is opened once per process however many nodes and
// instances use it (Shared), because the log allows one writer process.
//
// Progress: a Source reads each of its partitions from a position and emits
// batches with one Ack each. Without checkpoints it commits, under its
// reader name, the offset below which every batch is acknowledged
// (periodically and at Close): a restart resumes there, at least once. With
// checkpoints, positions are part of the checkpoint (Snapshot) and restored
// from it; the log commit follows the checkpoint (Committed) and only drives
// retention — so input positions, operator state and output files always
// come from one consistent cut.
//
// Threading: one Source per input instance, run by one goroutine; Ack
// callbacks run on any goroutine; Snapshot, Committed and InFlight run on
// the checkpoint coordinator's goroutine.
package logio

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/weir-dev/weir/internal/log"
)

// Shared is a log opened once per process and shared by every node and
// instance that names its directory.
type Shared struct {
	Log *log.Log
	key string
	n   int // references

	mu      sync.Mutex
	waiters []chan struct{}
}

var (
	sharedMu sync.Mutex
	shared   = map[string]*Shared{}
)

// OpenShared opens the log in dir with the given number of partitions, or
// takes one more reference on it if this process has it open already (the
// partition count must then agree). Release gives the reference back.
func OpenShared(dir string, partitions int, opts log.Options) (*Shared, error) {
	key, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if s, ok := shared[key]; ok {
		if s.Log.Partitions() != partitions {
			return nil, fmt.Errorf("log %s is open with %d partitions, not %d", dir, s.Log.Partitions(), partitions)
		}
		s.n++
		return s, nil
	}
	l, err := log.OpenLog(dir, partitions, opts)
	if err != nil {
		return nil, err
	}
	s := &Shared{Log: l, key: key, n: 1}
	shared[key] = s
	return s, nil
}

// Release gives back a reference; the last one closes the log.
func (s *Shared) Release() error {
	sharedMu.Lock()
	s.n--
	last := s.n == 0
	if last {
		delete(shared, s.key)
	}
	sharedMu.Unlock()
	if last {
		return s.Log.Close()
	}
	return nil
}

// Subscribe returns a channel that receives a value (without blocking the
// sender) after appends made through Notify, so readers of an in-process
// log wake up at once instead of polling.
func (s *Shared) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.waiters = append(s.waiters, ch)
	s.mu.Unlock()
	return ch
}

// Notify wakes every subscriber.
func (s *Shared) Notify() {
	s.mu.Lock()
	for _, ch := range s.waiters {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// logNearlyFull is the share of a partition's max_bytes above which the
// log is reported degraded: appends are about to be refused.
const logNearlyFull = 0.9

// Health reports the log as degraded (runtime.HealthReporter) while one of
// the given partitions (nil: all) holds more than 90% of its max_bytes:
// appends are then close to being refused with backpressure, because
// readers do not commit or retention keeps segments.
func (s *Shared) Health(partitions []int) (degraded bool, detail string) {
	if partitions == nil {
		for i := range s.Log.Partitions() {
			partitions = append(partitions, i)
		}
	}
	var full []string
	for _, id := range partitions {
		held, limit := s.Log.Partition(id).Usage()
		if limit > 0 && float64(held) >= logNearlyFull*float64(limit) {
			full = append(full, fmt.Sprintf("partition %d holds %d of max_bytes %d (%.0f%%)", id, held, limit, 100*float64(held)/float64(limit)))
		}
	}
	if len(full) == 0 {
		return false, ""
	}
	return true, fmt.Sprintf("log %s is nearly full: %s; appends are refused when full", s.Log.Dir(), strings.Join(full, ", "))
}
