package logio

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
)

// LogConfig is how a node opens a log directory. The log input, the log
// output and the http input share it.
type LogConfig struct {
	Dir          string          `yaml:"dir" required:"true" doc:"Directory of the log: one subdirectory per partition, created if missing."`
	Partitions   int             `yaml:"partitions" default:"0" doc:"Number of partitions; 0 means as many as the directory holds (at least 1). Appends spread over them; each input instance reads partitions p where p mod parallelism is its index."`
	Durability   string          `yaml:"durability" default:"fsync" doc:"fsync: an append is acknowledged after it is on disk (survives a power loss). none: after it is written to the OS (survives a process crash, not a power loss) — an explicit opt-out."`
	SegmentBytes config.ByteSize `yaml:"segment_bytes" default:"128MiB" doc:"Size at which a partition starts a new segment file."`
	MaxBytes     config.ByteSize `yaml:"max_bytes" default:"0" doc:"Cap on each partition's size; when reached and nothing can be deleted, appends are refused (backpressure) and nothing acknowledged is dropped. 0 means no cap; else at least 2 × segment_bytes."`
	RetainBytes  config.ByteSize `yaml:"retain_bytes" default:"0" doc:"Keep at least this many bytes of already consumed segments per partition for replay."`
	RetainTime   time.Duration   `yaml:"retain_time" default:"0" doc:"Keep consumed segments whose newest record is younger than this."`
}

// Validate checks c.
func (c LogConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, &config.FieldError{Field: "dir", Msg: "no log directory", Expected: "a directory path"})
	}
	if c.Partitions < 0 || c.Partitions > 4096 {
		errs = append(errs, &config.FieldError{Field: "partitions", Msg: fmt.Sprintf("partitions is %d", c.Partitions), Expected: "0 (as many as exist) to 4096"})
	}
	if c.Durability != "fsync" && c.Durability != "none" {
		errs = append(errs, &config.FieldError{Field: "durability", Msg: fmt.Sprintf("unknown durability %q", c.Durability), Expected: "fsync or none"})
	}
	if err := c.options().Validate(); err != nil {
		errs = append(errs, &config.FieldError{Field: "max_bytes", Msg: err.Error(), Expected: "valid log limits"})
	}
	return errors.Join(errs...)
}

func (c LogConfig) options() log.Options {
	o := log.Options{
		SegmentBytes: int64(c.SegmentBytes),
		MaxBytes:     int64(c.MaxBytes),
		RetainBytes:  int64(c.RetainBytes),
		RetainTime:   c.RetainTime,
	}
	if c.Durability == "none" {
		o.Durability = log.DurabilityNone
	}
	return o
}

// Open opens the log (shared within the process).
func (c LogConfig) Open() (*Shared, error) {
	n := c.Partitions
	if n == 0 {
		n = countPartitions(c.Dir)
	}
	return OpenShared(c.Dir, n, c.options())
}

func countPartitions(dir string) int {
	parts, err := log.FindPartitions(dir)
	if err != nil {
		return 1 // a new log
	}
	return max(len(parts), 1)
}

// InputConfig is the YAML configuration of the log input.
type InputConfig struct {
	LogConfig      `yaml:",inline"`
	Reader         string          `yaml:"reader" default:"" doc:"Name this input commits its progress under in the log; default <pipeline>.<node>. Two pipelines reading one log with different names each get every record."`
	Start          string          `yaml:"start" default:"earliest" doc:"Where to start a partition that has no checkpointed or committed position: earliest or latest."`
	MaxBatchBytes  config.ByteSize `yaml:"max_batch_bytes" default:"1MiB" doc:"Upper bound on the record bytes of one batch."`
	PollInterval   time.Duration   `yaml:"poll_interval" default:"20ms" doc:"How often an idle partition is checked for new records."`
	CommitInterval time.Duration   `yaml:"commit_interval" default:"1s" doc:"Without checkpoints: how often acknowledged progress is committed to the log (and at a clean stop). With checkpoints, progress is part of each checkpoint."`
	StopAtEnd      bool            `yaml:"stop_at_end" default:"false" doc:"Finish once every partition is read up to the end it had when the input started (a bounded replay: windows then close and the pipeline stops); by default the input follows the log."`
}

// DefaultInputConfig returns the defaults.
func DefaultInputConfig() InputConfig {
	return InputConfig{LogConfig: DefaultLogConfig(), Start: "earliest", MaxBatchBytes: config.MiB,
		PollInterval: 20 * time.Millisecond, CommitInterval: time.Second}
}

