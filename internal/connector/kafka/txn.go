package kafka

// Exactly-once output: one Kafka transaction per checkpoint, committed once
// the checkpoint is durable (two-phase commit; the checkpoint is the
// coordinator's log).
//
//  1. Write begins a transaction on the first record after a commit and
//     produces into it.
//  2. Snapshot flushes (the brokers hold every record of the transaction)
//     and records the transaction — transactional id, producer id, epoch —
//     in the checkpoint, next to the inputs' positions.
//  3. Committed, once the checkpoint is durable, commits the transaction
//     (EndTxn). A broker that aborted it (transaction timeout, fencing)
//     fails the pipeline with ErrTransactionLost: never silent.
//  4. Restore, before anything is written, commits the transaction the last
//     checkpoint recorded with a raw EndTxn: a crash may have come between
//     the checkpoint's write and step 3. A commit already done is answered
//     with success by the broker. Only then are the producers initialized,
//     which aborts whatever a crashed run left open that no checkpoint
//     recorded; the inputs replay those records from the checkpoint.
//
// So every record is in exactly one committed transaction: a transaction is
// committed if and only if a durable checkpoint covers the input positions
// of its records.
//
// Each instance alternates between two transactional ids (slots): after a
// commit, the next transaction goes to the other one. The slot the last
// durable checkpoint names is then never used again before a later
// checkpoint is durable, so step 4's EndTxn retry finds that transaction as
// the last one of its id — committed, open, or aborted — and never commits
// a later, unrecorded transaction of the same id (on brokers without
// KIP-890, a retried EndTxn at the same epoch would commit whatever
// transaction is open), nor finds its epoch moved on by a later one.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/internal/faults"
	"github.com/weir-dev/weir/internal/runtime"
)

// ErrTransactionLost is wrapped by the errors that report a transaction a
// completed checkpoint covers but the broker aborted: its records are lost,
// since the checkpoint's input positions are past them.
var ErrTransactionLost = errors.New("kafka: output transaction lost")

// txnKeyPrefix starts the state keys of the output: "txn/<instance>".
const txnKeyPrefix = "txn/"

// txnVersion is the version of txnRecord's encoding.
const txnVersion = 1

// txnRecord is a transaction as a checkpoint records it, stored as JSON
// under "txn/<instance>" (the runtime prefixes the node's name), e.g.
//
//	{"v":1,"instance":0,"slot":1,"id":"weir-orders-out-1f3a9c0e-0-1","pid":8412,"epoch":3,"groups":["orders-v1"]}
//
// A checkpoint without a key for an instance had no open transaction of it.
// Groups are the consumer groups whose offsets the transaction carries
// (link.go): aborted, it took them back too, so nothing is lost.
type txnRecord struct {
	Version  int      `json:"v"`
	Instance int      `json:"instance"`
	Slot     int      `json:"slot"`
	ID       string   `json:"id"` // transactional id
	PID      int64    `json:"pid"`
	Epoch    int16    `json:"epoch"`
	Groups   []string `json:"groups,omitempty"`
}

// identKeyPrefix starts the state key of an instance's process id:
// "ident/<instance>" holds the random id in its transactional ids.
const identKeyPrefix = "ident/"

// txnState is the transactional side of an exactly_once output; Output.txMu
// guards it.
type txnState struct {
	ids     [2]string // transactional ids of the two slots
	clients [2]*kgo.Client
	cur     int       // slot of the transaction being written, or the next
	open    bool      // a transaction is open on clients[cur]
	started time.Time // when it began
	// snap is the transaction the last Snapshot recorded, until Committed.
	snap *txnRecord
	// hasRecord: the state as last written holds a record for this
	// instance, which a checkpoint without a transaction deletes.
	hasRecord bool
	// broken is the first error after which the open transaction cannot
	// commit: no checkpoint completes after it.
	broken error
	// records are the records produced in the open transaction; groups
	// the consumer groups added to it (AddOffsetsToTxn).
	records int
	groups  []string
	// ident is the process's id in the transactional ids, identNew set
	// until a checkpoint holds it.
	ident    string
	identNew bool
}

