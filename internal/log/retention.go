package log

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Readers file v1 ("readers" in the partition directory), replaced
// atomically (write temp, fsync, rename, fsync directory):
//
//	weir-readers 1
//	<name> <committed offset>
//	...
const (
	readersFile   = "readers"
	readersHeader = "weir-readers 1"
)

// Commit records that reader has consumed every record below offset. The
// first Commit of a name registers the reader. Segments are deleted only
// when every registered reader has committed past them (and the retention
// limits allow it); a log with no registered reader deletes nothing. offset
// must be within [LogStartOffset, HighWatermark]. The commit is durable
// when Commit returns.
func (p *Partition) Commit(reader string, offset int64) error {
	if err := validReaderName(reader); err != nil {
		return err
	}
	p.mu.RLock()
	start, hw, closed := p.segments[0].base, p.hw, p.filesClosed
	p.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	if offset < start || offset > hw {
		return fmt.Errorf("%w: commit of %q at %d, partition holds [%d, %d]", ErrOffsetOutOfRange, reader, offset, start, hw)
	}
	p.readersMu.Lock()
	next := make(map[string]int64, len(p.readers)+1)
	for k, v := range p.readers {
		next[k] = v
	}
	next[reader] = offset
	err := p.writeReaders(next)
	if err == nil {
		p.readers = next
	}
	p.readersMu.Unlock()
	if err != nil {
		return err
	}
	_, err = p.deleteSegments(false)
	return err
}

// Unregister forgets a reader, so it no longer holds segments back.
func (p *Partition) Unregister(reader string) error {
	p.readersMu.Lock()
	if _, ok := p.readers[reader]; !ok {
		p.readersMu.Unlock()
		return nil
	}
	next := make(map[string]int64, len(p.readers))
	for k, v := range p.readers {
		if k != reader {
			next[k] = v
		}
	}
	err := p.writeReaders(next)
	if err == nil {
		p.readers = next
	}
	p.readersMu.Unlock()
	if err != nil {
		return err
	}
	_, err = p.deleteSegments(false)
	return err
}

// Committed returns each registered reader's committed offset.
func (p *Partition) Committed() map[string]int64 {
	p.readersMu.Lock()
	defer p.readersMu.Unlock()
	out := make(map[string]int64, len(p.readers))
	for k, v := range p.readers {
		out[k] = v
	}
	return out
}

func validReaderName(name string) error {
	if name == "" || len(name) > 255 || strings.IndexFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return fmt.Errorf("log: reader name %q: want 1 to 255 bytes without spaces or control characters", name)
	}
	return nil
}

// writeReaders replaces the readers file atomically. Called with readersMu.
func (p *Partition) writeReaders(readers map[string]int64) error {
	var b bytes.Buffer
	b.WriteString(readersHeader + "\n")
	names := make([]string, 0, len(readers))
	for k := range readers {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		fmt.Fprintf(&b, "%s %d\n", k, readers[k])
	}
	if err := replaceFile(p.fsys, p.dir, readersFile, b.Bytes()); err != nil {
		return fmt.Errorf("write readers file: %w", err)
	}
	return nil
}

// loadReaders reads the readers file, if any.
func (p *Partition) loadReaders() error {
	readers, err := readReaders(p.fsys, p.dir)
	if err != nil {
		return err
	}
	p.readers = readers
	return nil
}

// readReaders parses the readers file of the partition in dir; no file
// means no readers.
func readReaders(fsys fileSystem, dir string) (map[string]int64, error) {
	path := filepath.Join(dir, readersFile)
	buf, err := readFile(fsys, path)
	if isNotExist(err) {
		return map[string]int64{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read readers file: %w", err)
	}
	readers := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(buf))
	line := 0
	for sc.Scan() {
		line++
		if line == 1 {
			if sc.Text() != readersHeader {
				return nil, fmt.Errorf("readers file %q: header %q, want %q", path, sc.Text(), readersHeader)
			}
			continue
		}
		name, off, ok := strings.Cut(sc.Text(), " ")
		o, err := strconv.ParseInt(off, 10, 64)
		if !ok || err != nil || o < 0 || validReaderName(name) != nil {
			return nil, fmt.Errorf("readers file %q: line %d: bad entry %q", path, line, sc.Text())
		}
		readers[name] = o
	}
	if line == 0 {
		return nil, fmt.Errorf("readers file %q: empty", path)
	}
	return readers, nil
}

