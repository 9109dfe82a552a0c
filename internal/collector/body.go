package collector

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/valyala/fasthttp"
)

// zstdMaxWindow is the largest zstd window accepted: the size the format
// recommends every decoder support. A frame asking for more is refused
// (413) rather than let it reserve that much memory.
const zstdMaxWindow = 8 << 20

var (
	gzipReaders sync.Pool // *gzip.Reader
	zstdReaders sync.Pool // *zstd.Decoder
)

// errBodyTooLarge is returned by limitedBody past its limit.
var errBodyTooLarge = errors.New("collector: body too large")

// limitedBody reads at most max bytes of a request body and counts them.
type limitedBody struct {
	r    io.Reader
	max  int64
	n    int64
	over bool
}

func (l *limitedBody) Read(p []byte) (int, error) {
	if l.over {
		return 0, errBodyTooLarge
	}
	if room := l.max + 1 - l.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		l.over = true
		return n, errBodyTooLarge
	}
	return n, err
}

// readBody reads and decompresses c's body into st.body, within the
// limits. On failure it returns the status and message to answer with.
func (s *Server) readBody(c *fasthttp.RequestCtx, st *reqState, enc encoding) ([]byte, int, string) {
	body := c.Request.BodyStream()
	if body == nil {
		body = bytes.NewReader(c.Request.Body())
	}
	st.lim = limitedBody{r: body, max: s.maxBody}
	var src io.Reader = &st.lim
	sizeHint := 0
	switch enc {
	case encIdentity:
		if n := c.Request.Header.ContentLength(); n > 0 {
			sizeHint = n + 1 // room to see EOF
		}
	case encGzip:
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		if zr == nil {
			zr = new(gzip.Reader)
		}
		defer gzipReaders.Put(zr)
		if err := zr.Reset(src); err != nil {
			code, msg := s.readFailed(st, err, "invalid gzip data")
			return nil, code, msg
		}
		src = zr
	case encZstd:
		zd, _ := zstdReaders.Get().(*zstd.Decoder)
		if zd == nil {
			var err error
			zd, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1), // decode in the caller's goroutine
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(zstdMaxWindow),
				zstd.WithDecoderMaxMemory(zstdMaxWindow))
			if err != nil {
				return nil, http.StatusInternalServerError, "internal error: no zstd decoder"
			}
		}
		defer func() {
			_ = zd.Reset(nil) // drop the reference to the request body
			zstdReaders.Put(zd)
		}()
		if err := zd.Reset(src); err != nil {
			code, msg := s.readFailed(st, err, "invalid zstd data")
			return nil, code, msg
		}
		src = zd
	}
	buf, over, err := readLimited(src, st.body[:0], s.maxDecoded, sizeHint)
	st.body = buf[:0]
	s.m.receivedBytes.Add(float64(st.lim.n))
	if err != nil || st.lim.over {
		msg := "could not read the body"
		switch enc {
		case encGzip:
			msg = "invalid gzip data"
		case encZstd:
			msg = "invalid zstd data"
			if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
				return nil, http.StatusRequestEntityTooLarge, "the zstd frame needs a window larger than 8MiB: compress with a smaller window"
			}
		}
		code, msg := s.readFailed(st, err, msg)
		return nil, code, msg
	}
	if over {
		if enc == encIdentity {
			return nil, http.StatusRequestEntityTooLarge, "body larger than limits.max_decompressed_bytes: send smaller batches"
		}
		return nil, http.StatusRequestEntityTooLarge, "decompressed body larger than limits.max_decompressed_bytes: send smaller batches"
	}
	s.m.decodedBytes.Add(float64(len(buf)))
	return buf, 0, ""
}

// readFailed classifies an error reading the body.
func (s *Server) readFailed(st *reqState, err error, msg string) (int, string) {
	switch {
	case st.lim.over:
		return http.StatusRequestEntityTooLarge, s.bodyTooLarge()
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return http.StatusRequestTimeout, "timed out reading the body (http.read_timeout)"
	}
	return http.StatusBadRequest, msg
}

// readLimited reads src to its end, appending to buf. If more than limit
// bytes come, it stops and reports over; buf never grows much past limit,
// so a decompression bomb cannot make it allocate more.
func readLimited(src io.Reader, buf []byte, limit, sizeHint int) (_ []byte, over bool, _ error) {
	if sizeHint > cap(buf) && sizeHint <= limit+1 {
		buf = make([]byte, 0, sizeHint)
	}
	for {
		if len(buf) == cap(buf) {
			if len(buf) > limit {
				return buf, true, nil
			}
			grow := min(max(cap(buf), 16<<10), limit+1-len(buf))
			nb := make([]byte, len(buf), len(buf)+grow)
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > limit {
			return buf, true, nil
		}
		if err == io.EOF {
			return buf, false, nil
		}
		if err != nil {
			return buf, false, err
		}
	}
}

// isTimeout reports whether err is a network timeout.
func isTimeout(err error) bool {
	var nerr net.Error
	return errors.As(err, &nerr) && nerr.Timeout()
}