// clientLocked returns slot's transactional producer, creating it.
func (o *Output) clientLocked(slot int) (*kgo.Client, error) {
	if cl := o.txn.clients[slot]; cl != nil {
		return cl, nil
	}
	cl, err := kgo.NewClient(append(slices.Clip(o.opts),
		kgo.TransactionalID(o.txn.ids[slot]),
		kgo.TransactionTimeout(o.cfg.TransactionTimeout))...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	o.txn.clients[slot] = cl
	return cl, nil
}

// beginLocked returns the producer of the open transaction, beginning one
// if none is open.
func (o *Output) beginLocked() (*kgo.Client, error) {
	if o.txn.broken != nil {
		return nil, o.brokenErrLocked()
	}
	if !o.txn.open {
		cl, err := o.clientLocked(o.txn.cur)
		if err != nil {
			return nil, err
		}
		if err := cl.BeginTransaction(); err != nil {
			return nil, o.breakLocked(fmt.Errorf("kafka: begin a transaction: %w", err))
		}
		o.cl = cl
		o.txn.open, o.txn.started = true, time.Now()
		o.txn.records, o.txn.groups = 0, nil
	}
	return o.cl, nil
}

func (o *Output) breakLocked(err error) error {
	if o.txn.broken == nil {
		o.txn.broken = err
	}
	return err
}

func (o *Output) brokenErrLocked() error {
	return fmt.Errorf("kafka output: the open transaction cannot commit since an earlier error, so no checkpoint can complete; restart the pipeline to resume from the last one: %w", o.txn.broken)
}

// Snapshot implements runtime.Stateful. With exactly_once it flushes the
// open transaction and records it; it deletes the records of transactions
// Restore settled.
func (o *Output) Snapshot(ctx context.Context, w runtime.StateWriter) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	for _, k := range o.settled {
		if err := w.Delete(k); err != nil {
			return fmt.Errorf("kafka output: snapshot: %w", err)
		}
	}
	if !o.exactly {
		return nil
	}
	if o.txn.broken != nil {
		return o.brokenErrLocked()
	}
	if o.txn.identNew {
		if err := w.Set(fmt.Appendf(nil, "%s%d", identKeyPrefix, o.env.Instance), []byte(o.txn.ident)); err != nil {
			return fmt.Errorf("kafka output: snapshot: %w", err)
		}
	}
	if o.linked {
		if err := o.produceChangelogLocked(ctx); err != nil {
			return o.breakLocked(err)
		}
	}
	if !o.txn.open {
		if o.txn.hasRecord {
			if err := w.Delete(o.stateKey); err != nil {
				return fmt.Errorf("kafka output: snapshot: %w", err)
			}
			o.txn.hasRecord = false
		}
		return nil
	}
	if err := o.flushLocked(ctx); err != nil {
		return o.breakLocked(err)
	}
	// The broker aborts a transaction older than the timeout; one close to
	// it might be aborted before Committed ends it. Failing now, before the
	// checkpoint is durable, replays its records instead of losing them.
	if age := time.Since(o.txn.started); age > o.cfg.TransactionTimeout-o.cfg.TransactionTimeout/10 {
		return o.breakLocked(fmt.Errorf("kafka output: the transaction has been open for %s, too close to transaction_timeout (%s) to be committed safely: this checkpoint fails and the inputs replay from the last one; make transaction_timeout several times the checkpoint interval (a broker outage or a stalled output also causes this)",
			age.Round(time.Millisecond), o.cfg.TransactionTimeout))
	}
	if err := o.commitOffsetsLocked(ctx); err != nil {
		return o.breakLocked(err)
	}
	pid, epoch, err := o.cl.ProducerID(ctx)
	if err != nil {
		return o.breakLocked(fmt.Errorf("kafka output: producer id of the open transaction: %w", err))
	}
	rec := txnRecord{Version: txnVersion, Instance: o.env.Instance, Slot: o.txn.cur, ID: o.txn.ids[o.txn.cur], PID: pid, Epoch: epoch, Groups: o.txn.groups}
	val, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("kafka output: snapshot: %w", err)
	}
	if err := w.Set(o.stateKey, val); err != nil {
		return fmt.Errorf("kafka output: snapshot: %w", err)
	}
	o.txn.snap, o.txn.hasRecord = &rec, true
	return nil
}

