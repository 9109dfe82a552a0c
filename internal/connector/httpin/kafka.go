package httpin

// Buffering in Kafka (the kafka block) instead of the local log.
//
// Append produces a request's records with an idempotent producer and acks
// from all in-sync replicas, and returns nil only once the broker has
// acknowledged every one of them; the collector answers 200 only then.
// The instances read the topic back as members of a consumer group: each
// wraps a kafka.Input, so offsets, checkpoints, lag and rebalancing are
// exactly those of the kafka input.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/collector"
	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
)

// KafkaConfig is the kafka block of the http input: the topic events are
// buffered in, and how the pipeline reads it back.
type KafkaConfig struct {
	Brokers            []string        `yaml:"brokers" required:"true" doc:"Seed brokers, host:port."`
	Topic              string          `yaml:"topic" required:"true" doc:"Topic every accepted event is produced to before the request is answered; the pipeline reads it back. Create it with the replication factor and min.insync.replicas that a 200 should mean."`
	Group              string          `yaml:"group" required:"true" doc:"Consumer group the pipeline reads the topic with; every weir process of the same pipeline shares the topic's partitions through it."`
	ClientID           string          `yaml:"client_id" default:"weir" doc:"Client id sent to the brokers."`
	Compression        string          `yaml:"compression" enum:"none|gzip|snappy|lz4|zstd" default:"lz4" doc:"Compression of produced record batches."`
	Linger             time.Duration   `yaml:"linger" default:"0s" doc:"How long a partition's batch waits for more records before it is sent. Each request waits for its records, so this adds to every request's latency; records of concurrent requests are batched anyway while a produce request is in flight."`
	MaxBufferedRecords int             `yaml:"max_buffered_records" default:"100000" doc:"Records produced and not yet acknowledged by the brokers above which new requests are answered 503 with Retry-After (the broker is slow or unreachable)."`
	FetchMaxBytes      config.ByteSize `yaml:"fetch_max_bytes" default:"16MiB" doc:"Upper bound on what one fetch of the pipeline's consumer buffers."`
	CommitInterval     time.Duration   `yaml:"commit_interval" default:"1s" doc:"Without checkpoints: how often offsets of processed events are committed to the group (and at a rebalance and a clean stop)."`
	SessionTimeout     time.Duration   `yaml:"session_timeout" default:"45s" doc:"How long the group waits for a member's heartbeat before it gives the member's partitions to others: the failover time after a crash."`
	HeartbeatInterval  time.Duration   `yaml:"heartbeat_interval" default:"3s" doc:"How often a member heartbeats; at most a third of session_timeout."`
	RebalanceTimeout   time.Duration   `yaml:"rebalance_timeout" default:"1m" doc:"How long a member may take to rejoin during a rebalance."`
	InstanceID         string          `yaml:"instance_id" default:"" doc:"Static group membership (KIP-345), as for the kafka input: instance i uses <instance_id>-<i>; unique per process."`
}

// DefaultKafkaConfig returns the defaults of the kafka block.
func DefaultKafkaConfig() KafkaConfig {
	in := kafka.DefaultInputConfig()
	return KafkaConfig{ClientID: "weir", Compression: "lz4", MaxBufferedRecords: 100000,
		FetchMaxBytes: in.FetchMaxBytes, CommitInterval: in.CommitInterval, SessionTimeout: in.SessionTimeout,
		HeartbeatInterval: in.HeartbeatInterval, RebalanceTimeout: in.RebalanceTimeout}
}

// set reports whether the kafka block was configured (differs from the
// defaults).
func (c KafkaConfig) set() bool { return !reflect.DeepEqual(c, DefaultKafkaConfig()) }

