package log

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Durability says when an append is acknowledged.
type Durability int

const (
	// DurabilityFsync (the default) acknowledges an append only after the
	// write that holds it has been fsynced: it survives a process crash and
	// a power loss.
	DurabilityFsync Durability = iota
	// DurabilityNone acknowledges an append once it is written to the OS
	// page cache. It survives a process crash but not a power loss or a
	// kernel crash: the unsynced tail is lost (and truncated on recovery).
	// An explicit opt-out for data that can be regenerated.
	DurabilityNone
)

func (d Durability) String() string {
	switch d {
	case DurabilityFsync:
		return "fsync"
	case DurabilityNone:
		return "none"
	}
	return fmt.Sprintf("Durability(%d)", int(d))
}

// Options configure a partition. The zero value is valid: every zero field
// takes the default listed with it.
type Options struct {
	// Durability: DurabilityFsync (zero value) or DurabilityNone.
	Durability Durability
	// SegmentBytes is the size at which the active segment is rolled.
	// Default 128 MiB; at most 1 GiB.
	SegmentBytes int64
	// IndexIntervalBytes is the spacing of sparse index entries. Default
	// 4 KiB.
	IndexIntervalBytes int64
	// MaxAppendBytes bounds the encoded size of one Append call. Default
	// 8 MiB; at most 64 MiB.
	MaxAppendBytes int
	// MaxWriteBytes bounds how many bytes of coalesced appends go into one
	// write and fsync. Default 4 MiB; at most 256 MiB.
	MaxWriteBytes int
	// QueueDepth bounds the appends waiting for the committer. Default 1024.
	QueueDepth int
	// TailBytes is how many of the most recently committed bytes of the
	// active segment are kept in memory for readers of this Partition: a
	// reader within that distance of the end gets them without a read from
	// the file and without a CRC check (they are the bytes the committer
	// wrote, not bytes that came back from the disk). Default 4 MiB;
	// negative keeps none.
	TailBytes int
	// MaxBytes caps the partition's total segment bytes: an Append that
	// would pass it, when no segment can be deleted, fails with ErrFull.
	// Zero means no cap. When set, at least 2×SegmentBytes.
	MaxBytes int64
	// RetainBytes keeps at least this many bytes of segments that every
	// reader has committed past (for replay), unless the log is full.
	// Zero keeps none.
	RetainBytes int64
	// RetainTime keeps a segment whose newest record timestamp is younger
	// than this, even when every reader has committed past it, unless the
	// log is full. Zero keeps none.
	RetainTime time.Duration
	// Now is the clock that stamps records without a Timestamp. Default
	// time.Now.
	Now func() time.Time
	// Logger receives recovery reports. Default: discard.
	Logger *slog.Logger
}

const (
	maxSegmentBytes   = 1 << 30
	maxAppendBytesCap = 64 << 20
	// maxWriteBytesCap keeps segment positions within uint32 (index
	// entries): a segment never exceeds SegmentBytes + one write.
	maxWriteBytesCap = 256 << 20
)

// withDefaults fills zero fields; it is the one place defaults live.
func (o Options) withDefaults() Options {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 128 << 20
	}
	if o.IndexIntervalBytes == 0 {
		o.IndexIntervalBytes = 4 << 10
	}
	if o.MaxAppendBytes == 0 {
		o.MaxAppendBytes = 8 << 20
	}
	if o.MaxWriteBytes == 0 {
		o.MaxWriteBytes = 4 << 20
	}
	if o.QueueDepth == 0 {
		o.QueueDepth = 1024
	}
	if o.TailBytes == 0 {
		o.TailBytes = 4 << 20
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports every invalid field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Durability != DurabilityFsync && o.Durability != DurabilityNone {
		errs = append(errs, fmt.Errorf("log: durability %d: want DurabilityFsync or DurabilityNone", int(o.Durability)))
	}
	if o.SegmentBytes < 0 || o.SegmentBytes > maxSegmentBytes {
		errs = append(errs, fmt.Errorf("log: segment bytes %d: want 0 (default) to %d", o.SegmentBytes, maxSegmentBytes))
	}
	if o.IndexIntervalBytes < 0 {
		errs = append(errs, fmt.Errorf("log: index interval bytes %d: want >= 0", o.IndexIntervalBytes))
	}
	if o.MaxAppendBytes < 0 || o.MaxAppendBytes > maxAppendBytesCap {
		errs = append(errs, fmt.Errorf("log: max append bytes %d: want 0 (default) to %d", o.MaxAppendBytes, maxAppendBytesCap))
	}
	if o.MaxWriteBytes < 0 || o.MaxWriteBytes > maxWriteBytesCap {
		errs = append(errs, fmt.Errorf("log: max write bytes %d: want 0 (default) to %d", o.MaxWriteBytes, maxWriteBytesCap))
	}
	if seg := o.withDefaults().SegmentBytes; o.MaxBytes < 0 || (o.MaxBytes > 0 && o.MaxBytes < 2*seg) {
		errs = append(errs, fmt.Errorf("log: max bytes %d: want 0 (no cap) or at least 2×SegmentBytes (%d)", o.MaxBytes, 2*seg))
	}
	if o.RetainBytes < 0 || o.RetainTime < 0 {
		errs = append(errs, fmt.Errorf("log: retain bytes %d, retain time %v: want >= 0", o.RetainBytes, o.RetainTime))
	}
	if o.QueueDepth < 0 {
		errs = append(errs, fmt.Errorf("log: queue depth %d: want >= 0", o.QueueDepth))
	}
	return errors.Join(errs...)
}
