package log

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// matrixLog is a partition written for the corruption matrix, kept as a
// golden copy that every case damages a copy of. It has three segments
// (A and B sealed, C the last); every Append is one batch and one write,
// except the optional big last write.
type matrixLog struct {
	dir     string
	opts    Options
	bases   []int64
	batches []matrixBatch
	recs    []Record // every record, by offset
}

// matrixBatch is one batch of the layout: in segment seg (base offset), at
// bytes [pos, end), offsets [base, next).
type matrixBatch struct {
	seg, pos, end, base, next int64
}

// matrixRecord makes record i, about size bytes of value.
func matrixRecord(i, size int) Record {
	r := Record{Timestamp: t0.Add(msec(i)), Value: bytes.Repeat(fmt.Appendf(nil, "v%06d.", i), size/8+1)[:size]}
	if i%5 != 0 {
		r.Key = fmt.Appendf(nil, "key-%d", i)
	}
	if i%2 == 0 {
		r.Headers = []Header{{Key: "n", Value: fmt.Appendf(nil, "%d", i)}}
	}
	return r
}

// buildMatrixLog writes the layout: segments of about 12 KiB of 2-record
// batches, the last one past 9 KiB so that a page in its middle has valid
// batches after it, then three small batches at the end. bigLastWrite adds
// a last write of four 2.5 KiB batches that share one write offset (a
// group commit), more than a page after any page boundary.
func buildMatrixLog(t *testing.T, bigLastWrite bool) *matrixLog {
	t.Helper()
	m := &matrixLog{dir: t.TempDir(), opts: Options{SegmentBytes: 12 << 10, IndexIntervalBytes: 1 << 10}}
	p := mustOpen(t, m.dir, m.opts)
	appendRecs := func(recs ...Record) {
		mustAppend(t, p, recs...)
		for _, r := range recs {
			r.Offset = int64(len(m.recs))
			m.recs = append(m.recs, r)
		}
	}
	lastSize := func() int64 {
		p.mu.RLock()
		defer p.mu.RUnlock()
		return p.segments[len(p.segments)-1].size
	}
	for p.Metrics().Segments < 3 || lastSize() < 9<<10 {
		i := len(m.recs)
		appendRecs(matrixRecord(i, 250), matrixRecord(i+1, 250))
	}
	for range 3 {
		appendRecs(matrixRecord(len(m.recs), 5))
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	asAfterCrash(t, m.dir)
	bases, err := listSegments(osFS{}, m.dir)
	if err != nil || len(bases) != 3 {
		t.Fatalf("segments %v, %v; want 3", bases, err)
	}
	m.bases = bases
	if bigLastWrite {
		last := segPath(m.dir, bases[2])
		b := mustRead(t, last)
		write := int64(len(m.recs))
		for range 4 {
			i := len(m.recs)
			recs := []Record{matrixRecord(i, 1200), matrixRecord(i+1, 1200)}
			batch, _ := encodeBatch(nil, recs, 0)
			sealBatch(batch, int64(i), write)
			b = append(b, batch...)
			for _, r := range recs {
				r.Offset = int64(len(m.recs))
				m.recs = append(m.recs, r)
			}
		}
		if err := os.WriteFile(last, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, base := range bases {
		path := segPath(m.dir, base)
		b := mustRead(t, path)
		for pos := int64(0); pos < int64(len(b)); {
			h, err := parseHeader(b[pos:])
			if err != nil {
				t.Fatalf("layout: %s at %d: %v", path, pos, err)
			}
			m.batches = append(m.batches, matrixBatch{seg: base, pos: pos, end: pos + h.size(), base: h.base, next: h.next()})
			pos += h.size()
		}
	}
	return m
}

// copyTo copies the golden partition to a new directory.
func (m *matrixLog) copyTo(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(m.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() == lockFile {
			continue
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), mustRead(t, filepath.Join(m.dir, e.Name())), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// inSeg returns the batches of the segment with base offset seg.
func (m *matrixLog) inSeg(seg int64) []matrixBatch {
	var out []matrixBatch
	for _, b := range m.batches {
		if b.seg == seg {
			out = append(out, b)
		}
	}
	return out
}

// overlapping returns the first batch of seg whose bytes reach past pos.
func (m *matrixLog) overlapping(seg, pos int64) matrixBatch {
	for _, b := range m.inSeg(seg) {
		if b.end > pos {
			return b
		}
	}
	panic("no batch past the position")
}

// startingAtOrAfter returns the first batch of seg that starts at or after pos.
func (m *matrixLog) startingAtOrAfter(seg, pos int64) matrixBatch {
	for _, b := range m.inSeg(seg) {
		if b.pos >= pos {
			return b
		}
	}
	panic("no batch after the position")
}

// outcome is what a case expects.
type outcome int

const (
	// clean: Open truncates nothing; every record reads back.
	clean outcome = iota
	// tornTail: Open truncates the last segment at tornAt; records
	// [0, keep) read back byte-identical, and keep is the high watermark.
	tornTail
	// corruptAtOpen: Open fails with ce and changes nothing.
	corruptAtOpen
	// corruptAtRead: Open succeeds (the damage is in a sealed segment's
	// payload, checked when read); reads return the records before the
	// damage and ce.
	corruptAtRead
)

type expectation struct {
	outcome outcome
	tornAt  int64 // tornTail: -1 when the file ends on a batch boundary
	keep    int64 // tornTail
	ce      CorruptionError
}

func corruptionAt(dir string, seg, first, end, pos, endPos int64) CorruptionError {
	return CorruptionError{Segment: segPath(dir, seg), FirstOffset: first, EndOffset: end, Pos: pos, EndPos: endPos}
}

func flipBit(t *testing.T, path string, at int64) {
	t.Helper()
	b := mustRead(t, path)
	b[at] ^= 0x01
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func zeroPage(t *testing.T, path string, at int64) {
	t.Helper()
	b := mustRead(t, path)
	clear(b[at : at+4096])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptionMatrix damages a copy of a golden partition in each way a
// disk or a careless operator can (truncation, zeroed pages, flipped bits,
// missing segments, broken indexes) and checks what Open, Partition reads
// and a Reader make of it. Damage confined to the tail (the last write) is
// truncated and loses nothing acknowledged before it; any other damage is a
// *CorruptionError naming the segment, offsets and bytes, changes no file,
// and is reported the same way again on the next Open.
func TestCorruptionMatrix(t *testing.T) {
	m := buildMatrixLog(t, false)
	big := buildMatrixLog(t, true)
	A, B, C := m.bases[0], m.bases[1], m.bases[2]
	cB := m.inSeg(C)
	bB := m.inSeg(B)
	lastBatch := cB[len(cB)-1]
	midC := cB[len(cB)/2]
	midB := bB[len(bB)/2]

	type matrixCase struct {
		name   string
		log    *matrixLog
		damage func(t *testing.T, dir string)
		want   func(dir string) expectation
	}
	headerFlip := func(field string, at int64, out outcome) matrixCase {
		first := bB[0]
		return matrixCase{
			name:   "flip/first-header-of-sealed-segment/" + field,
			damage: func(t *testing.T, dir string) { flipBit(t, segPath(dir, B), at) },
			want: func(dir string) expectation {
				return expectation{outcome: out, ce: corruptionAt(dir, B, first.base, first.next, first.pos, first.end)}
			},
		}
	}
	cases := []matrixCase{
		{
			name: "zero-page/tail-inside-last-write",
			log:  big,
			damage: func(t *testing.T, dir string) {
				w := big.batches[len(big.batches)-4]
				zeroPage(t, segPath(dir, C), (w.pos+4095)/4096*4096)
			},
			want: func(string) expectation {
				w := big.batches[len(big.batches)-4]
				hit := big.overlapping(C, (w.pos+4095)/4096*4096)
				return expectation{outcome: tornTail, tornAt: hit.pos, keep: hit.base}
			},
		},
		{
			name:   "zero-page/middle-of-last-segment",
			damage: func(t *testing.T, dir string) { zeroPage(t, segPath(dir, C), 4096) },
			want: func(dir string) expectation {
				hit, after := m.overlapping(C, 4096), m.startingAtOrAfter(C, 8192)
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, C, hit.base, after.base, hit.pos, after.pos)}
			},
		},
		{
			name:   "zero-page/older-segment",
			damage: func(t *testing.T, dir string) { zeroPage(t, segPath(dir, A), 4096) },
			want: func(dir string) expectation {
				// Open checks a sealed segment's first headers and those
				// after its last index entry; the read finds the rest.
				hit, after := m.overlapping(A, 4096), m.startingAtOrAfter(A, 8192)
				return expectation{outcome: corruptAtRead, ce: corruptionAt(dir, A, hit.base, after.base, hit.pos, after.pos)}
			},
		},
		{
			name: "zero-page/end-of-older-segment",
			damage: func(t *testing.T, dir string) {
				zeroPage(t, segPath(dir, A), m.inSeg(A)[len(m.inSeg(A))-1].end-4096)
			},
			want: func(dir string) expectation {
				size := m.inSeg(A)[len(m.inSeg(A))-1].end
				hit := m.overlapping(A, size-4096)
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, A, hit.base, B, hit.pos, size)}
			},
		},
		{
			name:   "flip/tail-batch",
			damage: func(t *testing.T, dir string) { flipBit(t, segPath(dir, C), lastBatch.end-2) },
			want: func(string) expectation {
				return expectation{outcome: tornTail, tornAt: lastBatch.pos, keep: lastBatch.base}
			},
		},
		{
			name:   "flip/middle-batch-of-last-segment",
			damage: func(t *testing.T, dir string) { flipBit(t, segPath(dir, C), midC.pos+headerSize+100) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, C, midC.base, midC.next, midC.pos, midC.end)}
			},
		},
		{
			name:   "flip/middle-batch-of-sealed-segment",
			damage: func(t *testing.T, dir string) { flipBit(t, segPath(dir, B), midB.pos+headerSize+100) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtRead, ce: corruptionAt(dir, B, midB.base, midB.next, midB.pos, midB.end)}
			},
		},
		headerFlip("magic", bB[0].pos+2, corruptAtOpen),
		headerFlip("base-offset", bB[0].pos+offBase+7, corruptAtOpen),
		headerFlip("record-count", bB[0].pos+offCount+3, corruptAtOpen),
		headerFlip("payload-length", bB[0].pos+offPayloadLen+3, corruptAtOpen),
		headerFlip("crc", bB[0].pos+offCRC+3, corruptAtRead),
		headerFlip("first-timestamp", bB[0].pos+offFirstTS+7, corruptAtRead),
		{
			name:   "flip/first-header-of-last-segment",
			damage: func(t *testing.T, dir string) { flipBit(t, segPath(dir, C), 1) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, C, cB[0].base, cB[0].next, 0, cB[0].end)}
			},
		},
		{
			name:   "missing-segment/first",
			damage: func(t *testing.T, dir string) { removeFile(t, segPath(dir, A)) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, A, A, B, 0, 0)}
			},
		},
		{
			name:   "missing-segment/middle",
			damage: func(t *testing.T, dir string) { removeFile(t, segPath(dir, B)) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, B, B, C, 0, 0)}
			},
		},
		{
			name:   "missing-segment/last",
			damage: func(t *testing.T, dir string) { removeFile(t, segPath(dir, C)) },
			want: func(dir string) expectation {
				return expectation{outcome: corruptAtOpen, ce: corruptionAt(dir, C, C, -1, 0, 0)}
			},
		},
		{
			name:   "index/missing-sealed",
			damage: func(t *testing.T, dir string) { removeFile(t, indexPath(dir, A)) },
			want:   func(string) expectation { return expectation{outcome: clean} },
		},
		{
			name:   "index/missing-last",
			damage: func(t *testing.T, dir string) { removeFile(t, indexPath(dir, C)) },
			want:   func(string) expectation { return expectation{outcome: clean} },
		},
		{
			name: "index/garbage",
			damage: func(t *testing.T, dir string) {
				if err := os.WriteFile(indexPath(dir, B), []byte("not an index at all"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: func(string) expectation { return expectation{outcome: clean} },
		},
		{
			name: "index/entry-points-elsewhere",
			damage: func(t *testing.T, dir string) {
				flipBit(t, indexPath(dir, A), indexHeaderSize+indexEntrySize+7) // second entry's position
			},
			want: func(string) expectation { return expectation{outcome: clean} },
		},
		{
			name: "index/bit-flip-in-last-entry",
			damage: func(t *testing.T, dir string) {
				b := mustRead(t, indexPath(dir, B))
				flipBit(t, indexPath(dir, B), int64(len(b)-1)) // max timestamp before
			},
			want: func(string) expectation { return expectation{outcome: clean} },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lg := tc.log
			if lg == nil {
				lg = m
			}
			dir := lg.copyTo(t)
			tc.damage(t, dir)
			checkDamage(t, lg, dir, tc.want(dir))
		})
	}

	// Truncation at every byte of the last three batches (each its own
	// write): what is cut is gone, everything before reads back.
	t.Run("truncate-last-3-batches", func(t *testing.T) {
		dir := m.copyTo(t)
		path := segPath(dir, C)
		orig := mustRead(t, path)
		for _, b := range m.batches[len(m.batches)-3:] {
			for cut := b.pos; cut < b.end; cut++ {
				if err := os.WriteFile(path, orig[:cut], 0o644); err != nil {
					t.Fatal(err)
				}
				asAfterCrash(t, dir) // the thorough check closed it cleanly
				want := expectation{outcome: tornTail, tornAt: b.pos, keep: b.base}
				if cut == b.pos {
					want.tornAt = -1
				}
				if !checkDamageQuiet(t, m, dir, want, cut == b.pos+1) {
					t.Fatalf("cut at %d (batch at %d)", cut, b.pos)
				}
			}
		}
	})
}

