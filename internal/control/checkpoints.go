package control

import (
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// Checkpoints is a runtime.StateStore that passes everything through to
// the store it wraps and remembers the checkpoints committed through it
// (id, time, duration, size, what each node wrote), for the API. Give it
// to the runtime in place of the store:
//
//	ck := control.WatchCheckpoints(store)
//	opts.Store = ck
//
// When the wrapped store can list its own history (a List method, as
// *state.Store has), /api/v1/checkpoints serves that instead, which
// includes checkpoints taken before this process started.
type Checkpoints struct {
	store runtime.StateStore

	mu   sync.Mutex
	hist []state.Checkpoint // oldest first, at most state.History
}

// WatchCheckpoints wraps store.
func WatchCheckpoints(store runtime.StateStore) *Checkpoints {
	return &Checkpoints{store: store}
}

// Reader implements runtime.StateStore.
func (c *Checkpoints) Reader(node string) runtime.StateReader { return c.store.Reader(node) }

// Last implements runtime.StateStore.
func (c *Checkpoints) Last() (uint64, bool) { return c.store.Last() }

// Begin implements runtime.StateStore.
func (c *Checkpoints) Begin() runtime.StateTxn {
	return &watchedTxn{StateTxn: c.store.Begin(), c: c, began: time.Now()}
}

// List returns the remembered checkpoints, oldest first.
func (c *Checkpoints) List() ([]state.Checkpoint, error) {
	if l, ok := c.store.(interface {
		List() ([]state.Checkpoint, error)
	}); ok {
		return l.List()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]state.Checkpoint(nil), c.hist...), nil
}

// lastCheckpoint returns the last checkpoint this process committed.
func (c *Checkpoints) lastCheckpoint() (state.Checkpoint, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hist) == 0 {
		return state.Checkpoint{}, false
	}
	return c.hist[len(c.hist)-1], true
}

func (c *Checkpoints) record(cp state.Checkpoint) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.hist) == state.History {
		copy(c.hist, c.hist[1:])
		c.hist = c.hist[:len(c.hist)-1]
	}
	c.hist = append(c.hist, cp)
}

// watchedTxn counts what each node writes and records the checkpoint when
// it commits. Its methods run on the checkpoint coordinator's goroutine.
type watchedTxn struct {
	runtime.StateTxn
	c       *Checkpoints
	began   time.Time
	writers []*countingWriter
}

func (t *watchedTxn) Writer(node string) runtime.StateWriter {
	w := &countingWriter{StateWriter: t.StateTxn.Writer(node), nw: state.NodeWrite{Node: node}}
	t.writers = append(t.writers, w)
	return w
}

// Size is the size of the wrapped write, when the store tells.
func (t *watchedTxn) Size() int {
	if s, ok := t.StateTxn.(interface{ Size() int }); ok {
		return s.Size()
	}
	return 0
}

func (t *watchedTxn) Commit(id uint64) error {
	size := t.Size()
	if err := t.StateTxn.Commit(id); err != nil {
		return err
	}
	now := time.Now()
	cp := state.Checkpoint{ID: id, Time: now.UTC(), Bytes: size, Duration: now.Sub(t.began)}
	byNode := map[string]int{}
	for _, w := range t.writers {
		nw := w.nw
		if nw.Sets+nw.Deletes+nw.RangeDeletes == 0 {
			continue
		}
		if i, ok := byNode[nw.Node]; ok {
			acc := &cp.Nodes[i]
			acc.Sets += nw.Sets
			acc.Deletes += nw.Deletes
			acc.RangeDeletes += nw.RangeDeletes
			acc.Bytes += nw.Bytes
			continue
		}
		byNode[nw.Node] = len(cp.Nodes)
		cp.Nodes = append(cp.Nodes, nw)
	}
	t.c.record(cp)
	return nil
}

type countingWriter struct {
	runtime.StateWriter
	nw state.NodeWrite
}

func (w *countingWriter) Set(key, value []byte) error {
	w.nw.Sets++
	w.nw.Bytes += len(key) + len(value)
	return w.StateWriter.Set(key, value)
}

func (w *countingWriter) Delete(key []byte) error {
	w.nw.Deletes++
	return w.StateWriter.Delete(key)
}

func (w *countingWriter) DeleteRange(start, end []byte) error {
	w.nw.RangeDeletes++
	return w.StateWriter.DeleteRange(start, end)
}