// inputConfig is the kafka input that reads the topic back: the group,
// from the earliest offset, read_committed.
func (c KafkaConfig) inputConfig() kafka.InputConfig {
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = c.Brokers, []string{c.Topic}, c.Group
	in.Start, in.Isolation = "earliest", "read_committed"
	in.ClientID, in.FetchMaxBytes, in.CommitInterval = c.ClientID, c.FetchMaxBytes, c.CommitInterval
	in.SessionTimeout, in.HeartbeatInterval, in.RebalanceTimeout, in.InstanceID = c.SessionTimeout, c.HeartbeatInterval, c.RebalanceTimeout, c.InstanceID
	return in
}

// outputConfig is the producer's side, checked like the kafka output's.
func (c KafkaConfig) outputConfig() kafka.OutputConfig {
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic, out.ClientID = c.Brokers, c.Topic, c.ClientID
	out.Compression, out.Linger, out.MaxBufferedRecords = c.Compression, c.Linger, c.MaxBufferedRecords
	return out
}

// Validate checks c with the kafka input's and output's rules; every
// problem is reported once, under this block's field names.
func (c KafkaConfig) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, err := range [2]error{c.inputConfig().Validate(), c.outputConfig().Validate()} {
		for _, e := range prefixed("", err) {
			var fe *config.FieldError
			if errors.As(e, &fe) {
				if fe.Field == "topics" {
					f := *fe
					f.Field, f.Msg, f.Expected = "topic", "no topic", "a topic name"
					fe = &f
					e = fe
				}
				if seen[fe.Field] {
					continue
				}
				seen[fe.Field] = true
			}
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

// producer is the node's Kafka producer: idempotent, acks from all in-sync
// replicas, records partitioned by the murmur2 hash of their key (the event
// id, as the Java client does), so retries of one event land in one
// partition and so with one consumer.
type producer struct {
	cl    *kgo.Client
	topic string
	max   int // max_buffered_records
}

func newProducer(c KafkaConfig) (*producer, error) {
	cl, err := kgo.NewClient(append(kafka.ProducerOpts(c.outputConfig()), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &producer{cl: cl, topic: c.Topic, max: c.MaxBufferedRecords}, nil
}

// pending is one request's records waiting for the broker.
type pending struct {
	mu   sync.Mutex
	left int
	err  error // the first produce error
	done chan struct{}
}

// promise is called by franz-go once per record, on its promise goroutine.
func (p *pending) promise(_ *kgo.Record, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil && p.err == nil {
		p.err = err
	}
	p.left--
	if p.left == 0 {
		close(p.done)
	}
}

// append produces recs and waits until the broker has acknowledged every
// one, or ctx ends (the collector's append_timeout). It copies the records:
// franz-go keeps them until the broker answers, which can be after append
// returned. Errors are classed for the collector (collector.Appender):
// too many records buffered is log.ErrFull (503), a record too large
// log.ErrTooLarge (413), a timeout the context's error (503), any other
// produce error log.ErrFailed (503). Records of a request that is not
// answered 200 may still reach the topic (after a timeout, or when some
// were produced before another failed): clients retry, and event ids
// deduplicate.
func (p *producer) append(ctx context.Context, recs []log.Record) error {
	if n := p.cl.BufferedProduceRecords(); int(n)+len(recs) > p.max {
		return fmt.Errorf("kafka: %d records wait for the brokers of topic %s (kafka.max_buffered_records is %d): %w", n, p.topic, p.max, log.ErrFull)
	}
	size := 0
	for i := range recs {
		size += len(recs[i].Key) + len(recs[i].Value)
		for _, h := range recs[i].Headers {
			size += len(h.Value)
		}
	}
	buf := make([]byte, 0, size)
	krs := make([]kgo.Record, len(recs))
	for i := range recs {
		r, kr := &recs[i], &krs[i]
		if r.Key != nil {
			buf = append(buf, r.Key...)
			kr.Key = buf[len(buf)-len(r.Key):]
		}
		buf = append(buf, r.Value...)
		kr.Value = buf[len(buf)-len(r.Value):]
		kr.Timestamp = r.Timestamp
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for j, h := range r.Headers {
			buf = append(buf, h.Value...)
			kr.Headers[j] = kgo.RecordHeader{Key: h.Key, Value: buf[len(buf)-len(h.Value):]}
		}
	}
	w := &pending{left: len(krs), done: make(chan struct{})}
	for i := range krs {
		p.cl.TryProduce(ctx, &krs[i], w.promise)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return fmt.Errorf("kafka: produce to %s: no acknowledgement from the brokers in time: %w", p.topic, ctx.Err())
	}
	return p.classify(w.err)
}

// classify maps a produce error to the collector's classes.
func (p *producer) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("kafka: produce to %s: %w", p.topic, err)
	case errors.Is(err, kgo.ErrMaxBuffered):
		return fmt.Errorf("kafka: produce to %s: %w: %w", p.topic, log.ErrFull, err)
	case errors.Is(err, kerr.MessageTooLarge), errors.Is(err, kerr.RecordListTooLarge):
		return fmt.Errorf("kafka: produce to %s: %w: %w", p.topic, log.ErrTooLarge, err)
	default:
		return fmt.Errorf("kafka: produce to %s: %w: %w", p.topic, log.ErrFailed, err)
	}
}

// close waits up to ctx for records still buffered, then disconnects.
func (p *producer) close(ctx context.Context) error {
	err := p.cl.Flush(ctx)
	p.cl.Close()
	if err != nil {
		return fmt.Errorf("kafka: flush of the collector's producer: %w", err)
	}
	return nil
}

// KafkaInput is one instance of the http input buffering in Kafka: a
// member of the kafka block's consumer group, which is what it reads
// (Lag, InFlight, Snapshot, Restore and Committed are the kafka input's),
// plus the node's shared HTTP server.
type KafkaInput struct {
	*kafka.Input
	n   *Node
	log *slog.Logger
}

var (
	_ runtime.Input       = (*KafkaInput)(nil)
	_ runtime.InputCloser = (*KafkaInput)(nil)
	_ runtime.Stateful    = (*KafkaInput)(nil)
	_ runtime.Drainer     = (*KafkaInput)(nil)
	_ collector.Appender  = (*Node)(nil)
)

func (n *Node) newKafkaInput(env runtime.Env, logger *slog.Logger) (*KafkaInput, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.refs == 0 {
		prod, err := newProducer(n.cfg.Kafka)
		if err != nil {
			return nil, err
		}
		srv, err := collector.New(n.cfg.Config, n, collector.Options{Logger: logger, Registerer: env.Registerer, Overloaded: n.overloaded})
		if err != nil {
			prod.cl.Close()
			return nil, err
		}
		n.prod, n.srv = prod, srv
	}
	if n.newMember == nil {
		n.newMember = kafka.NewInputs(n.cfg.Kafka.inputConfig())
	}
	member, err := n.newMember(env)
	if err != nil {
		if n.refs == 0 {
			n.prod.cl.Close()
		}
		return nil, err
	}
	n.refs++
	n.members = append(n.members, member)
	return &KafkaInput{Input: member, n: n, log: logger}, nil
}

// Run serves HTTP (shared by the instances) and consumes this member's
// partitions until ctx ends.
func (in *KafkaInput) Run(ctx context.Context, out runtime.Outlet) error {
	if err := in.n.start(in.log); err != nil {
		return err
	}
	err := in.Input.Run(ctx, out)
	return errors.Join(err, in.n.finish())
}

// Close commits what was acknowledged (as the kafka input does), leaves
// the group, and closes the producer with the last instance.
func (in *KafkaInput) Close(ctx context.Context) error {
	err := in.Input.Close(ctx)
	in.n.mu.Lock()
	in.n.refs--
	last := in.n.refs == 0
	in.n.mu.Unlock()
	if last {
		err = errors.Join(err, in.n.prod.close(ctx))
	}
	return err
}
