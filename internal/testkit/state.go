package testkit

import (
	"bytes"
	"slices"
	"sync"

	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// MemState is an in-memory state store for one node: a Writer applies
// writes at once (there is no transaction), a Reader reads them back in key
// order. It is safe for concurrent use.
type MemState struct {
	mu sync.Mutex
	m  map[string][]byte
}

// NewMemState returns an empty MemState.
func NewMemState() *MemState { return &MemState{m: map[string][]byte{}} }

// Writer returns a runtime.StateWriter into s.
func (s *MemState) Writer() runtime.StateWriter { return memWriter{s} }

// Reader returns a runtime.StateReader of s.
func (s *MemState) Reader() runtime.StateReader { return memReader{s} }

// Len is the number of keys held.
func (s *MemState) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

type memWriter struct{ s *MemState }

func (w memWriter) Set(key, value []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	w.s.m[string(key)] = bytes.Clone(value)
	return nil
}

func (w memWriter) Delete(key []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	delete(w.s.m, string(key))
	return nil
}

func (w memWriter) DeleteRange(start, end []byte) error {
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	for k := range w.s.m {
		if k >= string(start) && k < string(end) {
			delete(w.s.m, k)
		}
	}
	return nil
}

type memReader struct{ s *MemState }

func (r memReader) Get(key []byte) ([]byte, bool, error) {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	v, ok := r.s.m[string(key)]
	return v, ok, nil
}

func (r memReader) Scan(start, end []byte, fn func(key, value []byte) error) error {
	r.s.mu.Lock()
	keys := make([]string, 0, len(r.s.m))
	for k := range r.s.m {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = r.s.m[k]
	}
	r.s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// Collector gathers what an operator emits when a test calls it directly,
// outside a pipeline.
type Collector struct{ c *runtime.Collector }

// NewCollector returns a Collector.
func NewCollector() *Collector { return &Collector{c: runtime.NewCollector()} }

// Collector is what to pass to the operator.
func (c *Collector) Collector() *runtime.Collector { return c.c }

// Values returns the values emitted since the last call.
func (c *Collector) Values() []string {
	var out []string
	for _, e := range c.c.Take() {
		out = append(out, string(e.Value))
	}
	return out
}

// StateStore adapts a *state.Store to runtime.StateStore, as the app does,
// for tests that run pipelines with checkpoints.
func StateStore(s *state.Store) runtime.StateStore { return stateStore{s} }

type stateStore struct{ s *state.Store }

func (a stateStore) Reader(node string) runtime.StateReader { return a.s.Reader(node) }
func (a stateStore) Begin() runtime.StateTxn                { return stateTxn{a.s.Begin()} }
func (a stateStore) Last() (uint64, bool)                   { return a.s.Last() }

type stateTxn struct{ *state.Txn }

func (t stateTxn) Writer(node string) runtime.StateWriter { return t.Txn.Writer(node) }