// deleteSegments deletes the oldest sealed segments that every registered
// reader has committed past and that the retention limits let go: the
// newest record older than RetainTime, and at least RetainBytes kept. When
// full is set (the log is at MaxBytes), the retention limits yield; the
// readers' commits never do. The active segment is never deleted.
func (p *Partition) deleteSegments(full bool) (int, error) {
	p.retainMu.Lock()
	defer p.retainMu.Unlock()
	p.readersMu.Lock()
	minCommitted := int64(math.MaxInt64)
	for _, o := range p.readers {
		minCommitted = min(minCommitted, o)
	}
	registered := len(p.readers) > 0
	p.readersMu.Unlock()
	if !registered {
		return 0, nil
	}
	cutoff := p.opts.Now().UnixMilli() - p.opts.RetainTime.Milliseconds()

	p.mu.RLock()
	total := p.totalBytesLocked()
	n := 0
	for _, s := range p.segments[:len(p.segments)-1] {
		if s.next > minCommitted {
			break
		}
		if !full && (p.opts.RetainTime > 0 && s.maxTS >= cutoff || total-s.size < p.opts.RetainBytes) {
			break
		}
		total -= s.size
		n++
	}
	victims := slices.Clone(p.segments[:n])
	newStart := p.segments[n].base
	p.mu.RUnlock()
	if n == 0 {
		return 0, nil
	}

	// The meta file moves the start first: a crash before the files are
	// gone leaves segments below it (deleted again later), never a start
	// that points at deleted data.
	p.metaMu.Lock()
	m := p.meta
	m.start = newStart
	err := writeMeta(p.fsys, p.dir, m)
	if err == nil {
		p.meta = m
	}
	p.metaMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("delete segments: %w", err)
	}

	p.mu.Lock()
	p.segments = slices.Clone(p.segments[n:])
	p.mu.Unlock()
	// Oldest first, each removal durable before the next, so a crash leaves
	// a shorter prefix removed, never a hole.
	var errs []error
	for _, s := range victims {
		// Renamed away, the segment is gone from the log; its blocks are
		// freed in the background, a few MiB at a time (shred).
		trash := s.path + trashSuffix
		if err := p.fsys.Rename(s.path, trash); err != nil {
			errs = append(errs, s.close(), p.fsys.Remove(s.path))
		} else {
			p.closeMu.RLock()
			if p.closed { // Close may be waiting for shreds already
				errs = append(errs, s.close(), p.fsys.Remove(trash))
			} else {
				p.shreds.Go(func() { p.shred(s, trash) })
			}
			p.closeMu.RUnlock()
		}
		if err := p.fsys.Remove(s.indexPath()); err != nil && !isNotExist(err) {
			errs = append(errs, err) // a missing index is only a cache gone
		}
		errs = append(errs, p.fsys.SyncDir(p.dir))
		p.deletedSegments.Add(1)
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("delete segments: %w", err)
	}
	return n, nil
}

// totalBytesLocked is the size of all segments. Called with mu held.
func (p *Partition) totalBytesLocked() int64 {
	var n int64
	for _, s := range p.segments {
		n += s.size
	}
	return n
}

// admit runs in the committer: it returns how many requests of group fit
// under MaxBytes, deleting eligible segments first when needed.
func (p *Partition) admit(group []*appendReq) int {
	if p.opts.MaxBytes == 0 {
		return len(group)
	}
	fits := func() int {
		p.mu.RLock()
		total := p.totalBytesLocked()
		p.mu.RUnlock()
		for i, r := range group {
			total += int64(len(r.batch))
			if total > p.opts.MaxBytes {
				return i
			}
		}
		return len(group)
	}
	n := fits()
	if n < len(group) {
		if _, err := p.deleteSegments(true); err != nil {
			p.opts.Logger.Warn("log: retention could not delete segments", "dir", p.dir, "err", err)
		}
		n = fits()
	}
	return n
}

// trashSuffix names a deleted segment whose blocks are still being freed.
// Open removes any it finds (a crash in the middle of a shred).
const trashSuffix = ".deleting"

// shredChunk and shredPause pace shred.
const (
	shredChunk = 4 << 20
	shredPause = 2 * time.Millisecond
)

// shred frees a deleted segment's blocks a chunk at a time, from the end,
// then removes the file. Freeing a whole segment at once stalls the next
// fsyncs of the active segment for tens of milliseconds on file systems
// that discard freed blocks in their journal commit (ext4 -o discard);
// paced, each commit frees a few MiB. Close cuts the pauses short.
func (p *Partition) shred(s *segment, trash string) {
	for size := s.size - shredChunk; size > 0; size -= shredChunk {
		if s.f.Truncate(size) != nil {
			break
		}
		select {
		case <-p.closing:
		case <-time.After(shredPause):
		}
	}
	_ = s.close()
	if err := p.fsys.Remove(trash); err != nil && !isNotExist(err) {
		p.opts.Logger.Warn("log: could not remove a deleted segment; the next open removes it", "path", trash, "err", err)
	}
}

// removeTrash removes segments a shred did not finish. Called by Open,
// which holds the directory's lock.
func removeTrash(fsys fileSystem, dir string) error {
	entries, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), segmentSuffix+trashSuffix) {
			if err := fsys.Remove(filepath.Join(dir, e.Name())); err != nil && !isNotExist(err) {
				return fmt.Errorf("remove deleted segment: %w", err)
			}
		}
	}
	return nil
}
