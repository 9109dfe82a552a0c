package lines

import (
	"io"
	"slices"
	"testing"

	"github.com/weir-dev/weir/internal/testkit"
)

// FuzzFraming checks the Reader against the reference framing for any input,
// line limit, buffer size and read size.
func FuzzFraming(f *testing.F) {
	f.Add([]byte("{\"a\":1}\r\n\n{bad\n\"x\""), uint8(8), uint8(4), uint8(3), false)
	f.Add([]byte("aaaaaaaaaaaaaaaaaaaaaaaa\r\r\n\r\n\n"), uint8(3), uint8(1), uint8(1), true)
	f.Add([]byte("1\n22\n333\n4444\n"), uint8(2), uint8(2), uint8(7), false)
	f.Fuzz(func(t *testing.T, data []byte, limit, bufSize, readSize uint8, raw bool) {
		opts := Options{
			MaxLineBytes: 1 + int(limit%64),
			BufferBytes:  1 + int(bufSize),
			BatchSize:    3,
			Progress:     new(Progress),
		}
		if raw {
			opts.Codec = Raw
		}
		want, nlines := reference(string(data), opts.MaxLineBytes, opts.Codec)
		var o testkit.Outlet
		src := &fixedReader{data: data, n: 1 + int(readSize%32)}
		r := readAll(t, opts, src, &o)
		g := collect(&o)
		if !slices.Equal(g.events, want.events) || !slices.Equal(g.rejects, want.rejects) {
			t.Fatalf("opts %+v:\nevents  %q\nwant    %q\nrejects %q\nwant    %q", opts, g.events, want.events, g.rejects, want.rejects)
		}
		if p := r.Position(); p.Line != int64(nlines) || p.Offset != int64(len(data)) {
			t.Fatalf("position %+v, want line %d offset %d", p, nlines, len(data))
		}
		if r.Acked() != r.Emitted() || opts.Progress.InFlight() != 0 {
			t.Fatalf("emitted %d acked %d in flight %d", r.Emitted(), r.Acked(), opts.Progress.InFlight())
		}
	})
}

// fixedReader returns at most n bytes per read.
type fixedReader struct {
	data []byte
	n    int
}

func (f *fixedReader) Read(p []byte) (int, error) {
	if len(f.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), f.n)], f.data)
	f.data = f.data[k:]
	return k, nil
}
