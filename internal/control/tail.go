package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// The live tail: GET /api/v1/tail?node=N[&filter=EXPR][&rate=R][&buffer=B]
// streams sampled events of node N as Server-Sent Events. Stream:
//
//	event: open     data: {"id","node","rate","filter"}   (first)
//	                data: TailEvent                        (one per event)
//	event: dropped  data: {"dropped","sampled"}            (when drops grew)
//	event: end      data: {"reason"}                       (the pipeline stopped)
//	: ping                                                 (when idle)
//
// The tail holds a runtime.Subscription: the pipeline copies at most rate
// events per second into its bounded queue and drops (and counts) what
// this handler has not taken yet; the filter runs here, in Next. POST
// /api/v1/tail/{id}/pause and /resume pause the sampling without closing
// the stream.

// TailEvent is one event of the stream.
type TailEvent struct {
	Node string `json:"node"`
	// Time is the event time (RFC 3339, UTC); absent when unknown.
	Time string `json:"time,omitempty"`
	// Seen is when the tap sampled the event.
	Seen   string `json:"seen"`
	Offset *int64 `json:"offset,omitempty"`
	Key    string `json:"key,omitempty"`
	// Value is the event's JSON as is, or a string when it is not JSON
	// (or was cut, see Truncated).
	Value     json.RawMessage   `json:"value"`
	Headers   map[string]string `json:"headers,omitempty"`
	Truncated bool              `json:"truncated,omitempty"`
}

func newTailEvent(te runtime.TapEvent) TailEvent {
	out := TailEvent{Node: te.Node, Seen: time.Unix(0, te.Seen).UTC().Format(time.RFC3339Nano), Truncated: te.Truncated}
	if te.Time != 0 {
		out.Time = time.Unix(0, te.Time).UTC().Format(time.RFC3339Nano)
	}
	if te.Offset >= 0 {
		off := te.Offset
		out.Offset = &off
	}
	out.Key = printable(te.Key)
	if !te.Truncated && len(te.Value) > 0 && jsondoc.Validate(te.Value) == nil {
		out.Value = te.Value
	} else {
		out.Value = jsondoc.AppendString(nil, []byte(printable(te.Value)))
	}
	if len(te.Headers) > 0 {
		out.Headers = make(map[string]string, len(te.Headers))
		for _, h := range te.Headers {
			out.Headers[h.Key] = printable(h.Value)
		}
	}
	return out
}

// printable turns bytes into a string, replacing invalid UTF-8.
func printable(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

// tails are the open tail streams, by id, for pause and resume.
type tails struct {
	mu   sync.Mutex
	seq  int
	open map[string]*runtime.Subscription
}

func (t *tails) add(s *runtime.Subscription) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	id := "t" + strconv.Itoa(t.seq)
	if t.open == nil {
		t.open = map[string]*runtime.Subscription{}
	}
	t.open[id] = s
	return id
}

func (t *tails) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.open, id)
}

func (t *tails) get(id string) *runtime.Subscription {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.open[id]
}

// writeTimeout bounds each write to a tail client: one that stops reading
// loses its stream instead of holding a goroutine.
const writeTimeout = 10 * time.Second

