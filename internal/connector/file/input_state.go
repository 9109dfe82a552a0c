package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// Checkpoint state of the file input.
//
// With checkpoints the input records, per file, how far every line has been
// acknowledged, and a restart resumes each file there: a plain file by
// seeking, a gzip file by decompressing it again and skipping what was
// read. A file is recognised by its path and by a fingerprint, the CRC-32C
// of its first bytes (up to headBytes): a file that is shorter than the
// recorded position, or whose first bytes differ, is not the file that was
// read. Without follow that is an error (ErrFileChanged); with follow, as
// tail -F and Filebeat do, the file is read again from its start with a
// warning.
//
// Which reading of a file a committed position belongs to is told by a
// marker: every reading (a file, or a followed file again after truncation
// or rotation) first adds a done position with no lines to the Progress, so
// that after the coordinator's drain the committed position is always in
// the current reading.

const (
	// posVersion is the version of filePos's encoding.
	posVersion = 1
	// headBytes is how many of a file's first bytes its fingerprint covers.
	headBytes = 1024
)

// ErrFileChanged is the class of errors for a file that is no longer the
// one the last checkpoint recorded a position in.
var ErrFileChanged = errors.New("file changed since the last checkpoint")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// filePos is the checkpointed position in one file, stored as JSON under
// "pos/<instance>/<absolute path>" (docs/format/state.md).
type filePos struct {
	Version int `json:"v"`
	// Line is the number of lines every one of which is acknowledged;
	// Offset is the byte offset after them (uncompressed, for gzip).
	Line   int64 `json:"line"`
	Offset int64 `json:"offset"`
	// HeadBytes and HeadCRC are the fingerprint: the CRC-32C of the file's
	// first HeadBytes bytes (uncompressed).
	HeadBytes int    `json:"head_bytes"`
	HeadCRC   uint32 `json:"head_crc32c"`
	// Size, when set, says the position is the end of the file, which then
	// had Size bytes on disk. An unchanged gzip file is then skipped
	// without being decompressed again.
	Size int64 `json:"size,omitempty"`
}

// reading is one pass over a file, from its start or from a checkpointed
// position.
type reading struct {
	path string // as matched: the Reader's source name
	key  string // absolute path: the state key's file part
	// base is where the pass started: lines and bytes before it were read
	// before the restart. The Reader counts from it.
	base filePos
	// head is the file's first bytes, up to headBytes. The Run goroutine
	// appends to it with Input.mu held.
	head []byte
	// pos is the content offset of the next byte read. Run goroutine only.
	pos int64
	// end is the position at the end of the file, once the pass read all
	// of a file that is not followed; head is then dropped.
	end *filePos
}

// fingerprint returns p with the reading's fingerprint.
func (r *reading) fingerprint(p filePos) filePos {
	p.Version = posVersion
	if r.end != nil { // the head is gone
		p.HeadBytes, p.HeadCRC = r.end.HeadBytes, r.end.HeadCRC
		return p
	}
	p.HeadBytes = len(r.head)
	p.HeadCRC = crc32.Checksum(r.head, castagnoli)
	return p
}

// at returns the absolute position of c, a position the Reader reported
// in this reading.
func (r *reading) at(c lines.Position) filePos {
	p := r.fingerprint(filePos{Line: r.base.Line + c.Line, Offset: r.base.Offset + c.Offset})
	if r.end != nil && r.end.Line == p.Line && r.end.Offset == p.Offset {
		return *r.end
	}
	return p
}

// headTee records the first bytes of a reading's content as the Reader
// reads them.
type headTee struct {
	in *Input
	r  *reading
	io.Reader
}

func (t *headTee) Read(p []byte) (int, error) {
	n, err := t.Reader.Read(p)
	r := t.r
	if n > 0 && len(r.head) < headBytes && r.pos <= int64(len(r.head)) {
		from := int64(len(r.head)) - r.pos
		to := min(int64(n), headBytes-r.pos)
		if to > from {
			t.in.mu.Lock()
			r.head = append(r.head, p[from:to]...)
			t.in.mu.Unlock()
		}
	}
	r.pos += int64(n)
	return n, err
}

// lineOutlet stands between the Reader and the pipeline: it counts Reject
// calls in progress (a reject's batch is registered only after it) and
// gives events the line numbers of the whole file when a reading starts
// after a checkpointed position.
type lineOutlet struct {
	in  *Input
	out runtime.Outlet
	// lineBase is the number of lines before the current reading. Run
	// goroutine only.
	lineBase int64
}

func (o *lineOutlet) Emit(ctx context.Context, b *event.Batch) error {
	if o.lineBase != 0 {
		for i := range b.Events {
			b.Events[i].Offset += o.lineBase
		}
	}
	return o.out.Emit(ctx, b)
}

func (o *lineOutlet) Reject(ctx context.Context, e event.Event, err error) error {
	if o.lineBase != 0 {
		e.Offset += o.lineBase
		if le, ok := errors.AsType[*lines.LineError](err); ok {
			le.Line += o.lineBase
		}
	}
	o.in.rejecting.Add(1)
	defer o.in.rejecting.Add(-1)
	return o.out.Reject(ctx, e, err)
}

