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
	// tail is the partition's in-memory tail when it is of this segment.
	tail []tailChunk
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
		v := segmentView{s: s, size: s.size, next: s.next, maxTS: s.maxTS, index: s.index}
		if len(p.tail) > 0 && p.tail[0].s == s {
			v.tail = p.tail
		}
		vs = append(vs, v)
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

// readAhead is how many bytes past the byte budget a read takes at once:
// room for the batch that crosses the budget.
const readAhead = 64 << 10

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
		var c chunk
		for pos < v.size {
			h, buf, err := v.readBatch(&c, pos, expect, maxBytes-total+readAhead)
			if err != nil {
				return out, offset, expect, err
			}
			if h.next() > offset {
				// Decode straight into out (readBatch verified the CRC),
				// then drop what is below offset and what is over maxBytes.
				start := len(out)
				if out == nil {
					// Size out once, from the first batch and the bytes
					// there are to read: growing a slice of records copies
					// them under write barriers.
					avail := v.size - pos
					for _, w := range vs[vi+1:] {
						avail += w.size
					}
					batches := min(avail, int64(maxBytes)+readAhead)/int64(max(len(buf), 1)) + 1
					out = make([]Record, 0, min(int64(h.count)*batches, 1<<16))
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

// chunk is bytes of a segment read ahead with one pread, from pos. The
// batches a read decodes are slices of it, so reading many small batches
// takes one system call and one allocation, not two calls and an
// allocation per batch. Records keep the chunk alive: a new read makes a
// new chunk.
type chunk struct {
	pos int64
	b   []byte
	// written: b is a write the committer kept (Partition.tail), not bytes
	// read back from the file; its CRCs need no check.
	written bool
}

// fromTail points c at the kept write holding pos, if there is one.
func (v *segmentView) fromTail(c *chunk, pos int64) bool {
	t := v.tail
	i := sort.Search(len(t), func(i int) bool { return t[i].pos > pos }) - 1
	if i < 0 || pos >= t[i].pos+int64(len(t[i].b)) {
		return false
	}
	c.pos, c.b, c.written = t[i].pos, t[i].b, true
	return true
}

// readBatch returns the CRC-checked batch at pos, which must start at
// offset expect: from c when c holds it, else from the kept write that
// holds it (v.tail), else from a new read of at least ahead bytes (or the
// whole batch, or what the segment has left).
func (v *segmentView) readBatch(c *chunk, pos, expect int64, ahead int) (batchHeader, []byte, error) {
	tried := false
	for {
		h, buf, need, err := v.sliceBatch(c, pos)
		if err != nil {
			if errors.Is(err, errBadBatch) {
				return h, nil, v.corruption(pos, expect, err)
			}
			return h, nil, err
		}
		if buf != nil {
			if h.base != expect {
				return h, nil, offsetMismatch(v.s, pos, h, expect)
			}
			return h, buf, nil
		}
		if !tried && v.fromTail(c, pos) {
			tried = true // a kept write holds whole batches: at most once
			continue
		}
		// sliceBatch checked that the segment holds need bytes from pos.
		n := min(v.size-pos, max(int64(ahead), need))
		c.pos, c.b, c.written = pos, make([]byte, n), false
		if _, err := v.s.f.ReadAt(c.b, pos); err != nil {
			c.b = nil
			return h, nil, fmt.Errorf("read segment %q at %d: %w", v.s.path, pos, err)
		}
	}
}

// sliceBatch returns the batch at pos out of c, CRC-checked. When c does
// not hold all of it, buf is nil and need is how many bytes from pos a read
// must take to hold it (or its header, when that is not held either).
func (v *segmentView) sliceBatch(c *chunk, pos int64) (h batchHeader, buf []byte, need int64, err error) {
	if v.size-pos < headerSize {
		return h, nil, 0, fmt.Errorf("%w: incomplete header (%d bytes)", errBadBatch, v.size-pos)
	}
	off := pos - c.pos
	if c.b == nil || off < 0 || off+headerSize > int64(len(c.b)) {
		return h, nil, headerSize, nil
	}
	if h, err = parseHeader(c.b[off : off+headerSize]); err != nil {
		return h, nil, 0, err
	}
	if pos+h.size() > v.size {
		return h, nil, 0, fmt.Errorf("%w: incomplete batch (%d of %d bytes)", errBadBatch, v.size-pos, h.size())
	}
	end := off + h.size()
	if end > int64(len(c.b)) {
		return h, nil, h.size(), nil
	}
	buf = c.b[off:end:end]
	if c.written {
		return h, buf, 0, nil
	}
	if sum := checksum(buf); sum != h.crc {
		return h, nil, 0, fmt.Errorf("%w: crc %#08x, header says %#08x", errBadBatch, sum, h.crc)
	}
	return h, buf, 0, nil
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
	if t := v.tail; len(t) > 0 && offset >= t[0].base {
		i := sort.Search(len(t), func(i int) bool { return t[i].base > offset }) - 1
		return t[i].pos, t[i].base
	}
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
		var c chunk
		for pos < v.size {
			h, buf, err := v.readBatch(&c, pos, expect, readAhead)
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
