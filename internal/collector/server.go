package collector

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/time/rate"

	"github.com/weir-dev/weir/internal/log"
)

// Appender makes records durable.
//
// Append returns nil only when every record of recs is durable (fsynced,
// with the log's fsync durability); only then does the collector answer
// 200. An error means the request is not acknowledged: errors.Is(err,
// log.ErrFull), log.ErrFailed, log.ErrClosed or a context error are answered
// 503 with Retry-After, log.ErrTooLarge 413, anything else 500.
//
// Append is called concurrently, once per request, with all of the
// request's accepted events. It must not modify recs or the bytes they
// reference, nor keep any of them after it returns: the collector reuses
// them for later requests (copy what must outlive the call).
type Appender interface {
	Append(ctx context.Context, recs []log.Record) error
}

// Options are the collector's dependencies.
type Options struct {
	// Logger receives startup and error messages (throttled). Default:
	// discard.
	Logger *slog.Logger
	// Registerer, if not nil, gets the weir_collector_* metrics.
	Registerer prometheus.Registerer
	// Now is the clock for received_at, record timestamps and rate limits.
	// Default time.Now.
	Now func() time.Time
	// Overloaded, if not nil, is called once per request before its body is
	// read; true answers 503 with Retry-After (the pipeline is too far
	// behind). It must be cheap and safe for concurrent use.
	Overloaded func() bool
}

// tenant is one configured tenant.
type tenant struct {
	name    string
	value   []byte        // the tenant header value
	limiter *rate.Limiter // nil: no rate limit
	m       tenantMetrics
}

// Server is the HTTP event collector. Its handler is safe for concurrent
// use; Serve is called at most once.
type Server struct {
	cfg        Config
	app        Appender
	log        *slog.Logger
	now        func() time.Time
	overloaded func() bool
	m          *metrics
	ua         *uaParser // nil: User-Agent parsing is off
	tenants    map[[sha256.Size]byte]*tenant
	sem        chan struct{} // a slot per request in flight
	states     sync.Pool     // *reqState
	warn       throttle
	deadlines  sharedDeadline

	origins     map[string]bool
	anyOrigin   bool
	retryAfter  string // Retry-After value for 503
	corsMaxAge  string
	idFields    []string
	maxBody     int64
	maxDecoded  int
	headerCount int // headers per record

	serving atomic.Bool
	ready   chan struct{} // closed when Serve has bound its listener, or failed to
	// mu guards ln.
	mu sync.Mutex
	ln net.Listener
}

// New returns a collector that appends accepted events to app. It checks
// cfg (see Config.Validate) and registers the metrics on
// opts.Registerer.
func New(cfg Config, app Appender, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if app == nil {
		return nil, errors.New("collector: nil Appender")
	}
	s := &Server{
		cfg:        cfg,
		app:        app,
		log:        opts.Logger,
		now:        opts.Now,
		overloaded: opts.Overloaded,
		tenants:    map[[sha256.Size]byte]*tenant{},
		sem:        make(chan struct{}, cfg.Limits.MaxInFlight),
		origins:    map[string]bool{},
		retryAfter: strconv.Itoa(ceilSeconds(cfg.RetryAfter)),
		corsMaxAge: strconv.Itoa(int(cfg.CORS.MaxAge / time.Second)),
		idFields:   append([]string(nil), cfg.EventIDFields...),
		maxBody:    int64(cfg.Limits.MaxBodyBytes),
		maxDecoded: int(cfg.Limits.MaxDecompressedBytes),
		ready:      make(chan struct{}),
		deadlines:  sharedDeadline{timeout: cfg.AppendTimeout, slack: min(max(cfg.AppendTimeout/10, time.Millisecond), time.Second)},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	for _, name := range sortedKeys(cfg.Tenants) {
		t := &tenant{name: name, value: []byte(name), m: m.forTenant(name)}
		if r := cfg.rateFor(name); r.EventsPerSecond > 0 {
			t.limiter = rate.NewLimiter(rate.Limit(r.EventsPerSecond), r.Burst) // starts full
		}
		for _, k := range cfg.Tenants[name] {
			s.tenants[sha256.Sum256([]byte(k))] = t
		}
	}
	for _, o := range cfg.CORS.AllowedOrigins {
		if o == "*" {
			s.anyOrigin = true
		}
		s.origins[o] = true
	}
	s.headerCount = 3
	if cfg.ClientIP != ClientIPOff {
		s.headerCount++
	}
	if cfg.UserAgent {
		if s.ua, err = newUAParser(cfg.UserAgentCacheSize); err != nil {
			return nil, fmt.Errorf("collector: user agent cache: %w", err)
		}
	}
	s.states.New = func() any { return &reqState{dec: newDecoder(cfg.Limits, s.idFields)} }
	return s, nil
}

// Serve listens on cfg.Address and serves until ctx ends, then shuts down
// gracefully: it stops accepting connections, lets in-flight requests
// finish (their appends are not cancelled) for up to
// cfg.HTTP.ShutdownTimeout, and returns nil. It returns an error if it
// cannot listen, if serving fails, or if requests were cut off at the
// shutdown timeout. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("collector: Serve called twice")
	}
	ln, err := listen(ctx, s.cfg.Address, s.cfg.HTTP.ListenBacklog)
	if err != nil {
		close(s.ready)
		return fmt.Errorf("collector: listen on %s: %w (set address to a free host:port)", s.cfg.Address, err)
	}
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	close(s.ready)
	if s.cfg.HTTP.ListenBacklog > 0 && !backlogApplied {
		s.log.Info("collector: http.listen_backlog is applied on Linux only; using the system default")
	}
	srv := s.httpServer()
	s.log.Info("collector: listening", "address", ln.Addr().String())
	ll := newLingerListener(ln)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ll) }()
	select {
	case err := <-served:
		return fmt.Errorf("collector: serve: %w", err)
	case <-ctx.Done():
	}
	// fasthttp's Shutdown only closes listeners that Serve has registered,
	// which it does before its first Accept: wait for that, or a shutdown
	// right after the start would leave Serve accepting for ever.
	select {
	case <-ll.accepting:
	case err := <-served:
		return fmt.Errorf("collector: serve: %w", err)
	}
	// Shutdown closes the listener and idle connections and waits for the
	// requests in flight; their appends run to the end (they do not depend
	// on ctx).
	timeout := s.cfg.HTTP.ShutdownTimeout
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = srv.ShutdownWithContext(sctx)
	<-served
	if err != nil {
		ll.closeAll()
		return fmt.Errorf("collector: shutdown: %w: requests still in flight after http.shutdown_timeout (%v) were cut off", err, timeout)
	}
	return nil
}

