package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const tailUsage = `Usage:
  weir tail ADDR NODE [--filter EXPR] [--limit N] [--rate N]

Prints what NODE emits in the pipeline whose control plane listens on ADDR
(its control.address, host:port) as NDJSON, one event per line:
  {"node","time","seen","offset","key","value","headers"}
value is the event's JSON, or a string when it is not JSON. The pipeline
samples at most --rate events per second for the tail (default 100, at
most 1000) and never waits for it: events the tail cannot take in time are
dropped, and the count is reported on stderr. --filter keeps the sampled
events for which an expression holds (docs/expressions.md); it sees the
sampled events only, so a rare match shows up rarely: raise --rate.

Stops after --limit events (0: no limit), when the pipeline stops, or on
Ctrl-C. Exit codes: 0 ok, 1 the control plane cannot be reached or the
stream broke, 2 bad usage, an unknown node or a bad filter.
`

// cmdTail runs "weir tail".
func cmdTail(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	filter := fs.String("filter", "", "keep events for which this expression holds")
	limit := fs.Int("limit", 0, "stop after this many events (0: no limit)")
	rate := fs.Float64("rate", 0, "events per second the pipeline samples for the tail (0: the server's default, 100; at most 1000)")
	pos, ok := interspersed(fs, args, stderr, tailUsage)
	if !ok {
		return ExitConfig
	}
	if len(pos) != 2 {
		fmt.Fprintf(stderr, "weir tail: expected ADDR and NODE, got %d arguments\n\n%s", len(pos), tailUsage)
		return ExitConfig
	}
	if *limit < 0 || *rate < 0 {
		fmt.Fprintf(stderr, "weir tail: --limit and --rate must not be negative\n")
		return ExitConfig
	}
	base, err := controlURL(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "weir tail: %v\n", err)
		return ExitConfig
	}
	q := url.Values{"node": {pos[1]}}
	if *filter != "" {
		q.Set("filter", *filter)
	}
	if *rate > 0 {
		q.Set("rate", strconv.FormatFloat(*rate, 'f', -1, 64))
	}
	client := controlClient()
	defer client.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v1/tail?"+q.Encode(), nil)
	if err != nil {
		fmt.Fprintf(stderr, "weir tail: %v\n", err)
		return ExitConfig
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ExitOK
		}
		fmt.Fprintf(stderr, "weir tail: cannot reach the control plane at %s: %v\n", base, err)
		return ExitFailure
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return apiFailure("tail", resp, stderr)
	}

	out := bufio.NewWriter(stdout)
	n := 0
	err = readSSE(resp.Body, func(name string, data []byte) bool {
		switch name {
		case "":
			_, _ = out.Write(data)
			_ = out.WriteByte('\n')
			if err := out.Flush(); err != nil {
				return false // stdout closed (a pipe to head)
			}
			n++
			return *limit == 0 || n < *limit
		case "dropped":
			var d struct{ Dropped, Sampled uint64 }
			if json.Unmarshal(data, &d) == nil {
				fmt.Fprintf(stderr, "weir tail: %d of %d sampled events dropped so far: the tail did not keep up\n", d.Dropped, d.Sampled)
			}
		case "end":
			fmt.Fprintln(stderr, "weir tail: the pipeline stopped")
			return false
		}
		return true
	})
	switch {
	case err == nil, ctx.Err() != nil:
		return ExitOK
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		fmt.Fprintf(stderr, "weir tail: the control plane at %s closed the stream\n", base)
	default:
		fmt.Fprintf(stderr, "weir tail: reading the stream: %v\n", err)
	}
	return ExitFailure
}

// readSSE reads Server-Sent Events from r and calls fn with each event's
// name ("" for plain data) and data, until fn returns false (nil) or r
// ends (io.EOF) or fails.
func readSSE(r io.Reader, fn func(name string, data []byte) bool) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		name string
		data []byte
		has  bool
	)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: read the rest of it.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err != nil {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0:
			if has && !fn(name, data) {
				return nil
			}
			name, data, has = "", data[:0], false
		case line[0] == ':': // a comment: a ping
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				name = string(value)
			case "data":
				if has {
					data = append(data, '\n')
				}
				data = append(data, value...)
				has = true
			}
		}
	}
}

// --- shared by tail and top ---

// controlURL turns ADDR (host:port, or a URL) into the control plane's
// base URL.
func controlURL(addr string) (string, error) {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("ADDR %q is not a control address: use host:port, as in the pipeline's control.address (default 127.0.0.1:9464)", addr)
	}
	return strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/"), nil
}

// controlClient is an HTTP client for the control plane: quick to give up
// connecting, no limit on a stream's length.
func controlClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		ResponseHeaderTimeout: 10 * time.Second,
	}}
}

// apiFailure reports an API error answer and returns the exit code: 2 for
// what the user asked wrong (4xx), 1 otherwise.
func apiFailure(cmd string, resp *http.Response, stderr io.Writer) int {
	var e struct{ Error, Hint string }
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("the control plane answered %s", resp.Status)
		if resp.StatusCode == http.StatusNotFound {
			e.Hint = "is ADDR the control address of a weir run with this version?"
		}
	}
	fmt.Fprintf(stderr, "weir %s: %s\n", cmd, e.Error)
	if e.Hint != "" {
		fmt.Fprintf(stderr, "  hint: %s\n", e.Hint)
	}
	if resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests {
		return ExitConfig
	}
	return ExitFailure
}

// interspersed parses flags placed before, between or after the
// positional arguments and returns those.
func interspersed(fs *flag.FlagSet, args []string, stderr io.Writer, usage string) ([]string, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags of weir %s:\n", usage, fs.Name())
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			return pos, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
