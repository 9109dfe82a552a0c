package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// OutputConfig is the YAML configuration of the kafka output.
type OutputConfig struct {
	Brokers            []string      `yaml:"brokers" required:"true" doc:"seed brokers, host:port"`
	Topic              string        `yaml:"topic" required:"true" doc:"topic to produce to"`
	Key                *config.Expr  `yaml:"key" doc:"expression for the record key (strings as is, other values as JSON); default: the event's key"`
	Partition          *config.Expr  `yaml:"partition" doc:"expression for the partition number; default: by the key's hash, or sticky without a key"`
	Compression        string        `yaml:"compression" enum:"none|gzip|snappy|lz4|zstd" default:"lz4" doc:"compression of record batches"`
	Linger             time.Duration `yaml:"linger" default:"5ms" doc:"how long a partition's batch may wait for more records"`
	MaxBufferedRecords int           `yaml:"max_buffered_records" default:"100000" doc:"records held by the producer before Write blocks"`
	ClientID           string        `yaml:"client_id" default:"weir" doc:"client id sent to the brokers"`
	Guarantee          string        `yaml:"guarantee" enum:"at_least_once|exactly_once" default:"at_least_once" doc:"at_least_once: a record counts as written once the brokers have it, and a restart may write some again; exactly_once: the records between two checkpoints go in one Kafka transaction, committed once the checkpoint is durable (needs state.dir; consumers must read with isolation read_committed)"`
	TransactionTimeout time.Duration `yaml:"transaction_timeout" default:"60s" doc:"with exactly_once, how long the broker lets a transaction stay open before it aborts it: more than the checkpoint interval plus a checkpoint's duration, and more than weir takes to restart after a crash; at most the broker's transaction.max.timeout.ms (15m by default)"`
	TransactionalID    string        `yaml:"transactional_id" default:"" doc:"with exactly_once, the prefix of the transactional ids: instance i of a process uses <prefix>-<process>-<i>-0 and -1, where <process> is a random id the process keeps in its checkpoints (so a restart reuses its ids and another process never does); default weir-<pipeline>-<node>. Unique to this output"`
	OnLostTransaction  string        `yaml:"on_lost_transaction" enum:"fail|proceed" default:"fail" doc:"with checkpoints, what a start does when the transaction the last checkpoint recorded turns out to be aborted by the broker (its records are lost: the checkpoint's input positions are past them): fail, or proceed after logging the loss"`
}

// DefaultOutputConfig returns the defaults.
func DefaultOutputConfig() OutputConfig {
	return OutputConfig{Compression: "lz4", Linger: 5 * time.Millisecond, MaxBufferedRecords: 100000, ClientID: "weir",
		Guarantee: AtLeastOnce, TransactionTimeout: time.Minute, OnLostTransaction: "fail"}
}

// Delivery guarantees of the output.
const (
	AtLeastOnce = "at_least_once"
	ExactlyOnce = "exactly_once"
)

// Validate checks the settings that tags cannot.
func (c OutputConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, &config.FieldError{Field: "brokers", Msg: "no brokers", Expected: "at least one host:port"})
	}
	if c.Topic == "" {
		errs = append(errs, &config.FieldError{Field: "topic", Msg: "no topic", Expected: "a topic name"})
	}
	if _, ok := codecs[c.Compression]; !ok {
		errs = append(errs, &config.FieldError{Field: "compression", Msg: fmt.Sprintf("compression %q", c.Compression), Expected: "none, gzip, snappy, lz4 or zstd"})
	}
	if c.MaxBufferedRecords < 1 {
		errs = append(errs, &config.FieldError{Field: "max_buffered_records", Msg: "max_buffered_records is below 1", Expected: "at least 1"})
	}
	if c.Linger < 0 {
		errs = append(errs, &config.FieldError{Field: "linger", Msg: "linger is negative", Expected: "a duration of 0s or more"})
	}
	switch c.Guarantee {
	case AtLeastOnce:
		if c.TransactionalID != "" {
			errs = append(errs, &config.FieldError{Field: "transactional_id", Msg: "transactional_id is set but guarantee is " + c.Guarantee, Expected: "guarantee: exactly_once"})
		}
	case ExactlyOnce:
	default:
		errs = append(errs, &config.FieldError{Field: "guarantee", Msg: fmt.Sprintf("guarantee %q", c.Guarantee), Expected: "at_least_once or exactly_once"})
	}
	if c.TransactionTimeout < time.Second || c.TransactionTimeout > 24*time.Hour {
		errs = append(errs, &config.FieldError{Field: "transaction_timeout", Msg: "transaction_timeout is " + c.TransactionTimeout.String(), Expected: "a duration from 1s to 24h",
			Hint: "it must exceed the checkpoint interval, and be at most the broker's transaction.max.timeout.ms"})
	}
	if c.OnLostTransaction != "fail" && c.OnLostTransaction != "proceed" {
		errs = append(errs, &config.FieldError{Field: "on_lost_transaction", Msg: fmt.Sprintf("on_lost_transaction %q", c.OnLostTransaction), Expected: "fail or proceed"})
	}
	return errors.Join(errs...)
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
}

