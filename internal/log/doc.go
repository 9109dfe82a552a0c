// Package log is weir's embedded durable log: partitions of records, each
// addressed by a dense 64-bit offset, stored as segment files on local disk.
// Its interface is shaped like a Kafka partition (append, read from an
// offset, high watermark, log start offset, offset for a timestamp), so the
// dataflow can later read a local partition and a Kafka partition alike.
// The on-disk format is specified in docs/format/log.md.
//
// # Guarantees
//
//   - Acknowledged means durable. Append returns a nil error only after the
//     records are written and, with DurabilityFsync (the default), fsynced.
//     With DurabilityNone they are in the OS page cache: they survive a
//     process crash but not a power loss. An Append that returns an error is
//     not acknowledged; it may or may not be in the log after a crash or a
//     cancelled context (at-least-once callers retry it).
//   - Offsets are dense and never reused: one Append gets consecutive
//     offsets starting at the returned base; concurrent Appends get disjoint
//     ranges in the order the committer takes them.
//   - Readers see only acknowledged records: the high watermark moves after
//     the fsync, never before.
//   - A failed write or fsync puts the partition in a failed state: that
//     Append and every later one return an error wrapping ErrFailed. The
//     failure is never retried and ignored, since after a failed fsync the
//     page cache may no longer hold what was written. Reopen to recover.
//   - Recovery (Open) truncates a torn tail — damage confined to the last
//     write of the last segment (nothing valid after it, or only batches of
//     that same write, which a power loss may persist out of order), which
//     only an unacknowledged write can leave — and reports it in
//     Metrics().Recovery. Any other damage (a bad CRC or header followed by
//     valid data, missing or overlapping offsets, a missing segment at
//     either end or in the middle) is a *CorruptionError naming the
//     segment, offsets and bytes affected; Open then changes nothing in the
//     directory, and fails the same way every time. Open checks sealed
//     segments cheaply (their first headers and those after the last index
//     entry); reads check every batch's CRC and report damage the same way,
//     after the records before it.
//   - Power loss: with DurabilityFsync, every file an acknowledged append or
//     commit depends on — a new segment, the meta file, the readers file —
//     has been fsynced and its directory entry made durable first. Tests
//     prove it with SyncRecordEnv and CutToSynced, which replay what a power
//     loss would leave.
//
// # Retention
//
// Readers register by committing (Commit), and the commits are stored
// atomically in the partition directory. A sealed segment is deleted only
// when every registered reader has committed past its last offset and the
// retention limits (RetainBytes, RetainTime) allow it; with no registered
// reader nothing is deleted. MaxBytes caps the partition: when it is
// reached and nothing can be deleted, Append fails with ErrFull (retriable,
// nothing written) — acknowledged data is never dropped to make room. When
// full, RetainBytes and RetainTime yield; readers' commits never do.
//
// A Log is N partitions in subdirectories 0..N-1 of one directory.
//
// Reading without opening: a Reader (OpenReader) reads a partition that
// another process may be writing. It takes no lock and writes nothing; a
// torn or in-progress write at the end is where its reading stops.
//
// Limitation: damage to a fully fsynced last write (say, a page zeroed
// later by the disk) cannot be told apart from a torn write and is
// truncated as one; a durable record of the synced length would be needed
// to tell them apart. With DurabilityNone a power loss can damage several
// unsynced writes; Open then reports corruption rather than guess.
//
// # Threading
//
// A Partition is safe for concurrent use. One committer goroutine, started
// by Open and stopped (and waited for) by Close, owns all writes: Append
// encodes its records in the caller's goroutine, queues them (bounded by
// Options.QueueDepth; ctx cancels the wait) and waits for the committer,
// which coalesces every queued append into one write and one fsync (group
// commit). Reads run in the caller's goroutine on a snapshot of the
// published state and never block the committer for longer than the
// snapshot takes. Records returned by reads own their bytes. Only one
// Partition may be open on a directory at a time, across processes: Open
// takes an flock on the LOCK file in it (released by the kernel even on a
// crash) and a second Open fails with ErrLocked.
package log