// httpServer is the HTTP/1.1 server of the collector. It is fasthttp's,
// not net/http's: for one small event per request, net/http's per-request
// costs (a Request and header maps, a background read per request, three
// deadline updates) took about half of weir's CPU (docs/architecture.md).
//
// Request bodies are streamed: the server reads one byte of a body before
// the handler runs (MaxRequestBodySize 1 makes every body a stream), the
// rest is read by the handler only once the request is authenticated,
// admitted and holds one of the max_in_flight slots. So a refused request's
// body is not read, and memory for bodies stays bounded by max_in_flight
// whatever the number of connections.
func (s *Server) httpServer() *fasthttp.Server {
	h := s.cfg.HTTP
	return &fasthttp.Server{
		Handler:      s.serve,
		ErrorHandler: s.serveError,
		Name:         "weir",
		// The deadline for the request line and headers; once they are in,
		// HeaderReceived gives the body read_timeout.
		ReadTimeout: h.ReadHeaderTimeout,
		HeaderReceived: func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
			return fasthttp.RequestConfig{ReadTimeout: h.ReadTimeout, WriteTimeout: h.WriteTimeout, MaxRequestBodySize: 1}
		},
		WriteTimeout:                 h.WriteTimeout,
		IdleTimeout:                  h.IdleTimeout,
		ReadBufferSize:               int(h.MaxHeaderBytes),
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		Logger:                       fasthttpLogger{s.log},
	}
}

// fasthttpLogger sends fasthttp's messages to slog as warnings.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Warn("collector: " + fmt.Sprintf(format, args...))
}

// Ready is closed once Serve has bound its listener (Addr is then set), or
// has failed to.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address Serve listens on, or nil before it has bound one.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return nil
	}
	return s.ln.Addr()
}

// ceilSeconds rounds d up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// throttle lets one message through per interval and counts the others.
type throttle struct {
	next       atomic.Int64 // unix nanoseconds before which messages are held back
	suppressed atomic.Int64
}

const throttleInterval = 10 * time.Second

// allow reports whether a message may be logged now, and how many were
// held back since the last one.
func (t *throttle) allow(now time.Time) (bool, int64) {
	n := t.next.Load()
	if now.UnixNano() < n || !t.next.CompareAndSwap(n, now.Add(throttleInterval).UnixNano()) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}

// sharedDeadline hands out contexts that end timeout after now, give or
// take slack: requests that start within slack of each other share one
// context and its timer, instead of each making its own (a timer, a
// goroutine-free cancel and several allocations per request).
type sharedDeadline struct {
	timeout, slack time.Duration
	cur            atomic.Pointer[deadlineCtx]
	// mu serializes making a new context.
	mu sync.Mutex
}

type deadlineCtx struct {
	ctx      context.Context
	cancel   context.CancelFunc // never called: the context ends at its deadline
	deadline time.Time
}

// get returns a context whose deadline is between now+timeout-slack and
// now+timeout. now is wall-clock time.
func (d *sharedDeadline) get(now time.Time) context.Context {
	if c := d.cur.Load(); c != nil && c.deadline.Sub(now) >= d.timeout-d.slack {
		return c.ctx
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cur.Load(); c != nil && c.deadline.Sub(now) >= d.timeout-d.slack {
		return c.ctx
	}
	deadline := now.Add(d.timeout)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	d.cur.Store(&deadlineCtx{ctx: ctx, cancel: cancel, deadline: deadline})
	return ctx
}
