package kafka

// Keyed state that follows its partitions (the runtime's side is in
// internal/runtime/changelog.go). With a linked input (link.go) and keyed
// operators in the pipeline, the input turns the pipeline's changelog on:
// the topic <group>-changelog (compacted, as many partitions as the input
// topic, created if missing) holds the state of the keys of input
// partition p in its partition p. The exactly_once output produces the
// checkpoint's state changes into it, in the checkpoint's transaction, so
// state, results and offsets move together.
//
// The partitions a rebalance assigns to this member are restored before a
// record of them is read: wait until no transaction with offsets of them is
// open (OffsetFetch with require_stable: the previous owners' last
// transactions, which carry their last state changes, have ended), read the
// changelog partitions up to their last stable offsets, and import them
// (the pipeline stops once for that). A revoked partition is released at the first checkpoint at
// which nothing read from it is in flight, and given up once that
// checkpoint's transaction is committed.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/internal/runtime"
)

// changelogTopic is the changelog's topic name for a consumer group.
func changelogTopic(group string) string { return group + "-changelog" }

// adminClient returns a short-lived client for the changelog's requests
// (OffsetFetch pinned to v7, the last with the single-group form).
func (in *Input) adminClient(opts ...kgo.Opt) (*kgo.Client, error) {
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.OffsetFetch), 7)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(in.cfg.Brokers...), kgo.ClientID(in.cfg.ClientID), kgo.MaxVersions(vs)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	return cl, nil
}

// prepareTopics does Restore's work with the brokers, with one client: it
// creates the topic of a derived input (a repartition topic, as many
// partitions as cfg.PartitionsOf) and, when changelog is set, turns the
// pipeline's changelog on (the topic <group>-changelog, as many partitions
// as the input topic, created if needed).
func (in *Input) prepareTopics(ctx context.Context, changelog bool) error {
	if changelog && len(in.cfg.Topics) != 1 {
		return fmt.Errorf("kafka input %q: keyed state follows the partitions of one topic, and the input reads %d; read one topic, or give the keyed operators their own pipeline", in.env.Node, len(in.cfg.Topics))
	}
	cl, err := in.adminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if in.cfg.PartitionsOf != "" {
		n, err := partitionCount(ctx, cl, in.cfg.PartitionsOf)
		if err != nil {
			return err
		}
		if err := ensureTopic(ctx, cl, in.cfg.Topics[0], n, nil); err != nil {
			return err
		}
	}
	if !changelog {
		return nil
	}
	n, err := partitionCount(ctx, cl, in.cfg.Topics[0])
	if err != nil {
		return err
	}
	name := changelogTopic(in.cfg.Group)
	if err := ensureTopic(ctx, cl, name, n, map[string]string{"cleanup.policy": "compact"}); err != nil {
		return err
	}
	if err := in.env.Changelog.Enable(name, n); err != nil {
		return err
	}
	in.changelog = true
	return nil
}

// ensureTopic creates topic with n partitions unless it exists; an
// existing one must have n partitions.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, n int32, configs map[string]string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, n, -1
	for k, v := range configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		t.Configs = append(t.Configs, c)
	}
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 30000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("kafka: create topic %q: %w", topic, err)
	}
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("kafka: create topic %q: %w", topic, err)
		}
	}
	got, err := partitionCount(ctx, cl, topic)
	if err != nil {
		return err
	}
	if got != n {
		return fmt.Errorf("kafka: topic %q has %d partitions, and weir needs %d (as many as the topic whose partitions it follows); delete it to have it created again", topic, got, n)
	}
	return nil
}