// Committed implements runtime.Stateful: it commits the transaction the
// checkpoint recorded. The next transaction goes to the other slot.
func (o *Output) Committed(ctx context.Context, id uint64) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	o.settled = nil
	o.txn.identNew = false // the checkpoint holds it
	rec := o.txn.snap
	if rec == nil {
		return nil
	}
	o.txn.snap = nil
	faults.Point("kafka.end-txn")
	// Records written after the cut (only inputs that are not replayable
	// write then) join the transaction; EndTransaction needs them flushed.
	// Their produce errors are left to the next Flush.
	if err := o.cl.Flush(ctx); err != nil {
		return o.breakLocked(fmt.Errorf("kafka output: checkpoint %d's output transaction (transactional id %q) was not committed: flush: %w; the next start commits it", id, rec.ID, err))
	}
	if err := o.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		if isLost(err) {
			return o.breakLocked(fmt.Errorf("kafka output: checkpoint %d's output transaction (transactional id %q) was aborted by the broker: %w; its records are lost unless replayed: the checkpoint covers their input positions. A broker outage or a stall longer than transaction_timeout (%s) does this; raise it if that can happen: %w",
				id, rec.ID, err, o.cfg.TransactionTimeout, ErrTransactionLost))
		}
		return o.breakLocked(fmt.Errorf("kafka output: checkpoint %d's output transaction (transactional id %q) could not be confirmed committed: %w; the next start commits it if the broker still has it open", id, rec.ID, err))
	}
	o.txn.open = false
	o.txn.cur = 1 - o.txn.cur
	return nil
}

