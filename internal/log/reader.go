package log

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Reader reads a partition directory without changing anything in it: it
// takes no lock, truncates nothing and writes no index, so it can read a
// partition that a running process is appending to (an inspection tool,
// a backup). It sees the partition as of its last Refresh.
//
// What it sees differs from the writer's view in one way: a batch is
// visible once it is completely written, which can be just before the
// writer's fsync acknowledges it. Where the last segment ends with an
// incomplete (torn, or still being written) batch, reading stops; damage
// anywhere else is a *CorruptionError, returned by the read that reaches
// it after the records before it, and by Damage.
//
// A Reader is safe for concurrent use; its calls are serialized.
type Reader struct {
	dir string

	// mu guards scan and closed.
	mu     sync.Mutex
	scan   partitionScan
	closed bool
}

// OpenReader opens the partition in dir read-only and scans it. It fails
// only when the directory cannot be read; damage is reported by Damage
// and by reads.
func OpenReader(dir string) (*Reader, error) {
	r := &Reader{dir: dir, scan: partitionScan{fsys: osFS{}, dir: dir, mode: modeRead,
		interval: Options{}.withDefaults().IndexIntervalBytes}}
	if err := r.scan.update(); err != nil {
		_ = r.scan.close()
		return nil, err
	}
	return r, nil
}

// Refresh catches up with the directory: records appended, segments
// created or deleted since the last scan.
func (r *Reader) Refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	return r.scan.update()
}

// Dir is the partition's directory.
func (r *Reader) Dir() string { return r.dir }

// LogStartOffset is the first offset held.
func (r *Reader) LogStartOffset() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, start, _ := r.scan.views()
	return start
}

// HighWatermark is the offset after the last readable record: the end of
// the complete batches on disk, or where damage starts.
func (r *Reader) HighWatermark() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _, hw := r.scan.views()
	return hw
}

// Damage returns the *CorruptionError the last scan found, or nil. Damage
// in a sealed segment's record payload is found only by the read that
// reaches it.
func (r *Reader) Damage() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scan.damage == nil {
		return nil
	}
	return r.scan.damage
}

// ReadFrom returns records from offset on, like Partition.ReadFrom: at
// least one when offset is below HighWatermark, more while their keys,
// values and headers total at most maxBytes; next is the offset to read
// from next time. At HighWatermark it returns no records and, when damage
// starts there, the *CorruptionError. Outside [LogStartOffset,
// HighWatermark] it returns ErrOffsetOutOfRange. A read that reaches
// damage returns the records before it with the *CorruptionError.
func (r *Reader) ReadFrom(offset int64, maxBytes int) ([]Record, int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, offset, ErrClosed
	}
	vs, start, hw := r.scan.views()
	if offset < start || offset > hw {
		return nil, offset, fmt.Errorf("%w: offset %d, partition holds [%d, %d)", ErrOffsetOutOfRange, offset, start, hw)
	}
	var damage error
	if r.scan.damage != nil {
		damage = r.scan.damage
	}
	if offset == hw {
		return nil, offset, damage
	}
	i, _ := slices.BinarySearchFunc(vs, offset, func(v segmentView, o int64) int {
		if v.next <= o {
			return -1
		}
		return 1
	})
	out, next, expect, err := readViews(vs[i:], offset, maxBytes)
	if err == nil && next == hw {
		err = damage
	}
	if err != nil {
		err = deletedWhileRead(r.scan.fsys, vs[i:], expect, err)
	}
	return out, next, err
}

// deletedWhileRead turns the error of a read that failed at offset expect
// into ErrOffsetOutOfRange when the writer's retention deleted the segment
// under the reader: a deleted segment is renamed, then cut short in the
// background (shred), so the read finds it shorter than when it was
// listed. Damage (a *CorruptionError) is reported as it is.
func deletedWhileRead(fsys fileSystem, vs []segmentView, expect int64, err error) error {
	if _, ok := errors.AsType[*CorruptionError](err); ok {
		return err
	}
	for _, v := range vs {
		if expect >= v.s.base && expect < v.next {
			if _, serr := fsys.Stat(v.s.path); isNotExist(serr) {
				return fmt.Errorf("%w: offset %d was deleted by retention while it was being read", ErrOffsetOutOfRange, expect)
			}
			break
		}
	}
	return err
}

// SegmentInfo describes one segment file as a Reader sees it.
type SegmentInfo struct {
	// Path is the segment file.
	Path string
	// BaseOffset and EndOffset bound its readable records:
	// [BaseOffset, EndOffset).
	BaseOffset, EndOffset int64
	// Bytes is the size of its readable batches; FileBytes the file's
	// size, larger when the segment ends with a torn or in-progress write,
	// or with damage.
	Bytes, FileBytes int64
	// MaxTimestamp is the newest record timestamp (zero when empty).
	MaxTimestamp time.Time
}

// Segments describes the readable segments, oldest first.
func (r *Reader) Segments() []SegmentInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []SegmentInfo
	for _, sc := range r.scan.segs[:r.scan.usable] {
		si := SegmentInfo{Path: sc.s.path, BaseOffset: sc.s.base, EndOffset: sc.st.next, Bytes: sc.st.end, FileBytes: sc.size}
		if sc.st.maxTS != math.MinInt64 {
			si.MaxTimestamp = time.UnixMilli(sc.st.maxTS)
		}
		out = append(out, si)
	}
	return out
}

// Committed reads the partition's readers file: each registered reader's
// committed offset (none when the file does not exist).
func (r *Reader) Committed() (map[string]int64, error) {
	return readReaders(osFS{}, r.dir)
}

// Close releases the segment files.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	return r.scan.close()
}

// PartitionDir is a partition directory found by FindPartitions.
type PartitionDir struct {
	// Partition is the partition number: the directory's name in a log,
	// or 0 for a lone partition directory not named by a number.
	Partition int
	Dir       string
}

// FindPartitions returns the partitions under dir: dir itself when it is
// a partition directory (it holds segment, meta, readers or LOCK files),
// else the partitions 0..N-1 of the log in dir (OpenLog's layout), which
// must be numbered without gaps.
func FindPartitions(dir string) ([]PartitionDir, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	nums := map[int]bool{}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			if name == metaFile || name == readersFile || name == lockFile || filepath.Ext(name) == segmentSuffix {
				n, err := strconv.Atoi(filepath.Base(dir))
				if err != nil || n < 0 {
					n = 0
				}
				return []PartitionDir{{Partition: n, Dir: dir}}, nil
			}
			continue
		}
		if n, err := strconv.Atoi(name); err == nil && n >= 0 && strconv.Itoa(n) == name {
			nums[n] = true
		}
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("no log in %q: it holds neither segment files nor partition directories 0, 1 and so on", dir)
	}
	out := make([]PartitionDir, 0, len(nums))
	for i := range len(nums) {
		if !nums[i] {
			return nil, fmt.Errorf("log %q: partition directory %d is missing (found %d partition directories)", dir, i, len(nums))
		}
		out = append(out, PartitionDir{Partition: i, Dir: filepath.Join(dir, strconv.Itoa(i))})
	}
	return out, nil
}
