package control

import (
	"net/http"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/dag"
)

// Status is the health of a component, or of the process (the worst of
// its components).
type Status string

// The statuses, from best to worst.
const (
	OK       Status = "ok"
	Degraded Status = "degraded" // working, with a problem an operator should see
	Failing  Status = "failing"  // not doing its job
)

func (s Status) rank() int {
	switch s {
	case OK:
		return 0
	case Degraded:
		return 1
	default:
		return 2
	}
}

// Component is one entry of /healthz's "components".
type Component struct {
	Status Status `json:"status"`
	// Detail says what is wrong (for an output: its last error).
	Detail string `json:"detail,omitempty"`
	// Time is when the status was reported (for an output: its last
	// failure).
	Time time.Time `json:"time,omitzero"`
}

// Health is a registry of components and their status, for parts of the
// process that are not pipeline nodes (a log near its size limit, a
// connection). Safe for concurrent use.
type Health struct {
	mu    sync.Mutex
	comps map[string]Component
}

func newHealth() *Health { return &Health{comps: map[string]Component{}} }

// Set reports the status of component name; detail says why when it is
// not OK.
func (h *Health) Set(name string, st Status, detail string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.comps[name] = Component{Status: st, Detail: detail, Time: time.Now()}
}

// Remove forgets component name.
func (h *Health) Remove(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.comps, name)
}

func (h *Health) snapshot(into map[string]Component) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, v := range h.comps {
		into[k] = v
	}
}

// healthBody is what /healthz answers.
type healthBody struct {
	Status     Status               `json:"status"`
	Components map[string]Component `json:"components"`
}

// maxDetail bounds the error text a component reports.
const maxDetail = 512

// report gathers every component: the registry's, and one per output of
// the pipeline ("outputs.NAME"), degraded while a write or flush failed
// within FailureWindow and none has succeeded since.
func (s *Server) report() healthBody {
	body := healthBody{Status: OK, Components: map[string]Component{}}
	if p := s.opts.Pipeline; p != nil {
		now := time.Now()
		for _, n := range p.Nodes() {
			if n.Kind != dag.Output {
				continue
			}
			c := Component{Status: OK}
			failed, flushed := n.FailedAt.Load(), n.FlushedAt.Load()
			if failed != 0 && failed > flushed && now.Sub(time.Unix(0, failed)) < s.opts.FailureWindow {
				c = Component{Status: Degraded, Detail: n.LastError(), Time: time.Unix(0, failed).UTC()}
				if len(c.Detail) > maxDetail {
					c.Detail = c.Detail[:maxDetail] + "…"
				}
			}
			body.Components["outputs."+n.Name] = c
		}
		// Inputs and outputs that report their own trouble (a log near
		// its size limit).
		for _, nh := range p.Health() {
			kind := "inputs."
			if n := p.Node(nh.Node); n != nil && n.Kind == dag.Output {
				kind = "outputs."
			}
			name := kind + nh.Node
			if !nh.Degraded {
				if _, ok := body.Components[name]; !ok {
					body.Components[name] = Component{Status: OK}
				}
				continue
			}
			c := Component{Status: Degraded, Detail: nh.Detail, Time: now.UTC()}
			if len(c.Detail) > maxDetail {
				c.Detail = c.Detail[:maxDetail] + "…"
			}
			if prev, ok := body.Components[name]; ok && prev.Status != OK {
				c.Detail = prev.Detail + "; " + c.Detail
			}
			body.Components[name] = c
		}
	}
	s.health.snapshot(body.Components)
	for _, c := range body.Components {
		if c.Status.rank() > body.Status.rank() {
			body.Status = c.Status
		}
	}
	return body
}

// handleHealth answers 200 whenever the process serves: load balancers
// drop a node on an unexpected status code, and a degraded output is no
// reason to. The body says what is wrong.
func (s *Server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.report())
}