// isLost reports whether err is a broker's answer that a transaction can
// no longer commit.
func isLost(err error) bool {
	for _, e := range []error{kerr.InvalidTxnState, kerr.ProducerFenced, kerr.InvalidProducerEpoch,
		kerr.InvalidProducerIDMapping, kerr.TransactionalIDNotFound, kerr.TransactionAbortable, kerr.OperationNotAttempted} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// abortLocked aborts an open transaction that no Snapshot recorded: the
// inputs replay its records. One that a Snapshot recorded may be covered by
// a durable checkpoint: it is left for the next start to commit or abort.
func (o *Output) abortLocked(ctx context.Context) {
	if !o.txn.open || o.txn.snap != nil {
		return
	}
	o.txn.open = false
	err := o.cl.AbortBufferedRecords(ctx)
	if err == nil {
		err = o.cl.EndTransaction(ctx, kgo.TryAbort)
	}
	if err != nil {
		o.log.Warn("kafka output: could not abort the transaction no checkpoint covers; the next start or the broker's transaction timeout aborts it",
			slog.String("transactional_id", o.txn.ids[o.txn.cur]), slog.Any("err", err))
	}
}

// Restore implements runtime.Stateful. It settles the transactions the
// last checkpoint recorded for this instance — and for instances beyond
// the current parallelism that map to it — by committing them, then, with
// exactly_once, initializes the producers of the slots no record names,
// which aborts what a crashed run left open in them.
func (o *Output) Restore(ctx context.Context, r runtime.StateReader) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	type keyed struct {
		key []byte
		rec txnRecord
	}
	var recs []keyed
	end := []byte(txnKeyPrefix)
	end[len(end)-1]++
	err := r.Scan([]byte(txnKeyPrefix), end, func(k, v []byte) error {
		var rec txnRecord
		if err := json.Unmarshal(v, &rec); err != nil || rec.Version != txnVersion || rec.ID == "" || rec.Slot < 0 || rec.Slot > 1 || rec.Instance < 0 {
			return fmt.Errorf("kafka output: bad checkpointed transaction %q = %q", k, v)
		}
		recs = append(recs, keyed{slices.Clone(k), rec})
		return nil
	})
	if err != nil {
		return err
	}
	if o.exactly {
		hasOwn := slices.ContainsFunc(recs, func(kr keyed) bool { return kr.rec.Instance == o.env.Instance })
		if err := o.setIDs(r, hasOwn); err != nil {
			return err
		}
		o.linked = len(links.claimed(o)) > 0
		switch {
		case o.linked:
			o.log.Info("kafka output: the offsets of the pipeline's kafka inputs are committed in this output's transactions")
		case links.contested(o):
			o.log.Warn("kafka output: the offsets of the pipeline's kafka inputs stay in the checkpoint (exactly once for this process only): only an exactly_once kafka output with parallelism 1, the only one of its pipeline, commits them in its transactions")
		}
	}
	par := max(o.env.Parallelism, 1)
	var own *txnRecord
	for _, kr := range recs {
		mine := kr.rec.Instance == o.env.Instance
		if !mine && (kr.rec.Instance < par || kr.rec.Instance%par != o.env.Instance) {
			continue
		}
		if err := o.settle(ctx, kr.rec); err != nil {
			return err
		}
		if mine && o.exactly {
			own = &kr.rec
			o.txn.hasRecord = true
		} else {
			o.settled = append(o.settled, kr.key)
			if !mine {
				o.settled = append(o.settled, fmt.Appendf(nil, "%s%d", identKeyPrefix, kr.rec.Instance))
			}
		}
	}
	if !o.exactly {
		return nil
	}
	o.txn.cur = 0
	if own != nil && own.ID == o.txn.ids[own.Slot] {
		o.txn.cur = 1 - own.Slot
	}
	for slot, id := range o.txn.ids {
		if own != nil && id == own.ID {
			continue // untouched until a later checkpoint is durable
		}
		cl, err := o.clientLocked(slot)
		if err != nil {
			return err
		}
		if _, _, err := cl.ProducerID(ctx); err != nil {
			return fmt.Errorf("kafka output: initialize the producer of transactional id %q: %w; check that the brokers are reachable and allow transactions", id, err)
		}
	}
	o.cl = o.txn.clients[o.txn.cur]
	return nil
}

// setIDs sets the transactional ids: <prefix>-<process>-<instance>-<slot>.
// The process's id is random, made at its first start and kept in its
// checkpoints, so that a restart reuses its ids (initializing them aborts
// what a crash left open) and two processes of one pipeline never share
// them (they would fence each other). A checkpoint of a version before
// process ids, with a transaction of this instance, keeps the old ids
// <prefix>-<instance>-<slot>.
func (o *Output) setIDs(r runtime.StateReader, hasOwn bool) error {
	prefix := o.cfg.TransactionalID
	if prefix == "" {
		prefix = "weir-" + o.env.Pipeline + "-" + o.env.Node
	}
	v, ok, err := r.Get(fmt.Appendf(nil, "%s%d", identKeyPrefix, o.env.Instance))
	if err != nil {
		return fmt.Errorf("kafka output: read the process id: %w", err)
	}
	switch {
	case ok:
		o.txn.ident = string(v)
	case hasOwn:
		o.txn.ident = "" // a checkpoint from before process ids
	default:
		var b [4]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("kafka output: make a process id: %w", err)
		}
		o.txn.ident, o.txn.identNew = hex.EncodeToString(b[:]), true
	}
	for slot := range o.txn.ids {
		if o.txn.ident == "" {
			o.txn.ids[slot] = fmt.Sprintf("%s-%d-%d", prefix, o.env.Instance, slot)
		} else {
			o.txn.ids[slot] = fmt.Sprintf("%s-%s-%d-%d", prefix, o.txn.ident, o.env.Instance, slot)
		}
	}
	return nil
}

