package log

import (
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
)

// scanState accumulates what a scan learns about a segment: the batches in
// [0, end), the offsets they hold, their timestamps and the sparse index.
type scanState struct {
	end         int64
	next        int64
	maxTS       int64
	index       []indexEntry
	lastIndexed int64
	// prevPos is the position of the last batch scanned (-1: none),
	// prevBase its base offset and prevMaxTS the max timestamp of the
	// batches before it. When what follows a batch does not fit, a damaged
	// count or length in that batch may be the cause.
	prevPos, prevBase, prevMaxTS int64
}

func newScanState(base int64) scanState {
	return scanState{next: base, maxTS: math.MinInt64, prevPos: -1}
}

func (st *scanState) add(s *segment, pos int64, h batchHeader, interval int64) {
	if len(st.index) == 0 || pos-st.lastIndexed >= interval {
		st.index = append(st.index, indexEntry{rel: uint32(h.base - s.base), pos: uint32(pos), maxTSBefore: st.maxTS})
		st.lastIndexed = pos
	}
	st.prevPos, st.prevBase, st.prevMaxTS = pos, h.base, st.maxTS
	st.next = h.next()
	st.maxTS = max(st.maxTS, h.maxTS)
	st.end = pos + h.size()
}

// dropLast forgets the last batch scanned, found damaged.
func (st *scanState) dropLast() {
	pos := st.prevPos
	st.end, st.next, st.maxTS = pos, st.prevBase, st.prevMaxTS
	for n := len(st.index); n > 0 && int64(st.index[n-1].pos) >= pos; n-- {
		st.index = st.index[:n-1]
	}
	st.lastIndexed = 0
	if n := len(st.index); n > 0 {
		st.lastIndexed = int64(st.index[n-1].pos)
	}
	st.prevPos = -1
}

// apply publishes the scan's result in the segment.
func (st *scanState) apply(s *segment) {
	s.next, s.maxTS, s.index, s.lastIndexed = st.next, st.maxTS, st.index, st.lastIndexed
}

// stop is where a walk ended before the end of the segment.
type stop struct {
	pos int64
	// cause (errBadBatch class) says why the batch at pos is bad: it does
	// not parse, does not fit in the file, or fails its CRC.
	cause error
	// mismatch: the batch at pos is well formed (and, in a full walk,
	// passed its CRC) but does not start at the expected offset.
	mismatch bool
	h        batchHeader
}

// walk scans batches from st.end up to size: headers only, or (full) whole
// batches with their CRC. It stops at the first batch that is bad or does
// not start at st.next; a nil stop means it reached size.
func walk(s *segment, st *scanState, size int64, full bool, interval int64) (*stop, error) {
	return walkN(s, st, size, full, interval, -1)
}

// walkN is walk for at most limit batches (-1: no limit).
func walkN(s *segment, st *scanState, size int64, full bool, interval int64, limit int) (*stop, error) {
	var buf []byte
	for ; st.end < size && limit != 0; limit-- {
		pos := st.end
		var h batchHeader
		var err error
		if full {
			h, buf, err = readBatchAt(s.f, pos, size, buf)
		} else {
			h, err = readHeaderAt(s.f, pos, size)
		}
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				return nil, fmt.Errorf("read segment %q at %d: %w", s.path, pos, err)
			}
			return &stop{pos: pos, cause: err}, nil
		}
		if h.base != st.next {
			return &stop{pos: pos, mismatch: true, h: h}, nil
		}
		st.add(s, pos, h, interval)
	}
	return nil, nil
}