// InFlight is the number of batches registered for acknowledgement and not
// yet acknowledged, plus the rejects being handed over (their batch is
// registered after them). See runtime.Drainer.
func (in *Input) InFlight() int {
	return in.progress.InFlight() + int(in.rejecting.Load())
}

func (in *Input) stateKey(key string) []byte {
	return []byte("pos/" + strconv.Itoa(in.env.Instance) + "/" + key)
}

// fileKey is the state key's file part for path: the absolute path, so
// that the same file has the same key whatever the working directory.
func fileKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// Restore loads the checkpointed positions of this instance's files; Run
// resumes each file from its own.
func (in *Input) Restore(_ context.Context, r runtime.StateReader) error {
	prefix := in.stateKey("")
	end := bytes.Clone(prefix)
	end[len(end)-1]++ // '/' + 1: the end of the instance's keys
	resume := map[string]filePos{}
	err := r.Scan(prefix, end, func(k, v []byte) error {
		var p filePos
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("file input: restore: decode state %q: %w", k, err)
		}
		if p.Version != posVersion {
			return fmt.Errorf("file input: restore: state %q has version %d, this version of weir reads %d: run the weir that wrote the checkpoint", k, p.Version, posVersion)
		}
		if p.Line < 0 || p.Offset < p.Line || p.HeadBytes < 0 || p.HeadBytes > headBytes || p.Size < 0 {
			return fmt.Errorf("file input: restore: state %q is corrupt: %s", k, v)
		}
		resume[string(k[len(prefix):])] = p
		return nil
	})
	if err != nil {
		return err
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.resume = resume
	in.stored = maps.Clone(resume)
	return nil
}

// forget marks the checkpointed positions of files that path no longer
// matches for deletion at the next checkpoint.
func (in *Input) forget(files []string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	matched := make(map[string]bool, len(files))
	for _, f := range files {
		matched[fileKey(f)] = true
	}
	n := 0
	for k := range in.stored {
		if !matched[k] {
			in.stale[k] = true
			delete(in.resume, k)
			n++
		}
	}
	if n > 0 {
		in.log.Info("file input forgets the positions of files path no longer matches", slog.Int("files", n))
	}
}

// Snapshot records the position of every file read since the restart whose
// position changed: files read to their end, and the current one up to its
// committed position.
func (in *Input) Snapshot(_ context.Context, w runtime.StateWriter) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	recs := in.positionsLocked()
	stale := make([]string, 0, len(in.stale))
	for k := range in.stale {
		stale = append(stale, k)
	}
	slices.Sort(stale)
	for _, k := range stale {
		if err := w.Delete(in.stateKey(k)); err != nil {
			return fmt.Errorf("file input: snapshot: %w", err)
		}
	}
	keys := make([]string, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if old, ok := in.stored[k]; ok && old == recs[k] {
			continue
		}
		v, err := json.Marshal(recs[k])
		if err != nil {
			return fmt.Errorf("file input: snapshot: %w", err)
		}
		if err := w.Set(in.stateKey(k), v); err != nil {
			return fmt.Errorf("file input: snapshot: %w", err)
		}
	}
	in.snap, in.snapStale, in.snapTaken = recs, stale, true
	return nil
}

// positionsLocked returns the positions everything before which is
// acknowledged, by file key.
func (in *Input) positionsLocked() map[string]filePos {
	recs := map[string]filePos{}
	c := in.progress.Committed()
	if c.Source == "" {
		return recs // no reading has begun
	}
	// After the drain the committed position is in the current reading
	// (its marker comes first). Should it not be, it is in the last
	// finished reading of that file, and nothing after that is recorded.
	at, upto := in.cur, len(in.done)
	if at == nil || at.path != c.Source {
		at = nil
		for i := len(in.done) - 1; i >= 0; i-- {
			if in.done[i].path == c.Source {
				at, upto = in.done[i], i
				break
			}
		}
	}
	for _, r := range in.done[:upto] {
		if r != at {
			recs[r.key] = *r.end
		}
	}
	if at != nil {
		recs[at.key] = at.at(c)
	}
	return recs
}

// Committed makes the positions the last Snapshot wrote the ones the store
// holds.
func (in *Input) Committed(context.Context, uint64) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.snapTaken {
		return nil
	}
	for k, v := range in.snap {
		in.stored[k] = v
	}
	for _, k := range in.snapStale {
		delete(in.stored, k)
		delete(in.stale, k)
	}
	in.snap, in.snapStale, in.snapTaken = nil, nil, false
	return nil
}

// committedLocked returns the committed position with line and offset
// counted from the start of its file.
func (in *Input) committedLocked() lines.Position {
	c := in.progress.Committed()
	r := in.cur
	if r == nil || r.path != c.Source {
		r = nil
		for i := len(in.done) - 1; i >= 0; i-- {
			if in.done[i].path == c.Source {
				r = in.done[i]
				break
			}
		}
	}
	if r != nil {
		c.Line += r.base.Line
		c.Offset += r.base.Offset
	}
	return c
}