// ProducerOpts are the client options of a producer for cfg: brokers,
// client id, the topic, acks from all in-sync replicas (idempotent),
// compression, linger and the buffer bound. The kafka output and the http
// input's Kafka buffer both start from them.
func ProducerOpts(cfg OutputConfig) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codecs[cfg.Compression]),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
		// A retriable produce error (a leader moving, too few in-sync
		// replicas) makes the client refresh its metadata before it
		// retries, and by default no sooner than 5 s after the last
		// refresh: every write would wait out that much after a short
		// outage (the collector answered 503 for 3.6 s after one).
		kgo.MetadataMinAge(250 * time.Millisecond),
	}
}

// OutputSpec is a checked output configuration with its expressions
// compiled; New makes instances.
type OutputSpec struct {
	cfg       OutputConfig
	key, part *expr.Program
}

// CompileOutput checks cfg and compiles its expressions; field names the
// node in errors.
func CompileOutput(cfg OutputConfig, field string) (*OutputSpec, config.Errors) {
	var errs config.Errors
	sp := &OutputSpec{cfg: cfg}
	if cfg.Key != nil {
		prog, ce := cfg.Key.Compile(field + ".key")
		if ce != nil {
			errs.Add(ce)
		}
		sp.key = prog
	}
	if cfg.Partition != nil {
		prog, ce := cfg.Partition.Compile(field + ".partition")
		if ce != nil {
			errs.Add(ce)
		}
		sp.part = prog
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return sp, nil
}

// New returns one output instance.
func (sp *OutputSpec) New(env runtime.Env) (*Output, error) {
	o, err := NewOutput(sp.cfg, env)
	if err != nil {
		return nil, err
	}
	o.key, o.part = sp.key, sp.part
	return o, nil
}

// Output produces events to a topic: with the key expression's value, or
// the event's key (partitioned by the key's hash, murmur2 as the Java
// client does; without a key, sticky partitions), or the partition
// expression's number; its headers become record headers. An event whose
// key or partition cannot be computed follows the output's error policy.
//
// With guarantee at_least_once it produces with an idempotent producer.
// With exactly_once it is transactional; txn.go has that protocol. Write,
// Flush and Close run on the output's goroutine; Restore, Snapshot and
// Committed on the checkpoint coordinator's. txMu serializes them.
type Output struct {
	cfg       OutputConfig
	env       runtime.Env
	log       *slog.Logger
	opts      []kgo.Opt // options of every producer client
	key, part *expr.Program
	rec       runtime.Record
	exactly   bool
	// stateKey is this instance's key in the node's checkpoint state.
	stateKey []byte
	// linked: this output commits the offsets of its pipeline's kafka
	// inputs in its transactions (link.go); fixed by Restore.
	linked bool

	txMu sync.Mutex // held by Write and Flush, and by the Stateful methods
	// cl is the producer: at least once, the only client; exactly once,
	// txn.clients[txn.cur] once that exists.
	cl  *kgo.Client
	txn txnState
	// settled are the state keys whose transactions Restore settled and
	// no Snapshot of this instance rewrites: the next checkpoint deletes
	// them.
	settled [][]byte

	mu  sync.Mutex // taken by produce promises: never held while taking txMu
	err error      // the first produce error since the last Flush
}

var (
	_ runtime.Output   = (*Output)(nil)
	_ runtime.Stateful = (*Output)(nil)
)

// NewOutput returns a producer. It connects lazily. With exactly_once the
// pipeline must have checkpoints (runtime.Env.Checkpointing).
func NewOutput(cfg OutputConfig, env runtime.Env) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	exactly := cfg.Guarantee == ExactlyOnce
	if exactly && !env.Checkpointing {
		return nil, &config.FieldError{Field: "guarantee", Msg: "exactly_once needs checkpoints (the output commits one transaction per checkpoint) and the pipeline has none: set state.dir, or use guarantee: at_least_once"}
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Records to other topics than the output's (the changelog of keyed
	// state, changelog.go) name their partition.
	partitioner := topicPartitioner{topic: cfg.Topic, def: kgo.StickyKeyPartitioner(nil), other: kgo.ManualPartitioner()}
	if cfg.Partition != nil {
		partitioner.def = kgo.ManualPartitioner()
	}
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.TxnOffsetCommit), 5) // v6 names topics by id; we send names
	o := &Output{cfg: cfg, env: env, log: log, exactly: exactly,
		stateKey: fmt.Appendf(nil, "%s%d", txnKeyPrefix, env.Instance),
		opts:     append(ProducerOpts(cfg), kgo.RecordPartitioner(partitioner), kgo.MaxVersions(vs))}
	if exactly {
		// The transactional ids are set by Restore, which knows the
		// process's id; the inputs of the pipeline are built already.
		links.claim(o)
		return o, nil
	}
	cl, err := kgo.NewClient(o.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	o.cl = cl
	return o, nil
}