// scanSealed checks a sealed segment (one that has a successor starting at
// nextBase, or -1 when the segments after it are missing): it checks the
// first two batch headers (where a damaged segment start shows), walks the
// batch headers from the last index entry, and checks the segment ends
// where the next begins. When any of that fails, or the index is unusable
// (rebuilt reports that), it walks every header from the start to say
// exactly what is wrong. A sealed segment was fsynced before its successor
// was created, so damage there is never a torn write. Headers between the
// second batch and the last index entry, and payload CRCs, are checked when
// read: Open stays fast on large logs. On damage, st holds the intact
// prefix.
func scanSealed(fsys fileSystem, s *segment, nextBase, interval int64) (st scanState, rebuilt bool, err error) {
	probe := newScanState(s.base)
	sp, err := walkN(s, &probe, s.size, false, interval, 2)
	if err != nil {
		return probe, false, err
	}
	if index, ok := s.loadIndex(fsys); ok && sp == nil {
		last := index[len(index)-1]
		// lastIndexed far in the past makes the walk re-add the last entry.
		st = scanState{end: int64(last.pos), next: s.base + int64(last.rel), maxTS: last.maxTSBefore,
			index: index[:len(index)-1], lastIndexed: math.MinInt64 / 2, prevPos: -1}
		sp, err := walk(s, &st, s.size, false, interval)
		if err != nil {
			return st, false, err
		}
		if sp == nil && (nextBase < 0 || st.next == nextBase) {
			return st, false, nil
		}
	}
	st = newScanState(s.base)
	sp, err = walk(s, &st, s.size, false, interval)
	if err != nil {
		return st, true, err
	}
	if sp != nil || (nextBase >= 0 && st.next != nextBase) {
		ce, err := sealedDamage(s, &st, sp, nextBase)
		if err != nil {
			return st, true, err
		}
		return st, true, ce
	}
	return st, true, nil
}

// sealedDamage describes what is wrong with a sealed segment whose walk
// stopped at sp or, when sp is nil, that does not end at nextBase. It
// blames the exact batch: when the batch before the stop fails its CRC
// (a damaged count or length misplaces the next header), that one. st is
// left at the intact prefix.
func sealedDamage(s *segment, st *scanState, sp *stop, nextBase int64) (*CorruptionError, error) {
	var cause error
	if sp != nil {
		cause = sp.cause
	}
	if st.prevPos >= 0 {
		if _, _, err := readBatchAt(s.f, st.prevPos, s.size, nil); err != nil {
			if !errors.Is(err, errBadBatch) {
				return nil, fmt.Errorf("read segment %q at %d: %w", s.path, st.prevPos, err)
			}
			st.dropLast()
			return damagedRange(s, st.end, st.next, nextBase, err)
		}
	}
	switch {
	case sp != nil && sp.mismatch:
		_, _, err := readBatchAt(s.f, sp.pos, s.size, nil)
		if err == nil {
			return offsetMismatch(s, sp.pos, sp.h, st.next), nil
		}
		if !errors.Is(err, errBadBatch) {
			return nil, fmt.Errorf("read segment %q at %d: %w", s.path, sp.pos, err)
		}
		cause = err
	case sp == nil && st.next < nextBase:
		missing := segmentPath(filepath.Dir(s.path), st.next)
		return missingSegment(missing, st.next, nextBase,
			fmt.Sprintf("no segment holds these offsets: %s ends at offset %d, the next segment starts at %d; segment file %s is missing (or %s lost its end)",
				filepath.Base(s.path), st.next, nextBase, filepath.Base(missing), filepath.Base(s.path))), nil
	case sp == nil:
		return &CorruptionError{Segment: s.path, FirstOffset: nextBase, EndOffset: st.next, Pos: s.size, EndPos: s.size,
			Reason: fmt.Sprintf("segment ends at offset %d but the next segment starts at %d (overlapping segments)", st.next, nextBase)}, nil
	}
	return damagedRange(s, sp.pos, st.next, nextBase, cause)
}

// damagedRange describes damage in a sealed segment from pos (offset
// first) to the next valid batch, or to the end of the segment.
func damagedRange(s *segment, pos, first, nextBase int64, cause error) (*CorruptionError, error) {
	ce := &CorruptionError{Segment: s.path, FirstOffset: first, EndOffset: nextBase, Pos: pos, EndPos: s.size,
		Reason: fmt.Sprintf("sealed segment: %v", cause)}
	q, qh, found, err := resync(s.f, pos+1, s.size, first)
	if err != nil {
		return nil, fmt.Errorf("read segment %q: %w", s.path, err)
	}
	if found {
		ce.EndOffset, ce.EndPos = qh.base, q
	}
	return ce, nil
}

