package kafka

// Offsets in the output's transaction (KIP-447): how an exactly_once output
// finds the kafka inputs of its pipeline, and what an input hands over.
//
// The rule: an exactly_once kafka output with parallelism 1 commits, inside
// each of its transactions, the offsets of every kafka input of its
// pipeline upstream of it that reads from the same cluster (a seed broker
// in common), as
// the inputs' consumer-group members (generation and member id). Such an
// input is "linked": a partition assigned to it starts at the group's
// committed offset (fetched with require_stable, so a transaction still
// open with offsets of that partition is waited for), never at the
// position of this process's checkpoint, and it commits nothing to the
// group itself. The group's offsets are then the truth, and they move
// only with the output records derived from them, in one transaction —
// which is what lets a partition move between processes exactly once.
//
// Without a unique committer (two exactly_once kafka outputs in the
// pipeline, or parallelism above 1: records of one partition would be
// spread over several transactions, which cannot commit atomically) no
// input is linked: offsets stay in the checkpoint, exactly once for one
// process (the output logs why at its start).
//
// The registry is process-wide, keyed by pipeline name. The runtime builds
// a pipeline's inputs before its outputs, so an output claims, as it is
// built, the inputs registered under its pipeline's name that have not
// started yet; an input's mode is fixed by its Restore (after every node
// is built). Inputs leave the registry at Close, outputs at Close.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var links = &linkRegistry{inputs: map[string][]*Input{}}

// linkRegistry holds the kafka inputs of every pipeline of the process.
type linkRegistry struct {
	mu     sync.Mutex
	inputs map[string][]*Input // by pipeline name
}

// linkState is an input's side of the registry; linkRegistry.mu guards it.
type linkState struct {
	started   bool    // Restore ran: no output can claim the input any more
	committer *Output // the output that commits its offsets
	contested bool    // more than one output could: none does
}

func (r *linkRegistry) addInput(in *Input) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inputs[in.env.Pipeline] = append(r.inputs[in.env.Pipeline], in)
}

func (r *linkRegistry) removeInput(in *Input) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := in.env.Pipeline
	r.inputs[p] = slices.DeleteFunc(r.inputs[p], func(x *Input) bool { return x == in })
	if len(r.inputs[p]) == 0 {
		delete(r.inputs, p)
	}
}

// claim makes o the committer of the pipeline's unstarted kafka inputs on
// its cluster, or marks them contested if another output claimed them or
// o cannot be the only one. It returns whether o claimed any.
func (r *linkRegistry) claim(o *Output) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	claimed := false
	for _, in := range r.inputs[o.env.Pipeline] {
		ls := &in.link
		if ls.started || !sameCluster(in.cfg.Brokers, o.cfg.Brokers) || !upstream(in, o) {
			continue
		}
		switch {
		case ls.contested:
		case o.env.Parallelism > 1 || (ls.committer != nil && ls.committer != o):
			ls.committer, ls.contested = nil, true
		default:
			ls.committer, claimed = o, true
		}
	}
	return claimed
}

// release forgets o as a committer (at its Close).
func (r *linkRegistry) release(o *Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, in := range r.inputs[o.env.Pipeline] {
		if in.link.committer == o {
			in.link.committer = nil
		}
	}
}

// claimed returns the inputs whose offsets o commits.
func (r *linkRegistry) claimed(o *Output) []*Input {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ins []*Input
	for _, in := range r.inputs[o.env.Pipeline] {
		if in.link.committer == o {
			ins = append(ins, in)
		}
	}
	return ins
}

// contested reports whether an input of o's pipeline on its cluster has
// more than one possible committer.
func (r *linkRegistry) contested(o *Output) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, in := range r.inputs[o.env.Pipeline] {
		if in.link.contested && sameCluster(in.cfg.Brokers, o.cfg.Brokers) && upstream(in, o) {
			return true
		}
	}
	return false
}

// upstream reports whether o writes events derived from in's (when the
// runtime says which inputs those are; else every input counts).
func upstream(in *Input, o *Output) bool {
	return len(o.env.Sources) == 0 || slices.Contains(o.env.Sources, in.env.Node)
}

// start fixes in's mode (at Restore): it reports whether an output
// commits its offsets.
func (r *linkRegistry) start(in *Input) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	in.link.started = true
	return in.link.committer != nil
}

// sameCluster reports whether two seed lists share a broker.
func sameCluster(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

// commitOffsetsLocked adds the linked inputs' positions at the cut to the
// open transaction: AddOffsetsToTxn once per group, then TxnOffsetCommit as
// each input's group member. A transaction without records carries none
// (franz-go does not end a transaction it produced nothing to; the
// positions go with the next one that has records — no record derived from
// them is in this one). A refused member (stale generation, unknown member,
// fenced instance: the member lost its partitions) fails the transaction.
func (o *Output) commitOffsetsLocked(ctx context.Context) error {
	if !o.linked || o.txn.records == 0 {
		return nil
	}
	for _, in := range links.claimed(o) {
		wait := 50 * time.Millisecond
		member := ""
		for attempt := 1; ; attempt++ {
			m, ok, err := in.cut()
			if err != nil {
				return fmt.Errorf("kafka output: %w", err)
			}
			if !ok {
				break
			}
			if attempt == 1 {
				member = m.member
			} else if m.member != member {
				return fmt.Errorf("kafka output: the input's group member changed from %q to %q during the checkpoint (it was removed from the group): the transaction aborts and the records are read again from the group's offsets", member, m.member)
			}
			err = o.txnOffsetCommit(ctx, m)
			if err == nil {
				break
			}
			// ILLEGAL_GENERATION while the member is in a rebalance
			// (the group moved on before its JoinGroup answer): the
			// member keeps the partitions it still owns (cooperative),
			// gives up the others only once a checkpoint covers them
			// (revoked), and a member removed from the group gets a new
			// member id (checked above) and loses its partitions
			// (lost: cut fails). So the commit is sent again at the
			// member's new generation.
			if attempt == 20 || !(retriableCommit(err) || errors.Is(err, kerr.IllegalGeneration)) {
				return fmt.Errorf("kafka output: commit the offsets of group %q (generation %d, member %q) in the transaction: %w; the transaction aborts and the records are read again from the group's offsets",
					m.group, m.generation, m.member, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, time.Second)
		}
	}
	return nil
}

// retriableCommit: errors after which a TxnOffsetCommit may be sent again
// (with the member's generation read again).
func retriableCommit(err error) bool {
	return kerr.IsRetriable(err) || errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.ConcurrentTransactions) ||
		errors.Is(err, kerr.CoordinatorLoadInProgress) || errors.Is(err, kerr.NotCoordinator)
}

func (o *Output) txnOffsetCommit(ctx context.Context, m groupMember) error {
	pid, epoch, err := o.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(o.txn.groups, m.group) {
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = o.txn.ids[o.txn.cur], pid, epoch, m.group
		resp, err := req.RequestWith(ctx, o.cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return fmt.Errorf("add offsets to the transaction: %w", err)
		}
		o.txn.groups = append(o.txn.groups, m.group)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = o.txn.ids[o.txn.cur], m.group, pid, epoch
	req.Generation, req.MemberID, req.InstanceID = m.generation, m.member, m.instanceID
	for topic, parts := range m.offsets {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = topic
		for p, off := range parts {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch = p, off, -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, o.cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
