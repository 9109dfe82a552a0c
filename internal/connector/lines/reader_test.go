package lines

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unsafe"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/testkit"
)

// got is what a Reader produced, in a form tests compare.
type got struct {
	events  []string // "line:value"
	rejects []string // "line:value:class"
}

func collect(o *testkit.Outlet) got {
	var g got
	for _, e := range o.Events() {
		g.events = append(g.events, fmt.Sprintf("%d:%s", e.Offset, e.Value))
	}
	for _, r := range o.Rejects() {
		class := "json"
		if errors.Is(r.Err, ErrTooLong) {
			class = "long"
		}
		g.rejects = append(g.rejects, fmt.Sprintf("%d:%s:%s", r.Event.Offset, r.Event.Value, class))
	}
	return g
}

// reference frames data the simple way, as the package doc describes.
func reference(data string, limit int, codec Codec) (g got, lines int) {
	parts := strings.Split(data, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	for i, l := range parts {
		n := i + 1
		l = strings.TrimSuffix(l, "\r")
		switch {
		case l == "":
		case len(l) > limit:
			g.rejects = append(g.rejects, fmt.Sprintf("%d:%s:long", n, l[:limit]))
		case codec == JSON && !json.Valid([]byte(l)):
			g.rejects = append(g.rejects, fmt.Sprintf("%d:%s:json", n, l))
		default:
			g.events = append(g.events, fmt.Sprintf("%d:%s", n, l))
		}
	}
	return g, len(parts)
}

// readAll runs a Reader over src as a finite source, like the file input.
func readAll(t *testing.T, opts Options, src io.Reader, o *testkit.Outlet) *Reader {
	t.Helper()
	r := NewReader(opts)
	r.Reset("test.ndjson")
	ctx := context.Background()
	if err := r.ReadFrom(ctx, o, src); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(ctx, o); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFraming(t *testing.T) {
	data := "{\"a\":1}\r\n\n{\"b\":2}\n\r\n  \n{bad\n\"str\"\n{\"c\":3}"
	var o testkit.Outlet
	r := readAll(t, Options{MaxLineBytes: 100}, strings.NewReader(data), &o)
	g := collect(&o)
	want := []string{`1:{"a":1}`, `3:{"b":2}`, `7:"str"`, `8:{"c":3}`}
	if !slices.Equal(g.events, want) {
		t.Errorf("events %q, want %q", g.events, want)
	}
	// "  " is not JSON: whitespace only.
	if want := []string{"5:  :json", "6:{bad:json"}; !slices.Equal(g.rejects, want) {
		t.Errorf("rejects %q, want %q", g.rejects, want)
	}
	if p := r.Position(); p.Line != 8 || p.Offset != int64(len(data)) || p.Source != "test.ndjson" {
		t.Errorf("position %+v, want line 8 offset %d", p, len(data))
	}
	for _, e := range o.Events() {
		if e.Time != 0 || e.Key != nil || e.Headers != nil {
			t.Errorf("event %d has time %d key %q headers %v", e.Offset, e.Time, e.Key, e.Headers)
		}
	}
}

func TestRejectDetails(t *testing.T) {
	var o testkit.Outlet
	readAll(t, Options{MaxLineBytes: 8}, strings.NewReader("{}\n{\"a\":x}\n\"0123456789\"\n"), &o)
	rs := o.Rejects()
	if len(rs) != 2 {
		t.Fatalf("%d rejects, want 2", len(rs))
	}
	bad := rs[0]
	if got, want := bad.Err.Error(), "line 2: invalid JSON at byte "; !strings.HasPrefix(got, want) {
		t.Errorf("error %q, want it to start with %q", got, want)
	}
	var le *LineError
	var se *jsondoc.SyntaxError
	if !errors.As(bad.Err, &le) || le.Line != 2 || le.Source != "test.ndjson" || !errors.As(bad.Err, &se) {
		t.Errorf("error %#v is not a LineError for line 2 wrapping a SyntaxError", bad.Err)
	}
	if string(bad.Event.Value) != `{"a":x}` || bad.Event.Offset != 2 {
		t.Errorf("reject event %q offset %d", bad.Event.Value, bad.Event.Offset)
	}
	if src, ok := bad.Event.Header("source"); !ok || string(src) != "test.ndjson" {
		t.Errorf("source header %q", src)
	}
	long := rs[1]
	if !errors.Is(long.Err, ErrTooLong) || !strings.Contains(long.Err.Error(), "line 3:") ||
		!strings.Contains(long.Err.Error(), "max_line_bytes (8 bytes)") {
		t.Errorf("long line error %q", long.Err)
	}
	if string(long.Event.Value) != `"0123456` || long.Event.Offset != 3 {
		t.Errorf("long line event %q offset %d, want its first 8 bytes", long.Event.Value, long.Event.Offset)
	}
}

func TestRawCodec(t *testing.T) {
	var o testkit.Outlet
	readAll(t, Options{Codec: Raw, MaxLineBytes: 100}, strings.NewReader("not json\n{\n"), &o)
	if got := o.Values(); !slices.Equal(got, []string{"not json", "{"}) {
		t.Fatalf("values %q", got)
	}
}

// TestFramingMatchesReference checks random inputs, read in random chunks
// through buffers smaller and larger than the line limit, against the
// reference framing.
func TestFramingMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 400 {
		limit := 1 + rng.IntN(40)
		var sb strings.Builder
		for range rng.IntN(60) {
			switch rng.IntN(6) {
			case 0:
				// empty line
			case 1:
				sb.WriteString("{bad")
			default:
				fmt.Fprintf(&sb, `{"k":"%s"}`, strings.Repeat("x", rng.IntN(2*limit)))
			}
			if rng.IntN(4) == 0 {
				sb.WriteByte('\r')
			}
			sb.WriteByte('\n')
		}
		if rng.IntN(2) == 0 {
			fmt.Fprintf(&sb, `"%s"`, strings.Repeat("y", rng.IntN(2*limit))) // no final newline
		}
		data := sb.String()
		codec := Codec(rng.IntN(2))
		want, nlines := reference(data, limit, codec)

		opts := Options{
			Codec:            codec,
			MaxLineBytes:     limit,
			BatchSize:        1 + rng.IntN(8),
			BufferBytes:      1 + rng.IntN(3*limit),
			FlushOnShortRead: rng.IntN(2) == 0,
			Progress:         new(Progress),
		}
		var src io.Reader = &chunkReader{data: []byte(data), rng: rng}
		if rng.IntN(4) == 0 {
			src = iotest.OneByteReader(strings.NewReader(data))
		}
		var o testkit.Outlet
		r := readAll(t, opts, src, &o)
		g := collect(&o)
		if !slices.Equal(g.events, want.events) || !slices.Equal(g.rejects, want.rejects) {
			t.Fatalf("iteration %d (opts %+v), input %q:\nevents  %q\nwant    %q\nrejects %q\nwant    %q",
				iter, opts, data, g.events, want.events, g.rejects, want.rejects)
		}
		if p := r.Position(); p.Line != int64(nlines) || p.Offset != int64(len(data)) {
			t.Fatalf("iteration %d: position %+v, want line %d offset %d", iter, p, nlines, len(data))
		}
		for _, b := range o.Batches() {
			if len(b.Events) > opts.BatchSize {
				t.Fatalf("batch of %d events, batch size %d", len(b.Events), opts.BatchSize)
			}
		}
		if r.Acked() != r.Emitted() || r.Emitted() != int64(len(want.events)) || r.Rejected() != int64(len(want.rejects)) {
			t.Fatalf("emitted %d acked %d rejected %d", r.Emitted(), r.Acked(), r.Rejected())
		}
		if opts.Progress.InFlight() != 0 {
			t.Fatalf("%d batches never completed", opts.Progress.InFlight())
		}
	}
}

// chunkReader returns data in reads of random sizes.
type chunkReader struct {
	data []byte
	rng  *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(c.data), 1+c.rng.IntN(32))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func TestOverlongLineIsNotBuffered(t *testing.T) {
	// A 10 MiB line with a 1 KiB limit must not grow the buffer.
	long := strings.Repeat("x", 10<<20)
	data := "1\n" + long + "\n2\n"
	var o testkit.Outlet
	r := readAll(t, Options{MaxLineBytes: 1 << 10, BufferBytes: 4 << 10}, strings.NewReader(data), &o)
	if len(r.buf) > 4<<10 {
		t.Fatalf("buffer grew to %d bytes", len(r.buf))
	}
	if got := o.Values(); !slices.Equal(got, []string{"1", "2"}) {
		t.Fatalf("values %q", got)
	}
	rs := o.Rejects()
	if len(rs) != 1 || rs[0].Event.Offset != 2 || len(rs[0].Event.Value) != 1<<10 {
		t.Fatalf("rejects %d, want line 2 with 1 KiB value", len(rs))
	}
	if evs := o.Events(); evs[1].Offset != 3 {
		t.Fatalf("line after the long one has offset %d", evs[1].Offset)
	}
}

func TestBufferGrowsToLimit(t *testing.T) {
	line := `"` + strings.Repeat("z", 3000) + `"`
	var o testkit.Outlet
	readAll(t, Options{MaxLineBytes: 3002, BufferBytes: 512}, strings.NewReader(line+"\r\n"+line), &o)
	if got := o.Values(); len(got) != 2 || got[0] != line || got[1] != line {
		t.Fatalf("lines longer than the buffer but within the limit were not read whole")
	}
}

func TestValuesAreCappedArenaSlices(t *testing.T) {
	var o testkit.Outlet
	r := NewReader(Options{MaxLineBytes: 100, BatchSize: 4})
	r.Reset("x")
	var sizes []int
	spy := &spyOutlet{Outlet: &o, check: func(b *event.Batch) {
		for i, e := range b.Events {
			v := e.Value
			if cap(v) != len(v) {
				t.Errorf("value %q has spare capacity %d", v, cap(v)-len(v))
			}
			if i > 0 {
				prev := b.Events[i-1].Value
				if uintptr(unsafe.Pointer(unsafe.SliceData(prev)))+uintptr(len(prev)) != uintptr(unsafe.Pointer(unsafe.SliceData(v))) {
					t.Errorf("values %q and %q are not adjacent in one arena", prev, v)
				}
			}
		}
		sizes = append(sizes, b.Len())
	}}
	if err := r.ReadFrom(context.Background(), spy, strings.NewReader("1\n22\n333\n4\n5\n")); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sizes, []int{4, 1}) {
		t.Fatalf("batches %v, want [4 1]", sizes)
	}
}

