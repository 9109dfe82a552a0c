package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".log"
	indexSuffix   = ".index"
	// Index file v1: magic "WIDX", version 1, 3 reserved zero bytes, then
	// 16-byte entries: relative offset uint32, position uint32, max
	// timestamp before the batch int64.
	indexMagic       = "WIDX"
	indexHeaderSize  = 8
	indexEntrySize   = 16
	indexFormatBytes = "WIDX\x01\x00\x00\x00"
)

// indexEntry locates a batch: its first offset (relative to the segment's
// base), its byte position, and the largest record timestamp of every batch
// before it in the segment (math.MinInt64 for none), which makes time
// lookups a binary search.
type indexEntry struct {
	rel         uint32
	pos         uint32
	maxTSBefore int64
}

// segment is one segment file and its in-memory index. base, path and f
// never change; size, next, maxTS and index are guarded by Partition.mu
// (the committer is the only writer). idx is the index file, open only
// while the segment is active (nil for sealed and read-only segments).
type segment struct {
	base  int64
	path  string
	f     file
	idx   file
	size  int64
	next  int64
	maxTS int64
	index []indexEntry
	// lastIndexed is the position of the last indexed batch (committer only).
	lastIndexed int64
}

func segmentName(base int64) string { return fmt.Sprintf("%020d", base) }

func segmentPath(dir string, base int64) string {
	return filepath.Join(dir, segmentName(base)+segmentSuffix)
}

func (s *segment) indexPath() string {
	return strings.TrimSuffix(s.path, segmentSuffix) + indexSuffix
}

