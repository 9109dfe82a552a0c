package state

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/weir-dev/weir/internal/runtime"
)

// Scratch values start with one of these bytes.
const (
	scratchValue   = 'v'
	scratchDeleted = 'd'
)

// scratchFlushBytes is how much a Scratch buffers before writing.
const scratchFlushBytes = 1 << 20

var scratchAll = []byte("t\x00")

func scratchPrefix(node string) []byte {
	b := make([]byte, 0, len(node)+3)
	b = append(b, 't', 0)
	b = append(b, node...)
	return append(b, 0)
}

// Scratch is the handle on a node's scratch space. It implements
// runtime.Scratch: writes are buffered and written without sync (a read,
// or a checkpoint of the node, writes them first); reads see the scratch
// over the node's checkpointed state. It is safe for concurrent use.
type Scratch struct {
	db       *pebble.DB
	prefix   []byte // the node's checkpointed state
	sprefix  []byte // the node's scratch
	mu       sync.Mutex
	b        *pebble.Batch // writes not yet applied
	key, val []byte
}

var _ runtime.Scratch = (*Scratch)(nil)

// Scratch returns the handle on the node's scratch space, one per node
// that its instances share (so that what one writes, another reads). It
// implements runtime.ScratchOpener.
func (r *Reader) Scratch() runtime.Scratch {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if sc := r.s.scratches[r.node]; sc != nil {
		return sc
	}
	sc := &Scratch{db: r.db, prefix: r.prefix, sprefix: scratchPrefix(r.node)}
	if r.s.scratches == nil {
		r.s.scratches = map[string]*Scratch{}
	}
	r.s.scratches[r.node] = sc
	return sc
}

// Set writes key in the scratch.
func (sc *Scratch) Set(key, value []byte) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.val = append(append(sc.val[:0], scratchValue), value...)
	return sc.writeLocked(key, sc.val)
}

// Delete marks key deleted in the scratch: reads no longer find it, and
// the next checkpoint deletes it.
func (sc *Scratch) Delete(key []byte) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.writeLocked(key, []byte{scratchDeleted})
}

func (sc *Scratch) writeLocked(key, v []byte) error {
	if sc.b == nil {
		sc.b = sc.db.NewBatch()
	}
	sc.key = append(append(sc.key[:0], sc.sprefix...), key...)
	if err := sc.b.Set(sc.key, v, nil); err != nil {
		return fmt.Errorf("state: scratch write: %w", err)
	}
	if sc.b.Len() >= scratchFlushBytes {
		return sc.flushLocked()
	}
	return nil
}

// flush writes the buffered writes.
func (sc *Scratch) flush() error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.flushLocked()
}

func (sc *Scratch) flushLocked() error {
	if sc.b == nil || sc.b.Empty() {
		return nil
	}
	err := sc.b.Commit(pebble.NoSync)
	sc.b.Reset()
	if err != nil {
		return fmt.Errorf("state: scratch write: %w", err)
	}
	return nil
}

// Get returns key's value in the scratch, or else in the checkpointed
// state.
func (sc *Scratch) Get(key []byte) ([]byte, bool, error) {
	if err := sc.flush(); err != nil {
		return nil, false, err
	}
	k := append(bytes.Clone(sc.sprefix), key...)
	v, closer, err := sc.db.Get(k)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return nil, false, fmt.Errorf("state: scratch get: %w", err)
	default:
		var out []byte
		ok := len(v) > 0 && v[0] == scratchValue
		if ok {
			out = bytes.Clone(v[1:])
		}
		_ = closer.Close()
		return out, ok, nil
	}
	k = append(append(k[:0], sc.prefix...), key...)
	v, closer, err = sc.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	out := bytes.Clone(v)
	_ = closer.Close()
	return out, true, nil
}

// Scan calls fn for every key in [start, end) of the scratch over the
// checkpointed state, in order; a nil end means to the end of the node's
// key space. fn may write to the scratch: the scan does not see it.
func (sc *Scratch) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if err := sc.flush(); err != nil {
		return err
	}
	bounds := func(p []byte) *pebble.IterOptions {
		o := &pebble.IterOptions{LowerBound: append(bytes.Clone(p), start...), UpperBound: prefixEnd(p)}
		if end != nil {
			o.UpperBound = append(bytes.Clone(p), end...)
		}
		return o
	}
	ci, err := sc.db.NewIter(bounds(sc.prefix))
	if err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	defer func() { _ = ci.Close() }()
	si, err := sc.db.NewIter(bounds(sc.sprefix))
	if err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	defer func() { _ = si.Close() }()
	cok, sok := ci.First(), si.First()
	for cok || sok {
		var ck, sk []byte
		if cok {
			ck = ci.Key()[len(sc.prefix):]
		}
		if sok {
			sk = si.Key()[len(sc.sprefix):]
		}
		c := -1
		if sok {
			c = 1
			if cok {
				c = bytes.Compare(ck, sk)
			}
		}
		if c < 0 {
			if err := fn(ck, ci.Value()); err != nil {
				return err
			}
			cok = ci.Next()
			continue
		}
		if c == 0 {
			cok = ci.Next()
		}
		if v := si.Value(); len(v) > 0 && v[0] == scratchValue {
			if err := fn(sk, v[1:]); err != nil {
				return err
			}
		}
		sok = si.Next()
	}
	if err := errors.Join(ci.Error(), si.Error()); err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	return nil
}

// moveScratch puts the node's scratch into the checkpoint: its values as
// sets, its deletions as deletes, then a range delete of the scratch.
func (t *Txn) moveScratch(node string, nw *NodeWrite) {
	t.s.mu.Lock()
	sc := t.s.scratches[node]
	t.s.mu.Unlock()
	if sc != nil && t.check(sc.flush()) != nil {
		return
	}
	sp := scratchPrefix(node)
	it, err := t.s.db.NewIter(&pebble.IterOptions{LowerBound: sp, UpperBound: prefixEnd(sp)})
	if t.check(err) != nil {
		return
	}
	defer func() { _ = it.Close() }()
	prefix, moved := nsPrefix(node), false
	for it.First(); it.Valid(); it.Next() {
		moved = true
		t.key = append(append(t.key[:0], prefix...), it.Key()[len(sp):]...)
		v := it.Value()
		if len(v) > 0 && v[0] == scratchValue {
			nw.Sets++
			nw.Bytes += len(it.Key()) - len(sp) + len(v) - 1
			err = t.b.Set(t.key, v[1:], nil)
		} else {
			nw.Deletes++
			err = t.b.Delete(t.key, nil)
		}
		if t.check(err) != nil {
			return
		}
	}
	if t.check(it.Error()) != nil || !moved {
		return
	}
	nw.RangeDeletes++
	_ = t.check(t.b.DeleteRange(sp, prefixEnd(sp), nil))
}

// clearScratch deletes every node's scratch space: a start begins from the
// last completed checkpoint.
func (s *Store) clearScratch() error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: scratchAll, UpperBound: prefixEnd(scratchAll)})
	if err != nil {
		return fmt.Errorf("state: clear scratch: %w", err)
	}
	any := it.First()
	err = errors.Join(it.Error(), it.Close())
	if err == nil && any {
		err = s.db.DeleteRange(scratchAll, prefixEnd(scratchAll), pebble.Sync)
	}
	if err != nil {
		return fmt.Errorf("state: clear scratch: %w", err)
	}
	return nil
}
