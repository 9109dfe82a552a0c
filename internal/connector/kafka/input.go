// Package kafka is the Kafka input and output, on franz-go: any broker that
// speaks the Kafka protocol (Apache Kafka, Redpanda, MSK, Confluent).
//
// The input is a consumer-group member per instance (cooperative-sticky
// rebalancing): it emits one batch per fetched partition, with the record's
// key, value, timestamp and headers and the partition set for watermarks,
// and commits a partition's offset only up to records whose every derived
// event is written (at least once). It reads with read_committed isolation
// by default: records of aborted or open transactions are never emitted. While downstream is full, Emit blocks
// and no more is polled: franz-go's fetch buffer is bounded by
// fetch_max_bytes, so memory stays flat and the broker keeps the backlog.
//
// The output produces with an idempotent producer, acks from all in-sync
// replicas, and acknowledges events only after the broker did (Flush).
// With guarantee exactly_once it writes one transaction per checkpoint and
// commits it once the checkpoint is durable (txn.go has the protocol).
//
// Threading: Run, Write, Flush and Close are called by one goroutine per
// instance, Restore, Snapshot and Committed by the checkpoint coordinator's;
// franz-go calls the rebalance callbacks and produce promises on its own
// goroutines, which take the input's mutex (the output's promises take
// only Output.mu, never held while waiting on the producer).
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// InputConfig is the YAML configuration of the kafka input.
type InputConfig struct {
	Brokers        []string        `yaml:"brokers" required:"true" doc:"seed brokers, host:port"`
	Topics         []string        `yaml:"topics" required:"true" doc:"topics to consume"`
	Group          string          `yaml:"group" required:"true" doc:"consumer group; every instance (and every weir process with the same group) shares the partitions"`
	Start          string          `yaml:"start" enum:"earliest|latest|time" default:"earliest" doc:"where a partition without a committed offset starts: earliest, latest, or time (the first record at or after start_time)"`
	StartTime      string          `yaml:"start_time" default:"" doc:"with start: time, an RFC 3339 time"`
	FetchMaxBytes  config.ByteSize `yaml:"fetch_max_bytes" default:"16MiB" doc:"upper bound on the bytes one fetch buffers, which bounds the input's memory"`
	MaxPollRecords int             `yaml:"max_poll_records" default:"4096" doc:"records taken per poll"`
	CommitInterval time.Duration   `yaml:"commit_interval" default:"1s" doc:"how often acknowledged offsets are committed to the group (and at a rebalance and a clean stop)"`
	ClientID       string          `yaml:"client_id" default:"weir" doc:"client id sent to the brokers"`
	Isolation      string          `yaml:"isolation" enum:"read_committed|read_uncommitted" default:"read_committed" doc:"read_committed: only records of committed transactions (and non-transactional ones), never those of aborted or still open transactions; read_uncommitted: every record, as soon as it is written"`
}

// DefaultInputConfig returns the defaults.
func DefaultInputConfig() InputConfig {
	return InputConfig{Start: "earliest", FetchMaxBytes: 16 * config.MiB, MaxPollRecords: 4096, CommitInterval: time.Second, ClientID: "weir", Isolation: "read_committed"}
}

