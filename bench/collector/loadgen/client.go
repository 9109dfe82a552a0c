package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"time"
)

// buildRequest returns the bytes of one POST request with body.
func buildRequest(u *url.URL, key, contentType string, body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\n", u.RequestURI(), u.Host)
	if key != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", key)
	}
	fmt.Fprintf(&b, "Content-Type: %s\r\nContent-Length: %d\r\n\r\n", contentType, len(body))
	b.Write(body)
	return b.Bytes()
}

// worker sends requests on one keep-alive connection, one at a time.
type worker struct {
	addr     string
	timeout  time.Duration
	requests [][]byte
	next     int

	conn net.Conn
	r    *bufio.Reader
}

func (w *worker) connect() error {
	conn, err := net.DialTimeout("tcp", w.addr, w.timeout)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", w.addr, err)
	}
	w.conn = conn
	if w.r == nil {
		w.r = bufio.NewReaderSize(conn, 4096)
	} else {
		w.r.Reset(conn)
	}
	return nil
}

func (w *worker) close() {
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}

// run sends one request per due time until due is closed, recording the
// ones due at or after measureFrom in res.
func (w *worker) run(due <-chan time.Time, measureFrom time.Time, res *result) {
	for at := range due {
		status, err := w.do()
		if at.Before(measureFrom) {
			continue
		}
		switch {
		case err != nil:
			res.errors++
		case status >= 200 && status < 300:
			res.ok++
			res.lat.record(time.Since(at))
		default:
			res.non2xx++
			res.lat.record(time.Since(at))
		}
	}
}

// do sends the next request and reads its answer; on any error the
// connection is replaced.
func (w *worker) do() (int, error) {
	req := w.requests[w.next%len(w.requests)]
	w.next++
	if w.conn == nil {
		if err := w.connect(); err != nil {
			return 0, err
		}
	}
	if err := w.conn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		w.close()
		return 0, err
	}
	if _, err := w.conn.Write(req); err != nil {
		w.close()
		return 0, err
	}
	status, keepAlive, err := readResponse(w.r)
	if err != nil || !keepAlive {
		w.close()
	}
	return status, err
}

// readResponse reads one HTTP/1.1 answer: the status, whether the
// connection stays open, and the body (discarded), framed by
// Content-Length or chunked transfer coding.
func readResponse(r *bufio.Reader) (status int, keepAlive bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("bad status line %q", bytes.TrimSpace(line))
	}
	if status, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("bad status line %q", bytes.TrimSpace(line))
	}
	keepAlive = bytes.HasPrefix(line, []byte("HTTP/1.1"))
	length, chunked := int64(-1), false
	for {
		line, err = r.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.ParseInt(string(v), 10, 64); err != nil || length < 0 {
				return 0, false, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			if bytes.EqualFold(v, []byte("close")) {
				keepAlive = false
			}
		}
	}
	switch {
	case chunked:
		err = discardChunked(r)
	case length >= 0:
		_, err = r.Discard(int(length))
	case status == 204 || status == 304 || status < 200:
	default:
		// Body ends with the connection.
		_, err = io.Copy(io.Discard, r)
		keepAlive = false
	}
	return status, keepAlive && err == nil, err
}

func discardChunked(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err
		}
		size, _, _ := bytes.Cut(bytes.TrimSpace(line), []byte(";"))
		n, err := strconv.ParseInt(string(size), 16, 64)
		if err != nil || n < 0 {
			return errors.New("bad chunk size")
		}
		if n == 0 {
			for { // trailers, then the blank line
				line, err = r.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimSpace(line)) == 0 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n) + 2); err != nil {
			return err
		}
	}
}