// missingSegment reports offsets [first, end) held by no segment file;
// path names the missing file that would hold first.
func missingSegment(path string, first, end int64, reason string) *CorruptionError {
	return &CorruptionError{Segment: path, FirstOffset: first, EndOffset: end, Reason: reason}
}

// tailDamage classifies where a full walk of the last segment stopped.
// Damage that reaches the end of the file with no valid batch after it,
// or only batches of the same write (a power loss may persist the pages of
// the last, unacknowledged write in any order), is a torn tail: torn is
// true and the valid data ends at sp.pos. Anything else is a
// *CorruptionError.
func tailDamage(s *segment, st *scanState, sp *stop, size int64) (torn bool, err error) {
	if sp.mismatch {
		return false, offsetMismatch(s, sp.pos, sp.h, st.next)
	}
	q, qh, found, err := resync(s.f, sp.pos+1, size, st.next)
	if err != nil {
		return false, fmt.Errorf("read segment %q: %w", s.path, err)
	}
	if !found {
		return true, nil
	}
	if qh.write <= st.next {
		one, err := oneWrite(s.f, q, size, qh)
		if err != nil {
			return false, fmt.Errorf("read segment %q: %w", s.path, err)
		}
		if one {
			return true, nil
		}
	}
	return false, &CorruptionError{Segment: s.path, FirstOffset: st.next, EndOffset: qh.base, Pos: sp.pos, EndPos: q,
		Reason: fmt.Sprintf("damaged data followed by a valid batch of a later write: %v", sp.cause)}
}

// oneWrite reports whether every valid batch from q to size belongs to the
// write of the batch at q.
func oneWrite(f io.ReaderAt, q, size int64, qh batchHeader) (bool, error) {
	w := qh.write
	var buf []byte
	for pos, h := q, qh; ; {
		if h.write != w {
			return false, nil
		}
		pos += h.size()
		if pos >= size {
			return true, nil
		}
		var err error
		h, buf, err = readBatchAt(f, pos, size, buf)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				return false, err
			}
			var found bool
			pos, h, found, err = resync(f, pos+1, size, w)
			if err != nil || !found {
				return err == nil, err
			}
		}
	}
}

func offsetMismatch(s *segment, pos int64, h batchHeader, want int64) *CorruptionError {
	if h.base > want {
		return &CorruptionError{Segment: s.path, FirstOffset: want, EndOffset: h.base, Pos: pos, EndPos: pos,
			Reason: fmt.Sprintf("offsets missing: batch at %d starts at offset %d, want %d", pos, h.base, want)}
	}
	return &CorruptionError{Segment: s.path, FirstOffset: h.base, EndOffset: min(h.next(), want), Pos: pos, EndPos: pos + h.size(),
		Reason: fmt.Sprintf("offsets repeated: batch at %d starts at offset %d, want %d", pos, h.base, want)}
}

// scanned is one segment of a partition scan.
type scanned struct {
	s  *segment
	st scanState
	// size is the file size at the last scan.
	size int64
	// sealed: checked through to its end and its successor.
	sealed bool
	// full: st comes from a full (CRC-checking) walk, which can go on from
	// st.end as the segment grows.
	full bool
	// rebuilt: the index file was unusable and st.index replaces it.
	rebuilt bool
}

// partitionScan is the checked state of a partition directory, shared by
// recovery (Open) and OpenReader. update brings it up to date; the writer
// scans once, a reader again whenever it refreshes, going on where the
// last scan ended.
type partitionScan struct {
	fsys     fileSystem
	dir      string
	mode     openMode
	interval int64

	segs []*scanned
	// usable is how many segments of segs, from the first, hold readable
	// data: all of them, or those up to the damage.
	usable int
	// start is the log start offset: the first segment's base, or the
	// meta file's start when segments are missing at the front.
	start int64
	// torn is where the last segment's valid data ends before a torn (or,
	// for a reader, an in-progress) write; -1 if it ends cleanly.
	torn int64
	// damage is the first damage found; nothing after it is read.
	damage *CorruptionError
	// meta is the meta file read before listing the segments (metaOK: it
	// exists).
	meta   partitionMeta
	metaOK bool
}

