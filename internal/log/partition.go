package log

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/internal/event"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Header is one piece of record metadata.
type Header = event.Header

// Record is one entry of a partition.
type Record struct {
	// Offset is assigned by the log; Append ignores it.
	Offset int64
	// Timestamp is stored with millisecond precision. A zero Timestamp is
	// replaced by the append time.
	Timestamp time.Time
	// Key and Value may be nil; nil and empty are kept distinct.
	Key   []byte
	Value []byte
	// Headers keep their order; values may be nil.
	Headers []Header
}

// Metrics are cumulative counters of one partition.
type Metrics struct {
	// Appends and Records count acknowledged Append calls and their records.
	Appends, Records uint64
	// Writes counts write calls; each carries one or more coalesced appends.
	Writes uint64
	// Syncs counts fsyncs of segment data (group commits and rolls).
	Syncs uint64
	// Bytes counts bytes written to segments.
	Bytes uint64
	// Segments is the number of segment files.
	Segments int
	// DeletedSegments counts segments removed by retention.
	DeletedSegments uint64
	// FullRejections counts appends refused with ErrFull.
	FullRejections uint64
	// Recovery is what Open found.
	Recovery Recovery
}

// Partition is one durable, offset-addressed log. See the package
// documentation for its guarantees and threading rules.
type Partition struct {
	dir      string
	opts     Options
	fsys     fileSystem
	recovery Recovery
	// lock holds the partition's LOCK file (flock) until Close.
	lock *os.File

	reqs chan *appendReq
	done chan struct{}

	// closeMu guards closed and sends on reqs, so Close can close reqs.
	closeMu sync.RWMutex
	closed  bool

	failed atomic.Pointer[error]

	// mu guards segments and the published (readable) state of each
	// segment: size, next, maxTS, index.
	mu          sync.RWMutex
	segments    []*segment
	hw          int64
	filesClosed bool
	// tail holds the most recently committed writes to the active segment
	// (Options.TailBytes), oldest first, for readers. The committer only
	// appends to it or slices its front off, so a reader's copy of the
	// slice header stays valid without a lock.
	tail     []tailChunk
	tailHeld int // bytes in tail

	// readersMu guards readers and writes of the readers file.
	readersMu sync.Mutex
	readers   map[string]int64
	// retainMu serializes segment deletion.
	retainMu sync.Mutex
	// shreds are the deleted segments being freed; closing is closed by
	// Close to hurry them.
	shreds  sync.WaitGroup
	closing chan struct{}
	// metaMu guards meta and writes of the meta file (rolls, retention).
	metaMu sync.Mutex
	meta   partitionMeta

	appends, records, writes, syncs, bytes, deletedSegments, full atomic.Uint64

	// Committer-only scratch.
	bs   [][]byte
	wbuf []byte
	ibuf []byte
	nidx []indexEntry
}

type appendReq struct {
	batch []byte
	count int64
	maxTS int64
	base  int64
	done  chan error
}

// Open opens the partition in dir, creating it if needed, and recovers it:
// a torn tail is truncated and reported in Metrics().Recovery; other damage
// is returned as a *CorruptionError and the partition is not opened (and
// nothing in it is changed). Only one Open of a directory may be live at a
// time, across processes: another fails with ErrLocked.
func Open(dir string, opts Options) (*Partition, error) {
	return open(dir, opts, recordSyncsFromEnv(osFS{}))
}