func (s *Server) handleTail(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	node := q.Get("node")
	opts := runtime.TapOptions{}
	if v := q.Get("rate"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0 && f <= runtime.MaxTapRate) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("rate %q is out of range", v),
				fmt.Sprintf("events per second, more than 0 and at most %d (default %d)", runtime.MaxTapRate, runtime.DefaultTapRate))
			return
		}
		opts.Rate = f
	}
	if v := q.Get("buffer"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > runtime.MaxTapBuffer {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("buffer %q is out of range", v),
				fmt.Sprintf("events, 1 to %d (default %d)", runtime.MaxTapBuffer, runtime.DefaultTapBuffer))
			return
		}
		opts.Buffer = n
	}
	filter := q.Get("filter")
	if filter != "" {
		prog, ok := compileFilter(w, filter)
		if !ok {
			return
		}
		opts.Filter = prog
	}
	if s.opts.Pipeline.Node(node) == nil {
		s.unknownNode(w, node)
		return
	}
	sub, err := s.opts.Pipeline.Tap(node, opts)
	switch {
	case errors.Is(err, runtime.ErrTooManyTaps):
		writeError(w, http.StatusTooManyRequests, err.Error(), "")
		return
	case errors.Is(err, runtime.ErrTapClosed):
		writeError(w, http.StatusServiceUnavailable, "the pipeline has stopped", "")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	defer sub.Close()
	id := s.tails.add(sub)
	defer s.tails.remove(id)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	rate := opts.Rate
	if rate == 0 {
		rate = runtime.DefaultTapRate
	}
	st := &sseWriter{w: w, rc: rc}
	st.event("open", map[string]any{"id": id, "node": node, "rate": rate, "filter": filter})
	if st.flush() != nil {
		return
	}

	ctx := r.Context()
	// Every tick (or event) checks for drops to report and idleness.
	tick := min(time.Second, s.opts.PingInterval)
	lastWrite, lastCheck := time.Now(), time.Now()
	var reported uint64
	for {
		wctx, cancel := context.WithTimeout(ctx, tick)
		te, err := sub.Next(wctx)
		cancel()
		switch {
		case err == nil:
			st.event("", newTailEvent(te))
			if sub.Pending() == 0 || len(st.buf) >= 64<<10 {
				if st.flush() != nil {
					return
				}
				lastWrite = time.Now()
			}
		case errors.Is(err, runtime.ErrTapClosed):
			st.event("end", map[string]string{"reason": "the pipeline stopped"})
			_ = st.flush()
			return
		case ctx.Err() != nil:
			// The client left, or the server is closing: when that is
			// because the pipeline stopped, say so if the client listens.
			if sub.Ended() {
				st.event("end", map[string]string{"reason": "the pipeline stopped"})
				_ = st.flush()
			}
			return
		}
		now := time.Now()
		if now.Sub(lastCheck) < tick {
			continue
		}
		lastCheck = now
		if stats := sub.Stats(); stats.Dropped > reported {
			reported = stats.Dropped
			st.event("dropped", map[string]uint64{"dropped": stats.Dropped, "sampled": stats.Sampled})
		} else if now.Sub(lastWrite) >= s.opts.PingInterval {
			st.comment("ping")
		} else {
			continue
		}
		if st.flush() != nil {
			return
		}
		lastWrite = now
	}
}

func (s *Server) handleTailPause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sub := s.tails.get(r.PathValue("id"))
		if sub == nil {
			writeError(w, http.StatusNotFound, "no open tail "+strconv.Quote(r.PathValue("id")), "the id is in the stream's open event")
			return
		}
		if pause {
			sub.Pause()
		} else {
			sub.Resume()
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": r.PathValue("id"), "paused": sub.Paused()})
	}
}

// sseWriter writes Server-Sent Events; the first write error sticks.
type sseWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	buf []byte
	err error
}

func (s *sseWriter) event(name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	if name != "" {
		s.buf = append(s.buf, "event: "...)
		s.buf = append(s.buf, name...)
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, "data: "...)
	s.buf = append(s.buf, data...) // JSON holds no raw newline
	s.buf = append(s.buf, "\n\n"...)
}

func (s *sseWriter) comment(text string) {
	s.buf = append(s.buf, ": "...)
	s.buf = append(s.buf, text...)
	s.buf = append(s.buf, "\n\n"...)
}

func (s *sseWriter) flush() error {
	if s.err != nil {
		return s.err
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.w.Write(s.buf); err != nil {
		s.err = err
		return err
	}
	s.buf = s.buf[:0]
	if err := s.rc.Flush(); err != nil {
		s.err = err
	}
	return s.err
}

// compileFilter compiles a filter expression of a request; on an error it
// answers 400 with the column and a hint, and returns false.
func compileFilter(w http.ResponseWriter, filter string) (*expr.Program, bool) {
	prog, err := expr.Compile(filter)
	if err == nil {
		err = expr.CheckBool(prog)
	}
	if err != nil {
		msg, hint := err.Error(), "the filter is an expression of docs/expressions.md, such as type == \"purchase\""
		var ee *expr.Error
		if errors.As(err, &ee) {
			msg = fmt.Sprintf("filter, column %d: %s", ee.Pos+1, ee.Msg)
			if ee.Hint != "" {
				hint = ee.Hint
			}
		}
		writeError(w, http.StatusBadRequest, msg, hint)
		return nil, false
	}
	return prog, true
}
