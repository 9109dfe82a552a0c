package control

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/runtime"
)

// Event fate: POST /api/v1/fate?node=INPUT[&filter=EXPR] asks to follow the
// next event of an input through the graph; GET /api/v1/fate lists the
// traces, GET /api/v1/fate/{id} shows one (runtime/fate.go).

// FateList is the answer of GET /api/v1/fate.
type FateList struct {
	Fates []Fate `json:"fates"`
}

// Fate is one traced event and what became of it.
type Fate struct {
	ID        uint64     `json:"id"`
	Input     string     `json:"input"`
	Filter    string     `json:"filter,omitempty"`
	Requested time.Time  `json:"requested"`
	State     string     `json:"state"` // waiting, in_flight, acknowledged, expired
	Read      *time.Time `json:"read,omitempty"`
	Offset    *int64     `json:"offset,omitempty"`
	Source    string     `json:"source,omitempty"`
	Key       string     `json:"key,omitempty"`
	// Value is the event as read: JSON when it is valid JSON, else a string.
	Value     json.RawMessage `json:"value,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
	Steps     []FateStep      `json:"steps"`
	MoreSteps int             `json:"more_steps,omitempty"`
	Acked     *time.Time      `json:"acknowledged,omitempty"`
}

// FateStep is one thing that happened to the event at a node.
type FateStep struct {
	Time      time.Time       `json:"time"`
	Since     float64         `json:"since_read_s"`
	Node      string          `json:"node,omitempty"`
	What      string          `json:"what"`
	Detail    string          `json:"detail,omitempty"`
	Value     json.RawMessage `json:"value,omitempty"`
	Truncated bool            `json:"truncated,omitempty"`
}

func fateJSON(f runtime.Fate) Fate {
	x := Fate{ID: f.ID, Input: f.Input, Filter: f.Filter, Requested: f.Requested.UTC(), Steps: []FateStep{}, MoreSteps: f.MoreSteps}
	switch {
	case f.Pending:
		x.State = "waiting"
	case f.Expired:
		x.State = "expired"
	case !f.Acked.IsZero():
		x.State = "acknowledged"
		t := f.Acked.UTC()
		x.Acked = &t
	default:
		x.State = "in_flight"
	}
	if !f.Read.IsZero() {
		t := f.Read.UTC()
		x.Read = &t
		if f.Offset >= 0 {
			off := f.Offset
			x.Offset = &off
		}
		x.Source, x.Key, x.Value, x.Truncated = f.Source, string(f.Key), jsonValue(f.Value), f.Truncated
	}
	for _, s := range f.Steps {
		st := FateStep{Time: s.Time.UTC(), Since: s.Time.Sub(f.Read).Seconds(), Node: s.Node, What: s.What, Detail: s.Detail, Truncated: s.Truncated}
		if s.Value != nil {
			st.Value = jsonValue(s.Value)
		}
		x.Steps = append(x.Steps, st)
	}
	return x
}

func (s *Server) handleFateRequest(w http.ResponseWriter, r *http.Request) {
	p := s.opts.Pipeline
	q := r.URL.Query()
	node := q.Get("node")
	n := p.Node(node)
	if n == nil {
		s.unknownNode(w, node)
		return
	}
	if n.Kind != dag.Input {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%q is a %s: a fate starts at an input", node, n.Kind), "name one of the pipeline's inputs")
		return
	}
	filter := q.Get("filter")
	var prog *expr.Program
	if filter != "" {
		var ok bool
		if prog, ok = compileFilter(w, filter); !ok {
			return
		}
	}
	id, err := p.RequestFate(node, prog, filter)
	switch {
	case errors.Is(err, runtime.ErrTooManyFates):
		writeError(w, http.StatusTooManyRequests, err.Error(), fmt.Sprintf("at most %d wait at once; each waits up to %v", runtime.MaxPendingFates, runtime.FateRequestTTL))
		return
	case errors.Is(err, runtime.ErrPipelineEnded):
		writeError(w, http.StatusServiceUnavailable, "the pipeline has stopped", "")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	f, _ := p.FateByID(id)
	writeJSON(w, http.StatusAccepted, fateJSON(f))
}

func (s *Server) handleFates(w http.ResponseWriter, _ *http.Request) {
	out := FateList{Fates: []Fate{}}
	for _, f := range s.opts.Pipeline.Fates() {
		out.Fates = append(out.Fates, fateJSON(f))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleFate(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "the fate id is not a number", "")
		return
	}
	f, ok := s.opts.Pipeline.FateByID(id)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no fate %d", id), fmt.Sprintf("the last %d are kept; GET /api/v1/fate lists them", runtime.MaxFates))
		return
	}
	writeJSON(w, http.StatusOK, fateJSON(f))
}
