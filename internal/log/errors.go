package log

import (
	"errors"
	"fmt"
)

var (
	// ErrFailed means a write or fsync of the partition failed. The
	// partition accepts nothing more: data acknowledged before the failure
	// is durable, the failed append and every later one are not. Close and
	// reopen the partition (recovery truncates any half-written tail) after
	// fixing the cause (disk full, I/O error).
	ErrFailed = errors.New("log: partition failed")
	// ErrClosed is returned by calls on a closed partition.
	ErrClosed = errors.New("log: partition closed")
	// ErrOffsetOutOfRange is returned by reads outside
	// [LogStartOffset, HighWatermark].
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	// ErrTooLarge is returned by Append when one call's encoded records
	// exceed Options.MaxAppendBytes. Split the call or raise the limit.
	ErrTooLarge = errors.New("log: append too large")
	// ErrFull is returned by Append when the partition holds
	// Options.MaxBytes and no segment can be deleted because a registered
	// reader has not committed past it. It is retriable: nothing was
	// written, nothing was dropped; retry after readers commit (HTTP 503
	// with Retry-After).
	ErrFull = errors.New("log: partition full")
	// ErrLocked is returned by Open when another process (or another Open
	// in this one) has the partition directory open. Only one writer may
	// open a partition; OpenReader reads without the lock.
	ErrLocked = errors.New("log: partition directory locked")
)

// CorruptionError reports damaged data that is not a torn tail: bytes that
// were acknowledged (or were followed by acknowledged data) and no longer
// read back, or a segment file that is missing. The log never truncates such
// data away; an operator decides: restore the segment from a backup, or
// accept the loss (docs/log.md says how).
type CorruptionError struct {
	// Segment is the path of the damaged segment file, or of the missing
	// one (which then does not exist).
	Segment string
	// FirstOffset and EndOffset bound the affected records:
	// [FirstOffset, EndOffset). EndOffset is -1 when the end is unknown:
	// segments are missing at the end of the partition.
	FirstOffset, EndOffset int64
	// Pos and EndPos bound the damaged bytes in Segment: [Pos, EndPos).
	// Both are 0 for a missing segment.
	Pos, EndPos int64
	// Reason says what was found.
	Reason string
}

func (e *CorruptionError) Error() string {
	end := "end of partition"
	if e.EndOffset >= 0 {
		end = fmt.Sprint(e.EndOffset)
	}
	return fmt.Sprintf("log: corrupt segment %q: offsets [%d, %s) at bytes [%d, %d): %s",
		e.Segment, e.FirstOffset, end, e.Pos, e.EndPos, e.Reason)
}
