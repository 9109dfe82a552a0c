// Package state is weir's embedded state store: one Pebble database per
// process holding every stateful component's checkpointed state (input
// positions, dedup sets, open output files, and later windows and joins) and
// the record of completed checkpoints.
//
// A checkpoint is one Pebble batch committed with fsync: either all of its
// components' writes and its checkpoint record are durable, or none is. The
// store only ever holds completed checkpoints; reading it is reading the last
// one. Besides them, a node may hold a scratch space (Scratch): state spilled
// from memory, written without sync, in generations: the scratch written
// between two checkpoints is one generation, and the second checkpoint
// commits it by recording its number in its synced batch (the sync of
// Pebble's sequential WAL makes the earlier unsynced writes durable too),
// without copying it. The next checkpoint, and a start, fold committed
// generations into the nodes' state in small unsynced batches; a start
// deletes the generations no checkpoint committed, so a crash forgets them
// with everything else that came after the last checkpoint.
//
// Key layout (all keys start with a one-byte tag):
//
//	"s" 0x00 <node> 0x00 <component key>   component state, per node
//	"t" 0x00 <generation, 8 bytes BE> <node> 0x00 <component key>
//	                                       scratch (runtime.Scratch): a tag
//	                                       byte ('v' value, 'd' deleted), then
//	                                       the value; read over "s", folded
//	                                       into it once committed
//	"m" 0x00 "scratchgen"                  the last committed generation (8 bytes BE)
//	"m" 0x00 "last"                        the last completed checkpoint (JSON)
//	"h" 0x00 <id, 8 bytes big-endian>      history of completed checkpoints (JSON)
//
// docs/format/state.md describes the layout, the checkpoint record and the
// keys each kind of node writes.
//
// A store opened with OpenReadOnly (weir checkpoint list|inspect) reads the
// last checkpoint's state and the history without writing a byte.
//
// Threading: a Store is safe for concurrent use. A Txn is used by one
// goroutine.
package state

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// History is how many completed checkpoints the store remembers.
const History = 100

// Checkpoint describes one completed checkpoint.
type Checkpoint struct {
	ID uint64 `json:"id"`
	// Time is when the checkpoint was committed.
	Time time.Time `json:"time"`
	// Bytes is the size of the checkpoint's write batch, without its own
	// record.
	Bytes int `json:"bytes"`
	// Duration is how long writing it took, from Begin (after the drain)
	// through every Snapshot to the end of the synced write.
	Duration time.Duration `json:"duration_ns"`
	// Nodes are the nodes that wrote state in this checkpoint, by name.
	// Records written before it existed have none.
	Nodes []NodeWrite `json:"nodes,omitempty"`
}

// NodeWrite is what one node wrote in a checkpoint: a checkpoint writes
// only what changed since the one before.
type NodeWrite struct {
	Node string `json:"node"`
	// Sets, Deletes and RangeDeletes count the operations.
	Sets         int `json:"sets,omitempty"`
	Deletes      int `json:"deletes,omitempty"`
	RangeDeletes int `json:"range_deletes,omitempty"`
	// Bytes is the size of the keys and values set.
	Bytes int `json:"bytes,omitempty"`
}

// Store is the Pebble-backed state store.
type Store struct {
	db  *pebble.DB
	dir string
	// lock is the directory lock of a read-only store, released after db
	// closes; nil when Pebble took the lock itself.
	lock *pebble.Lock

	mu   sync.Mutex
	last Checkpoint
	has  bool
	// scratches are the scratch handles by node, flushed before a
	// checkpoint commits their generation (scratch.go).
	scratches map[string]*Scratch
	// gen is the scratch generation being written; committedGens are the
	// committed ones not yet folded into the checkpointed state, newest
	// first.
	gen           atomic.Uint64 // written under mu, read without it by scratch writes
	committedGens []uint64
	readOnly      bool
}

// DefaultBlockCache is the size of Pebble's block cache unless Options say
// otherwise.
const DefaultBlockCache = 64 << 20

// OffHeap estimates the memory Pebble allocates outside the Go heap (so
// that Go's memory limit does not see it) with a block cache of
// blockCache bytes: the cache with its bookkeeping and the allocator's
// overhead (an eighth more), and the memtables (4 MiB each, at most two
// queued for flush besides the one being written, with room to spare).
func OffHeap(blockCache int64) int64 {
	if blockCache <= 0 {
		blockCache = DefaultBlockCache
	}
	return blockCache + blockCache/8 + 16<<20
}

// Options tune the store; the zero value takes the defaults.
type Options struct {
	// BlockCache is the size of Pebble's block cache: recently read data,
	// index and filter blocks of the store's tables. Reads of operator
	// state beyond the operators' own caches hit it before the disk.
	// 0 means DefaultBlockCache.
	BlockCache int64
}

// Open opens (creating if needed) the store in dir. Pebble locks the
// directory: a second process opening it fails.
func Open(dir string, logger *slog.Logger) (*Store, error) {
	return OpenOptions(dir, logger, Options{})
}

