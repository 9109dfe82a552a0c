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
// commits it once the checkpoint is durable (txn.go has the protocol);
// it then also commits the offsets of its pipeline's kafka inputs in the
// transaction, and those inputs start partitions at the group's offsets
// (link.go), so that partitions can move between processes exactly once.
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
	// Failover: how fast the group notices a dead member and moves its
	// partitions (Kafka's defaults).
	SessionTimeout    time.Duration `yaml:"session_timeout" default:"45s" doc:"how long the group coordinator waits for a heartbeat before it declares a member dead and gives its partitions to others (within the broker's group.min/max.session.timeout.ms, 6s-30m by default)"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout" default:"1m" doc:"how long a member may take to rejoin during a rebalance; with exactly_once it must exceed the checkpoint interval plus a checkpoint's duration (a member gives up a partition only once a checkpoint covers it)"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval" default:"3s" doc:"how often a member heartbeats; at most a third of session_timeout"`
	// PartitionsOf, set for the inputs of repartition topics that the
	// pipeline derives (not in YAML), has Restore create the topic with
	// as many partitions as this one.
	PartitionsOf string `yaml:"-"`
	InstanceID   string `yaml:"instance_id" default:"" doc:"static group membership (KIP-345): a member that restarts within session_timeout with the same id gets its partitions back without a rebalance. Unique per process and instance; instance i of the input uses <instance_id>-<i>"`
}

// DefaultInputConfig returns the defaults.
func DefaultInputConfig() InputConfig {
	return InputConfig{Start: "earliest", FetchMaxBytes: 16 * config.MiB, MaxPollRecords: 4096, CommitInterval: time.Second, ClientID: "weir", Isolation: "read_committed",
		SessionTimeout: 45 * time.Second, RebalanceTimeout: time.Minute, HeartbeatInterval: 3 * time.Second}
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
	if c.SessionTimeout < time.Second {
		errs = append(errs, &config.FieldError{Field: "session_timeout", Msg: "session_timeout is " + c.SessionTimeout.String(), Expected: "at least 1s (brokers refuse less than group.min.session.timeout.ms, 6s by default)"})
	}
	if c.HeartbeatInterval <= 0 || c.HeartbeatInterval > c.SessionTimeout/3 {
		errs = append(errs, &config.FieldError{Field: "heartbeat_interval", Msg: "heartbeat_interval is " + c.HeartbeatInterval.String(), Expected: "more than zero and at most a third of session_timeout (" + c.SessionTimeout.String() + ")"})
	}
	if c.RebalanceTimeout < time.Second {
		errs = append(errs, &config.FieldError{Field: "rebalance_timeout", Msg: "rebalance_timeout is " + c.RebalanceTimeout.String(), Expected: "at least 1s", Hint: "with exactly_once, more than the checkpoint interval plus a checkpoint's duration"})
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
	// positions are the newest checkpointed offsets this process knows
	// per partition (with checkpoints): those of the checkpoint it
	// restored, then those of every later checkpoint, shared by the
	// node's instances (NewInputs). A partition assigned to this member
	// starts there, unless linked, also when it moves from another
	// instance of the node.
	positions *nodePositions
	// linked: an exactly_once output commits this input's offsets in its
	// transactions (link.go); fixed by Restore, before any other goroutine
	// reads it.
	linked bool
	// owned are the partitions assigned and not being revoked; with
	// linked, records of others are not emitted.
	owned map[tp]bool
	// ckpt is closed, and replaced, at each completed checkpoint
	// (Committed): revocations wait on it.
	ckpt chan struct{}
	// closing is closed by Close: waits end.
	closing chan struct{}
	// tainted, with linked, is why the open transaction must not commit:
	// a partition was lost with records emitted that no checkpoint covers.
	tainted error

	// link is this input's entry in the registry (links.mu guards it).
	link linkState
	// changelog: linked, with keyed operators in the pipeline, whose
	// state follows the partitions (changelog.go); fixed by Restore.
	changelog bool
	// fatal stops Run: a partition's state could not be restored.
	fatal error
	// wm is told which partitions left (set by Run).
	wm runtime.PartitionForgetter
}

type tp struct {
	topic string
	part  int32
}

// partState tracks one assigned partition's acknowledged progress.
type partState struct {
	prog      lines.Progress
	committed int64 // offset last committed to the group; -1 none
	revoking  bool  // linked: being revoked, nothing more is emitted
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
	return newInput(cfg, env, &nodePositions{})
}

// NewInputs returns the constructor of a node's instances: they share what
// they know of the node's checkpointed positions, so a partition that moves
// from one instance to another during a run starts where the last
// checkpoint left it (NewInput's instances each know only the restored
// positions). Call it once per node and pipeline build.
func NewInputs(cfg InputConfig) func(env runtime.Env) (*Input, error) {
	pos := &nodePositions{}
	return func(env runtime.Env) (*Input, error) { return newInput(cfg, env, pos) }
}

// nodePositions are the newest checkpointed offsets per partition that a
// node's instances in this process know.
type nodePositions struct {
	mu  sync.Mutex
	off map[tp]int64
}

// note records off for t unless a newer one is known.
func (n *nodePositions) note(t tp, off int64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.off == nil {
		n.off = map[tp]int64{}
	}
	if cur, ok := n.off[t]; !ok || off > cur {
		n.off[t] = off
	}
}

func (n *nodePositions) get(t tp) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	off, ok := n.off[t]
	return off, ok
}

