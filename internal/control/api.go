package control

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// The JSON API under /api/v1. Every answer is JSON (the tail is a stream
// of Server-Sent Events carrying JSON); errors are {"error":..,"hint":..}
// with a 4xx status. Field names are snake_case; durations are seconds
// (float) unless the name ends in _ns; times are RFC 3339 in UTC.

func (s *Server) routeAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/topology", s.handleTopology)
	mux.HandleFunc("GET /api/v1/stats", s.handleStats)
	mux.HandleFunc("GET /api/v1/series", s.handleSeries)
	mux.HandleFunc("GET /api/v1/checkpoints", s.handleCheckpoints)
	mux.HandleFunc("GET /api/v1/errors", s.handleErrors)
	mux.HandleFunc("POST /api/v1/fate", s.handleFateRequest)
	mux.HandleFunc("GET /api/v1/fate", s.handleFates)
	mux.HandleFunc("GET /api/v1/fate/{id}", s.handleFate)
	mux.HandleFunc("GET /api/v1/tail", s.handleTail)
	mux.HandleFunc("POST /api/v1/tail/{id}/pause", s.handleTailPause(true))
	mux.HandleFunc("POST /api/v1/tail/{id}/resume", s.handleTailPause(false))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no API endpoint "+r.Method+" "+r.URL.Path, "see docs/api.md for the endpoints under /api/v1")
	})
}

// --- topology ---

// Topology is the answer of GET /api/v1/topology.
type Topology struct {
	Pipeline string          `json:"pipeline"`
	Nodes    []TopologyNode  `json:"nodes"`
	Edges    []TopologyEdge  `json:"edges"`
	Stages   []TopologyStage `json:"stages"`
}

// TopologyNode is one node of the graph.
type TopologyNode struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"` // input, processor, output
	Type        string `json:"type"`
	Parallelism int    `json:"parallelism"`
	Stage       int    `json:"stage"` // index into stages
	OnError     string `json:"on_error"`
	DeadLetter  string `json:"dead_letter,omitempty"`
	EventTime   bool   `json:"event_time,omitempty"`
}

// TopologyEdge is one edge; kind dead_letter marks an error route.
type TopologyEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	Kind string `json:"kind"` // forward, round_robin, key_hash, broadcast, dead_letter
	Key  string `json:"key,omitempty"`
}

// TopologyStage is a unit of execution: one goroutine per instance.
type TopologyStage struct {
	ID          int      `json:"id"`
	Name        string   `json:"name"`
	Nodes       []string `json:"nodes"`
	Parallelism int      `json:"parallelism"`
	Fused       bool     `json:"fused"`
}

func (s *Server) topology() Topology {
	g := s.opts.Pipeline.Graph()
	stageIdx := stageIndex(g)
	t := Topology{Pipeline: g.Name, Nodes: []TopologyNode{}, Edges: []TopologyEdge{}, Stages: []TopologyStage{}}
	for _, n := range g.Nodes {
		tn := TopologyNode{Name: n.Name, Kind: n.Kind.String(), Type: n.Type, Parallelism: n.Parallelism,
			Stage: stageIdx[n.Stage], OnError: n.OnError.String(), EventTime: n.EventTime != nil}
		if n.DeadLetter != nil {
			tn.DeadLetter = n.DeadLetter.Name
			t.Edges = append(t.Edges, TopologyEdge{From: n.Name, To: n.DeadLetter.Name, Kind: "dead_letter"})
		}
		t.Nodes = append(t.Nodes, tn)
		for _, e := range n.Out {
			te := TopologyEdge{From: e.From.Name, To: e.To.Name, Kind: e.Kind.String()}
			if e.Key != nil {
				te.Key = e.Key.Source()
			}
			t.Edges = append(t.Edges, te)
		}
	}
	for i, st := range g.Stages {
		ts := TopologyStage{ID: i, Name: st.Name(), Parallelism: st.Parallelism, Fused: len(st.Nodes) > 1}
		for _, n := range st.Nodes {
			ts.Nodes = append(ts.Nodes, n.Name)
		}
		t.Stages = append(t.Stages, ts)
	}
	return t
}