// OpenOptions is Open with options.
func OpenOptions(dir string, logger *slog.Logger, o Options) (*Store, error) {
	cache := o.BlockCache
	if cache <= 0 {
		cache = DefaultBlockCache
	}
	return openWith(dir, logger, &pebble.Options{FS: vfs.Default, CacheSize: cache})
}

func open(dir string, logger *slog.Logger, fs vfs.FS) (*Store, error) {
	return openWith(dir, logger, &pebble.Options{FS: fs, CacheSize: DefaultBlockCache})
}

func openWith(dir string, logger *slog.Logger, opts *pebble.Options) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.Logger = pebbleLogger{logger.With(slog.String("component", "state"))}
	if opts.Levels[0].FilterPolicy == nil {
		// Lookups of windows that were never spilled are the common case:
		// bloom filters answer most of them without reading a block.
		opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	s := &Store{db: db, dir: dir, readOnly: opts.ReadOnly}
	if err := s.openScratch(); err != nil {
		_ = db.Close()
		return nil, err
	}
	v, closer, err := db.Get(lastKey)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		_ = db.Close()
		return nil, fmt.Errorf("state: read last checkpoint: %w", err)
	default:
		err = json.Unmarshal(v, &s.last)
		_ = closer.Close()
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("state: last checkpoint record is damaged: %w", err)
		}
		s.has = true
	}
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close closes the database.
func (s *Store) Close() error {
	err := s.db.Close()
	if s.lock != nil {
		err = errors.Join(err, s.lock.Close())
	}
	if err != nil {
		return fmt.Errorf("state: close: %w", err)
	}
	return nil
}

// Last returns the ID of the last completed checkpoint.
func (s *Store) Last() (uint64, bool) {
	c, ok := s.LastCheckpoint()
	return c.ID, ok
}

// LastCheckpoint returns the last completed checkpoint.
func (s *Store) LastCheckpoint() (Checkpoint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last, s.has
}

// List returns the remembered checkpoints, oldest first.
func (s *Store) List() ([]Checkpoint, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: histPrefix, UpperBound: prefixEnd(histPrefix)})
	if err != nil {
		return nil, fmt.Errorf("state: list: %w", err)
	}
	defer func() { _ = it.Close() }()
	var out []Checkpoint
	for it.First(); it.Valid(); it.Next() {
		var c Checkpoint
		if err := json.Unmarshal(it.Value(), &c); err != nil {
			return nil, fmt.Errorf("state: checkpoint record %x is damaged: %w", it.Key(), err)
		}
		out = append(out, c)
	}
	return out, it.Error()
}

var (
	lastKey    = []byte("m\x00last")
	histPrefix = []byte("h\x00")
)

func nsPrefix(node string) []byte {
	b := make([]byte, 0, len(node)+3)
	b = append(b, 's', 0)
	b = append(b, node...)
	return append(b, 0)
}

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// Reader reads node's state as of the last completed checkpoint; its
// Scratch method opens the node's scratch space.
func (s *Store) Reader(node string) *Reader {
	return &Reader{s: s, db: s.db, node: node, prefix: nsPrefix(node)}
}

// Reader reads one node's state. It implements runtime.StateReader and
// runtime.ScratchOpener. It reads the database as it is, so after further
// checkpoints it reads the latest.
type Reader struct {
	s      *Store
	db     *pebble.DB
	node   string
	prefix []byte
}

// Get returns the value of key (committed scratch included).
func (r *Reader) Get(key []byte) ([]byte, bool, error) {
	return r.s.get(r.node, r.prefix, key, false)
}

// Scan calls fn for every key in [start, end) of the node's key space; a
// nil end means to its end.
func (r *Reader) Scan(start, end []byte, fn func(key, value []byte) error) error {
	return r.s.scan(r.node, r.prefix, start, end, false, fn)
}

// Begin starts the write batch of a checkpoint. It first writes the
// scratch buffers and folds the scratch generation the previous
// checkpoint committed into the checkpointed state (scratch.go), so that
// this checkpoint commits only the current generation, by its number.
func (s *Store) Begin() *Txn {
	t := &Txn{s: s, b: s.db.NewBatch(), start: time.Now()}
	if err := s.flushScratches(); err != nil {
		t.err = err
	} else if err := s.fold(); err != nil {
		t.err = err
	}
	return t
}

// Txn collects one checkpoint's writes.
type Txn struct {
	s     *Store
	b     *pebble.Batch
	start time.Time
	key   []byte
	err   error
	// nodes counts each node's writes, for the checkpoint record.
	nodes map[string]*NodeWrite
}