type spyOutlet struct {
	*testkit.Outlet
	check func(*event.Batch)
}

func (s *spyOutlet) Emit(ctx context.Context, b *event.Batch) error {
	s.check(b)
	return s.Outlet.Emit(ctx, b)
}

// TestAcksAreExact checks that every batch's Ack completes exactly when the
// outlet gives back its references, rejects included, and that Progress
// follows.
func TestAcksAreExact(t *testing.T) {
	var data strings.Builder
	for i := range 100 {
		if i%10 == 9 {
			data.WriteString("oops\n")
		} else {
			fmt.Fprintf(&data, "{\"i\":%d}\n", i)
		}
	}
	p := new(Progress)
	o := testkit.Outlet{ManualAck: true}
	r := readAll(t, Options{MaxLineBytes: 100, BatchSize: 16, Progress: p}, strings.NewReader(data.String()), &o)
	if r.Emitted() != 90 || r.Rejected() != 10 || r.Acked() != 0 {
		t.Fatalf("emitted %d rejected %d acked %d", r.Emitted(), r.Rejected(), r.Acked())
	}
	if o.Pending() != 100 {
		t.Fatalf("outlet holds %d references, want 100", o.Pending())
	}
	if c := p.Committed(); c.Line != 0 {
		t.Fatalf("committed %+v before any ack", c)
	}
	// Batches hold 16 events: batch 0 is lines 1-17 with the reject of
	// line 10, batch 1 lines 18-35 with the rejects of lines 20 and 30.
	o.AckBatch(1)
	if c := p.Committed(); c.Line != 0 {
		t.Fatalf("committed %+v with batch 0 unacknowledged", c)
	}
	o.AckBatch(0)
	if c := p.Committed(); c.Line != 0 {
		t.Fatalf("committed %+v while batch 0's reject is out", c)
	}
	o.AckReject(1)
	o.AckReject(2)
	if c := p.Committed(); c.Line != 0 {
		t.Fatalf("committed %+v while batch 0's reject is out", c)
	}
	o.AckReject(0)
	if c := p.Committed(); c.Line != 35 || c.Offset != int64(len(lineBytes(data.String(), 35))) {
		t.Fatalf("committed %+v after batches 0 and 1, want line 35", c)
	}
	if r.Acked() != 32 {
		t.Fatalf("acked %d, want 32", r.Acked())
	}
	o.Ack()
	if c := p.Committed(); c.Line != 100 || c.Offset != int64(data.Len()) {
		t.Fatalf("committed %+v after everything, want the end", c)
	}
	if r.Acked() != 90 || p.InFlight() != 0 {
		t.Fatalf("acked %d in flight %d", r.Acked(), p.InFlight())
	}
}