// partitionCount asks the brokers how many partitions topic has.
func partitionCount(ctx context.Context, cl *kgo.Client, topic string) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = &topic
	req.Topics = append(req.Topics, rt)
	for {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, fmt.Errorf("kafka: metadata of %q: %w", topic, err)
		}
		for _, t := range resp.Topics {
			if t.Topic == nil || *t.Topic != topic {
				continue
			}
			err := kerr.ErrorForCode(t.ErrorCode)
			if err == nil {
				return int32(len(t.Partitions)), nil
			}
			if !errors.Is(err, kerr.LeaderNotAvailable) {
				return 0, fmt.Errorf("kafka: metadata of %q: %w", topic, err)
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("kafka: metadata of %q: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// restoreAssigned restores the state of the partitions newly assigned to
// this member, all at once (one read of the changelog, one stop of the
// pipeline), before their records are read.
func (in *Input) restoreAssigned(ctx context.Context, parts map[string][]int32) error {
	in.mu.Lock()
	var fresh []int32
	for topic, ps := range parts {
		for _, p := range ps {
			if !in.owned[tp{topic, p}] {
				fresh = append(fresh, p)
			}
		}
	}
	in.mu.Unlock()
	if len(fresh) == 0 {
		return nil
	}
	since := time.Now()
	cl, err := in.adminClient()
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, in.cfg.RebalanceTimeout)
	defer cancel()
	if err := in.awaitStable(ctx, cl, fresh); err != nil {
		return err
	}
	recs, err := in.readChangelog(ctx, cl, in.env.Changelog.Name(), fresh)
	if err != nil {
		return err
	}
	if err := in.env.Changelog.Import(ctx, fresh, recs, since); err != nil {
		return fmt.Errorf("kafka input %q: restore of the state of partitions %v: %w", in.env.Node, fresh, err)
	}
	return nil
}

// awaitStable waits until no open transaction holds offsets of parts for
// the group: the previous owners' last changes are then committed (or
// aborted) and below the changelog's last stable offset.
func (in *Input) awaitStable(ctx context.Context, cl *kgo.Client, parts []int32) error {
	topic := in.cfg.Topics[0]
	for {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group, req.RequireStable = in.cfg.Group, true
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = topic, parts
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
			for _, t := range resp.Topics {
				for _, pp := range t.Partitions {
					if e := kerr.ErrorForCode(pp.ErrorCode); e != nil && err == nil {
						err = e
					}
				}
			}
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.UnstableOffsetCommit) && !kerr.IsRetriable(err) {
			return fmt.Errorf("kafka input %q: offsets of partitions %v of %s: %w", in.env.Node, parts, topic, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka input %q: a transaction with offsets of partitions %v of %s stayed open: %w", in.env.Node, parts, topic, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readChangelog reads parts of the changelog topic from their start to
// their last stable offset, with one consumer.
func (in *Input) readChangelog(ctx context.Context, admin *kgo.Client, topic string, parts []int32) ([]runtime.ChangelogRecord, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.IsolationLevel = 1 // read_committed: the last stable offset
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, -1
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("kafka: end of changelog %s %v: %w", topic, parts, err)
	}
	// left holds the end of each partition still to read.
	left := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	for _, t := range resp.Topics {
		for _, pp := range t.Partitions {
			if err := kerr.ErrorForCode(pp.ErrorCode); err != nil {
				return nil, fmt.Errorf("kafka: end of changelog %s/%d: %w", topic, pp.Partition, err)
			}
			if pp.Offset > 0 {
				left[pp.Partition] = pp.Offset
				start[pp.Partition] = kgo.NewOffset().AtStart()
			}
		}
	}
	if len(left) == 0 {
		return nil, nil
	}
	cl, err := in.adminClient(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var recs []runtime.ChangelogRecord
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("kafka: read changelog %s: %w", topic, err)
		}
		for _, fe := range fs.Errors() {
			return nil, fmt.Errorf("kafka: read changelog %s/%d: %w", fe.Topic, fe.Partition, fe.Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Partition]
			if !ok || r.Offset >= end {
				return
			}
			if r.Offset+1 >= end {
				delete(left, r.Partition)
			}
			if !r.Attrs.IsControl() {
				// A nil value is a tombstone (state values are never empty).
				recs = append(recs, runtime.ChangelogRecord{Part: r.Partition, Key: r.Key, Value: r.Value})
			}
		})
	}
	return recs, nil
}

// releaseRevoked hands over the state of revoked partitions at the first
// checkpoint at which nothing read from them is in flight, and waits until
// that checkpoint's transaction is committed.
func (in *Input) releaseRevoked(ctx context.Context, revoked map[string][]int32) error {
	var parts []int32
	for _, ps := range revoked {
		parts = append(parts, ps...)
	}
	if len(parts) == 0 {
		return nil
	}
	ready := func() bool {
		in.mu.Lock()
		defer in.mu.Unlock()
		for topic, ps := range revoked {
			for _, p := range ps {
				if st := in.parts[tp{topic, p}]; st != nil && st.prog.InFlight() > 0 {
					return false
				}
			}
		}
		return true
	}
	done := in.env.Changelog.Release(parts, ready)
	timer := time.NewTimer(in.cfg.RebalanceTimeout / 2)
	defer timer.Stop()
	select {
	case <-done:
		return nil
	case <-in.closing:
		return nil // the final checkpoint releases nothing: the next owner reads what the last one committed
	case <-ctx.Done():
		return fmt.Errorf("kafka input %q: partitions were revoked before their state was handed over: %w", in.env.Node, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("kafka input %q: partitions were revoked and no checkpoint handed their state over within half of rebalance_timeout (%s): the open transaction cannot commit", in.env.Node, in.cfg.RebalanceTimeout)
	}
}

// produceChangelogLocked produces the checkpoint's changes of keyed state
// into the open transaction (beginning one if needed), from the output's
// Snapshot: every operator's Snapshot has run.
func (o *Output) produceChangelogLocked(ctx context.Context) error {
	name := o.env.Changelog.Name()
	if name == "" {
		return nil
	}
	recs := o.env.Changelog.Take()
	if len(recs) == 0 {
		return nil
	}
	cl, err := o.beginLocked()
	if err != nil {
		return err
	}
	for _, r := range recs {
		cl.Produce(ctx, &kgo.Record{Topic: name, Partition: r.Part, Key: r.Key, Value: r.Value}, o.promise)
	}
	o.txn.records += len(recs)
	return nil
}
