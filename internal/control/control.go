// Package control is weir's control plane: one HTTP server per process that
// serves /metrics (Prometheus), /healthz and /readyz. Later issues add the
// web UI and the JSON API here.
//
// Server owns its listener and its goroutine: Start binds (so a busy port is
// a clear startup error), Close shuts down gracefully.
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
)

// Server is the control-plane HTTP server.
type Server struct {
	srv       *http.Server
	ln        net.Listener
	ready     atomic.Bool
	done      chan error
	closeOnce sync.Once
	closeErr  error
}

// Start listens on addr and serves in the background.
func Start(addr string, gatherer prometheus.Gatherer, logger *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("control plane: listen on %s: %w (set control.address to a free address, or \"\" to disable it)", addr, err)
	}
	s := &Server{ln: ln, done: make(chan error, 1)}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}))
	// Go's profiler, for finding where a running pipeline spends its time
	// (go tool pprof http://ADDR/debug/pprof/profile). The control address
	// is local by default; do not expose it publicly.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "components": map[string]any{}})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"ready": false})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"ready": true})
	})
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
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

// SetReady marks the process ready (inputs running) or not.
func (s *Server) SetReady(ok bool) { s.ready.Store(ok) }

// Close stops the server, waiting for in-flight requests until ctx ends.
// Later calls return the first call's result.
func (s *Server) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closeErr = s.srv.Shutdown(ctx)
		if err := <-s.done; s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
