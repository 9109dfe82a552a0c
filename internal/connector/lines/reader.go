package lines

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// Codec says how each line is checked before it becomes an event.
type Codec uint8

const (
	// JSON requires every line to be one JSON document.
	JSON Codec = iota
	// Raw accepts any bytes.
	Raw
)

// ParseCodec maps a codec's config name ("json" or "lines") to a Codec.
func ParseCodec(name string) (Codec, error) {
	switch name {
	case "json":
		return JSON, nil
	case "lines":
		return Raw, nil
	}
	return 0, fmt.Errorf("unknown codec %q", name)
}

// Defaults.
const (
	// DefaultBufferBytes is the size of the read buffer.
	DefaultBufferBytes = 256 << 10
	// DefaultBatchSize is used when Options.BatchSize is not positive.
	DefaultBatchSize = 256
	// SourceHeader is the header that names the source on rejected events.
	SourceHeader = "source"
)

// maxArenaChunk bounds one arena allocation made from an estimate.
const maxArenaChunk = 4 << 20

// ErrTooLong is the class of errors for lines longer than the limit.
var ErrTooLong = errors.New("longer than max_line_bytes")

// LineError is the error a rejected line is rejected with.
type LineError struct {
	Source string
	// Line is the 1-based line number.
	Line int64
	// Err is a *jsondoc.SyntaxError, or wraps ErrTooLong.
	Err error
}

func (e *LineError) Error() string {
	return "line " + strconv.FormatInt(e.Line, 10) + ": " + e.Err.Error()
}

func (e *LineError) Unwrap() error { return e.Err }

// Options configure a Reader.
type Options struct {
	Codec Codec
	// MaxLineBytes is the longest accepted line, without its terminator.
	// Required (positive).
	MaxLineBytes int
	// BatchSize is the number of events per full batch (default 256).
	BatchSize int
	// BufferBytes is the initial read buffer size (default 256 KiB).
	BufferBytes int
	// FlushOnShortRead emits a partial batch whenever a read returns less
	// than it asked for: the source (a pipe, a socket) has nothing more for
	// now, and waiting for a full batch would delay events indefinitely.
	// Leave it false for regular files, whose partial batches are emitted at
	// EOF.
	FlushOnShortRead bool
	// Deferred (with Codec JSON) leaves the JSON check to the next stage,
	// as runtime.Env.DeferValidation allows: batches are emitted with
	// Unchecked set and every event carries the source header.
	Deferred bool
	// Progress, if set, receives every batch's Position.
	Progress *Progress
}

// Reader reads lines from a sequence of sources (see Reset) and emits them
// as batches. It must be used by one goroutine.
type Reader struct {
	opts  Options
	limit int
	buf   []byte
	// buf[start:end] is read but not consumed: at most one partial line
	// between reads.
	start, end int

	source  string
	headers []event.Header // shared by all rejects from source; cap == len
	line    int64          // lines completed in source
	offset  int64          // bytes of completed lines in source
	read    int64          // bytes read from source
	// skipping is set while the rest of an over-long line is discarded;
	// skipped counts its bytes already discarded.
	skipping bool
	skipped  int64

	// The batch being filled; nil when none is open.
	batch  *event.Batch
	ack    *event.Ack
	flight *inflight
	arena  []byte
	// batchBytes is the sum of the current batch's value lengths.
	batchBytes int
	// avgLine is a running estimate of the line length, for arena sizing.
	avgLine int

	emitted  atomic.Int64
	acked    atomic.Int64
	rejected atomic.Int64
}

// inflight is one batch between Emit and its Ack's completion.
type inflight struct {
	r       *Reader
	events  int
	ticket  uint64
	tracked bool
}

func (f *inflight) done() {
	f.r.acked.Add(int64(f.events))
	if f.tracked {
		f.r.opts.Progress.Done(f.ticket)
	}
}

// NewReader returns a Reader. Call Reset before the first read.
func NewReader(opts Options) *Reader {
	if opts.MaxLineBytes <= 0 {
		panic("lines: Options.MaxLineBytes must be positive")
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = DefaultBufferBytes
	}
	return &Reader{
		opts:    opts,
		limit:   opts.MaxLineBytes,
		buf:     make([]byte, opts.BufferBytes),
		avgLine: 128,
	}
}

