package log

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// Recovery reports what Open found and repaired.
type Recovery struct {
	// Segments is the number of segment files opened.
	Segments int
	// TornTails counts torn tails truncated (0 or 1 per Open).
	TornTails int
	// TruncatedBytes is the size of the truncated tail.
	TruncatedBytes int64
	// TruncatedAt is the segment position where the tail was cut, -1 if none.
	TruncatedAt int64
	// IndexesRebuilt counts index files rebuilt from their segment.
	IndexesRebuilt int
}

// recoverLast scans the last segment in full, checking every CRC. A damaged
// region that reaches the end of the file with no valid batch after it is a
// torn tail: it is truncated and reported in rec. A damaged region followed
// by a valid batch is a *CorruptionError.
func recoverLast(s *segment, interval int64, rec *Recovery) error {
	st := scanState{next: s.base, maxTS: math.MinInt64}
	var buf []byte
	pos := int64(0)
	for pos < s.size {
		h, b, err := readBatchAt(s.f, pos, s.size, buf)
		buf = b
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				return fmt.Errorf("read segment %q at %d: %w", s.path, pos, err)
			}
			q, qh, found, rerr := resync(s.f, pos+1, s.size, st.next)
			if rerr != nil {
				return fmt.Errorf("read segment %q: %w", s.path, rerr)
			}
			if found {
				// Valid data after the damage is still a torn write if the
				// damage and everything after it belong to one write (the
				// last): a power loss may persist its pages in any order.
				one := false
				if qh.write <= st.next {
					var oerr error
					if one, oerr = oneWrite(s.f, q, s.size, qh); oerr != nil {
						return fmt.Errorf("read segment %q: %w", s.path, oerr)
					}
				}
				if !one {
					return &CorruptionError{Segment: s.path, FirstOffset: st.next, EndOffset: qh.base, Pos: pos, EndPos: q,
						Reason: fmt.Sprintf("damaged data followed by a valid batch of a later write: %v", err)}
				}
			}
			if err := s.f.Truncate(pos); err != nil {
				return fmt.Errorf("truncate torn tail of %q at %d: %w", s.path, pos, err)
			}
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("sync segment %q: %w", s.path, err)
			}
			rec.TornTails++
			rec.TruncatedBytes = s.size - pos
			rec.TruncatedAt = pos
			s.size = pos
			break
		}
		if h.base != st.next {
			return offsetMismatch(s, pos, h, st.next)
		}
		st.add(s, pos, h, interval)
		pos += h.size()
	}
	s.next, s.maxTS, s.index, s.lastIndexed = st.next, st.maxTS, st.index, st.lastIndexed
	rec.IndexesRebuilt++
	return s.writeIndex(s.index)
}

// oneWrite reports whether the damage before q lies in the write of the
// batch at q (that write started at or before the damaged offsets) and
// every valid batch from q to size belongs to that same write.
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

// recoverSealed checks a segment that is not the last one: it walks the
// batch headers from the last index entry (or from the start, rebuilding the
// index) and checks that the segment ends exactly where the next begins.
// A sealed segment was fsynced before the next one was created, so any
// damage here is corruption, never a torn tail. CRCs are checked on read.
func recoverSealed(s *segment, nextBase, interval int64, rec *Recovery) error {
	if index, ok := s.loadIndex(); ok {
		last := index[len(index)-1]
		// lastIndexed far in the past makes the walk re-add the last entry.
		st := scanState{next: s.base + int64(last.rel), maxTS: last.maxTSBefore, index: index[:len(index)-1], lastIndexed: math.MinInt64 / 2}
		if walkHeaders(s, int64(last.pos), &st, interval) == nil {
			return checkContinuity(s, &st, nextBase)
		}
	}
	st := scanState{next: s.base, maxTS: math.MinInt64}
	if err := walkHeaders(s, 0, &st, interval); err != nil {
		if ce, ok := errors.AsType[*CorruptionError](err); ok && ce.EndOffset < 0 {
			ce.EndOffset = nextBase
		}
		return err
	}
	if err := checkContinuity(s, &st, nextBase); err != nil {
		return err
	}
	rec.IndexesRebuilt++
	return s.writeIndex(s.index)
}

func walkHeaders(s *segment, pos int64, st *scanState, interval int64) error {
	for pos < s.size {
		h, err := readHeaderAt(s.f, pos, s.size)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				return fmt.Errorf("read segment %q at %d: %w", s.path, pos, err)
			}
			ce := &CorruptionError{Segment: s.path, FirstOffset: st.next, EndOffset: -1, Pos: pos, EndPos: s.size,
				Reason: fmt.Sprintf("sealed segment: %v", err)}
			if q, qh, found, rerr := resync(s.f, pos+1, s.size, st.next); rerr == nil && found {
				ce.EndOffset, ce.EndPos = qh.base, q
			}
			return ce
		}
		if h.base != st.next {
			return offsetMismatch(s, pos, h, st.next)
		}
		st.add(s, pos, h, interval)
		pos += h.size()
	}
	return nil
}

func checkContinuity(s *segment, st *scanState, nextBase int64) error {
	s.next, s.maxTS, s.index, s.lastIndexed = st.next, st.maxTS, st.index, st.lastIndexed
	if st.next != nextBase {
		return &CorruptionError{Segment: s.path, FirstOffset: min(st.next, nextBase), EndOffset: max(st.next, nextBase),
			Pos: s.size, EndPos: s.size,
			Reason: fmt.Sprintf("segment ends at offset %d but the next segment starts at %d (missing or overlapping segment)", st.next, nextBase)}
	}
	return nil
}