// Validate checks the settings that tags cannot.
func (c InputConfig) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, &config.FieldError{Field: "brokers", Msg: "no brokers", Expected: "at least one host:port"})
	}
	if len(c.Topics) == 0 {
		errs = append(errs, &config.FieldError{Field: "topics", Msg: "no topics", Expected: "at least one topic"})
	}
	if c.Group == "" {
		errs = append(errs, &config.FieldError{Field: "group", Msg: "no consumer group", Expected: "a group name", Hint: "give each version of a pipeline its own group"})
	}
	if c.Start == "time" {
		if _, err := time.Parse(time.RFC3339, c.StartTime); err != nil {
			errs = append(errs, &config.FieldError{Field: "start_time", Msg: fmt.Sprintf("start_time %q is not an RFC 3339 time", c.StartTime), Expected: "a time such as 2024-05-01T00:00:00Z", Hint: "start: time reads from the first record at or after start_time"})
		}
	} else if c.StartTime != "" {
		errs = append(errs, &config.FieldError{Field: "start_time", Msg: "start_time is set but start is " + c.Start, Expected: "start: time"})
	}
	if c.FetchMaxBytes < 64*config.KiB {
		errs = append(errs, &config.FieldError{Field: "fetch_max_bytes", Msg: "fetch_max_bytes is " + c.FetchMaxBytes.String(), Expected: "at least 64KiB"})
	}
	if c.MaxPollRecords < 1 {
		errs = append(errs, &config.FieldError{Field: "max_poll_records", Msg: "max_poll_records is " + strconv.Itoa(c.MaxPollRecords), Expected: "at least 1"})
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, &config.FieldError{Field: "commit_interval", Msg: "commit_interval is " + c.CommitInterval.String(), Expected: "a duration greater than zero"})
	}
	if c.Isolation != "read_committed" && c.Isolation != "read_uncommitted" {
		errs = append(errs, &config.FieldError{Field: "isolation", Msg: fmt.Sprintf("isolation %q", c.Isolation), Expected: "read_committed or read_uncommitted"})
	}
	return errors.Join(errs...)
}

// Input is one instance of the kafka input: one group member.
type Input struct {
	cfg InputConfig
	env runtime.Env
	log *slog.Logger
	cl  *kgo.Client

	mu    sync.Mutex
	parts map[tp]*partState
	ids   map[tp]int32 // partition ids for watermarks, stable for the run
	// restored are the offsets of the last checkpoint (with checkpoints):
	// a partition assigned to this member starts there.
	restored map[tp]int64
}

type tp struct {
	topic string
	part  int32
}

// partState tracks one assigned partition's acknowledged progress.
type partState struct {
	prog      lines.Progress
	committed int64 // offset last committed to the group; -1 none
	snap      int64 // offset recorded by the last Snapshot; -1 none
	durable   int64 // offset of the last completed checkpoint; -1 none
	// end is the partition's end as the last fetch saw it (the last stable
	// offset under read_committed, else the high watermark); first is the
	// first offset read from it; -1 until known. For Lag.
	end, first int64
}

var (
	_ runtime.Input       = (*Input)(nil)
	_ runtime.InputCloser = (*Input)(nil)
	_ runtime.Stateful    = (*Input)(nil)
	_ runtime.Drainer     = (*Input)(nil)
)

// NewInput returns one group member. It connects lazily, in Run.
func NewInput(cfg InputConfig, env runtime.Env) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Input{cfg: cfg, env: env, log: log, parts: map[tp]*partState{}, ids: map[tp]int32{}}, nil
}

// connect creates the client, which joins the group: in Run, after
// Restore, so that partitions assigned at once start at the checkpoint.
func (in *Input) connect() error {
	cfg := in.cfg
	reset := kgo.NewOffset().AtStart()
	switch cfg.Start {
	case "latest":
		reset = kgo.NewOffset().AtEnd()
	case "time":
		t, _ := time.Parse(time.RFC3339, cfg.StartTime)
		reset = kgo.NewOffset().AfterMilli(t.UnixMilli())
	}
	isolation := kgo.ReadCommitted() // franz-go's default is read_uncommitted
	if cfg.Isolation == "read_uncommitted" {
		isolation = kgo.ReadUncommitted()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.ClientID(cfg.ClientID),
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(cfg.Topics...),
		kgo.ConsumeResetOffset(reset),
		kgo.FetchIsolationLevel(isolation),
		kgo.DisableAutoCommit(),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.FetchMaxBytes(int32(min(int64(cfg.FetchMaxBytes), 1<<30))),
		kgo.OnPartitionsAssigned(in.assigned),
		kgo.OnPartitionsRevoked(in.revoked),
		kgo.OnPartitionsLost(in.lost),
	)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	in.mu.Lock()
	in.cl = cl
	in.mu.Unlock()
	return nil
}

func (in *Input) state(t tp) *partState {
	ps := in.parts[t]
	if ps == nil {
		ps = &partState{committed: -1, snap: -1, durable: -1, end: -1, first: -1}
		in.parts[t] = ps
		if _, ok := in.ids[t]; !ok {
			in.ids[t] = int32(len(in.ids))
		}
	}
	return ps
}