// stageIndex maps the graph's stages to their index, which is also their
// index in Pipeline.Stages.
func stageIndex(g *dag.Graph) map[*dag.Stage]int {
	m := make(map[*dag.Stage]int, len(g.Stages))
	for i, st := range g.Stages {
		m[st] = i
	}
	return m
}

func (s *Server) handleTopology(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.topology())
}

// --- stats ---

// Stats is the answer of GET /api/v1/stats.
type Stats struct {
	Pipeline    string       `json:"pipeline"`
	Time        time.Time    `json:"time"`
	Uptime      float64      `json:"uptime_s"`
	Running     bool         `json:"running"`
	Window      float64      `json:"window_s"` // span the rates are averaged over
	Nodes       []NodeStats  `json:"nodes"`
	Stages      []StageStats `json:"stages"`
	Checkpoints *CkptStats   `json:"checkpoints,omitempty"`
}

// NodeStats are one node's counters and rates. Busy, backpressure, queue
// and batch latency belong to the node's stage (shared by the nodes of a
// fused chain).
type NodeStats struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Type        string `json:"type"`
	Stage       int    `json:"stage"`
	In          uint64 `json:"in"`
	Out         uint64 `json:"out"`
	Filtered    uint64 `json:"filtered"`
	Errors      uint64 `json:"errors"`
	Dropped     uint64 `json:"dropped"`
	DeadLetters uint64 `json:"dead_letters"`

	InRate     float64  `json:"in_rate"`  // events/s
	OutRate    float64  `json:"out_rate"` // events/s
	ErrorRate  float64  `json:"error_rate"`
	Busy       float64  `json:"busy"`         // fraction of the stage's instance time spent working, 0..1
	Backpress  float64  `json:"backpressure"` // fraction spent blocked on a full downstream queue
	Queue      *Queue   `json:"queue,omitempty"`
	BatchP50   *float64 `json:"batch_p50_s,omitempty"` // time to process one batch in the stage
	BatchP99   *float64 `json:"batch_p99_s,omitempty"`
	LatencyP50 *float64 `json:"latency_p50_s,omitempty"` // outputs: from the input reading a batch to its flush
	LatencyP99 *float64 `json:"latency_p99_s,omitempty"`
	Lag        *int64   `json:"lag,omitempty"` // inputs that can tell: read but not yet acknowledged
	// Nodes that event-time watermarks reach (event-time operators and
	// the stages before them): the watermark on the node's input, and how
	// far it is behind the wall clock. WatermarkEnd says every input has
	// finished (the watermark is at the end of time).
	Watermark    *time.Time `json:"watermark,omitempty"`
	WatermarkLag *float64   `json:"watermark_lag_s,omitempty"`
	WatermarkEnd bool       `json:"watermark_end,omitempty"`
}

// Queue is a stage's input queues, summed over its instances.
type Queue struct {
	Events         int64   `json:"events"`
	Bytes          int64   `json:"bytes"`
	CapacityEvents int64   `json:"capacity_events"`
	CapacityBytes  int64   `json:"capacity_bytes"`
	Fill           float64 `json:"fill"` // the fuller of events/capacity_events and bytes/capacity_bytes
	HighWater      int     `json:"high_water"`
}

// StageStats are one stage's load.
type StageStats struct {
	Name        string   `json:"name"`
	Parallelism int      `json:"parallelism"`
	Busy        float64  `json:"busy"`
	Backpress   float64  `json:"backpressure"`
	Queue       *Queue   `json:"queue,omitempty"`
	BatchP50    *float64 `json:"batch_p50_s,omitempty"`
	BatchP99    *float64 `json:"batch_p99_s,omitempty"`
}