// topicPartitioner partitions the records of topic with def, others with
// other.
type topicPartitioner struct {
	topic      string
	def, other kgo.Partitioner
}

func (p topicPartitioner) ForTopic(t string) kgo.TopicPartitioner {
	if t == p.topic {
		return p.def.ForTopic(t)
	}
	return p.other.ForTopic(t)
}

func (o *Output) promise(_ *kgo.Record, err error) {
	if err == nil {
		return
	}
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

// takeErr returns and clears the first produce error since the last call.
func (o *Output) takeErr() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.err
	o.err = nil
	return err
}

// Write hands the events to the producer (copies: the producer keeps them
// until the broker answers). Keys and partitions are computed first, so an
// event they fail on fails the batch before any of it is produced.
func (o *Output) Write(ctx context.Context, evs []event.Event) error {
	size := 0
	for i := range evs {
		size += len(evs[i].Key) + len(evs[i].Value)
	}
	buf := make([]byte, 0, size)
	recs := make([]kgo.Record, len(evs))
	for i := range evs {
		ev := &evs[i]
		r := &recs[i]
		key := ev.Key
		if o.key != nil || o.part != nil {
			o.rec.Reset(ev)
		}
		if o.key != nil {
			v, err := o.key.Eval(&o.rec)
			if err != nil {
				return fmt.Errorf("kafka: key of the event at offset %d: %w", ev.Offset, err)
			}
			switch v.Kind {
			case jsondoc.Missing, jsondoc.Null:
				key = nil
			case jsondoc.String:
				key = v.S
			default:
				key = jsondoc.AppendValue(nil, v)
			}
		}
		if o.part != nil {
			v, err := o.part.Eval(&o.rec)
			if err != nil {
				return fmt.Errorf("kafka: partition of the event at offset %d: %w", ev.Offset, err)
			}
			if v.Kind != jsondoc.Int || v.I < 0 || v.I > 1<<31-1 {
				return fmt.Errorf("kafka: partition of the event at offset %d is %s, not a partition number", ev.Offset, v.Kind)
			}
			r.Partition = int32(v.I)
		}
		if key != nil {
			buf = append(buf, key...)
			r.Key = buf[len(buf)-len(key):]
		}
		buf = append(buf, ev.Value...)
		r.Value = buf[len(buf)-len(ev.Value):]
		if ev.Time != 0 {
			r.Timestamp = time.Unix(0, ev.Time)
		}
		for _, h := range ev.Headers {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: append([]byte(nil), h.Value...)})
		}
	}
	o.txMu.Lock()
	defer o.txMu.Unlock()
	cl := o.cl
	if o.exactly {
		var err error
		if cl, err = o.beginLocked(); err != nil {
			return err
		}
	}
	for i := range recs {
		cl.Produce(ctx, &recs[i], o.promise)
	}
	o.txn.records += len(recs)
	return nil
}

// Flush waits until the broker acknowledged every record written, and
// returns the first produce error since the last Flush. With exactly_once
// the records are in the open transaction: they count as written, and the
// checkpoint that covers them commits it.
func (o *Output) Flush(ctx context.Context) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	if o.cl == nil {
		return nil
	}
	err := o.flushLocked(ctx)
	if err != nil && o.exactly {
		return o.breakLocked(err)
	}
	return err
}

func (o *Output) flushLocked(ctx context.Context) error {
	if err := o.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flush: %w", err)
	}
	if err := o.takeErr(); err != nil {
		return fmt.Errorf("kafka: produce to %s: %w", o.cfg.Topic, err)
	}
	return nil
}

// Close flushes and disconnects. With exactly_once, a transaction that no
// checkpoint recorded is aborted (the inputs replay its records); one that
// a Snapshot recorded is left to the next start, which commits it if that
// checkpoint completed.
func (o *Output) Close(ctx context.Context) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	if !o.exactly {
		err := o.flushLocked(ctx)
		o.cl.Close()
		return err
	}
	links.release(o)
	o.abortLocked(ctx)
	for _, cl := range o.txn.clients {
		if cl != nil {
			cl.Close()
		}
	}
	return nil
}