// update lists the directory and checks what is new: segments deleted at
// the front are dropped, new ones are checked, the last one is followed as
// it grows. I/O errors are returned; damage is recorded in ps.damage.
func (ps *partitionScan) update() error {
	// The meta file is read before and after listing: "active" from before
	// is not newer than the listing, "start" from after is not older, so a
	// concurrent roll or retention never looks like a missing segment.
	m1, ok1, err := loadMeta(ps.fsys, ps.dir)
	if err != nil {
		return err
	}
	bases, err := listSegments(ps.fsys, ps.dir)
	if err != nil {
		return fmt.Errorf("list partition directory: %w", err)
	}
	m2, ok2, err := loadMeta(ps.fsys, ps.dir)
	if err != nil {
		return err
	}
	ps.meta, ps.metaOK = m1, ok1
	if err := ps.reconcile(bases); err != nil {
		return err
	}
	ps.damage, ps.torn, ps.usable = nil, -1, 0
	ps.start = 0
	if len(ps.segs) > 0 {
		ps.start = ps.segs[0].s.base
	}
	if ok2 && (len(ps.segs) == 0 || ps.start > m2.start) {
		end, reason := int64(-1), "every segment file is missing"
		if len(ps.segs) > 0 {
			end = ps.start
			reason = fmt.Sprintf("the partition holds offsets from %d (meta file) but its first segment starts at %d; the segment file(s) before it are missing", m2.start, end)
		}
		ps.start = m2.start
		ps.damage = missingSegment(segmentPath(ps.dir, m2.start), m2.start, end, reason)
		return nil
	}
	for i, sc := range ps.segs {
		last := i == len(ps.segs)-1
		nextBase := int64(-1)
		if !last {
			nextBase = ps.segs[i+1].s.base
		}
		ps.usable = i + 1
		if sc.sealed && (nextBase < 0 || sc.st.next == nextBase) {
			continue
		}
		if sc.sealed {
			// Its successor changed (a segment vanished): say how.
			sc.sealed = false
			ce, err := sealedDamage(sc.s, &sc.st, nil, nextBase)
			if err != nil {
				return err
			}
			ps.damage = ce
			return nil
		}
		if last && !(ok1 && sc.s.base < m1.active) {
			return ps.scanLast(sc)
		}
		if err := ps.scanSealed(sc, nextBase); err != nil || ps.damage != nil {
			return err
		}
		if last {
			ps.damage = missingSegment(segmentPath(ps.dir, sc.st.next), sc.st.next, -1,
				fmt.Sprintf("the newest segment was created at offset %d (meta file) but the last segment file found starts at %d; the segment file(s) after it are missing",
					m1.active, sc.s.base))
		}
	}
	return nil
}

// reconcile opens the segments listed in bases that the scan does not
// have yet and closes those no longer listed (deleted by retention).
func (ps *partitionScan) reconcile(bases []int64) error {
	old := make(map[int64]*scanned, len(ps.segs))
	for _, sc := range ps.segs {
		old[sc.s.base] = sc
	}
	segs := make([]*scanned, 0, len(bases))
	for _, b := range bases {
		if sc, ok := old[b]; ok {
			segs = append(segs, sc)
			delete(old, b)
			continue
		}
		s, err := openSegment(ps.fsys, ps.dir, b, ps.mode)
		if err != nil {
			if ps.mode == modeRead && isNotExist(err) {
				continue // deleted since it was listed
			}
			ps.segs = append(segs, mapValues(old)...)
			return err
		}
		segs = append(segs, &scanned{s: s, st: newScanState(b), size: s.size})
	}
	for _, sc := range old {
		_ = sc.s.close() // deleted: nothing more to read from it
	}
	ps.segs = segs
	// Only the last segment changes: a segment that gained a successor is
	// checked as sealed, the last one goes on from where it was.
	for i, sc := range ps.segs {
		if sc.sealed && i == len(ps.segs)-1 {
			sc.sealed = false // its successor went away: check it again
		}
		if sc.sealed {
			continue
		}
		fi, err := sc.s.f.Stat()
		if err != nil {
			return fmt.Errorf("stat segment %q: %w", sc.s.path, err)
		}
		sc.size = fi.Size()
		sc.s.size = sc.size
		if sc.size < sc.st.end {
			// Truncated under a reader (the writer recovered a torn tail):
			// scan it again.
			sc.st, sc.full, sc.rebuilt = newScanState(sc.s.base), false, false
		}
	}
	return nil
}