// settle commits the transaction rec, which a completed checkpoint covers.
func (o *Output) settle(ctx context.Context, rec txnRecord) error {
	err := endTxn(ctx, o.opts, rec)
	faults.Point("kafka.settled")
	switch {
	case err == nil:
		o.log.Info("kafka output: the transaction of the last checkpoint is committed",
			slog.String("transactional_id", rec.ID), slog.Int64("producer_id", rec.PID), slog.Int("epoch", int(rec.Epoch)))
		return nil
	case isLost(err) && len(rec.Groups) > 0 && o.linked:
		o.log.Warn("kafka output: the transaction the last checkpoint recorded was aborted by the broker, with the input offsets it carried: its records are read again from the group's offsets",
			slog.String("transactional_id", rec.ID), slog.Any("groups", rec.Groups), slog.Any("err", err))
		return nil
	case isLost(err):
		lerr := fmt.Errorf("kafka output: the transaction the last checkpoint recorded for instance %d (transactional id %q, producer id %d, epoch %d) was aborted by the broker: %w. Its records are lost: the checkpoint's input positions are past them. This happens when weir stays down longer than transaction_timeout (%s) after a crash in the middle of a checkpoint, or when another producer uses the same transactional id; to start anyway, set on_lost_transaction: proceed: %w",
			rec.Instance, rec.ID, rec.PID, rec.Epoch, err, o.cfg.TransactionTimeout, ErrTransactionLost)
		if o.cfg.OnLostTransaction == "proceed" {
			o.log.Error("kafka output: starting after a lost transaction (on_lost_transaction: proceed)", slog.Any("err", lerr))
			return nil
		}
		return lerr
	default:
		return fmt.Errorf("kafka output: commit the transaction the last checkpoint recorded (transactional id %q): %w; nothing is written before it is settled: check that the brokers are reachable and start again", rec.ID, err)
	}
}

// endTxn commits rec's transaction with a raw EndTxn request, which goes to
// the transaction coordinator, from a client without a transactional id
// (a transactional client would initialize its producer id first, which
// aborts the transaction). A commit already done is answered with success:
// at the same epoch before KIP-890, at the epoch before the current one
// with it (kfake does the same).
func endTxn(ctx context.Context, opts []kgo.Opt, rec txnRecord) error {
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer func() { cl.Close() }()
	// Use the EndTxn version the producer used: franz-go sends version 5
	// (a commit bumps the epoch) only when the cluster's
	// transaction.version feature is 2 or more, and version 4 otherwise.
	tv2, err := transactionV2(ctx, cl)
	if err != nil {
		return err
	}
	if !tv2 {
		vs := kversion.Stable()
		vs.SetMaxKeyVersion(int16(kmsg.EndTxn), 4)
		cl.Close()
		if cl, err = kgo.NewClient(append(slices.Clip(opts), kgo.MaxVersions(vs))...); err != nil {
			return fmt.Errorf("kafka: %w", err)
		}
	}
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = rec.ID, rec.PID, rec.Epoch, true
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		err = kerr.ErrorForCode(resp.ErrorCode)
		// CONCURRENT_TRANSACTIONS: the coordinator is still completing
		// the commit or abort (writing markers); ask again.
		if err == nil || attempt == 40 || !(kerr.IsRetriable(err) || errors.Is(err, kerr.ConcurrentTransactions)) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// transactionV2 reports whether the cluster runs transactions under
// KIP-890 part 2 (finalized feature transaction.version >= 2).
func transactionV2(ctx context.Context, cl *kgo.Client) (bool, error) {
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "weir", "1"
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("kafka: api versions: %w", err)
	}
	for _, f := range resp.FinalizedFeatures {
		if f.Name == "transaction.version" && f.MaxVersionLevel >= 2 {
			return true, nil
		}
	}
	return false, nil
}