func indexPath(dir string, base int64) string {
	return filepath.Join(dir, segmentName(base)+indexSuffix)
}

func removeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

// snapshot returns the content of every file in dir but LOCK.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		if e.Name() == lockFile {
			continue
		}
		out[e.Name()] = string(mustRead(t, filepath.Join(dir, e.Name())))
	}
	return out
}

func checkDamage(t *testing.T, m *matrixLog, dir string, want expectation) {
	t.Helper()
	checkDamageQuiet(t, m, dir, want, true)
}

// checkDamageQuiet checks one damaged partition against want; thorough
// also appends after a recovered torn tail and reopens. It reports
// failures with t.Errorf and returns false on any.
func checkDamageQuiet(t *testing.T, m *matrixLog, dir string, want expectation, thorough bool) bool {
	t.Helper()
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	sameErr := func(what string, err error) {
		t.Helper()
		ce, isCE := errors.AsType[*CorruptionError](err)
		if !isCE {
			fail("%s: err = %v, want *CorruptionError", what, err)
			return
		}
		got := *ce
		got.Reason = ""
		if got != want.ce || ce.Reason == "" {
			fail("%s:\n got %v\nwant segment %s offsets [%d, %d) bytes [%d, %d)", what, ce,
				want.ce.Segment, want.ce.FirstOffset, want.ce.EndOffset, want.ce.Pos, want.ce.EndPos)
		}
	}
	checkRecs := func(what string, got []Record, upTo int64) {
		t.Helper()
		if int64(len(got)) != upTo {
			fail("%s: read %d records, want %d", what, len(got), upTo)
			return
		}
		for i, r := range got {
			w := m.recs[i]
			if r.Offset != w.Offset || !r.Timestamp.Equal(w.Timestamp) || !sameBytes(r.Key, w.Key) ||
				!sameBytes(r.Value, w.Value) || !reflect.DeepEqual(r.Headers, w.Headers) {
				fail("%s: record %d differs: %+v", what, i, r)
				return
			}
		}
	}

	// A Reader first: it must see the same thing and change nothing.
	before := snapshot(t, dir)
	recs, err := readAllFrom(dir)
	switch want.outcome {
	case clean:
		if err != nil {
			fail("reader: %v", err)
		}
		checkRecs("reader", recs, int64(len(m.recs)))
	case tornTail:
		if err != nil {
			fail("reader: %v", err)
		}
		checkRecs("reader", recs, want.keep)
	case corruptAtOpen, corruptAtRead:
		sameErr("reader", err)
		checkRecs("reader", recs, want.ce.FirstOffset)
	}
	if after := snapshot(t, dir); !reflect.DeepEqual(after, before) {
		fail("the reader changed files")
	}

	p, err := Open(dir, m.opts)
	switch want.outcome {
	case corruptAtOpen:
		if err == nil {
			_ = p.Close()
		}
		sameErr("Open", err)
		if after := snapshot(t, dir); !reflect.DeepEqual(after, before) {
			fail("Open changed files of a corrupt partition")
		}
		_, err2 := Open(dir, m.opts)
		if err2 == nil || err2.Error() != err.Error() {
			fail("second Open: %v, want the same error again", err2)
		}
		return ok
	case corruptAtRead:
		if err != nil {
			fail("Open: %v", err)
			return false
		}
		recs, err := readAllPartition(p)
		sameErr("ReadFrom", err)
		checkRecs("ReadFrom", recs, want.ce.FirstOffset)
		_, _, err = p.ReadFrom(want.ce.FirstOffset, 1<<20)
		sameErr("ReadFrom at the damage", err)
		if err := p.Close(); err != nil {
			fail("Close: %v", err)
		}
		if after := snapshot(t, dir); !reflect.DeepEqual(segmentsOnly(after), segmentsOnly(before)) {
			fail("Open changed a segment of a partition with damaged payload")
		}
		return ok
	}
	if err != nil {
		fail("Open: %v", err)
		return false
	}
	defer func() {
		if p != nil {
			_ = p.Close()
		}
	}()
	r := p.Metrics().Recovery
	n := int64(len(m.recs))
	if want.outcome == tornTail {
		n = want.keep
		if torn := want.tornAt >= 0; torn != (r.TornTails == 1) || (torn && r.TruncatedAt != want.tornAt) {
			fail("recovery %+v, want torn tail at %d", r, want.tornAt)
		}
	} else if r.TornTails != 0 {
		fail("recovery %+v, want no torn tail", r)
	}
	if hw := p.HighWatermark(); hw != n {
		fail("HighWatermark = %d, want %d", hw, n)
	}
	recs, err = readAllPartition(p)
	if err != nil {
		fail("ReadFrom: %v", err)
	}
	checkRecs("ReadFrom", recs, n)
	if !thorough {
		return ok
	}
	if base, err := p.Append(t.Context(), []Record{{Value: []byte("after")}}); err != nil || base != n {
		fail("Append after recovery = %d, %v; want %d", base, err, n)
	}
	if err := p.Close(); err != nil {
		fail("Close: %v", err)
	}
	p, err = Open(dir, m.opts)
	if err != nil {
		fail("reopen: %v", err)
		return false
	}
	if r := p.Metrics().Recovery; r.TornTails != 0 || p.HighWatermark() != n+1 {
		fail("reopen: recovery %+v hw %d, want clean at %d", r, p.HighWatermark(), n+1)
	}
	return ok
}

// segmentsOnly keeps the segment files of a snapshot: indexes are
// rewritten by Open, the meta file by a clean Close.
func segmentsOnly(s map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range s {
		if strings.HasSuffix(k, segmentSuffix) {
			out[k] = v
		}
	}
	return out
}

// readAllPartition reads every record from the log start; on error it
// returns what it read before it.
func readAllPartition(p *Partition) ([]Record, error) {
	var out []Record
	for from := p.LogStartOffset(); ; {
		recs, next, err := p.ReadFrom(from, 4<<10)
		out = append(out, recs...)
		if err != nil || len(recs) == 0 {
			return out, err
		}
		from = next
	}
}

// readAllFrom reads a partition directory with a Reader, from its start to
// its end or the first error.
func readAllFrom(dir string) ([]Record, error) {
	r, err := OpenReader(dir)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var out []Record
	for from := r.LogStartOffset(); ; {
		recs, next, err := r.ReadFrom(from, 4<<10)
		out = append(out, recs...)
		if err != nil || len(recs) == 0 {
			return out, err
		}
		from = next
	}
}
