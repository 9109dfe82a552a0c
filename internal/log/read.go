package log

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// segmentView is a reader's snapshot of a segment's published state.
type segmentView struct {
	s     *segment
	size  int64
	next  int64
	maxTS int64
	index []indexEntry
}

// views snapshots the segments from the one holding offset (or all, when
// all is set) and checks offset against the readable range.
func (p *Partition) views(offset int64, all bool) ([]segmentView, int64, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.filesClosed {
		return nil, 0, ErrClosed
	}
	start := p.segments[0].base
	if !all && (offset < start || offset > p.hw) {
		return nil, p.hw, fmt.Errorf("%w: offset %d, partition holds [%d, %d)", ErrOffsetOutOfRange, offset, start, p.hw)
	}
	i := 0
	if !all {
		i = sort.Search(len(p.segments), func(i int) bool { return p.segments[i].base > offset }) - 1
	}
	vs := make([]segmentView, 0, len(p.segments)-i)
	for _, s := range p.segments[i:] {
		vs = append(vs, segmentView{s: s, size: s.size, next: s.next, maxTS: s.maxTS, index: s.index})
	}
	return vs, p.hw, nil
}

// recordSize is what a record counts against ReadFrom's maxBytes.
func recordSize(r *Record) int {
	n := len(r.Key) + len(r.Value)
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

// ReadFrom returns records from offset on, at least one when offset is
// below the high watermark, and more while their keys, values and headers
// total at most maxBytes. next is the offset to read from next time.
// Reading at the high watermark returns no records and no error; outside
// [LogStartOffset, HighWatermark] it returns ErrOffsetOutOfRange. Only
// acknowledged records are returned. The records' byte slices belong to
// the caller. A batch failing its CRC is a *CorruptionError; the records
// before it are returned with it, and next is the first damaged offset.
func (p *Partition) ReadFrom(offset int64, maxBytes int) ([]Record, int64, error) {
	vs, hw, err := p.views(offset, false)
	if err != nil || offset == hw {
		return nil, offset, err
	}
	out, next, expect, err := readViews(vs, offset, maxBytes)
	if err != nil {
		err = p.deletedUnder(err, expect)
	}
	return out, next, err
}

// readViews reads records from offset on out of vs, as ReadFrom describes.
// On error, expect is the offset of the batch that failed.
func readViews(vs []segmentView, offset int64, maxBytes int) (out []Record, next, expect int64, err error) {
	total := 0
	for vi, v := range vs {
		pos := int64(0)
		expect = v.s.base
		if vi == 0 {
			pos, expect = v.locate(offset)
		}
		for pos < v.size {
			h, buf, err := v.readBatch(pos, expect)
			if err != nil {
				return out, offset, expect, err
			}
			if h.next() > offset {
				// Decode straight into out (readBatchAt verified the CRC),
				// then drop what is below offset and what is over maxBytes.
				start := len(out)
				if out == nil {
					// Size out once from the first batch: growing a slice of
					// records copies them under write barriers.
					perBatch := max(maxBytes/max(len(buf), 1), 1) + 1
					out = make([]Record, 0, min(int(h.count)*perBatch, 1<<16))
				}
				var err error
				out, _, err = decodeBatchCRC(buf, out, false)
				if err != nil {
					clear(out[start:])
					return out[:start], offset, expect, v.corruption(pos, expect, err)
				}
				skip := start
				for skip < len(out) && out[skip].Offset < offset {
					skip++
				}
				if skip > start {
					n := copy(out[start:], out[skip:])
					clear(out[start+n:])
					out = out[:start+n]
				}
				for i := start; i < len(out); i++ {
					sz := recordSize(&out[i])
					if i > 0 && total+sz > maxBytes {
						next := out[i].Offset
						clear(out[i:])
						return out[:i], next, expect, nil
					}
					total += sz
					offset = out[i].Offset + 1
				}
			}
			expect = h.next()
			pos += h.size()
		}
	}
	return out, offset, expect, nil
}

// readBatch reads the batch at pos, which must start at offset expect.
func (v *segmentView) readBatch(pos, expect int64) (batchHeader, []byte, error) {
	h, buf, err := readBatchAt(v.s.f, pos, v.size, nil)
	if err != nil {
		if errors.Is(err, errBadBatch) {
			return h, nil, v.corruption(pos, expect, err)
		}
		return h, nil, fmt.Errorf("read segment %q at %d: %w", v.s.path, pos, err)
	}
	if h.base != expect {
		return h, nil, offsetMismatch(v.s, pos, h, expect)
	}
	return h, buf, nil
}

// corruption describes damage found at pos by a reader: it extends to the
// next valid batch, or to the end of the segment.
func (v *segmentView) corruption(pos, expect int64, cause error) error {
	e := &CorruptionError{Segment: v.s.path, FirstOffset: expect, EndOffset: v.next, Pos: pos, EndPos: v.size,
		Reason: cause.Error()}
	if q, qh, found, err := resync(v.s.f, pos+1, v.size, expect); err == nil && found {
		e.EndOffset, e.EndPos = qh.base, q
	}
	return e
}

// locate returns the position and first offset of a batch at or before
// offset, from the index. The index is only a cache: if the batch header
// there does not match, locate falls back to position 0 and the reader
// walks the segment, so a damaged index never reads as a damaged segment.
func (v *segmentView) locate(offset int64) (pos, first int64) {
	pos, first = seekIndex(v.index, v.s.base, offset)
	if pos == 0 {
		return 0, v.s.base
	}
	if h, err := readHeaderAt(v.s.f, pos, v.size); err != nil || h.base != first {
		return 0, v.s.base
	}
	return pos, first
}

// seekIndex returns the position and first offset of the last indexed batch
// at or before offset.
func seekIndex(index []indexEntry, base, offset int64) (pos, first int64) {
	i := sort.Search(len(index), func(i int) bool { return base+int64(index[i].rel) > offset })
	if i == 0 {
		return 0, base
	}
	return int64(index[i-1].pos), base + int64(index[i-1].rel)
}

// OffsetForTime returns the first offset whose record timestamp is at or
// after t (millisecond precision), or the high watermark if there is none.
func (p *Partition) OffsetForTime(t time.Time) (int64, error) {
	ms := t.UnixMilli()
	vs, hw, err := p.views(0, true)
	if err != nil {
		return 0, err
	}
	for _, v := range vs {
		if v.maxTS < ms || len(v.index) == 0 {
			continue
		}
		// Every record before entry i-1 is older than t.
		i := sort.Search(len(v.index), func(i int) bool { return v.index[i].maxTSBefore >= ms })
		e := v.index[max(i-1, 0)]
		pos, expect := v.locate(v.s.base + int64(e.rel))
		for pos < v.size {
			h, buf, err := v.readBatch(pos, expect)
			if err != nil {
				return 0, p.deletedUnder(err, expect)
			}
			if h.maxTS >= ms {
				recs, _, err := decodeBatch(buf, nil)
				if err != nil {
					return 0, v.corruption(pos, expect, err)
				}
				for _, r := range recs {
					if r.Timestamp.UnixMilli() >= ms {
						return r.Offset, nil
					}
				}
			}
			expect = h.next()
			pos += h.size()
		}
	}
	return hw, nil
}

// deletedUnder turns a read error caused by retention deleting the segment
// under the reader into ErrOffsetOutOfRange.
func (p *Partition) deletedUnder(err error, offset int64) error {
	if _, ok := errors.AsType[*CorruptionError](err); ok {
		return err
	}
	p.mu.RLock()
	start := p.segments[0].base
	p.mu.RUnlock()
	if offset < start {
		return fmt.Errorf("%w: offset %d was deleted by retention; the partition starts at %d", ErrOffsetOutOfRange, offset, start)
	}
	return err
}
