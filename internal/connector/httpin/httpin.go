// Package httpin is the `http` input: weir's event collector. SDKs POST
// events to it (internal/collector handles HTTP: auth, limits, decoding,
// metadata); every accepted event is made durable before the request is
// answered, in one of two buffers:
//
//   - log: an embedded durable log (internal/log), which the pipeline reads
//     like the `log` input does (logio.Source);
//   - kafka: a Kafka topic, produced to with an idempotent producer and
//     acks from all in-sync replicas (kafka.go), which the pipeline reads
//     back as a consumer-group member exactly like the `kafka` input does
//     (the instance wraps a kafka.Input).
//
// Either way the collector is a replayable input: an event answered with
// 200 is durable, and a crash replays what the pipeline had not finished.
//
// One node has one HTTP server and one buffer (log or producer), however
// many instances it has. With the log, instance i reads partitions p with
// p mod parallelism == i; with Kafka, each instance is a group member.
//
// Threading: the node object is shared by the node's instances and guarded
// by its mutex; each instance's Source (or kafka.Input) is run by that
// instance's goroutine; Append is called concurrently by the HTTP server.
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
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/connector/logio"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
)

// Config is the YAML configuration of the http input.
type Config struct {
	collector.Config `yaml:",inline"`
	Log              logio.LogConfig `yaml:"log" doc:"The local durable log every accepted event is appended to before the request is answered (dir, partitions, durability, max_bytes, ...). Exactly one of log and kafka is set."`
	Kafka            KafkaConfig     `yaml:"kafka" doc:"The Kafka topic every accepted event is produced to (acks from all in-sync replicas) before the request is answered, instead of the local log; the pipeline reads it back as a consumer group. Exactly one of log and kafka is set."`
	MaxLag           int64           `yaml:"max_lag" default:"0" doc:"Events accepted but not yet processed (acknowledged) by the pipeline above which new requests are answered 503 with Retry-After; 0 means no bound besides log.max_bytes (or kafka.max_buffered_records). With kafka, the consumer lag of this process's group members."`
	MaxBatchBytes    config.ByteSize `yaml:"max_batch_bytes" default:"1MiB" doc:"Upper bound on the record bytes of one batch read from the log (with log; with kafka, kafka.fetch_max_bytes bounds a fetch)."`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Config: collector.DefaultConfig(), Log: defaultLog(), Kafka: DefaultKafkaConfig(), MaxBatchBytes: config.MiB}
}

// defaultLog is the default of Config.Log: a log block equal to it was not
// configured.
func defaultLog() logio.LogConfig {
	c := logio.DefaultLogConfig()
	// One partition by default: every request of the node then shares one
	// group commit (one write and one fsync for all requests waiting),
	// which is what bounds a collector on one disk. More partitions let
	// more input instances read in parallel.
	c.Partitions = 1
	return c
}

// usesKafka reports whether the events are buffered in Kafka (the kafka
// block is set) rather than in the local log.
func (c Config) usesKafka() bool { return c.Kafka.set() }

// Validate checks c.
func (c Config) Validate() error {
	errs := []error{c.Config.Validate()}
	logSet, kafkaSet := c.Log != defaultLog(), c.Kafka.set()
	switch {
	case logSet && kafkaSet:
		errs = append(errs, &config.FieldError{Field: "kafka", Msg: "both log and kafka are set: events are buffered in one of them",
			Expected: "either log (a local log) or kafka (a topic)", Hint: "remove log to buffer in Kafka, or kafka to buffer on local disk"})
	case !logSet && !kafkaSet:
		errs = append(errs, &config.FieldError{Field: "log", Msg: "neither log nor kafka is set: accepted events need a durable buffer",
			Expected: "log: {dir: ...} (a local log) or kafka: {brokers: [...], topic: ..., group: ...} (a topic)"})
	case kafkaSet:
		errs = append(errs, prefixed("kafka.", c.Kafka.Validate())...)
	default:
		errs = append(errs, prefixed("log.", c.Log.Validate())...)
	}
	if c.MaxLag < 0 {
		errs = append(errs, &config.FieldError{Field: "max_lag", Msg: fmt.Sprintf("max_lag is %d", c.MaxLag), Expected: "a number of events >= 0"})
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, &config.FieldError{Field: "max_batch_bytes", Msg: "max_batch_bytes must be positive", Expected: "a size such as 1MiB"})
	}
	return errors.Join(errs...)
}