func open(dir string, opts Options, fsys fileSystem) (*Partition, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if err := mkdirDurable(fsys, dir); err != nil {
		return nil, fmt.Errorf("create partition directory: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	p := &Partition{
		dir:      dir,
		opts:     opts,
		fsys:     fsys,
		lock:     lock,
		recovery: Recovery{TruncatedAt: -1},
		reqs:     make(chan *appendReq, opts.QueueDepth),
		done:     make(chan struct{}),
		closing:  make(chan struct{}),
	}
	err = removeTrash(fsys, dir)
	if err == nil {
		err = p.loadReaders()
	}
	if err == nil {
		err = p.recover()
	}
	if err != nil {
		for _, s := range p.segments {
			_ = s.close()
		}
		_ = lock.Close()
		return nil, err
	}
	last := p.segments[len(p.segments)-1]
	p.hw = last.next
	if r := p.recovery; r.TornTails > 0 {
		opts.Logger.Warn("log: truncated torn tail", "dir", dir, "segment", last.path,
			"pos", r.TruncatedAt, "bytes", r.TruncatedBytes)
	}
	go p.run()
	return p, nil
}

// recover checks every segment first and changes nothing unless all of
// them check out; then it truncates a torn tail, rewrites unusable
// indexes and the meta file.
func (p *Partition) recover() error {
	ps := &partitionScan{fsys: p.fsys, dir: p.dir, mode: modeWrite, interval: p.opts.IndexIntervalBytes}
	err := ps.update()
	if err == nil && ps.damage != nil {
		err = ps.damage
	}
	if err != nil {
		_ = ps.close()
		return err
	}
	if len(ps.segs) == 0 {
		s, err := p.createSegment(0)
		if err != nil {
			return err
		}
		p.segments = append(p.segments, s)
		p.recovery.Segments = 1
		p.meta = partitionMeta{}
		return writeMeta(p.fsys, p.dir, p.meta)
	}
	for _, sc := range ps.segs {
		sc.st.apply(sc.s)
		p.segments = append(p.segments, sc.s)
	}
	n := len(ps.segs)
	p.recovery.Segments = n
	for _, sc := range ps.segs[:n-1] {
		if sc.rebuilt {
			p.recovery.IndexesRebuilt++
			if err := sc.s.rewriteSealedIndex(p.fsys); err != nil {
				return err
			}
		}
	}
	last := ps.segs[n-1].s
	if ps.torn >= 0 {
		if err := last.f.Truncate(ps.torn); err != nil {
			return fmt.Errorf("truncate torn tail of %q at %d: %w", last.path, ps.torn, err)
		}
		if err := last.f.Sync(); err != nil {
			return fmt.Errorf("sync segment %q: %w", last.path, err)
		}
		p.recovery.TornTails++
		p.recovery.TruncatedBytes = last.size - ps.torn
		p.recovery.TruncatedAt = ps.torn
		last.size = ps.torn
	}
	p.recovery.IndexesRebuilt++
	if err := last.createIndex(p.fsys); err != nil {
		return err
	}
	// start stays where the meta file had it: segments before it are left
	// from an interrupted deletion.
	want := partitionMeta{start: p.segments[0].base, active: last.base}
	if ps.metaOK {
		want.start = ps.meta.start
		if ps.meta.active == last.base {
			// Still durable: the segment only grows.
			want.synced = ps.meta.synced
		}
	}
	p.meta = want
	if !ps.metaOK || ps.meta != want {
		return writeMeta(p.fsys, p.dir, want)
	}
	return nil
}

// createSegment creates an empty segment and its index and makes the
// directory entries durable.
func (p *Partition) createSegment(base int64) (*segment, error) {
	s, err := openSegment(p.fsys, p.dir, base, modeCreate)
	if err != nil {
		return nil, err
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		_ = s.close()
		return nil, fmt.Errorf("sync partition directory: %w", err)
	}
	return s, nil
}

// Append adds recs as one batch and returns the offset of the first; the
// others follow densely. With DurabilityFsync it returns only after the
// batch is fsynced. Concurrent calls are coalesced into one write and one
// fsync. Append blocks while QueueDepth appends are waiting; ctx cancels
// the wait, but an append already handed to the committer may still be
// written: an error means "not acknowledged", not "not written".
func (p *Partition) Append(ctx context.Context, recs []Record) (int64, error) {
	if len(recs) == 0 {
		return 0, errors.New("log: append of zero records")
	}
	if err := p.failure(); err != nil {
		return 0, err
	}
	r := appendReqs.Get().(*appendReq)
	bound := encodedSizeBound(recs)
	if cap(r.batch) < bound {
		r.batch = make([]byte, 0, bound)
	}
	batch, maxTS := encodeBatch(r.batch[:0], recs, p.opts.Now().UnixMilli())
	if len(batch) > p.opts.MaxAppendBytes {
		r.release()
		return 0, fmt.Errorf("%w: %d records encode to %d bytes, limit %d (Options.MaxAppendBytes)",
			ErrTooLarge, len(recs), len(batch), p.opts.MaxAppendBytes)
	}
	r.batch, r.count, r.maxTS = batch, int64(len(recs)), maxTS
	p.closeMu.RLock()
	if p.closed {
		p.closeMu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case p.reqs <- r:
		p.closeMu.RUnlock()
	case <-ctx.Done():
		p.closeMu.RUnlock()
		r.release()
		return 0, fmt.Errorf("log: append not queued: %w", ctx.Err())
	}
	select {
	case err := <-r.done:
		base := r.base
		r.release() // the committer is done with it
		if err != nil {
			return 0, err
		}
		return base, nil
	case <-ctx.Done():
		// The committer may still write r: it is not reused.
		return 0, fmt.Errorf("log: append not acknowledged: %w", ctx.Err())
	}
}

// appendReqs pools append requests and their batch buffers.
var appendReqs = sync.Pool{New: func() any { return &appendReq{done: make(chan error, 1)} }}

// maxPooledBatch is the largest batch buffer kept for reuse.
const maxPooledBatch = 256 << 10

// release returns r to the pool; its done channel must be empty.
func (r *appendReq) release() {
	if cap(r.batch) > maxPooledBatch {
		r.batch = nil
	}
	r.batch, r.count, r.maxTS, r.base = r.batch[:0], 0, 0, 0
	appendReqs.Put(r)
}

// failure returns the error that failed the partition, or nil.
func (p *Partition) failure() error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// fail puts the partition in the failed state (first cause wins).
func (p *Partition) fail(cause error) error {
	e := fmt.Errorf("%w: %w", ErrFailed, cause)
	if p.failed.CompareAndSwap(nil, &e) {
		p.opts.Logger.Error("log: partition failed; appends are refused until it is reopened", "dir", p.dir, "err", cause)
	}
	return p.failure()
}

// run is the committer: it takes the first waiting append, coalesces the
// others already queued (up to MaxWriteBytes), and commits them together.
func (p *Partition) run() {
	defer close(p.done)
	var group []*appendReq
	for {
		r, ok := <-p.reqs
		if !ok {
			return
		}
		group = append(group[:0], r)
		n := len(r.batch)
		open := true
	drain:
		for n < p.opts.MaxWriteBytes {
			select {
			case r, ok := <-p.reqs:
				if !ok {
					open = false
					break drain
				}
				group = append(group, r)
				n += len(r.batch)
			default:
				break drain
			}
		}
		p.commit(group, n)
		clear(group)
		if !open {
			return
		}
	}
}

func reply(group []*appendReq, err error) {
	for _, r := range group {
		r.done <- err
	}
}

// commit writes a group of appends with one write and (DurabilityFsync) one
// fsync, then publishes them to readers and acknowledges them.
func (p *Partition) commit(group []*appendReq, total int) {
	if err := p.failure(); err != nil {
		reply(group, err)
		return
	}
	var count int64
	for _, r := range group {
		count += r.count
	}
	p.mu.RLock()
	s := p.segments[len(p.segments)-1]
	p.mu.RUnlock()
	if s.size > 0 && (s.size+int64(total) > p.opts.SegmentBytes || s.next+count-s.base > math.MaxUint32) {
		var err error
		if s, err = p.roll(s); err != nil {
			reply(group, p.fail(err))
			return
		}
	}
	if n := p.admit(group); n < len(group) {
		p.full.Add(uint64(len(group) - n))
		p.mu.RLock()
		held := p.totalBytesLocked()
		p.mu.RUnlock()
		reply(group[n:], fmt.Errorf("%w: %d bytes held, limit %d (Options.MaxBytes); segments are deleted once every reader commits past them",
			ErrFull, held, p.opts.MaxBytes))
		group = group[:n]
		if n == 0 {
			return
		}
		count = 0
		for _, r := range group {
			count += r.count
		}
	}

	bs := p.bs[:0]
	nidx := p.nidx[:0]
	next, pos, maxTS, lastIndexed := s.next, s.size, s.maxTS, s.lastIndexed
	writeBase := next
	for _, r := range group {
		sealBatch(r.batch, next, writeBase)
		if (len(s.index) == 0 && len(nidx) == 0) || pos-lastIndexed >= p.opts.IndexIntervalBytes {
			nidx = append(nidx, indexEntry{rel: uint32(next - s.base), pos: uint32(pos), maxTSBefore: maxTS})
			lastIndexed = pos
		}
		bs = append(bs, r.batch)
		r.base = next
		next += r.count
		pos += int64(len(r.batch))
		maxTS = max(maxTS, r.maxTS)
	}
	var buf []byte
	if p.opts.TailBytes > 0 {
		// The written bytes are handed to readers: a new buffer for each
		// write (bytes.Join does not zero it first).
		buf = bytes.Join(bs, nil)
	} else {
		buf = p.wbuf[:0]
		for _, b := range bs {
			buf = append(buf, b...)
		}
		if cap(buf) <= 2*p.opts.MaxWriteBytes {
			p.wbuf = buf
		}
	}
	clear(bs)
	p.bs = bs
	writePos := s.size
	p.nidx = nidx

	if _, err := s.f.WriteAt(buf, s.size); err != nil {
		reply(group, p.fail(fmt.Errorf("write segment %q: %w", s.path, err)))
		return
	}
	p.writes.Add(1)
	p.bytes.Add(uint64(len(buf)))
	if len(nidx) > 0 {
		ib := p.ibuf[:0]
		for _, e := range nidx {
			ib = appendIndexEntry(ib, e)
		}
		p.ibuf = ib
		if _, err := s.idx.WriteAt(ib, s.indexFileSize()); err != nil {
			reply(group, p.fail(fmt.Errorf("write index of %q: %w", s.path, err)))
			return
		}
	}
	if p.opts.Durability == DurabilityFsync {
		if err := s.f.Sync(); err != nil {
			reply(group, p.fail(fmt.Errorf("sync segment %q: %w", s.path, err)))
			return
		}
		p.syncs.Add(1)
	}

	p.mu.Lock()
	s.size, s.next, s.maxTS, s.lastIndexed = pos, next, maxTS, lastIndexed
	s.index = append(s.index, nidx...)
	p.hw = next
	p.keepTail(s, writePos, writeBase, buf)
	p.mu.Unlock()

	p.appends.Add(uint64(len(group)))
	p.records.Add(uint64(count))
	reply(group, nil)
}

// tailChunk is one committed write kept in memory: b was written at pos
// of segment s. It is never modified.
type tailChunk struct {
	s    *segment
	pos  int64
	base int64 // the offset of its first record
	b    []byte
}

// keepTail adds the write b at pos of s, from offset base, to the tail
// and drops the oldest writes past Options.TailBytes. Called with mu held
// for writing.
func (p *Partition) keepTail(s *segment, pos, base int64, b []byte) {
	if p.opts.TailBytes <= 0 {
		return
	}
	if len(p.tail) > 0 && p.tail[0].s != s {
		p.tail, p.tailHeld = nil, 0 // the segment rolled
	}
	if len(b) > p.opts.TailBytes {
		p.tail, p.tailHeld = nil, 0 // b alone is over the budget
		return
	}
	p.tailHeld += len(b)
	for p.tailHeld > p.opts.TailBytes {
		p.tailHeld -= len(p.tail[0].b)
		p.tail = p.tail[1:]
	}
	p.tail = append(p.tail, tailChunk{s: s, pos: pos, base: base, b: b})
}

// roll seals the active segment (fsynced whatever the durability, so only
// the last segment can ever have a torn tail) and starts a new one.
func (p *Partition) roll(old *segment) (*segment, error) {
	if err := old.f.Sync(); err != nil {
		return nil, fmt.Errorf("sync segment %q: %w", old.path, err)
	}
	p.syncs.Add(1)
	if err := old.idx.Sync(); err != nil {
		return nil, fmt.Errorf("sync index of %q: %w", old.path, err)
	}
	s, err := p.createSegment(old.next)
	if err != nil {
		return nil, err
	}
	// The meta file names the new segment before anything is written to
	// it, so losing the file later is detected.
	p.metaMu.Lock()
	m := p.meta
	m.active, m.synced = s.base, 0
	err = writeMeta(p.fsys, p.dir, m)
	if err == nil {
		p.meta = m
	}
	p.metaMu.Unlock()
	if err != nil {
		_ = s.close()
		return nil, err
	}
	if err := old.idx.Close(); err != nil {
		_ = s.close()
		return nil, fmt.Errorf("close index of %q: %w", old.path, err)
	}
	old.idx = nil
	p.mu.Lock()
	p.segments = append(p.segments, s)
	p.mu.Unlock()
	return s, nil
}

// Close stops the committer after it has committed every queued append,
// syncs the active segment (also with DurabilityNone) and closes the files.
// Appends after Close return ErrClosed.
func (p *Partition) Close() error {
	p.closeMu.Lock()
	if p.closed {
		p.closeMu.Unlock()
		return ErrClosed
	}
	p.closed = true
	close(p.reqs)
	close(p.closing)
	p.closeMu.Unlock()
	<-p.done
	p.shreds.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.failure() == nil {
		s := p.segments[len(p.segments)-1]
		var err error
		if p.opts.Durability == DurabilityNone {
			if err = s.f.Sync(); err != nil {
				errs = append(errs, fmt.Errorf("sync segment %q: %w", s.path, err))
			}
		}
		if err == nil {
			errs = append(errs, p.markSynced(s))
		}
	}
	for _, s := range p.segments {
		errs = append(errs, s.close())
	}
	p.filesClosed = true
	// Last: the lock guards the files until they are closed.
	errs = append(errs, p.lock.Close())
	return errors.Join(errs...)
}

// markSynced records in the meta file that the active segment s is durable
// up to its current size, so that the next Open reports damage below it as
// corruption instead of truncating it as a torn tail: everything there was
// acknowledged. It runs at a clean close, when every append is synced.
func (p *Partition) markSynced(s *segment) error {
	p.metaMu.Lock()
	defer p.metaMu.Unlock()
	m := p.meta
	if m.active != s.base || m.synced == s.size {
		return nil
	}
	m.synced = s.size
	if err := writeMeta(p.fsys, p.dir, m); err != nil {
		return err
	}
	p.meta = m
	return nil
}

// HighWatermark is the offset the next appended record will get: every
// offset below it is acknowledged and readable.
func (p *Partition) HighWatermark() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.hw
}

// LogStartOffset is the first offset still held.
func (p *Partition) LogStartOffset() int64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.segments[0].base
}

// Dir is the partition's directory.
func (p *Partition) Dir() string { return p.dir }

// Metrics returns a snapshot of the counters.
func (p *Partition) Metrics() Metrics {
	p.mu.RLock()
	n := len(p.segments)
	p.mu.RUnlock()
	return Metrics{
		Appends:         p.appends.Load(),
		Records:         p.records.Load(),
		Writes:          p.writes.Load(),
		Syncs:           p.syncs.Load(),
		Bytes:           p.bytes.Load(),
		Segments:        n,
		DeletedSegments: p.deletedSegments.Load(),
		FullRejections:  p.full.Load(),
		Recovery:        p.recovery,
	}
}

// Usage is the partition's total segment bytes and its cap (MaxBytes; 0
// when it has none): how close it is to refusing appends with ErrFull.
func (p *Partition) Usage() (held, limit int64) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.totalBytesLocked(), p.opts.MaxBytes
}