// lineBytes returns the first n lines of s.
func lineBytes(s string, n int) string {
	off := 0
	for range n {
		off += strings.IndexByte(s[off:], '\n') + 1
	}
	return s[:off]
}

func TestFlushOnShortRead(t *testing.T) {
	pr, pw := io.Pipe()
	o := testkit.Outlet{}
	r := NewReader(Options{MaxLineBytes: 100, BatchSize: 100, FlushOnShortRead: true})
	r.Reset("stdin")
	done := make(chan error, 1)
	go func() { done <- r.ReadFrom(context.Background(), &o, pr) }()
	ctx := t.Context()
	pw.Write([]byte("1\n2\n"))
	if err := o.WaitEvents(ctx, 2); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("3\n4"))
	if err := o.WaitEvents(ctx, 3); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("\n"))
	if err := o.WaitEvents(ctx, 4); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := o.Values(); !slices.Equal(got, []string{"1", "2", "3", "4"}) {
		t.Fatalf("values %q", got)
	}
}

func TestErrors(t *testing.T) {
	t.Run("read", func(t *testing.T) {
		var o testkit.Outlet
		r := NewReader(Options{MaxLineBytes: 10})
		r.Reset("f.log")
		boom := errors.New("disk on fire")
		err := r.ReadFrom(context.Background(), &o, io.MultiReader(strings.NewReader("1\n2"), iotest.ErrReader(boom)))
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "read f.log") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("emit", func(t *testing.T) {
		o := testkit.Outlet{EmitErr: errors.New("stopping")}
		r := NewReader(Options{MaxLineBytes: 10, BatchSize: 1})
		r.Reset("f")
		if err := r.ReadFrom(context.Background(), &o, strings.NewReader("1\n2\n")); err != o.EmitErr {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("reject", func(t *testing.T) {
		o := testkit.Outlet{RejectErr: errors.New("policy fail")}
		r := NewReader(Options{MaxLineBytes: 10})
		r.Reset("f")
		if err := r.ReadFrom(context.Background(), &o, strings.NewReader("1\nx\n2\n")); err != o.RejectErr {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		var o testkit.Outlet
		r := NewReader(Options{MaxLineBytes: 10})
		r.Reset("f")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.ReadFrom(ctx, &o, strings.NewReader("1\n")); !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v", err)
		}
	})
}

func BenchmarkReadFrom(b *testing.B) {
	var data bytes.Buffer
	for i := range 10_000 {
		fmt.Fprintf(&data, `{"n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("p", i%200))
	}
	o := &testkit.Outlet{CountOnly: true}
	r := NewReader(Options{MaxLineBytes: 1 << 20, BatchSize: 256, Progress: new(Progress)})
	b.ReportAllocs()
	for b.Loop() {
		r.Reset("bench")
		if err := r.ReadFrom(context.Background(), o, bytes.NewReader(data.Bytes())); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAllocationsPerBatch(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	var data bytes.Buffer
	for i := range 10_000 {
		fmt.Fprintf(&data, `{"n":%d,"pad":"%s"}`+"\n", i, strings.Repeat("p", i%200))
	}
	o := &testkit.Outlet{CountOnly: true}
	r := NewReader(Options{MaxLineBytes: 1 << 20, BatchSize: 256, Progress: new(Progress)})
	allocs := testing.AllocsPerRun(5, func() {
		r.Reset("bench")
		if err := r.ReadFrom(context.Background(), o, bytes.NewReader(data.Bytes())); err != nil {
			t.Fatal(err)
		}
	})
	batches := float64(10_000+255) / 256
	t.Logf("%.0f allocations for %.0f batches", allocs, batches)
	if allocs > 6*batches {
		t.Fatalf("%.0f allocations for 10,000 lines in %.0f batches: more than 6 per batch", allocs, batches)
	}
}