func newInput(cfg InputConfig, env runtime.Env, pos *nodePositions) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	in := &Input{cfg: cfg, env: env, log: log, parts: map[tp]*partState{}, ids: map[tp]int32{}, owned: map[tp]bool{},
		ckpt: make(chan struct{}), closing: make(chan struct{}), positions: pos}
	links.addInput(in)
	return in, nil
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
	opts := []kgo.Opt{
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
		kgo.SessionTimeout(cfg.SessionTimeout),
		kgo.RebalanceTimeout(cfg.RebalanceTimeout),
		kgo.HeartbeatInterval(cfg.HeartbeatInterval),
	}
	if cfg.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(fmt.Sprintf("%s-%d", cfg.InstanceID, in.env.Instance)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	in.mu.Lock()
	in.cl = cl
	in.mu.Unlock()
	return nil
}

// groupMember is what a linked input hands its committer at a checkpoint's
// cut: the acknowledged offsets of its partitions, and who it is in the
// group (a stale generation makes the transaction fail).
type groupMember struct {
	group, member string
	instanceID    *string
	generation    int32
	offsets       map[string]map[int32]int64
}

// cut returns the input's positions at a checkpoint's cut (every emitted
// batch is acknowledged), for the output's transaction; ok is false when
// it has none. It fails when a partition was lost with records that no
// checkpoint covers: they are in the open transaction, which must abort.
func (in *Input) cut() (m groupMember, ok bool, err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.tainted != nil {
		return m, false, in.tainted
	}
	if in.cl == nil {
		return m, false, nil
	}
	for t, ps := range in.parts {
		c := ps.prog.Committed()
		if c.Source == "" {
			continue
		}
		if m.offsets == nil {
			m.offsets = map[string]map[int32]int64{}
		}
		if m.offsets[t.topic] == nil {
			m.offsets[t.topic] = map[int32]int64{}
		}
		m.offsets[t.topic][t.part] = c.Offset
	}
	if m.offsets == nil {
		return m, false, nil
	}
	m.group = in.cfg.Group
	m.member, m.generation = in.cl.GroupMetadata()
	if in.cfg.InstanceID != "" {
		id := fmt.Sprintf("%s-%d", in.cfg.InstanceID, in.env.Instance)
		m.instanceID = &id
	}
	if m.generation < 0 {
		return m, false, fmt.Errorf("kafka input %q: not a member of group %q at the checkpoint, with records read: the transaction cannot carry their offsets", in.env.Node, in.cfg.Group)
	}
	return m, true, nil
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
	if pf, ok := out.(runtime.PartitionForgetter); ok {
		in.mu.Lock()
		in.wm = pf
		in.mu.Unlock()
	}
	if err := in.connect(); err != nil {
		return err
	}
	lastCommit := time.Now()
	for {
		fetches := in.cl.PollRecords(ctx, in.cfg.MaxPollRecords)
		if ctx.Err() != nil {
			return nil
		}
		in.mu.Lock()
		fatal := in.fatal
		in.mu.Unlock()
		if fatal != nil {
			return fatal
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
	if (in.linked || in.env.Checkpointing) && !in.owned[t] {
		// Revoked or lost since the fetch: the next owner reads these
		// records from the group's offset.
		in.mu.Unlock()
		return nil
	}
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
// at that position; linked, they start at the group's committed offsets.
func (in *Input) assigned(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
	if in.changelog {
		// Before the partitions are owned: nothing of them is emitted
		// until their state is here.
		if err := in.restoreAssigned(ctx, parts); err != nil {
			in.log.Error("kafka: restore of partition state failed; the pipeline stops", "err", err)
			in.mu.Lock()
			if in.fatal == nil {
				in.fatal = err
			}
			in.mu.Unlock()
			return
		}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	_, gen := cl.GroupMetadata()
	in.log.Info("kafka: partitions assigned", slog.String("group", in.cfg.Group), slog.Int("generation", int(gen)), slog.Int("partitions", count(parts)))
	set := map[string]map[int32]kgo.EpochOffset{}
	for topic, ps := range parts {
		for _, p := range ps {
			in.owned[tp{topic, p}] = true
			if in.linked {
				continue
			}
			off, ok := in.positions.get(tp{topic, p})
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
// by their next owner (at least once). Linked, it emits nothing more from
// them and waits until a checkpoint covers everything emitted from them:
// their offsets are then in a transaction with the records derived from
// them, and the next owner starts there (it waits for that transaction to
// end: require_stable).
func (in *Input) revoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if n := count(revoked); n > 0 {
		in.log.Info("kafka: partitions revoked", slog.String("group", in.cfg.Group), slog.Int("partitions", n))
	}
	if !in.linked && !in.env.Checkpointing {
		if err := in.commit(ctx, revoked); err != nil {
			in.log.Warn("kafka: commit at rebalance failed", slog.Any("err", err))
		}
		in.forget(revoked)
		return
	}
	if !in.linked {
		// With checkpoints: emit nothing more from the partitions, wait
		// until a checkpoint covers what was emitted from them, and commit
		// that to the group, where their next owner starts (another
		// instance of this node in this process starts at the same
		// position, from positions). Records read past it are read again
		// by the next owner, and were never emitted here.
		in.mu.Lock()
		for topic, ps := range revoked {
			for _, p := range ps {
				delete(in.owned, tp{topic, p})
			}
		}
		in.mu.Unlock()
		if err := in.awaitCovered(ctx, revoked); err != nil {
			in.log.Warn("kafka: partitions revoked before a checkpoint covered them: their next owner reads the uncovered records again (at least once)", slog.Any("err", err))
		}
		if err := in.commit(ctx, revoked); err != nil {
			in.log.Warn("kafka: commit at rebalance failed", slog.Any("err", err))
		}
		in.forget(revoked)
		return
	}
	in.mu.Lock()
	for topic, ps := range revoked {
		for _, p := range ps {
			t := tp{topic, p}
			delete(in.owned, t)
			if st := in.parts[t]; st != nil {
				st.revoking = true
			}
		}
	}
	in.mu.Unlock()
	err := in.awaitCovered(ctx, revoked)
	if err == nil && in.changelog {
		err = in.releaseRevoked(ctx, revoked)
	}
	if err != nil {
		in.mu.Lock()
		if in.tainted == nil {
			in.tainted = err
		}
		in.mu.Unlock()
	}
	in.forget(revoked)
}

// awaitCovered waits until a completed checkpoint covers everything
// emitted from parts, for at most half the rebalance timeout.
func (in *Input) awaitCovered(ctx context.Context, parts map[string][]int32) error {
	timer := time.NewTimer(in.cfg.RebalanceTimeout / 2)
	defer timer.Stop()
	for {
		in.mu.Lock()
		all := true
		for topic, ps := range parts {
			for _, p := range ps {
				if st := in.parts[tp{topic, p}]; st != nil && !st.coveredLocked() {
					all = false
				}
			}
		}
		ckpt := in.ckpt
		in.mu.Unlock()
		if all {
			return nil
		}
		select {
		case <-ckpt:
		case <-in.closing:
			return nil // the final checkpoint is taken, or the transaction aborts
		case <-ctx.Done():
			return fmt.Errorf("kafka input %q: partitions were revoked before a checkpoint covered the records read from them: %w", in.env.Node, ctx.Err())
		case <-timer.C:
			return fmt.Errorf("kafka input %q: partitions were revoked and no checkpoint covered the records read from them within half of rebalance_timeout (%s): the open transaction cannot commit; make rebalance_timeout several times the checkpoint interval", in.env.Node, in.cfg.RebalanceTimeout)
		}
	}
}

// coveredLocked reports whether the last completed checkpoint covers
// everything emitted from the partition.
func (ps *partState) coveredLocked() bool {
	if ps.prog.InFlight() > 0 {
		return false
	}
	c := ps.prog.Committed()
	return c.Source == "" || ps.durable >= c.Offset
}

// lost forgets partitions taken away without a revocation (the member was
// declared dead). Linked, records emitted from them that no checkpoint
// covers are in the open transaction, which must not commit: their next
// owner reads them again.
func (in *Input) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	in.log.Warn("kafka: partitions lost (this member missed its session timeout or was fenced)", slog.String("group", in.cfg.Group), slog.Int("partitions", count(lost)))
	if in.linked {
		in.mu.Lock()
		for topic, ps := range lost {
			for _, p := range ps {
				t := tp{topic, p}
				delete(in.owned, t)
				if st := in.parts[t]; st != nil && !st.coveredLocked() && in.tainted == nil {
					in.tainted = fmt.Errorf("kafka input %q: partition %s/%d was lost (session timeout or fencing) with records read from it that no checkpoint covers; the open transaction cannot commit, and the pipeline resumes from the group's offsets after a restart; raise session_timeout if the process stalls", in.env.Node, topic, p)
				}
			}
		}
		in.mu.Unlock()
	}
	in.forget(lost)
}

func (in *Input) forget(parts map[string][]int32) {
	in.mu.Lock()
	var ids []int32
	for topic, ps := range parts {
		for _, p := range ps {
			delete(in.parts, tp{topic, p})
			delete(in.owned, tp{topic, p})
			if id, ok := in.ids[tp{topic, p}]; ok {
				ids = append(ids, id)
			}
		}
	}
	wm := in.wm
	in.mu.Unlock()
	if wm != nil && len(ids) > 0 {
		// They no longer hold this input's watermark back.
		wm.ForgetPartitions(ids)
	}
}

func count(parts map[string][]int32) int {
	n := 0
	for _, ps := range parts {
		n += len(ps)
	}
	return n
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

// Restore implements runtime.Stateful. It also fixes whether the input is
// linked (the runtime builds every node before it restores any): linked,
// the positions of the checkpoint are not used.
func (in *Input) Restore(ctx context.Context, r runtime.StateReader) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.linked = links.start(in)
	if in.linked {
		in.log.Info("kafka: offsets are committed in the exactly_once output's transactions; partitions start at the group's committed offsets", slog.String("group", in.cfg.Group))
	}
	changelog := in.linked && in.env.Changelog.WantedBy(in.env.Node)
	if changelog || in.cfg.PartitionsOf != "" {
		if err := in.prepareTopics(ctx, changelog); err != nil {
			return err
		}
	}
	if changelog {
		in.log.Info("kafka: keyed state follows the partitions through the changelog topic", slog.String("topic", in.env.Changelog.Name()))
	}
	return r.Scan(nil, nil, func(k, v []byte) error {
		s := string(k)
		i := strings.LastIndexByte(s, '/')
		p, err1 := strconv.ParseInt(s[i+1:], 10, 32)
		off, err2 := strconv.ParseInt(string(v), 10, 64)
		if i < 0 || err1 != nil || err2 != nil {
			return fmt.Errorf("kafka: bad checkpointed position %q = %q", k, v)
		}
		in.positions.note(tp{s[:i], int32(p)}, off)
		return nil
	})
}

// Committed implements runtime.Stateful: the checkpointed offsets go to the
// group too, for tools and for a start without the state directory. Linked,
// the output's transaction commits them.
func (in *Input) Committed(ctx context.Context, _ uint64) error {
	in.mu.Lock()
	for t, ps := range in.parts {
		ps.durable = ps.snap
		if ps.durable >= 0 {
			in.positions.note(t, ps.durable)
		}
	}
	close(in.ckpt)
	in.ckpt = make(chan struct{})
	in.mu.Unlock()
	if in.linked {
		return nil
	}
	if err := in.commit(ctx, nil); err != nil {
		in.log.Warn("kafka: commit of checkpointed offsets failed; the checkpoint holds them", slog.Any("err", err))
	}
	return nil
}

// Close commits what was acknowledged and leaves the group. Linked, it
// commits nothing: the final checkpoint's transaction did.
func (in *Input) Close(ctx context.Context) error {
	links.removeInput(in)
	in.mu.Lock()
	select {
	case <-in.closing:
	default:
		close(in.closing)
	}
	cl := in.cl
	in.mu.Unlock()
	if cl == nil {
		return nil // never ran
	}
	var err error
	if !in.linked {
		err = in.commit(ctx, nil)
	}
	cl.Close()
	return err
}