// Reset starts a new source named name: line numbers and offsets restart at
// zero and any buffered partial line is dropped. The current batch must have
// been flushed (Flush, Finish, or a ReadFrom that reached EOF).
func (r *Reader) Reset(name string) {
	if r.batch != nil {
		panic("lines: Reset with an unflushed batch")
	}
	if name != r.source || r.headers == nil {
		r.headers = []event.Header{{Key: SourceHeader, Value: []byte(name)}}
	}
	r.source = name
	r.start, r.end = 0, 0
	r.line, r.offset, r.read = 0, 0, 0
	r.skipping, r.skipped = false, 0
}

// Position returns the position after the last complete line consumed.
func (r *Reader) Position() Position {
	return Position{Source: r.source, Line: r.line, Offset: r.offset}
}

// BytesRead is the number of bytes read from the current source, including a
// buffered partial line.
func (r *Reader) BytesRead() int64 { return r.read }

// Emitted counts the events emitted in batches over the Reader's life.
func (r *Reader) Emitted() int64 { return r.emitted.Load() }

// Acked counts the emitted events whose batch has been acknowledged.
func (r *Reader) Acked() int64 { return r.acked.Load() }

// Rejected counts the lines handed to Outlet.Reject.
func (r *Reader) Rejected() int64 { return r.rejected.Load() }

// ReadFrom reads src until it returns io.EOF, emitting full batches on the
// way and the partial batch at EOF; it returns nil then. A partial last line
// stays buffered: more of it may arrive (a followed file), or Finish treats
// it as a line. Errors from src are wrapped with the source name; errors
// from out and ctx are returned as they are.
func (r *Reader) ReadFrom(ctx context.Context, out runtime.Outlet, src io.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		r.makeRoom()
		want := len(r.buf) - r.end
		n, err := src.Read(r.buf[r.end:])
		if n > 0 {
			r.end += n
			r.read += int64(n)
			if serr := r.scan(ctx, out); serr != nil {
				return serr
			}
		}
		switch {
		case err == io.EOF:
			return r.Flush(ctx, out)
		case err != nil:
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return err
			}
			return fmt.Errorf("read %s: %w", r.source, err)
		case r.opts.FlushOnShortRead && n < want:
			if ferr := r.Flush(ctx, out); ferr != nil {
				return ferr
			}
		}
	}
}

// makeRoom moves the buffered partial line to the front of the buffer, and
// grows the buffer when the partial line fills it but may still be within the
// limit.
func (r *Reader) makeRoom() {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end < len(r.buf) {
		return
	}
	// A line plus its '\r' and one more byte tell scan that it is too long.
	n := min(2*len(r.buf), r.limit+2)
	if n <= len(r.buf) {
		panic("lines: buffer full of a line scan should have rejected")
	}
	nb := make([]byte, n)
	copy(nb, r.buf[:r.end])
	r.buf = nb
}

// scan consumes the complete lines in buf[start:end], then checks whether the
// partial line left over is already too long.
func (r *Reader) scan(ctx context.Context, out runtime.Outlet) error {
	for r.start < r.end {
		data := r.buf[r.start:r.end]
		i := bytes.IndexByte(data, '\n')
		if r.skipping {
			if i < 0 {
				r.skipped += int64(len(data))
				r.start = r.end
				return nil
			}
			r.start += i + 1
			r.line++
			r.offset += r.skipped + int64(i) + 1
			r.skipping, r.skipped = false, 0
			continue
		}
		if i < 0 {
			break
		}
		r.start += i + 1
		r.line++
		r.offset += int64(i) + 1
		if err := r.handle(ctx, out, data[:i]); err != nil {
			return err
		}
	}
	if !r.skipping && r.start < r.end {
		// Allow for a '\r' that will be trimmed once the '\n' arrives.
		partial := r.buf[r.start:r.end]
		if n := len(partial); n > r.limit+1 || n == r.limit+1 && partial[n-1] != '\r' {
			if err := r.rejectLong(ctx, out, r.line+1, partial[:r.limit]); err != nil {
				return err
			}
			r.skipping, r.skipped = true, int64(n)
			r.start = r.end
		}
	}
	return nil
}

// Finish treats a buffered partial line as the source's last line, then
// flushes the batch. Call it at the end of a source that will not grow.
func (r *Reader) Finish(ctx context.Context, out runtime.Outlet) error {
	switch {
	case r.skipping:
		r.line++
		r.offset += r.skipped
		r.skipping, r.skipped = false, 0
	case r.start < r.end:
		data := r.buf[r.start:r.end]
		r.start = r.end
		r.line++
		r.offset += int64(len(data))
		if err := r.handle(ctx, out, data); err != nil {
			return err
		}
	}
	return r.Flush(ctx, out)
}