// CkptStats describe the last checkpoint.
type CkptStats struct {
	LastID   uint64     `json:"last_id"`
	Time     *time.Time `json:"time,omitempty"` // absent for one taken before this process started
	Age      *float64   `json:"age_s,omitempty"`
	Duration *float64   `json:"duration_s,omitempty"`
	Bytes    *int       `json:"bytes,omitempty"`
	// Taken counts the checkpoints this process committed.
	Taken int `json:"taken"`
	// Failed counts the checkpoints that failed since the start;
	// LastFailure is the last of them.
	Failed      int64        `json:"failed"`
	LastFailure *CkptFailure `json:"last_failure,omitempty"`
}

// CkptFailure is a checkpoint that did not complete.
type CkptFailure struct {
	ID       uint64    `json:"id"`
	Time     time.Time `json:"time"`
	Duration float64   `json:"duration_s"`
	Error    string    `json:"error"`
}

func (s *Server) stats(now time.Time) Stats {
	p := s.opts.Pipeline
	g := p.Graph()
	stageIdx := stageIndex(g)
	live := s.sampler.live(now)
	base := s.sampler.base(now, s.opts.RateWindow)
	dt := float64(live.at-base.at) / 1e9
	rate := func(now, then uint64) float64 {
		if dt <= 0 || now < then {
			return 0
		}
		return float64(now-then) / dt
	}
	st := Stats{Pipeline: g.Name, Time: now.UTC(), Uptime: now.Sub(s.started).Seconds(), Running: p.Running(), Window: dt,
		Nodes: []NodeStats{}, Stages: []StageStats{}}
	for i, ss := range p.Stages() {
		x := StageStats{Name: ss.Name, Parallelism: ss.Parallelism()}
		if dt > 0 {
			span := dt * 1e9 * float64(ss.Parallelism())
			x.Busy = clamp01(float64(live.stages[i].busy-base.stages[i].busy) / span)
			x.Backpress = clamp01(float64(live.stages[i].backpressure-base.stages[i].backpressure) / span)
		}
		if e, b, ce, cb := ss.QueueDepth(); ce > 0 {
			x.Queue = &Queue{Events: e, Bytes: b, CapacityEvents: ce, CapacityBytes: cb, Fill: live.stages[i].queueFill, HighWater: ss.QueueHighWater()}
		}
		if p50, p99, ok := s.sampler.quantiles("stage "+ss.Name, now, s.opts.RateWindow); ok {
			x.BatchP50, x.BatchP99 = &p50, &p99
		}
		st.Stages = append(st.Stages, x)
	}
	for i, n := range p.Nodes() {
		si := stageIdx[g.Nodes[i].Stage]
		ss := st.Stages[si]
		x := NodeStats{Name: n.Name, Kind: n.Kind.String(), Type: n.Type, Stage: si,
			In: n.In.Load(), Out: n.Out.Load(), Filtered: n.Filtered.Load(), Errors: n.Errors.Load(),
			Dropped: n.Dropped.Load(), DeadLetters: n.DeadLetters.Load(),
			InRate:    rate(live.nodes[i].in, base.nodes[i].in),
			OutRate:   rate(live.nodes[i].out, base.nodes[i].out),
			ErrorRate: rate(live.nodes[i].errors, base.nodes[i].errors),
			Busy:      ss.Busy, Backpress: ss.Backpress, Queue: ss.Queue, BatchP50: ss.BatchP50, BatchP99: ss.BatchP99,
		}
		if n.Kind == dag.Input {
			if lag, ok := p.Lag(n.Name); ok {
				x.Lag = &lag
			}
		}
		if wm, ok := p.Watermark(n.Name); ok {
			if wm == event.EndOfTime {
				x.WatermarkEnd = true
			} else {
				t := time.Unix(0, wm).UTC()
				lag := max(now.Sub(t).Seconds(), 0)
				x.Watermark, x.WatermarkLag = &t, &lag
			}
		}
		if n.Kind == dag.Output {
			if p50, p99, ok := s.sampler.quantiles("output "+n.Name, now, s.opts.RateWindow); ok {
				x.LatencyP50, x.LatencyP99 = &p50, &p99
			}
		}
		st.Nodes = append(st.Nodes, x)
	}
	st.Checkpoints = s.ckptStats(now)
	return st
}