// Writer returns the writer of node's key space in this checkpoint. The
// instances of a node each get one; their writes are counted together.
func (t *Txn) Writer(node string) *Writer {
	nw := t.nodes[node]
	if nw == nil {
		if t.nodes == nil {
			t.nodes = map[string]*NodeWrite{}
		}
		nw = &NodeWrite{Node: node}
		t.nodes[node] = nw
	}
	w := &Writer{t: t, prefix: nsPrefix(node), n: nw}
	t.s.mu.Lock()
	if t.s.scratches[node] != nil {
		// The node's writes must win over what it put in the scratch
		// generation this checkpoint commits.
		w.sprefix = scratchPrefix(t.s.gen.Load(), node)
	}
	t.s.mu.Unlock()
	return w
}

// written returns the nodes that wrote something, by name.
func (t *Txn) written() []NodeWrite {
	var out []NodeWrite
	for _, nw := range t.nodes {
		if nw.Sets+nw.Deletes+nw.RangeDeletes > 0 {
			out = append(out, *nw)
		}
	}
	slices.SortFunc(out, func(a, b NodeWrite) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Commit writes the checkpoint record and the batch atomically, with
// fsync, as checkpoint id.
func (t *Txn) Commit(id uint64) error {
	if t.err != nil {
		t.Abort()
		return t.err
	}
	c := Checkpoint{ID: id, Time: time.Now().UTC(), Bytes: len(t.b.Repr()), Duration: time.Since(t.start), Nodes: t.written()}
	rec, err := json.Marshal(c)
	if err != nil {
		t.Abort()
		return err
	}
	var hk [10]byte
	copy(hk[:], histPrefix)
	binary.BigEndian.PutUint64(hk[2:], id)
	_ = t.b.Set(lastKey, rec, nil)
	_ = t.b.Set(hk[:], rec, nil)
	gen := t.s.gen.Load()
	var gb [8]byte
	binary.BigEndian.PutUint64(gb[:], gen)
	_ = t.b.Set(scratchGenKey, gb[:], nil)
	if id > History {
		var old [10]byte
		copy(old[:], histPrefix)
		binary.BigEndian.PutUint64(old[2:], id-History+1)
		_ = t.b.DeleteRange(histPrefix, old[:], nil)
	}
	err = t.b.Commit(pebble.Sync)
	_ = t.b.Close()
	t.b = nil
	if err != nil {
		return fmt.Errorf("state: commit checkpoint %d: %w", id, err)
	}
	t.s.mu.Lock()
	t.s.last, t.s.has = c, true
	t.s.committedGens = append([]uint64{gen}, t.s.committedGens...)
	t.s.gen.Store(gen + 1)
	t.s.mu.Unlock()
	return nil
}

// Size is the number of bytes the checkpoint writes so far.
func (t *Txn) Size() int {
	if t.b == nil {
		return 0
	}
	return len(t.b.Repr())
}

// Abort discards the batch.
func (t *Txn) Abort() {
	if t.b != nil {
		_ = t.b.Close()
		t.b = nil
	}
}

// Writer writes one node's state into a checkpoint. It implements
// runtime.StateWriter.
type Writer struct {
	t       *Txn
	prefix  []byte
	sprefix []byte // the node's current scratch generation, if it has a scratch
	n       *NodeWrite
}

// hide deletes key (or the range) from the node's current scratch
// generation, so the checkpoint's write of it wins.
func (w *Writer) hide(start, end []byte, single bool) error {
	if w.sprefix == nil {
		return nil
	}
	lo := append(bytes.Clone(w.sprefix), start...)
	if single {
		return w.t.check(w.t.b.Delete(lo, nil))
	}
	hi := prefixEnd(w.sprefix)
	if end != nil {
		hi = append(bytes.Clone(w.sprefix), end...)
	}
	return w.t.check(w.t.b.DeleteRange(lo, hi, nil))
}

func (w *Writer) k(key []byte) []byte {
	w.t.key = append(append(w.t.key[:0], w.prefix...), key...)
	return w.t.key
}

// Set sets key to value.
func (w *Writer) Set(key, value []byte) error {
	w.n.Sets++
	w.n.Bytes += len(key) + len(value)
	if err := w.hide(key, nil, true); err != nil {
		return err
	}
	return w.t.check(w.t.b.Set(w.k(key), value, nil))
}

// Delete deletes key.
func (w *Writer) Delete(key []byte) error {
	w.n.Deletes++
	if err := w.hide(key, nil, true); err != nil {
		return err
	}
	return w.t.check(w.t.b.Delete(w.k(key), nil))
}

// DeleteRange deletes the keys in [start, end); a nil end means to the end
// of the node's key space.
func (w *Writer) DeleteRange(start, end []byte) error {
	w.n.RangeDeletes++
	if err := w.hide(start, end, false); err != nil {
		return err
	}
	lo := append(bytes.Clone(w.prefix), start...)
	hi := prefixEnd(w.prefix)
	if end != nil {
		hi = append(bytes.Clone(w.prefix), end...)
	}
	return w.t.check(w.t.b.DeleteRange(lo, hi, nil))
}

func (t *Txn) check(err error) error {
	if err != nil && t.err == nil {
		t.err = fmt.Errorf("state: write: %w", err)
	}
	return err
}

// pebbleLogger sends Pebble's logs to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf(format, args...))
}
