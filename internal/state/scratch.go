package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
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

// mergeBatchBytes bounds the batches that fold committed scratch into the
// checkpointed key spaces.
const mergeBatchBytes = 4 << 20

// Scratch layout: 't' 0 <generation, 8 bytes big-endian> <node> 0 <key>.
// A generation is the scratch written between two checkpoints. The
// checkpoint that ends a generation commits it by recording its number
// (scratchGenKey) in its synced batch, without copying it: Pebble's WAL
// is one sequential log, so the sync makes every earlier unsynced write
// durable too. A start deletes the generations after the last committed
// one (written after the last checkpoint: gone, as promised) and folds the
// committed ones into the checkpointed key spaces; a checkpoint first folds
// the generation committed by the previous one, in small unsynced batches
// (the data is committed either way, so a crash midway loses nothing), so
// that memory never holds a whole interval's spill. Reads look at the
// current generation, then the committed ones not yet folded (newest
// first), then the checkpointed key space.
var (
	scratchAll    = []byte("t\x00")
	scratchGenKey = []byte("m\x00scratchgen")
)

// genPrefix is the start of generation g's keys.
func genPrefix(g uint64) []byte {
	b := make([]byte, 10, 10+32)
	copy(b, scratchAll)
	binary.BigEndian.PutUint64(b[2:], g)
	return b
}

// scratchPrefix is the start of node's keys in generation g.
func scratchPrefix(g uint64, node string) []byte {
	b := genPrefix(g)
	b = append(b, node...)
	return append(b, 0)
}

// Scratch is the handle on a node's scratch space. It implements
// runtime.Scratch: writes are buffered and written without sync (a read,
// or a checkpoint of the node, writes them first); reads see the scratch
// over the node's checkpointed state. It is safe for concurrent use.
type Scratch struct {
	s        *Store
	db       *pebble.DB
	node     string
	prefix   []byte // the node's checkpointed state
	mu       sync.Mutex
	gen      uint64        // the generation of wprefix
	wprefix  []byte        // the node's keys in generation gen
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
	sc := &Scratch{s: r.s, db: r.db, node: r.node, prefix: r.prefix}
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
	if g := sc.s.gen.Load(); g != sc.gen || sc.wprefix == nil {
		sc.gen, sc.wprefix = g, scratchPrefix(g, sc.node)
	}
	sc.key = append(append(sc.key[:0], sc.wprefix...), key...)
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
	return sc.s.get(sc.node, sc.prefix, key, true)
}

// Scan calls fn for every key in [start, end) of the scratch over the
// checkpointed state, in order; a nil end means to the end of the node's
// key space. fn may write to the scratch: the scan does not see it.
func (sc *Scratch) Scan(start, end []byte, fn func(key, value []byte) error) error {
	if err := sc.flush(); err != nil {
		return err
	}
	return sc.s.scan(sc.node, sc.prefix, start, end, true, fn)
}

// layers are the key spaces a read of node looks at, newest first: the
// current generation (with current), the committed ones not yet folded,
// then the checkpointed state (prefix). Scratch layers hold values with a
// 'v' or 'd' byte in front.
func (s *Store) layers(node string, prefix []byte, current bool) (out [][]byte, scratch []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if current && !s.readOnly {
		out, scratch = append(out, scratchPrefix(s.gen.Load(), node)), append(scratch, true)
	}
	for _, g := range s.committedGens {
		out, scratch = append(out, scratchPrefix(g, node)), append(scratch, true)
	}
	return append(out, prefix), append(scratch, false)
}

// get reads key of node through its layers.
func (s *Store) get(node string, prefix, key []byte, current bool) ([]byte, bool, error) {
	ls, scratch := s.layers(node, prefix, current)
	k := make([]byte, 0, 64)
	for i, p := range ls {
		k = append(append(k[:0], p...), key...)
		v, closer, err := s.db.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("state: get: %w", err)
		}
		var out []byte
		ok := true
		if scratch[i] {
			ok = len(v) > 0 && v[0] == scratchValue
			if ok {
				out = bytes.Clone(v[1:])
			}
		} else {
			out = bytes.Clone(v)
		}
		_ = closer.Close()
		return out, ok, nil
	}
	return nil, false, nil
}