// listSegments returns the base offsets of the segment files in dir, sorted.
func listSegments(fsys fileSystem, dir string) ([]int64, error) {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var bases []int64
	for _, e := range entries {
		name := e.Name()
		stem, ok := strings.CutSuffix(name, segmentSuffix)
		if !ok || len(stem) != 20 {
			continue
		}
		b, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || b < 0 {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

// openMode says how a segment is opened.
type openMode int

const (
	// modeCreate creates a new, empty segment and its index, read-write.
	modeCreate openMode = iota
	// modeWrite opens an existing segment read-write for the writer's
	// recovery. The index is not opened: recovery reads it by path and
	// rewrites it only once the whole partition checked out.
	modeWrite
	// modeRead opens an existing segment read-only (OpenReader).
	modeRead
)

// openSegment opens the segment file of base (and, for modeCreate, creates
// its index file).
func openSegment(fsys fileSystem, dir string, base int64, mode openMode) (*segment, error) {
	flag := os.O_RDWR
	switch mode {
	case modeCreate:
		flag |= os.O_CREATE | os.O_EXCL
	case modeRead:
		flag = os.O_RDONLY
	}
	path := segmentPath(dir, base)
	f, err := fsys.OpenFile(path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open segment %q: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stat segment %q: %w", path, err)
	}
	s := &segment{base: base, path: path, f: f, size: st.Size(), next: base, maxTS: math.MinInt64}
	if mode == modeCreate {
		if err := s.createIndex(fsys); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return s, nil
}

func (s *segment) close() error {
	err := s.f.Close()
	if s.idx != nil {
		err = errors.Join(err, s.idx.Close())
		s.idx = nil
	}
	return err
}

// loadIndex reads and validates the index file against the segment size.
// ok is false when the file is missing, short, or inconsistent: the caller
// rebuilds it.
func (s *segment) loadIndex(fsys fileSystem) ([]indexEntry, bool) {
	buf, err := readFile(fsys, s.indexPath())
	if err != nil || len(buf) < indexHeaderSize+indexEntrySize || (len(buf)-indexHeaderSize)%indexEntrySize != 0 {
		return nil, false
	}
	if string(buf[:indexHeaderSize]) != indexFormatBytes {
		return nil, false
	}
	var entries []indexEntry
	for b := buf[indexHeaderSize:]; len(b) > 0; b = b[indexEntrySize:] {
		e := decodeIndexEntry(b)
		if n := len(entries); n == 0 {
			if e.rel != 0 || e.pos != 0 {
				return nil, false
			}
		} else if p := entries[n-1]; e.rel <= p.rel || e.pos <= p.pos || e.maxTSBefore < p.maxTSBefore {
			return nil, false
		}
		if int64(e.pos)+headerSize > s.size {
			return nil, false
		}
		entries = append(entries, e)
	}
	return entries, true
}

func decodeIndexEntry(b []byte) indexEntry {
	return indexEntry{
		rel:         binary.BigEndian.Uint32(b),
		pos:         binary.BigEndian.Uint32(b[4:]),
		maxTSBefore: int64(binary.BigEndian.Uint64(b[8:])),
	}
}

func appendIndexEntry(dst []byte, e indexEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	dst = binary.BigEndian.AppendUint32(dst, e.pos)
	return binary.BigEndian.AppendUint64(dst, uint64(e.maxTSBefore))
}

// createIndex (re)creates the index file from s.index and keeps it open
// in s.idx for the entries appends add. It is not fsynced: the index of
// the active segment is rebuilt on open, and a segment's index is fsynced
// when the segment is sealed.
func (s *segment) createIndex(fsys fileSystem) error {
	ipath := s.indexPath()
	idx, err := fsys.OpenFile(ipath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create index %q: %w", ipath, err)
	}
	buf := make([]byte, 0, indexHeaderSize+len(s.index)*indexEntrySize)
	buf = append(buf, indexFormatBytes...)
	for _, e := range s.index {
		buf = appendIndexEntry(buf, e)
	}
	if _, err := idx.WriteAt(buf, 0); err != nil {
		_ = idx.Close()
		return fmt.Errorf("write index %q: %w", ipath, err)
	}
	if s.idx != nil {
		_ = s.idx.Close()
	}
	s.idx = idx
	return nil
}

// rewriteSealedIndex replaces the index file of a sealed segment with
// s.index, fsynced, and closes it.
func (s *segment) rewriteSealedIndex(fsys fileSystem) error {
	if err := s.createIndex(fsys); err != nil {
		return err
	}
	err := s.idx.Sync()
	if cerr := s.idx.Close(); err == nil {
		err = cerr
	}
	s.idx = nil
	if err != nil {
		return fmt.Errorf("sync index %q: %w", s.indexPath(), err)
	}
	return nil
}

// indexFileSize is where the next index entry goes.
func (s *segment) indexFileSize() int64 {
	return indexHeaderSize + int64(len(s.index))*indexEntrySize
}

// readHeaderAt reads the batch header at pos, checking it fits in size.
func readHeaderAt(f io.ReaderAt, pos, size int64) (batchHeader, error) {
	if size-pos < headerSize {
		return batchHeader{}, fmt.Errorf("%w: incomplete header (%d bytes)", errBadBatch, size-pos)
	}
	var hb [headerSize]byte
	if _, err := f.ReadAt(hb[:], pos); err != nil {
		return batchHeader{}, err
	}
	h, err := parseHeader(hb[:])
	if err != nil {
		return h, err
	}
	if pos+h.size() > size {
		return h, fmt.Errorf("%w: incomplete batch (%d of %d bytes)", errBadBatch, size-pos, h.size())
	}
	return h, nil
}

// readBatchAt reads and CRC-checks the batch at pos into buf.
func readBatchAt(f io.ReaderAt, pos, size int64, buf []byte) (batchHeader, []byte, error) {
	h, err := readHeaderAt(f, pos, size)
	if err != nil {
		return h, buf, err
	}
	if int64(cap(buf)) < h.size() {
		buf = make([]byte, h.size())
	}
	buf = buf[:h.size()]
	if _, err := f.ReadAt(buf, pos); err != nil {
		return h, buf, err
	}
	if c := checksum(buf); c != h.crc {
		return h, buf, fmt.Errorf("%w: crc %#08x, header says %#08x", errBadBatch, c, h.crc)
	}
	return h, buf, nil
}

// resync looks for the first valid batch (magic, CRC, base offset >=
// minBase) that starts at or after from. found is false when there is none
// before size.
func resync(f io.ReaderAt, from, size, minBase int64) (pos int64, h batchHeader, found bool, err error) {
	const chunk = 1 << 20
	buf := make([]byte, chunk+len(batchMagicBytes)-1)
	var bbuf []byte
	for start := from; start < size; start += chunk {
		n := min(int64(len(buf)), size-start)
		if _, err := f.ReadAt(buf[:n], start); err != nil && !errors.Is(err, io.EOF) {
			return 0, h, false, err
		}
		for i := 0; ; {
			j := bytes.Index(buf[i:n], batchMagicBytes)
			if j < 0 {
				break
			}
			p := start + int64(i+j)
			var berr error
			h, bbuf, berr = readBatchAt(f, p, size, bbuf)
			if berr == nil && h.base >= minBase {
				return p, h, true, nil
			}
			i += j + 1
		}
	}
	return 0, h, false, nil
}