func clamp01(f float64) float64 { return min(max(f, 0), 1) }

func (s *Server) ckptStats(now time.Time) *CkptStats {
	st := s.lastCkptStats(now)
	if st == nil {
		return nil
	}
	n, last := s.opts.Pipeline.CheckpointFailures()
	st.Failed = n
	if last != nil {
		st.LastFailure = &CkptFailure{ID: last.ID, Time: last.Time.UTC(), Duration: last.Duration.Seconds(), Error: last.Err}
	}
	return st
}

// lastCkptStats describes the last checkpoint (nil without checkpoints).
func (s *Server) lastCkptStats(now time.Time) *CkptStats {
	c := s.opts.Checkpoints
	if c == nil {
		return nil
	}
	c.mu.Lock()
	taken := len(c.hist)
	c.mu.Unlock()
	if cp, ok := c.lastCheckpoint(); ok {
		age, dur, size := now.Sub(cp.Time).Seconds(), cp.Duration.Seconds(), cp.Bytes
		return &CkptStats{LastID: cp.ID, Time: &cp.Time, Age: &age, Duration: &dur, Bytes: &size, Taken: taken}
	}
	id, ok := c.Last()
	if !ok {
		return &CkptStats{}
	}
	return &CkptStats{LastID: id}
}

func (s *Server) handleStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.stats(time.Now()))
}

// --- series ---

// Series is the answer of GET /api/v1/series: one value per sample
// interval, oldest first, in parallel arrays (what a chart wants).
type Series struct {
	Node     string    `json:"node"`
	Interval float64   `json:"interval_s"`
	Time     []int64   `json:"t"` // end of each interval, Unix milliseconds
	InRate   []float64 `json:"in_rate"`
	OutRate  []float64 `json:"out_rate"`
	ErrRate  []float64 `json:"error_rate"`
	Busy     []float64 `json:"busy"`
	Backpr   []float64 `json:"backpressure"`
	Queue    []float64 `json:"queue_fill"` // at the end of the interval
}

func (s *Server) handleSeries(w http.ResponseWriter, r *http.Request) {
	p := s.opts.Pipeline
	name := r.URL.Query().Get("node")
	ni := -1
	for i, n := range p.Nodes() {
		if n.Name == name {
			ni = i
		}
	}
	if ni < 0 {
		s.unknownNode(w, name)
		return
	}
	var span time.Duration
	if v := r.URL.Query().Get("seconds"); v != "" {
		secs, err := strconv.Atoi(v)
		if err != nil || secs <= 0 {
			writeError(w, http.StatusBadRequest, "seconds must be a positive whole number, got "+strconv.Quote(v), "leave it out for the whole history")
			return
		}
		span = time.Duration(secs) * time.Second
	}
	g := p.Graph()
	si := stageIndex(g)[g.Nodes[ni].Stage]
	par := float64(p.Stages()[si].Parallelism())
	smps := s.sampler.series(span)
	out := Series{Node: name, Interval: s.opts.SampleInterval.Seconds(),
		Time: []int64{}, InRate: []float64{}, OutRate: []float64{}, ErrRate: []float64{}, Busy: []float64{}, Backpr: []float64{}, Queue: []float64{}}
	for i := 1; i < len(smps); i++ {
		a, b := smps[i-1], smps[i]
		dt := float64(b.at-a.at) / 1e9
		if dt <= 0 {
			continue
		}
		out.Time = append(out.Time, b.at/1e6)
		out.InRate = append(out.InRate, float64(b.nodes[ni].in-a.nodes[ni].in)/dt)
		out.OutRate = append(out.OutRate, float64(b.nodes[ni].out-a.nodes[ni].out)/dt)
		out.ErrRate = append(out.ErrRate, float64(b.nodes[ni].errors-a.nodes[ni].errors)/dt)
		out.Busy = append(out.Busy, clamp01(float64(b.stages[si].busy-a.stages[si].busy)/(dt*1e9*par)))
		out.Backpr = append(out.Backpr, clamp01(float64(b.stages[si].backpressure-a.stages[si].backpressure)/(dt*1e9*par)))
		out.Queue = append(out.Queue, b.stages[si].queueFill)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) unknownNode(w http.ResponseWriter, name string) {
	var names []string
	for _, n := range s.opts.Pipeline.Nodes() {
		names = append(names, n.Name)
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, "the node parameter is required", "one of "+quoteList(names))
		return
	}
	writeError(w, http.StatusNotFound, "no node named "+strconv.Quote(name), "one of "+quoteList(names))
}

