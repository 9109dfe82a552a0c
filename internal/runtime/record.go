package runtime

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
)

// Processor is a stateless, per-event operator. Chains of processors are
// fused: the runtime calls every processor of a chain on one event before
// moving to the next event, and the event's JSON is parsed at most once for
// the whole chain (through Record.Doc).
//
// Process returns keep=false to drop the event on purpose (a filter), or an
// error to apply the node's error policy. A processor that changes the
// document through Record.Doc needs to do nothing else: the runtime
// serializes a modified document once, at the end of the chain. A Processor
// value is used by one goroutine.
type Processor interface {
	Process(r *Record) (keep bool, err error)
}

// BatchAware is implemented by processors that want to know where the
// batches of their stage begin and end: a stateful processor takes its lock
// once per batch instead of once per event (Snapshot runs on another
// goroutine), and reads the clock once per batch. BeginBatch gets the wall
// clock in Unix nanoseconds at the start of the batch; EndBatch is called
// after the batch's last Process, on every path.
type BatchAware interface {
	BeginBatch(now int64)
	EndBatch()
}

// Record is the view of one event that processors work on. It parses the
// event's value lazily, once, and caches the document for the rest of the
// chain. It implements expr.Env.
type Record struct {
	// Event is the event being processed. Processors may change its Key,
	// Time and Headers directly; its Value changes through Doc.
	Event *event.Event

	doc     jsondoc.Doc
	state   uint8 // recUnparsed, recParsed, recFailed
	err     error
	scratch []byte
}

const (
	recUnparsed = iota
	recParsed
	recFailed
)

// Reset points the record at e, forgetting the previous event.
func (r *Record) Reset(e *event.Event) {
	r.Event = e
	r.state = recUnparsed
	r.err = nil
	r.scratch = r.scratch[:0]
}

// ParseError is the error for an event whose value is not valid JSON.
type ParseError struct {
	Offset int64 // the event's source offset
	Err    error
}

func (e *ParseError) Error() string { return e.Err.Error() }
func (e *ParseError) Unwrap() error { return e.Err }

// MalformedError is the error for a record an input emitted unchecked
// (Env.DeferValidation) that turned out not to be JSON. It names the
// record's source and position.
type MalformedError struct {
	Source string // the "source" header, if any
	Offset int64
	Err    error
}

func newMalformed(ev *event.Event, err error) *MalformedError {
	src, _ := ev.Header("source")
	var pe *ParseError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &MalformedError{Source: string(src), Offset: ev.Offset, Err: err}
}

func (e *MalformedError) Error() string {
	if e.Source != "" {
		return e.Source + ":" + strconv.FormatInt(e.Offset, 10) + ": " + e.Err.Error()
	}
	return "offset " + strconv.FormatInt(e.Offset, 10) + ": " + e.Err.Error()
}

func (e *MalformedError) Unwrap() error { return e.Err }

// Doc returns the event's value parsed as JSON. The first call parses; later
// calls return the same document, including changes made to it.
func (r *Record) Doc() (*jsondoc.Doc, error) {
	switch r.state {
	case recParsed:
		return &r.doc, nil
	case recFailed:
		return nil, r.err
	}
	if r.Event.Checked() {
		r.doc.ParseUnchecked(r.Event.Value)
		r.state = recParsed
		return &r.doc, nil
	}
	if err := r.doc.Parse(r.Event.Value); err != nil {
		r.state = recFailed
		r.err = &ParseError{Offset: r.Event.Offset, Err: err}
		return nil, r.err
	}
	r.state = recParsed
	return &r.doc, nil
}

// Modified reports whether the document was parsed and changed.
func (r *Record) Modified() bool { return r.state == recParsed && r.doc.Modified() }

// Field implements expr.Env.
func (r *Record) Field(path []jsondoc.Seg) (jsondoc.Value, error) {
	d, err := r.Doc()
	if err != nil {
		return jsondoc.Value{}, err
	}
	return d.Lookup(path), nil
}

// Key implements expr.Env.
func (r *Record) Key() []byte { return r.Event.Key }

// Meta implements expr.Env.
func (r *Record) Meta(name string) ([]byte, bool) { return r.Event.Header(name) }

// Time implements expr.Env.
func (r *Record) Time() int64 { return r.Event.Time }

// Scratch implements expr.Env.
func (r *Record) Scratch() *[]byte { return &r.scratch }

// arena hands out byte slices for values written by a stage. Slices are
// never reused: downstream stages keep referencing them, and the garbage
// collector frees a chunk when the last event using it is gone. One chunk
// serves many events, so the cost is one allocation per chunk.
type arena struct {
	chunk []byte
}

const arenaChunk = 64 << 10

// reserve makes sure the current chunk has room for n more bytes.
func (a *arena) reserve(n int) {
	if cap(a.chunk)-len(a.chunk) < n {
		a.chunk = make([]byte, 0, max(arenaChunk, n))
	}
}

// appendDoc serializes d into the arena and returns the bytes.
func (a *arena) appendDoc(d *jsondoc.Doc, hint int) []byte {
	a.reserve(hint*2 + 256)
	start := len(a.chunk)
	a.chunk = d.AppendJSON(a.chunk)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// copy stores b in the arena and returns the copy.
func (a *arena) copy(b []byte) []byte {
	a.reserve(len(b))
	start := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[start:len(a.chunk):len(a.chunk)]
}

// keyBytes renders an expression result as partitioning key bytes.
func keyBytes(dst []byte, v jsondoc.Value) ([]byte, error) {
	switch v.Kind {
	case jsondoc.Missing, jsondoc.Null:
		return nil, fmt.Errorf("key is %s", v.Kind)
	case jsondoc.String:
		return append(dst, v.S...), nil
	default:
		return jsondoc.AppendValue(dst, v), nil
	}
}
