// Package httpin is the `http` input: weir's event collector. SDKs POST
// events to it (internal/collector handles HTTP: auth, limits, decoding,
// metadata); every accepted event is appended to an embedded durable log
// (internal/log) before the request is answered, and the pipeline reads the
// log like the `log` input does (logio.Source). So the collector is a
// replayable input: an event answered with 200 is on disk, and a crash
// replays what the pipeline had not finished.
//
// One node has one HTTP server and one log, however many instances it has;
// instance i reads partitions p with p mod parallelism == i.
//
// Threading: the node object is shared by the node's instances and guarded
// by its mutex; each instance's Source is run by that instance's goroutine.
package httpin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/weir-dev/weir/internal/collector"
	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/logio"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
)

// Config is the YAML configuration of the http input.
type Config struct {
	collector.Config `yaml:",inline"`
	Log              logio.LogConfig `yaml:"log" required:"true" doc:"The durable log every accepted event is appended to before the request is answered (dir, partitions, durability, max_bytes, ...)."`
	MaxLag           int64           `yaml:"max_lag" default:"0" doc:"Events accepted but not yet processed (acknowledged) by the pipeline above which new requests are answered 503 with Retry-After; 0 means no bound besides log.max_bytes."`
	MaxBatchBytes    config.ByteSize `yaml:"max_batch_bytes" default:"1MiB" doc:"Upper bound on the record bytes of one batch read from the log."`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	c := Config{Config: collector.DefaultConfig(), Log: logio.DefaultLogConfig(), MaxBatchBytes: config.MiB}
	// One partition by default: every request of the node then shares one
	// group commit (one write and one fsync for all requests waiting),
	// which is what bounds a collector on one disk. More partitions let
	// more input instances read in parallel.
	c.Log.Partitions = 1
	return c
}

// Validate checks c.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate()}
	if err := c.Log.Validate(); err != nil {
		var list []error
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			list = j.Unwrap()
		} else {
			list = []error{err}
		}
		for _, e := range list {
			var fe *config.FieldError
			if errors.As(e, &fe) {
				f := *fe
				f.Field = "log." + f.Field
				errs = append(errs, &f)
			} else {
				errs = append(errs, e)
			}
		}
	}
	if c.MaxLag < 0 {
		errs = append(errs, &config.FieldError{Field: "max_lag", Msg: fmt.Sprintf("max_lag is %d", c.MaxLag), Expected: "a number of events >= 0"})
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, &config.FieldError{Field: "max_batch_bytes", Msg: "max_batch_bytes must be positive", Expected: "a size such as 1MiB"})
	}
	return errors.Join(errs...)
}

// Node is what the instances of one http input node share: the log, the
// HTTP server and the sources (for the lag bound).
type Node struct {
	cfg Config

	mu      sync.Mutex
	refs    int
	sh      *logio.Shared
	srv     *collector.Server
	sources []*logio.Source
	running int
	stop    context.CancelFunc
	served  chan error

	rr atomic.Uint64
}

// NewNode returns the shared part of a node; nothing is opened until the
// first instance is created.
func NewNode(cfg Config) *Node { return &Node{cfg: cfg} }

// Input is one instance of the http input.
type Input struct {
	*logio.Source
	n   *Node
	env runtime.Env
	log *slog.Logger
}

// NewInput opens the node's log and server on first use and returns one
// instance.
func (n *Node) NewInput(env runtime.Env) (*Input, error) {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refs == 0 {
		sh, err := n.cfg.Log.Open()
		if err != nil {
			return nil, err
		}
		srv, err := collector.New(n.cfg.Config, n, collector.Options{Logger: logger, Registerer: env.Registerer, Overloaded: n.overloaded})
		if err != nil {
			_ = sh.Release()
			return nil, err
		}
		n.sh, n.srv = sh, srv
	}
	src, err := logio.NewSource(n.sh, logio.SourceOptions{Reader: env.Pipeline + "." + env.Node, MaxBatchBytes: int(n.cfg.MaxBatchBytes)}, env)
	if err != nil {
		if n.refs == 0 {
			_ = n.sh.Release()
		}
		return nil, err
	}
	n.refs++
	n.sources = append(n.sources, src)
	return &Input{Source: src, n: n, env: env, log: logger}, nil
}

// Append implements collector.Appender: one request's records go to one
// partition in one append (the log group-commits concurrent ones).
func (n *Node) Append(ctx context.Context, recs []log.Record) error {
	l := n.sh.Log
	p := int(n.rr.Add(1) % uint64(l.Partitions()))
	if _, err := l.Partition(p).Append(ctx, recs); err != nil {
		return err
	}
	n.sh.Notify()
	return nil
}

// overloaded reports whether the pipeline is further behind than max_lag.
func (n *Node) overloaded() bool {
	if n.cfg.MaxLag <= 0 {
		return false
	}
	n.mu.Lock()
	srcs := n.sources
	n.mu.Unlock()
	var lag int64
	for _, s := range srcs {
		lag += s.Lag()
	}
	return lag > n.cfg.MaxLag
}

// Addr is where the collector listens, once it does (nil before).
func (n *Node) Addr() string {
	n.mu.Lock()
	srv := n.srv
	n.mu.Unlock()
	if srv == nil || srv.Addr() == nil {
		return ""
	}
	return srv.Addr().String()
}

// start starts the HTTP server when the first instance runs.
func (n *Node) start(logger *slog.Logger) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running++
	if n.running > 1 {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop, n.served = cancel, make(chan error, 1)
	go func() { n.served <- n.srv.Serve(ctx) }()
	<-n.srv.Ready()
	if n.srv.Addr() == nil {
		cancel()
		err := <-n.served
		n.running--
		return err
	}
	logger.Info("collector accepting events", slog.String("address", "http://"+n.srv.Addr().String()),
		slog.String("log", n.sh.Log.Dir()), slog.Int("partitions", n.sh.Log.Partitions()))
	return nil
}

// finish stops the HTTP server when the last running instance stops:
// in-flight requests finish (their events are durable and will be read on
// the next start).
func (n *Node) finish() error {
	n.mu.Lock()
	n.running--
	last := n.running == 0
	n.mu.Unlock()
	if !last {
		return nil
	}
	n.stop()
	return <-n.served
}

// Run serves HTTP (shared by the instances) and reads this instance's
// partitions until ctx ends.
func (in *Input) Run(ctx context.Context, out runtime.Outlet) error {
	if err := in.n.start(in.log); err != nil {
		return err
	}
	err := in.Source.Run(ctx, out)
	return errors.Join(err, in.n.finish())
}

// Close commits progress (without checkpoints) and releases the log.
func (in *Input) Close(ctx context.Context) error {
	err := in.Source.Close(ctx)
	in.n.mu.Lock()
	in.n.refs--
	last := in.n.refs == 0
	in.n.mu.Unlock()
	if last {
		err = errors.Join(err, in.n.sh.Release())
	}
	return err
}