// Run polls until ctx ends.
func (in *Input) Run(ctx context.Context, out runtime.Outlet) error {
	if err := in.connect(); err != nil {
		return err
	}
	lastCommit := time.Now()
	for {
		fetches := in.cl.PollRecords(ctx, in.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			return nil
		}
		if errs := fetches.Errors(); len(errs) > 0 {
			for _, fe := range errs {
				if errors.Is(fe.Err, context.Canceled) {
					return nil
				}
			}
			fe := errs[0]
			return fmt.Errorf("kafka: fetch %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		var emitErr error
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			in.noteEnd(p)
			if emitErr != nil || len(p.Records) == 0 {
				return
			}
			emitErr = in.emit(ctx, out, p)
		})
		if emitErr != nil {
			return emitErr
		}
		if !in.env.Checkpointing && time.Since(lastCommit) >= in.cfg.CommitInterval {
			if err := in.commit(ctx, nil); err != nil {
				in.log.Warn("kafka: commit failed; it is retried", slog.Any("err", err))
			}
			lastCommit = time.Now()
		}
	}
}

func (in *Input) emit(ctx context.Context, out runtime.Outlet, p kgo.FetchTopicPartition) error {
	t := tp{p.Topic, p.Partition}
	in.mu.Lock()
	ps := in.state(t)
	id := in.ids[t]
	last := p.Records[len(p.Records)-1]
	if ps.first < 0 {
		ps.first = p.Records[0].Offset
	}
	ticket := ps.prog.Add(lines.Position{Source: p.Topic, Line: int64(p.Partition), Offset: last.Offset + 1})
	in.mu.Unlock()
	b := event.GetBatch()
	b.Unchecked = in.env.DeferValidation
	b.Partition = id
	ack := event.NewAck(len(p.Records), func() { ps.prog.Done(ticket) })
	for _, r := range p.Records {
		var hs []event.Header
		if len(r.Headers) > 0 {
			hs = make([]event.Header, len(r.Headers))
			for i, h := range r.Headers {
				hs[i] = event.Header{Key: h.Key, Value: h.Value}
			}
		}
		b.Append(event.Event{Key: r.Key, Value: r.Value, Time: r.Timestamp.UnixNano(), Offset: r.Offset, Headers: hs, Ack: ack})
	}
	return out.Emit(ctx, b)
}