// handle turns one complete line (without '\n') into an event or a reject.
// line aliases the read buffer.
func (r *Reader) handle(ctx context.Context, out runtime.Outlet, line []byte) error {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) == 0 {
		return nil
	}
	if len(line) > r.limit {
		return r.rejectLong(ctx, out, r.line, line[:r.limit])
	}
	if r.opts.Codec == JSON && !r.opts.Deferred {
		if err := jsondoc.Validate(line); err != nil {
			return r.reject(ctx, out, r.line, r.copy(line), err)
		}
	}
	ev := event.Event{Value: r.copy(line), Offset: r.line, Ack: r.ack}
	if r.opts.Deferred {
		// The next stage checks the line; if it is malformed, the dead
		// letter needs to say where it came from.
		ev.Headers = r.headers
	}
	r.batch.Append(ev)
	if r.batch.Len() >= r.opts.BatchSize {
		return r.Flush(ctx, out)
	}
	return nil
}

func (r *Reader) rejectLong(ctx context.Context, out runtime.Outlet, line int64, head []byte) error {
	// Rejects are rare: give the value its own memory rather than a share of
	// an arena sized for ordinary lines.
	v := append(make([]byte, 0, len(head)), head...)
	err := fmt.Errorf("%w (%d bytes): the rest of the line was skipped; raise max_line_bytes to accept such lines", ErrTooLong, r.limit)
	return r.reject(ctx, out, line, v, err)
}

// reject hands one event to out.Reject. Its reference is on the current
// batch's Ack, so progress does not pass the line before the reject is
// done with (dead-lettered or dropped).
func (r *Reader) reject(ctx context.Context, out runtime.Outlet, line int64, value []byte, cause error) error {
	r.open()
	r.ack.Add(1)
	r.rejected.Add(1)
	ev := event.Event{Value: value, Offset: line, Headers: r.headers, Ack: r.ack}
	return out.Reject(ctx, ev, &LineError{Source: r.source, Line: line, Err: cause})
}

// open starts a batch if none is open.
func (r *Reader) open() {
	if r.batch != nil {
		return
	}
	r.batch = event.GetBatch()
	r.flight = &inflight{r: r}
	// The Reader holds one reference until Flush, so that rejects given
	// back early cannot complete the Ack before the batch is emitted.
	r.ack = event.NewAck(1, r.flight.done)
}

// copy appends p to the current batch's arena (opening the batch) and
// returns the copy, capped so that appending to it cannot touch the next
// value.
func (r *Reader) copy(p []byte) []byte {
	r.open()
	if cap(r.arena)-len(r.arena) < len(p) {
		// Size the arena for the rest of the batch, but not beyond the data
		// at hand: with FlushOnShortRead the batch ends with it.
		left := r.opts.BatchSize - r.batch.Len()
		size := left * (r.avgLine + r.avgLine/8 + 2)
		size = min(size, len(p)+1+r.end-r.start, maxArenaChunk)
		r.arena = make([]byte, 0, max(size, len(p)))
	}
	n := len(r.arena)
	r.arena = append(r.arena, p...)
	r.batchBytes += len(p)
	return r.arena[n:len(r.arena):len(r.arena)]
}

// Flush emits the current batch, if any, and registers its end position with
// Progress. A batch that holds only rejects is registered but not emitted.
func (r *Reader) Flush(ctx context.Context, out runtime.Outlet) error {
	if r.batch == nil {
		return nil
	}
	b, ack, f := r.batch, r.ack, r.flight
	r.batch, r.ack, r.flight, r.arena = nil, nil, nil, nil

	n := b.Len()
	f.events = n
	if n > 0 {
		r.avgLine = (3*r.avgLine + r.batchBytes/n) / 4
	}
	r.batchBytes = 0
	if p := r.opts.Progress; p != nil {
		f.ticket = p.Add(r.Position())
		f.tracked = true
	}
	var err error
	if n > 0 {
		ack.Add(n)
		r.emitted.Add(int64(n))
		b.Born = time.Now().UnixNano()
		b.Unchecked = r.opts.Deferred && r.opts.Codec == JSON
		err = out.Emit(ctx, b)
	} else {
		b.Release()
	}
	ack.Done(1) // the Reader's own reference, taken in open
	return err
}