// prefixed returns the errors joined in err, with prefix added to the
// fields of FieldErrors.
func prefixed(prefix string, err error) []error {
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]error, 0, len(list))
	for _, e := range list {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			f := *fe
			f.Field = prefix + f.Field
			out = append(out, &f)
		} else {
			out = append(out, e)
		}
	}
	return out
}

// Node is what the instances of one http input node share: the buffer (log
// or Kafka producer), the HTTP server and the readers (for the lag bound).
type Node struct {
	cfg Config

	mu      sync.Mutex
	refs    int
	sh      *logio.Shared // with log
	prod    *producer     // with kafka
	srv     *collector.Server
	sources []*logio.Source // with log
	members []*kafka.Input  // with kafka
	// newMember makes the kafka input instances, which share the node's
	// checkpointed positions (kafka.NewInputs).
	newMember func(runtime.Env) (*kafka.Input, error)
	running   int
	stop      context.CancelFunc
	served    chan error

	rr atomic.Uint64
}

// NewNode returns the shared part of a node; nothing is opened until the
// first instance is created.
func NewNode(cfg Config) *Node { return &Node{cfg: cfg} }

// Input is one instance of the http input buffering in the local log.
type Input struct {
	*logio.Source
	n   *Node
	env runtime.Env
	log *slog.Logger
}

// NewInput opens the node's buffer and server on first use and returns one
// instance: an *Input with the local log, a *KafkaInput with Kafka. Either
// implements runtime.InputCloser.
func (n *Node) NewInput(env runtime.Env) (runtime.Input, error) {
	logger := env.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if n.cfg.usesKafka() {
		return n.newKafkaInput(env, logger)
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
	// The collector writes only events it validated: they are read as
	// checked (no second validation downstream).
	opts := logio.SourceOptions{Reader: env.Pipeline + "." + env.Node, MaxBatchBytes: int(n.cfg.MaxBatchBytes), Checked: true}
	src, err := logio.NewSource(n.sh, opts, env)
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

// Append implements collector.Appender. With the local log, one request's
// records go to one partition in one append (the log group-commits
// concurrent ones); with Kafka, see producer.append.
func (n *Node) Append(ctx context.Context, recs []log.Record) error {
	if n.prod != nil {
		return n.prod.append(ctx, recs)
	}
	l := n.sh.Log
	p := int(n.rr.Add(1) % uint64(l.Partitions()))
	if _, err := l.Partition(p).Append(ctx, recs); err != nil {
		return err
	}
	n.sh.Notify()
	return nil
}

// overloaded reports whether the pipeline is further behind than max_lag:
// the sum of the instances' lags (the log's unprocessed records; with
// Kafka, the consumer lag of this process's group members).
func (n *Node) overloaded() bool {
	if n.cfg.MaxLag <= 0 {
		return false
	}
	n.mu.Lock()
	srcs, members := n.sources, n.members
	n.mu.Unlock()
	var lag int64
	for _, s := range srcs {
		lag += s.Lag()
	}
	for _, m := range members {
		lag += m.Lag()
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
	if n.prod != nil {
		logger.Info("collector accepting events", slog.String("address", "http://"+n.srv.Addr().String()),
			slog.String("kafka_topic", n.cfg.Kafka.Topic), slog.Any("brokers", n.cfg.Kafka.Brokers))
	} else {
		logger.Info("collector accepting events", slog.String("address", "http://"+n.srv.Addr().String()),
			slog.String("log", n.sh.Log.Dir()), slog.Int("partitions", n.sh.Log.Partitions()))
	}
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
