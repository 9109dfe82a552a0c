package kafka

import "context"

// Crash drops the output as a crash would: its clients are closed without
// a flush and without ending any transaction.
func (o *Output) Crash() {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	for _, cl := range o.txn.clients {
		if cl != nil {
			cl.Close()
		}
	}
}

// CommitOffsetsAs commits offset off of topic/part for group, as member at
// generation, in the output's open transaction (what a checkpoint does for
// a linked input).
func (o *Output) CommitOffsetsAs(ctx context.Context, group, member string, generation int32, topic string, part int32, off int64) error {
	o.txMu.Lock()
	defer o.txMu.Unlock()
	return o.txnOffsetCommit(ctx, groupMember{group: group, member: member, generation: generation,
		offsets: map[string]map[int32]int64{topic: {part: off}}})
}