// DefaultLogConfig returns the defaults of LogConfig.
func DefaultLogConfig() LogConfig {
	return LogConfig{Durability: "fsync", SegmentBytes: 128 * config.MiB}
}

// Validate checks c.
func (c InputConfig) Validate() error {
	errs := []error{c.LogConfig.Validate()}
	if c.Start != "earliest" && c.Start != "latest" {
		errs = append(errs, &config.FieldError{Field: "start", Msg: fmt.Sprintf("unknown start %q", c.Start), Expected: "earliest or latest"})
	}
	if c.MaxBatchBytes < 1 {
		errs = append(errs, &config.FieldError{Field: "max_batch_bytes", Msg: "max_batch_bytes must be positive", Expected: "a size such as 1MiB"})
	}
	return errors.Join(errs...)
}

// Input is the log input: a Source that owns a reference on its log.
type Input struct {
	*Source
}

// NewInput opens the log and returns one instance's input.
func NewInput(c InputConfig, env runtime.Env) (*Input, error) {
	sh, err := c.Open()
	if err != nil {
		return nil, err
	}
	reader := c.Reader
	if reader == "" {
		reader = env.Pipeline + "." + env.Node
	}
	src, err := NewSource(sh, SourceOptions{Reader: reader, Start: c.Start, MaxBatchBytes: int(c.MaxBatchBytes),
		Poll: c.PollInterval, CommitInterval: c.CommitInterval, StopAtEnd: c.StopAtEnd}, env)
	if err != nil {
		_ = sh.Release()
		return nil, err
	}
	return &Input{Source: src}, nil
}

// Close commits progress and releases the log.
func (in *Input) Close(ctx context.Context) error {
	err := in.Source.Close(ctx)
	return errors.Join(err, in.sh.Release())
}

// OutputConfig is the YAML configuration of the log output.
type OutputConfig struct {
	LogConfig `yaml:",inline"`
}

// DefaultOutputConfig returns the defaults.
func DefaultOutputConfig() OutputConfig { return OutputConfig{LogConfig: DefaultLogConfig()} }

// Output appends events to a log. Events with a key go to the partition of
// runtime.KeyHash (as on key_hash edges), others round-robin per flush; a
// Flush returns after the appended records are durable.
type Output struct {
	sh      *Shared
	pending [][]log.Record // per partition
	rr      atomic.Uint64
}

// NewOutput opens the log for one output instance.
func NewOutput(c OutputConfig, _ runtime.Env) (*Output, error) {
	sh, err := c.Open()
	if err != nil {
		return nil, err
	}
	return &Output{sh: sh, pending: make([][]log.Record, sh.Log.Partitions())}, nil
}

// Health implements runtime.HealthReporter (Shared.Health).
func (o *Output) Health() (degraded bool, detail string) { return o.sh.Health(nil) }

// Write buffers evs as records (copying their bytes).
func (o *Output) Write(_ context.Context, evs []event.Event) error {
	n := uint64(len(o.pending))
	rr := o.rr.Add(1)
	for i := range evs {
		e := &evs[i]
		p := rr % n
		if len(e.Key) > 0 {
			p = runtime.KeyHash(e.Key) % n
		}
		r := log.Record{Key: append([]byte(nil), e.Key...), Value: append([]byte(nil), e.Value...)}
		if e.Time != 0 {
			r.Timestamp = time.Unix(0, e.Time)
		}
		for _, h := range e.Headers {
			r.Headers = append(r.Headers, log.Header{Key: h.Key, Value: append([]byte(nil), h.Value...)})
		}
		o.pending[p] = append(o.pending[p], r)
	}
	return nil
}

// Flush appends what was written, one append per partition, and returns
// when it is durable.
func (o *Output) Flush(ctx context.Context) error {
	for p, recs := range o.pending {
		if len(recs) == 0 {
			continue
		}
		if _, err := o.sh.Log.Partition(p).Append(ctx, recs); err != nil {
			return fmt.Errorf("partition %d: %w", p, err)
		}
		clear(recs)
		o.pending[p] = recs[:0]
	}
	o.sh.Notify()
	return nil
}

// Close flushes and releases the log.
func (o *Output) Close(ctx context.Context) error {
	err := o.Flush(ctx)
	return errors.Join(err, o.sh.Release())
}