// scan merges node's layers over [start, end): for each key, the newest
// layer that has it decides (a 'd' in a scratch layer hides it).
func (s *Store) scan(node string, prefix, start, end []byte, current bool, fn func(key, value []byte) error) error {
	ls, scratch := s.layers(node, prefix, current)
	its := make([]*pebble.Iterator, len(ls))
	ok := make([]bool, len(ls))
	defer func() {
		for _, it := range its {
			if it != nil {
				_ = it.Close()
			}
		}
	}()
	for i, p := range ls {
		o := &pebble.IterOptions{LowerBound: append(bytes.Clone(p), start...), UpperBound: prefixEnd(p)}
		if end != nil {
			o.UpperBound = append(bytes.Clone(p), end...)
		}
		it, err := s.db.NewIter(o)
		if err != nil {
			return fmt.Errorf("state: scan: %w", err)
		}
		its[i], ok[i] = it, it.First()
	}
	for {
		var min []byte
		for i, it := range its {
			if ok[i] {
				if k := it.Key()[len(ls[i]):]; min == nil || bytes.Compare(k, min) < 0 {
					min = k
				}
			}
		}
		if min == nil {
			break
		}
		min = bytes.Clone(min)
		decided := false
		for i, it := range its {
			if !ok[i] || !bytes.Equal(it.Key()[len(ls[i]):], min) {
				continue
			}
			if !decided {
				decided = true
				v := it.Value()
				if !scratch[i] {
					if err := fn(min, v); err != nil {
						return err
					}
				} else if len(v) > 0 && v[0] == scratchValue {
					if err := fn(min, v[1:]); err != nil {
						return err
					}
				}
			}
			ok[i] = it.Next()
		}
	}
	for _, it := range its {
		if err := it.Error(); err != nil {
			return fmt.Errorf("state: scan: %w", err)
		}
	}
	return nil
}

// fold applies the committed scratch generations to the checkpointed key
// spaces, oldest first, in batches of at most mergeBatchBytes written
// without sync, then deletes them. The data is committed before and after,
// so a crash midway changes nothing that a read sees.
func (s *Store) fold() error {
	s.mu.Lock()
	gens := slices.Clone(s.committedGens)
	s.mu.Unlock()
	if len(gens) == 0 {
		return nil
	}
	slices.Sort(gens)
	hi := genPrefix(gens[len(gens)-1] + 1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: scratchAll, UpperBound: hi})
	if err != nil {
		return fmt.Errorf("state: fold scratch: %w", err)
	}
	b := s.db.NewBatch()
	var key []byte
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()[len(genPrefix(0)):] // <node> 0 <key>
		key = append(append(key[:0], 's', 0), k...)
		v := it.Value()
		if len(v) > 0 && v[0] == scratchValue {
			err = b.Set(key, v[1:], nil)
		} else {
			err = b.Delete(key, nil)
		}
		if err == nil && b.Len() >= mergeBatchBytes {
			err = b.Commit(pebble.NoSync)
			b.Reset()
		}
		if err != nil {
			break
		}
	}
	err = errors.Join(err, it.Error(), it.Close())
	if err == nil {
		err = b.DeleteRange(scratchAll, hi, nil)
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	_ = b.Close()
	if err != nil {
		return fmt.Errorf("state: fold scratch: %w", err)
	}
	s.mu.Lock()
	s.committedGens = slices.DeleteFunc(s.committedGens, func(g uint64) bool { return slices.Contains(gens, g) })
	s.mu.Unlock()
	return nil
}

// flushScratches writes every node's buffered scratch writes.
func (s *Store) flushScratches() error {
	s.mu.Lock()
	scs := make([]*Scratch, 0, len(s.scratches))
	for _, sc := range s.scratches {
		scs = append(scs, sc)
	}
	s.mu.Unlock()
	for _, sc := range scs {
		if err := sc.flush(); err != nil {
			return err
		}
	}
	return nil
}

// openScratch runs at open: it reads the last committed generation, deletes
// the later ones (written after the last checkpoint) and, unless read-only,
// folds the committed ones into the checkpointed state. A read-only store
// reads them as layers instead.
func (s *Store) openScratch() error {
	var committed uint64
	v, closer, err := s.db.Get(scratchGenKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("state: read the scratch generation: %w", err)
	default:
		if len(v) == 8 {
			committed = binary.BigEndian.Uint64(v)
		}
		_ = closer.Close()
	}
	s.gen.Store(committed + 1)
	// Which committed generations are still there (a few at most).
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: scratchAll, UpperBound: prefixEnd(scratchAll)})
	if err != nil {
		return fmt.Errorf("state: open scratch: %w", err)
	}
	var later bool
	for ok := it.First(); ok; {
		g := binary.BigEndian.Uint64(it.Key()[2:10])
		if g > committed {
			later = true
			break
		}
		s.committedGens = append(s.committedGens, g)
		ok = it.SeekGE(genPrefix(g + 1))
	}
	err = errors.Join(it.Error(), it.Close())
	if err != nil {
		return fmt.Errorf("state: open scratch: %w", err)
	}
	slices.Reverse(s.committedGens) // newest first
	if s.readOnly {
		return nil
	}
	if later {
		if err := s.db.DeleteRange(genPrefix(committed+1), prefixEnd(scratchAll), pebble.Sync); err != nil {
			return fmt.Errorf("state: clear scratch: %w", err)
		}
	}
	return s.fold()
}