func mapValues(m map[int64]*scanned) []*scanned {
	out := make([]*scanned, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// scanLast follows the last segment with a full walk from where the last
// scan ended.
func (ps *partitionScan) scanLast(sc *scanned) error {
	if !sc.full && sc.st.end > 0 {
		sc.st = newScanState(sc.s.base)
	}
	sc.full = true
	sp, err := walk(sc.s, &sc.st, sc.size, true, ps.interval)
	if err != nil {
		return err
	}
	if durable := ps.durable(sc.s); sc.size < durable {
		pos := sc.size
		if sp != nil {
			pos = sp.pos
		}
		ps.damage = &CorruptionError{Segment: sc.s.path, FirstOffset: sc.st.next, EndOffset: -1, Pos: pos, EndPos: durable,
			Reason: fmt.Sprintf("the segment has %d bytes but %d were durable at the last clean stop: its end was cut off", sc.size, durable)}
		return nil
	}
	if sp == nil {
		return nil
	}
	if durable := ps.durable(sc.s); sp.pos < durable {
		// Damage inside what was durable at the last clean close: every
		// byte of it was acknowledged, so this is no torn write.
		if sp.mismatch {
			ps.damage = offsetMismatch(sc.s, sp.pos, sp.h, sc.st.next)
			return nil
		}
		ce, err := damagedRange(sc.s, sp.pos, sc.st.next, -1, sp.cause)
		if err != nil {
			return err
		}
		ce.Reason = fmt.Sprintf("damaged data below the %d bytes that were durable at the last clean stop: %v", durable, sp.cause)
		ps.damage = ce
		return nil
	}
	torn, err := tailDamage(sc.s, &sc.st, sp, sc.size)
	if err != nil {
		if ce, ok := errors.AsType[*CorruptionError](err); ok {
			ps.damage = ce
			return nil
		}
		return err
	}
	if torn {
		ps.torn = sp.pos
	}
	return nil
}

// durable is how many bytes of s were durable at the last clean close, by
// the meta file (0 when unknown or when s is not the active segment).
func (ps *partitionScan) durable(s *segment) int64 {
	if ps.metaOK && ps.meta.active == s.base {
		return ps.meta.synced
	}
	return 0
}

// scanSealed checks a segment that has a successor (nextBase, or -1 when
// the segments after it are missing).
func (ps *partitionScan) scanSealed(sc *scanned, nextBase int64) error {
	var err error
	if sc.full {
		// It was the last segment when scanned before: go on with the full
		// walk to its final end.
		var sp *stop
		if sp, err = walk(sc.s, &sc.st, sc.size, true, ps.interval); err != nil {
			return err
		}
		if sp != nil || (nextBase >= 0 && sc.st.next != nextBase) {
			var ce *CorruptionError
			if ce, err = sealedDamage(sc.s, &sc.st, sp, nextBase); err != nil {
				return err
			}
			ps.damage = ce
			return nil
		}
	} else {
		sc.st, sc.rebuilt, err = scanSealed(ps.fsys, sc.s, nextBase, ps.interval)
		if ce, ok := errors.AsType[*CorruptionError](err); ok {
			ps.damage = ce
			return nil
		}
		if err != nil {
			return err
		}
	}
	sc.sealed = true
	return nil
}

// views returns the readable part of the scan: the usable segments
// with their end and state, the log start offset and the end offset.
func (ps *partitionScan) views() (vs []segmentView, start, hw int64) {
	start, hw = ps.start, ps.start
	for _, sc := range ps.segs[:ps.usable] {
		vs = append(vs, segmentView{s: sc.s, size: sc.st.end, next: sc.st.next, maxTS: sc.st.maxTS, index: sc.st.index})
		hw = sc.st.next
	}
	return vs, start, hw
}

func (ps *partitionScan) close() error {
	var errs []error
	for _, sc := range ps.segs {
		errs = append(errs, sc.s.close())
	}
	ps.segs = nil
	return errors.Join(errs...)
}
