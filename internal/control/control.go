// Package control is weir's control plane: one HTTP server per process that
// serves /metrics (Prometheus), /healthz, /readyz, /debug/pprof, the web UI
// at /ui/ (package ui) and, for a running pipeline, the JSON API under
// /api/v1 (topology, stats, time series, checkpoints, live tail) that
// `weir top`, `weir tail` and the web UI use. docs/api.md describes every
// endpoint.
//
// Server owns its listener and its goroutines: Start binds (so a busy port
// is a clear startup error) and starts serving and, with a pipeline, the
// sampler that records per-second counters; Close stops both and ends
// open tail streams. Handlers only read the pipeline's atomics and the
// sampler's ring (under its mutex); nothing here runs on the pipeline's
// goroutines.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/weir-dev/weir/internal/control/ui"
	"github.com/weir-dev/weir/internal/runtime"
)

// Options configure the control server. Zero values take the defaults
// noted.
type Options struct {
	// Gatherer is what /metrics serves; the API reads latency histograms
	// from it too. Required.
	Gatherer prometheus.Gatherer
	// Logger gets the server's own errors; nil discards them.
	Logger *slog.Logger
	// Pipeline, when set, is served under /api/v1, and its outputs are
	// health components. Without it only /metrics, /healthz, /readyz and
	// /debug/pprof are served.
	Pipeline *runtime.Pipeline
	// Checkpoints, when set, is the pipeline's state store as wrapped by
	// WatchCheckpoints: /api/v1/checkpoints and the stats read it.
	Checkpoints *Checkpoints

	// SampleInterval is how often the sampler records every node's
	// counters; default 1s. History is how far back it keeps them;
	// default 15m.
	SampleInterval time.Duration
	History        time.Duration
	// RateWindow is the span rates in /api/v1/stats are averaged over;
	// default 5s.
	RateWindow time.Duration
	// FailureWindow is how long a failed write keeps an output degraded
	// when no flush has succeeded since; default 30s.
	FailureWindow time.Duration
	// PingInterval is how often an idle tail stream gets a comment line,
	// so proxies keep it open; default 15s.
	PingInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SampleInterval <= 0 {
		o.SampleInterval = time.Second
	}
	if o.History <= 0 {
		o.History = 15 * time.Minute
	}
	if o.RateWindow <= 0 {
		o.RateWindow = 5 * time.Second
	}
	if o.FailureWindow <= 0 {
		o.FailureWindow = 30 * time.Second
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 15 * time.Second
	}
}

// Server is the control-plane HTTP server.
type Server struct {
	opts    Options
	srv     *http.Server
	ln      net.Listener
	ready   atomic.Bool
	health  *Health
	sampler *sampler // nil without a pipeline
	tails   tails
	started time.Time

	// stop ends the request contexts (tail streams) and the sampler.
	ctx       context.Context
	stop      context.CancelFunc
	wg        sync.WaitGroup
	done      chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr and serves in the background.
func Start(addr string, opts Options) (*Server, error) {
	if opts.Gatherer == nil {
		return nil, errors.New("control plane: Options.Gatherer is required")
	}
	opts.setDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control plane: listen on %s: %w (set control.address to a free address, or \"\" to disable it)", addr, err)
	}
	s := &Server{opts: opts, ln: ln, done: make(chan error, 1), health: newHealth(), started: time.Now()}
	s.ctx, s.stop = context.WithCancel(context.Background())
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn)}))
	// Go's profiler, for finding where a running pipeline spends its time
	// (go tool pprof http://ADDR/debug/pprof/profile). The control address
	// is local by default; do not expose it publicly.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /ui/", http.StripPrefix("/ui", ui.Handler()))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	})
	if opts.Pipeline != nil {
		s.sampler = newSampler(opts.Pipeline, opts.Gatherer, opts.SampleInterval, opts.History)
		s.routeAPI(mux)
		s.wg.Go(func() { s.sampler.run(s.ctx) })
	}
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		// Requests end when the server closes: tail streams never would.
		BaseContext: func(net.Listener) context.Context { return s.ctx },
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// SetReady marks the process ready or not. With a pipeline, /readyz also
// waits until its inputs run.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Ready reports what /readyz answers: SetReady(true) was called and the
// pipeline, if any, is running.
func (s *Server) Ready() bool {
	return s.ready.Load() && (s.opts.Pipeline == nil || s.opts.Pipeline.Running())
}

// Health is the registry of health components /healthz reports.
func (s *Server) Health() *Health { return s.health }

// Close stops the server: open tail streams end, the sampler stops, and
// in-flight requests are waited for until ctx ends. Later calls return
// the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.stop()
		s.closeErr = s.srv.Shutdown(ctx)
		if err := <-s.done; s.closeErr == nil {
			s.closeErr = err
		}
		s.wg.Wait()
	})
	return s.closeErr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// apiError is the body of every 4xx/5xx answer of the API.
type apiError struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

func writeError(w http.ResponseWriter, code int, msg, hint string) {
	writeJSON(w, code, apiError{Error: msg, Hint: hint})
}
