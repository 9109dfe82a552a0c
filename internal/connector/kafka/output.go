package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

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
}

// DefaultOutputConfig returns the defaults.
func DefaultOutputConfig() OutputConfig {
	return OutputConfig{Compression: "lz4", Linger: 5 * time.Millisecond, MaxBufferedRecords: 100000, ClientID: "weir"}
}

// Validate checks the settings that tags cannot.
func (c OutputConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, &config.FieldError{Field: "brokers", Msg: "no brokers", Expected: "at least one host:port"})
	}
	if c.Topic == "" {
		errs = append(errs, &config.FieldError{Field: "topic", Msg: "no topic", Expected: "a topic name"})
	}
	if c.MaxBufferedRecords < 1 {
		errs = append(errs, &config.FieldError{Field: "max_buffered_records", Msg: "max_buffered_records is below 1", Expected: "at least 1"})
	}
	if c.Linger < 0 {
		errs = append(errs, &config.FieldError{Field: "linger", Msg: "linger is negative", Expected: "a duration of 0s or more"})
	}
	return errors.Join(errs...)
}

var codecs = map[string]kgo.CompressionCodec{
	"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
	"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
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
type Output struct {
	cfg       OutputConfig
	log       *slog.Logger
	cl        *kgo.Client
	key, part *expr.Program
	rec       runtime.Record

	mu  sync.Mutex
	err error // the first produce error since the last Flush
}

var _ runtime.Output = (*Output)(nil)

// NewOutput returns a producer. It connects lazily.
func NewOutput(cfg OutputConfig, env runtime.Env) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	partitioner := kgo.StickyKeyPartitioner(nil)
	if cfg.Partition != nil {
		partitioner = kgo.ManualPartitioner()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.DefaultProduceTopic(cfg.Topic),
		kgo.RecordPartitioner(partitioner),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(codecs[cfg.Compression]),
		kgo.ProducerLinger(cfg.Linger),
		kgo.MaxBufferedRecords(cfg.MaxBufferedRecords),
	)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return &Output{cfg: cfg, log: log, cl: cl}, nil
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
	for i := range recs {
		o.cl.Produce(ctx, &recs[i], o.promise)
	}
	return nil
}

// Flush waits until the broker acknowledged every record written, and
// returns the first produce error since the last Flush.
func (o *Output) Flush(ctx context.Context) error {
	if err := o.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flush: %w", err)
	}
	o.mu.Lock()
	err := o.err
	o.err = nil
	o.mu.Unlock()
	if err != nil {
		return fmt.Errorf("kafka: produce to %s: %w", o.cfg.Topic, err)
	}
	return nil
}

// Close flushes and disconnects.
func (o *Output) Close(ctx context.Context) error {
	err := o.Flush(ctx)
	o.cl.Close()
	return err
}