// commit commits the acknowledged offsets of the partitions in only (all
// when nil) that moved since the last commit.
func (in *Input) commit(ctx context.Context, only map[string][]int32) error {
	in.mu.Lock()
	cl := in.cl
	if cl == nil {
		in.mu.Unlock()
		return nil
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var moved []*partState
	var at []int64
	for t, ps := range in.parts {
		if only != nil && !contains(only[t.topic], t.part) {
			continue
		}
		c := ps.prog.Committed()
		if in.env.Checkpointing {
			// Only what a completed checkpoint covers: a Snapshot
			// whose checkpoint failed must not move the group.
			c = lines.Position{Source: t.topic, Offset: ps.durable}
		}
		if c.Source == "" || c.Offset < 0 || c.Offset <= ps.committed {
			continue
		}
		if offsets[t.topic] == nil {
			offsets[t.topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[t.topic][t.part] = kgo.EpochOffset{Epoch: -1, Offset: c.Offset}
		moved = append(moved, ps)
		at = append(at, c.Offset)
	}
	in.mu.Unlock()
	if len(offsets) == 0 {
		return nil
	}
	var cerr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if p.ErrorCode != 0 && cerr == nil {
					cerr = fmt.Errorf("commit %s/%d: error code %d", t.Topic, p.Partition, p.ErrorCode)
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	in.mu.Lock()
	for i, ps := range moved {
		ps.committed = max(ps.committed, at[i])
	}
	in.mu.Unlock()
	return nil
}

func contains(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}

// assigned starts partitions that the last checkpoint has a position for
// at that position.
func (in *Input) assigned(_ context.Context, cl *kgo.Client, parts map[string][]int32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	set := map[string]map[int32]kgo.EpochOffset{}
	for topic, ps := range parts {
		for _, p := range ps {
			off, ok := in.restored[tp{topic, p}]
			if !ok {
				continue
			}
			if set[topic] == nil {
				set[topic] = map[int32]kgo.EpochOffset{}
			}
			set[topic][p] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
	}
	if len(set) > 0 {
		cl.SetOffsets(set)
	}
}

// revoked commits what is acknowledged of partitions leaving this member,
// then forgets them: records still in flight from them will be read again
// by their next owner (at least once).
func (in *Input) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if err := in.commit(ctx, revoked); err != nil {
		in.log.Warn("kafka: commit at rebalance failed", slog.Any("err", err))
	}
	in.forget(revoked)
}

func (in *Input) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	in.forget(lost)
}

func (in *Input) forget(parts map[string][]int32) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for topic, ps := range parts {
		for _, p := range ps {
			delete(in.parts, tp{topic, p})
		}
	}
}

// noteEnd records the end offset a fetch reported for its partition.
func (in *Input) noteEnd(p kgo.FetchTopicPartition) {
	end := p.HighWatermark
	if in.cfg.Isolation != "read_uncommitted" && p.LastStableOffset >= 0 {
		end = p.LastStableOffset
	}
	if end < 0 {
		return
	}
	in.mu.Lock()
	in.state(tp{p.Topic, p.Partition}).end = end
	in.mu.Unlock()
}

// Lag is what the control plane shows as the input's lag: over the
// partitions assigned to this member, the end offset the last fetch saw
// minus the offset up to which everything read is acknowledged.
func (in *Input) Lag() int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var lag int64
	for _, ps := range in.parts {
		if ps.end < 0 {
			continue
		}
		acked := ps.prog.Committed().Offset
		if acked == 0 && ps.first > 0 {
			acked = ps.first // nothing acknowledged yet: from where it started
		}
		if ps.first < 0 {
			acked = ps.end // nothing read: a fetch at the end
		}
		lag += max(ps.end-acked, 0)
	}
	return lag
}

// InFlight implements runtime.Drainer.
func (in *Input) InFlight() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := 0
	for _, ps := range in.parts {
		n += ps.prog.InFlight()
	}
	return n
}

// partKey is the state key of a partition's position.
func partKey(t tp) []byte { return fmt.Appendf(nil, "%s/%d", t.topic, t.part) }

// Snapshot implements runtime.Stateful: each assigned partition's
// acknowledged offset.
func (in *Input) Snapshot(_ context.Context, w runtime.StateWriter) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	for t, ps := range in.parts {
		c := ps.prog.Committed()
		if c.Source == "" {
			continue
		}
		ps.snap = c.Offset
		if err := w.Set(partKey(t), strconv.AppendInt(nil, c.Offset, 10)); err != nil {
			return err
		}
	}
	return nil
}

// Restore implements runtime.Stateful.
func (in *Input) Restore(_ context.Context, r runtime.StateReader) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.restored = map[tp]int64{}
	return r.Scan(nil, nil, func(k, v []byte) error {
		s := string(k)
		i := strings.LastIndexByte(s, '/')
		p, err1 := strconv.ParseInt(s[i+1:], 10, 32)
		off, err2 := strconv.ParseInt(string(v), 10, 64)
		if i < 0 || err1 != nil || err2 != nil {
			return fmt.Errorf("kafka: bad checkpointed position %q = %q", k, v)
		}
		in.restored[tp{s[:i], int32(p)}] = off
		return nil
	})
}

// Committed implements runtime.Stateful: the checkpointed offsets go to the
// group too, for tools and for a start without the state directory.
func (in *Input) Committed(ctx context.Context, _ uint64) error {
	in.mu.Lock()
	for _, ps := range in.parts {
		ps.durable = ps.snap
	}
	in.mu.Unlock()
	if err := in.commit(ctx, nil); err != nil {
		in.log.Warn("kafka: commit of checkpointed offsets failed; the checkpoint holds them", slog.Any("err", err))
	}
	return nil
}

// Close commits what was acknowledged and leaves the group.
func (in *Input) Close(ctx context.Context) error {
	if in.cl == nil {
		return nil // never ran
	}
	err := in.commit(ctx, nil)
	in.cl.Close()
	return err
}