func quoteList(names []string) string {
	out := ""
	for i, n := range names {
		if i > 0 {
			out += ", "
		}
		out += strconv.Quote(n)
	}
	return out
}

// --- checkpoints ---

// CheckpointList is the answer of GET /api/v1/checkpoints.
type CheckpointList struct {
	// Enabled is false when the pipeline has no state store.
	Enabled     bool               `json:"enabled"`
	Checkpoints []state.Checkpoint `json:"checkpoints"`
}

func (s *Server) handleCheckpoints(w http.ResponseWriter, _ *http.Request) {
	c := s.opts.Checkpoints
	if c == nil {
		writeJSON(w, http.StatusOK, CheckpointList{Checkpoints: []state.Checkpoint{}})
		return
	}
	list, err := c.List()
	if err != nil {
		s.opts.Logger.Warn("api: listing checkpoints", slog.Any("err", err))
		writeError(w, http.StatusInternalServerError, "the checkpoint history cannot be read; see the process log", "")
		return
	}
	if list == nil {
		list = []state.Checkpoint{}
	}
	writeJSON(w, http.StatusOK, CheckpointList{Enabled: true, Checkpoints: list})
}

var _ runtime.StateStore = (*Checkpoints)(nil)

// --- errors ---

// ErrorList is the answer of GET /api/v1/errors: recent failed events,
// newest first (a few per node, sampled at most ten times a second per
// node).
type ErrorList struct {
	Errors []ErrorSample `json:"errors"`
}

// ErrorSample is one failed event and what became of it.
type ErrorSample struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Error  string    `json:"error"`
	Action string    `json:"action"` // dropped, dead_letter, fail
	Offset *int64    `json:"offset,omitempty"`
	Source string    `json:"source,omitempty"`
	Key    string    `json:"key,omitempty"`
	// Value is the event's value: embedded as JSON when it is valid JSON,
	// as a string otherwise.
	Value     json.RawMessage `json:"value"`
	Truncated bool            `json:"truncated,omitempty"`
}

func (s *Server) handleErrors(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive integer", "for example limit=20")
			return
		}
		limit = n
	}
	out := ErrorList{Errors: []ErrorSample{}}
	for _, e := range s.opts.Pipeline.ErrorSamples(limit) {
		x := ErrorSample{Time: e.Time.UTC(), Node: e.Node, Error: e.Error, Action: e.Action, Source: e.Source,
			Key: string(e.Key), Truncated: e.Truncated, Value: jsonValue(e.Value)}
		if e.Offset >= 0 {
			off := e.Offset
			x.Offset = &off
		}
		out.Errors = append(out.Errors, x)
	}
	writeJSON(w, http.StatusOK, out)
}

// jsonValue embeds v as JSON when it is a valid JSON document, else as a
// JSON string.
func jsonValue(v []byte) json.RawMessage {
	if len(v) > 0 && json.Valid(v) {
		return json.RawMessage(v)
	}
	b, _ := json.Marshal(string(v))
	return b
}