// changedError says that a file is not the one a checkpoint recorded a
// position in.
type changedError struct {
	path string
	// why says how it differs.
	why string
}

func (e *changedError) Error() string {
	return fmt.Sprintf("file input: %s %s: it was truncated or replaced since weir read it; "+
		"to read it from its start, give it a new name (the position belongs to the path), "+
		"or move state.dir aside to start the whole pipeline over", e.path, e.why)
}

func (e *changedError) Unwrap() error { return ErrFileChanged }

// begin starts a reading of path, whose file f is open at its start; src
// reads its content from the start. With checkpoints, the first reading of
// a path in this run resumes from the checkpointed position, and src is
// replaced by a reader from there. newSrc makes a new content reader of f
// after f has been rewound.
func (in *Input) begin(path string, f *os.File, src io.Reader, gz bool, newSrc func() (io.Reader, error)) (*reading, io.Reader, error) {
	if !in.ckpt {
		return nil, src, nil
	}
	r := &reading{path: path, key: fileKey(path)}
	in.mu.Lock()
	p, ok := in.resume[r.key]
	delete(in.resume, r.key)
	in.mu.Unlock()
	if ok {
		rsrc, err := in.resumeAt(r, p, f, src, gz)
		var ch *changedError
		switch {
		case errors.As(err, &ch) && in.cfg.Follow:
			in.log.Warn("file input: the file is not the one the last checkpoint read; reading it from its start",
				slog.String("path", path), slog.String("why", ch.why))
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return nil, nil, fmt.Errorf("file input: rewind %s: %w", path, err)
			}
			if src, err = newSrc(); err != nil {
				return nil, nil, err
			}
			r.base, r.head, r.pos = filePos{}, nil, 0
		case err != nil:
			return nil, nil, err
		default:
			src = rsrc
		}
	}
	in.start(r)
	return r, &headTee{in: in, r: r, Reader: src}, nil
}

// start makes r the current reading and adds its marker.
func (in *Input) start(r *reading) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cur = r
	in.progress.Done(in.progress.Add(lines.Position{Source: r.path}))
	in.lo.lineBase = r.base.Line
}

// resumeAt checks that f is the file p was recorded in and returns a
// reader of its content from p on, with r's base, head and pos set.
func (in *Input) resumeAt(r *reading, p filePos, f *os.File, src io.Reader, gz bool) (io.Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("file input: %w", err)
	}
	unit := "bytes"
	if gz {
		unit = "bytes uncompressed"
	}
	shorter := func(size int64) error {
		if size < p.Offset {
			return &changedError{path: r.path, why: fmt.Sprintf("has %d %s, fewer than the %d (line %d) the last checkpoint recorded as read", size, unit, p.Offset, p.Line)}
		}
		return &changedError{path: r.path, why: fmt.Sprintf("has %d %s, fewer than the %d it had when the last checkpoint was taken", size, unit, p.HeadBytes)}
	}
	head := make([]byte, headBytes)
	var n int
	if gz {
		n, err = io.ReadFull(src, head)
	} else {
		if st.Size() < max(p.Offset, int64(p.HeadBytes)) {
			return nil, shorter(st.Size())
		}
		n, err = f.ReadAt(head[:min(int64(headBytes), st.Size())], 0)
	}
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("file input: read %s: %w", r.path, err)
	}
	head = head[:n]
	if n < p.HeadBytes {
		return nil, shorter(int64(n))
	}
	if crc32.Checksum(head[:p.HeadBytes], castagnoli) != p.HeadCRC {
		return nil, &changedError{path: r.path, why: fmt.Sprintf("is not the file the last checkpoint read (its first %d bytes differ)", p.HeadBytes)}
	}
	r.base, r.head, r.pos = p, head, p.Offset
	r.base.Size = 0
	switch {
	case !gz:
		if _, err := f.Seek(p.Offset, io.SeekStart); err != nil {
			return nil, fmt.Errorf("file input: seek %s: %w", r.path, err)
		}
		return f, nil
	case p.Size > 0 && st.Size() == p.Size:
		// Read to its end before, and unchanged: nothing to decompress.
		return bytes.NewReader(nil), nil
	case p.Offset <= int64(n):
		return io.MultiReader(bytes.NewReader(head[p.Offset:]), src), nil
	}
	skipped, err := io.CopyN(io.Discard, src, p.Offset-int64(n))
	if errors.Is(err, io.EOF) {
		return nil, shorter(int64(n) + skipped)
	}
	if err != nil {
		return nil, fmt.Errorf("file input: read %s as gzip: %w", r.path, err)
	}
	return src, nil
}

// finish records that r read its whole file, f.
func (in *Input) finish(r *reading, f *os.File) error {
	if r == nil {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("file input: %w", err)
	}
	pos := in.rd.Position()
	in.mu.Lock()
	defer in.mu.Unlock()
	end := r.fingerprint(filePos{Line: r.base.Line + pos.Line, Offset: r.base.Offset + pos.Offset, Size: st.Size()})
	r.end, r.head = &end, nil
	in.done = append(in.done, r)
	return nil
}
