package file

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/weir-dev/weir/internal/faults"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// OutputConfig is the YAML configuration of a file output.
type OutputConfig struct {
	Dir            string          `yaml:"dir" required:"true" doc:"Directory to write files in; created if missing."`
	Prefix         string          `yaml:"prefix" default:"events" doc:"Start of every file name."`
	Suffix         string          `yaml:"suffix" default:".ndjson" doc:"End of every file name."`
	RotateBytes    config.ByteSize `yaml:"rotate_bytes" default:"128MiB" doc:"Start a new file before one would grow beyond this size; 0 disables size rotation."`
	RotateInterval time.Duration   `yaml:"rotate_interval" default:"0" doc:"Start a new file when the current one is this old; 0 disables time rotation."`
	Sync           bool            `yaml:"sync" default:"false" doc:"fsync the file on every flush, so acknowledged events survive a machine crash, not only a process crash."`
}

// DefaultOutputConfig returns the defaults, to decode the YAML over.
func DefaultOutputConfig() OutputConfig {
	return OutputConfig{
		Prefix:      "events",
		Suffix:      ".ndjson",
		RotateBytes: 128 << 20,
	}
}

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil.
func (c OutputConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, &config.FieldError{Field: "dir", Msg: "missing", Expected: "a directory path"})
	}
	if c.Prefix == "" || strings.HasPrefix(c.Prefix, ".") || strings.ContainsAny(c.Prefix, `/\`) {
		errs = append(errs, &config.FieldError{Field: "prefix", Msg: fmt.Sprintf("bad prefix %q", c.Prefix), Expected: "a non-empty file name start without '/' that does not begin with '.'"})
	}
	if strings.ContainsAny(c.Suffix, `/\`) || strings.HasSuffix(c.Suffix, inProgressExt) {
		errs = append(errs, &config.FieldError{Field: "suffix", Msg: fmt.Sprintf("bad suffix %q", c.Suffix), Expected: "a file name ending without '/', such as .ndjson"})
	}
	if c.RotateBytes < 0 {
		errs = append(errs, &config.FieldError{Field: "rotate_bytes", Msg: fmt.Sprintf("negative size %d", c.RotateBytes), Expected: "a size such as 128MiB, or 0 for no size rotation"})
	}
	if c.RotateInterval < 0 {
		errs = append(errs, &config.FieldError{Field: "rotate_interval", Msg: fmt.Sprintf("negative interval %v", c.RotateInterval), Expected: "a duration such as 1h, or 0 for no time rotation"})
	}
	return errors.Join(errs...)
}

const (
	inProgressExt = ".inprogress"
	// stampLayout is the UTC time of a file's first write in its name.
	stampLayout = "20060102T150405Z"
	writeBuffer = 256 << 10
)

// Output writes NDJSON files. Use NewOutput.
//
// Without checkpointing (runtime.Env.Checkpointing false) a file is
// published — fsynced and renamed to its final name — as soon as it is
// rotated or the output closes.
//
// With checkpointing, files are tied to checkpoints: a rotated file is only
// closed into the pending list, and a file is published once a completed
// checkpoint covers every byte of it (Committed, or a rotation or Close after
// it). Snapshot records the pending files and the active file's size;
// Restore publishes what the last checkpoint recorded (cutting the active
// file back to its recorded size) and deletes every other in-progress file
// of the instance, whose events the inputs replay. So every event is in
// exactly one published file, provided the inputs replay from the
// checkpointed positions.
//
// Write, Flush and Close run on the output's goroutine; Restore, Snapshot
// and Committed on the checkpoint coordinator's. mu serializes them.
type Output struct {
	cfg      OutputConfig
	env      runtime.Env
	log      *slog.Logger
	instance string
	// stateKey is this instance's key in the node's checkpoint state.
	stateKey []byte
	// now is the clock; tests replace it.
	now func() time.Time

	mu sync.Mutex
	// The current in-progress file; f is nil when none is open.
	f       *os.File
	w       *bufio.Writer
	tmpPath string
	first   time.Time // time of the first write
	size    int64     // bytes written to it, buffered or not
	seq     int       // seq of the current (or last) file

	// The fields below are used only with checkpointing.

	// pending are the closed, fsynced, unpublished files, oldest first.
	pending []pendingFile
	// dirDirty is set when a file was created since the directory was last
	// fsynced: a checkpoint must not record a file whose directory entry a
	// machine crash could lose.
	dirDirty bool
	// snapTaken is set by Snapshot and cleared by Committed; snapActive is
	// the active file as that Snapshot recorded it (zero when none).
	snapTaken  bool
	snapActive fileRecord
	// doneActive is the active file as the last committed checkpoint
	// recorded it: when that file is closed with this very size, a
	// completed checkpoint covers all of it and it is published at once.
	doneActive fileRecord
	// broken is the first error that may have lost data written to a file
	// (a failed write, flush or fsync). No checkpoint completes after it:
	// the pipeline has to restart from the last one.
	broken error

	files  int64 // files published
	events int64 // events written
}

var (
	_ runtime.Output   = (*Output)(nil)
	_ runtime.Stateful = (*Output)(nil)
)

// fileRecord names one file of this instance and its size, in memory and
// in checkpoint state.
type fileRecord struct {
	File  string `json:"file"`  // in-progress name, in the output's dir
	Final string `json:"final"` // name to publish it under
	Size  int64  `json:"size"`  // bytes the checkpoint covers
}

type pendingFile struct {
	fileRecord
	// snapped: the Snapshot awaiting Committed recorded this file.
	snapped bool
}

// stateVersion is the version of outputState's encoding.
const stateVersion = 1

// outputState is one instance's checkpoint state, stored as JSON under the
// key "files/<instance>" (the runtime prefixes the node's name), e.g.
//
//	{"v":1,"seq":12,
//	 "pending":[{"file":".events-0-11.inprogress","final":"events-20240501T120000Z-0-000011.ndjson","size":4096}],
//	 "active":{"file":".events-0-12.inprogress","final":"events-20240501T120100Z-0-000012.ndjson","size":310}}
//
// Seq is the highest file number used; Pending the closed files awaiting
// publication, oldest first; Active the file being written and how many of
// its bytes the checkpoint covers.
type outputState struct {
	Version int          `json:"v"`
	Seq     int          `json:"seq"`
	Pending []fileRecord `json:"pending,omitempty"`
	Active  *fileRecord  `json:"active,omitempty"`
}

// NewOutput returns instance env.Instance of a file output. It creates the
// directory if needed. Without checkpointing it publishes files left in
// progress by an earlier run of the same instance (see the package doc);
// with checkpointing Restore settles them.
func NewOutput(cfg OutputConfig, env runtime.Env) (runtime.Output, error) {
	return newOutput(cfg, env, time.Now)
}

func newOutput(cfg OutputConfig, env runtime.Env, now func() time.Time) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &Output{
		cfg: cfg, env: env, log: env.Logger, now: now,
		instance: strconv.Itoa(env.Instance),
		stateKey: []byte("files/" + strconv.Itoa(env.Instance)),
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.log = o.log.With(slog.Int("instance", env.Instance))
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file output: %w", err)
	}
	left, seq, err := o.scan()
	if err != nil {
		return nil, err
	}
	o.seq = seq
	if !env.Checkpointing {
		if err := o.recover(left); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// tmpName is the in-progress name of file seq.
func (o *Output) tmpName(seq int) string {
	return "." + o.cfg.Prefix + "-" + o.instance + "-" + strconv.Itoa(seq) + inProgressExt
}

// finalName is the published name of file seq first written at first.
func (o *Output) finalName(first time.Time, seq int) string {
	return fmt.Sprintf("%s-%s-%s-%06d%s", o.cfg.Prefix, first.UTC().Format(stampLayout), o.instance, seq, o.cfg.Suffix)
}

// parseTmp returns the seq of this instance's in-progress file name.
func (o *Output) parseTmp(name string) (int, bool) {
	head := "." + o.cfg.Prefix + "-" + o.instance + "-"
	if !strings.HasPrefix(name, head) || !strings.HasSuffix(name, inProgressExt) {
		return 0, false
	}
	return parseSeq(name[len(head) : len(name)-len(inProgressExt)])
}

// parseFinal returns the seq of this instance's published file name.
func (o *Output) parseFinal(name string) (int, bool) {
	head := o.cfg.Prefix + "-"
	if !strings.HasPrefix(name, head) || !strings.HasSuffix(name, o.cfg.Suffix) || len(name) < len(head)+len(o.cfg.Suffix) {
		return 0, false
	}
	parts := strings.Split(name[len(head):len(name)-len(o.cfg.Suffix)], "-")
	if len(parts) != 3 || parts[1] != o.instance {
		return 0, false
	}
	if _, err := time.Parse(stampLayout, parts[0]); err != nil {
		return 0, false
	}
	return parseSeq(parts[2])
}

func parseSeq(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s == "" || s[0] == '+' {
		return 0, false
	}
	return n, true
}

// leftover is an in-progress file of this instance found in the directory.
type leftover struct {
	name string
	seq  int
}

// scan returns the in-progress files of this instance in the directory
// and the highest seq among them and its published files.
func (o *Output) scan() (left []leftover, seq int, err error) {
	entries, err := os.ReadDir(o.cfg.Dir)
	if err != nil {
		return nil, 0, fmt.Errorf("file output: %w", err)
	}
	for _, e := range entries {
		if s, ok := o.parseFinal(e.Name()); ok {
			seq = max(seq, s)
		} else if s, ok := o.parseTmp(e.Name()); ok {
			seq = max(seq, s)
			left = append(left, leftover{e.Name(), s})
		}
	}
	return left, seq, nil
}

// recover publishes this instance's leftover in-progress files (without
// checkpointing). Leftovers are never deleted: their events may have been
// acknowledged. A torn last line (written by a full write buffer, never
// flushed by Flush and so never acknowledged) is cut off so that the
// published file is whole NDJSON.
func (o *Output) recover(left []leftover) error {
	for _, l := range left {
		if err := o.publishLeftover(l.name, l.seq); err != nil {
			return err
		}
	}
	if len(left) > 0 {
		return syncDir(o.cfg.Dir)
	}
	return nil
}

func (o *Output) publishLeftover(name string, seq int) error {
	path := filepath.Join(o.cfg.Dir, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("file output: recover: %w", err)
	}
	defer func() { _ = f.Close() }() // synced below before it is published
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("file output: recover: %w", err)
	}
	keep, err := wholeLines(f, st.Size())
	if err != nil {
		return fmt.Errorf("file output: recover %s: %w", path, err)
	}
	if keep < st.Size() {
		if err := f.Truncate(keep); err != nil {
			return fmt.Errorf("file output: recover: %w", err)
		}
		o.log.Warn("file output: cut a torn last line from a leftover file",
			slog.String("file", path), slog.Int64("bytes", st.Size()-keep))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("file output: recover: %w", err)
	}
	// The time of the first write is gone; the last write is the best
	// stand-in.
	final := filepath.Join(o.cfg.Dir, o.finalName(st.ModTime(), seq))
	if err := os.Rename(path, final); err != nil {
		return fmt.Errorf("file output: recover: %w", err)
	}
	o.log.Info("file output published a file left in progress by an earlier run", slog.String("file", final))
	return nil
}

// wholeLines returns the length of the longest prefix of f (of size size)
// that ends with '\n', or is empty.
func wholeLines(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := min(int64(len(buf)), end)
		if _, err := f.ReadAt(buf[:n], end-n); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return end - n + int64(i) + 1, nil
		}
		end -= n
	}
	return 0, nil
}

// Write appends each event's value and a newline to the current file,
// rotating first when the file is too old or the event would make it too
// big. It does not retain evs.
func (o *Output) Write(ctx context.Context, evs []event.Event) error {
	if len(evs) == 0 {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.broken != nil {
		return o.brokenErrLocked()
	}
	if err := o.rotateIfOldLocked(); err != nil {
		return err
	}
	for i := range evs {
		v := evs[i].Value
		n := int64(len(v)) + 1
		if o.f != nil && o.cfg.RotateBytes > 0 && o.size > 0 && o.size+n > int64(o.cfg.RotateBytes) {
			if err := o.finishLocked(); err != nil {
				return err
			}
		}
		if o.f == nil {
			if err := o.openLocked(); err != nil {
				return err
			}
		}
		// bufio errors are sticky: checking the last write covers both.
		_, _ = o.w.Write(v)
		if err := o.w.WriteByte('\n'); err != nil {
			return o.breakLocked(fmt.Errorf("file output: write %s: %w", o.tmpPath, err))
		}
		o.size += n
	}
	o.events += int64(len(evs))
	return nil
}

// Flush writes buffered data to the file (and fsyncs it with sync: true),
// then rotates the file if it is too old.
func (o *Output) Flush(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.broken != nil {
		return o.brokenErrLocked()
	}
	if o.f == nil {
		return nil
	}
	if err := o.w.Flush(); err != nil {
		return o.breakLocked(fmt.Errorf("file output: write %s: %w", o.tmpPath, err))
	}
	if o.cfg.Sync {
		if err := o.f.Sync(); err != nil {
			return o.breakLocked(fmt.Errorf("file output: fsync %s: %w", o.tmpPath, err))
		}
	}
	return o.rotateIfOldLocked()
}

// Close finishes the current file, if any. Without checkpointing it
// publishes it. With checkpointing it publishes it only if the last
// completed checkpoint covered all of it — at a graceful stop the runtime
// takes a final checkpoint first, so it did; otherwise the file stays in
// progress, and so do pending files no completed checkpoint covered, for
// the next Restore to settle.
func (o *Output) Close(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.finishLocked()
	if o.env.Checkpointing && (len(o.pending) > 0 || err != nil) {
		o.log.LogAttrs(ctx, slog.LevelWarn, "file output: closing with files no completed checkpoint covers; they stay in progress and the next start discards them, as the inputs replay their events",
			slog.Int("files", len(o.pending)))
	}
	o.log.LogAttrs(ctx, slog.LevelInfo, "file output closed",
		slog.Int64("events", o.events), slog.Int64("files", o.files))
	return err
}

func (o *Output) rotateIfOldLocked() error {
	if o.f != nil && o.cfg.RotateInterval > 0 && o.now().Sub(o.first) >= o.cfg.RotateInterval {
		return o.finishLocked()
	}
	return nil
}

// openLocked creates the next in-progress file.
func (o *Output) openLocked() error {
	o.seq++
	o.tmpPath = filepath.Join(o.cfg.Dir, o.tmpName(o.seq))
	f, err := os.OpenFile(o.tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	o.f = f
	o.dirDirty = true
	if o.w == nil {
		o.w = bufio.NewWriterSize(f, writeBuffer)
	} else {
		o.w.Reset(f)
	}
	o.first = o.now()
	o.size = 0
	return nil
}

// activeLocked describes the current file.
func (o *Output) activeLocked() fileRecord {
	return fileRecord{File: filepath.Base(o.tmpPath), Final: o.finalName(o.first, o.seq), Size: o.size}
}

// finishLocked flushes, fsyncs and closes the current file, then publishes
// it: at once without checkpointing; with checkpointing only if the last
// completed checkpoint covered all of it, else it joins the pending list.
// Without a current file it does nothing. On error the file is left in
// progress (without checkpointing, it is published at the next start).
func (o *Output) finishLocked() error {
	if o.f == nil {
		return nil
	}
	rec := o.activeLocked()
	f := o.f
	o.f = nil
	err := o.w.Flush()
	o.w.Reset(nil)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return o.breakLocked(fmt.Errorf("file output: finish %s: %w", o.tmpPath, err))
	}
	if o.env.Checkpointing && rec != o.doneActive {
		o.pending = append(o.pending, pendingFile{fileRecord: rec})
		return nil
	}
	o.doneActive = fileRecord{}
	if err := o.publishLocked(rec); err != nil {
		return err
	}
	return syncDir(o.cfg.Dir)
}

// publishLocked renames a closed, fsynced file to its final name. The
// caller fsyncs the directory.
func (o *Output) publishLocked(rec fileRecord) error {
	faults.Point("file.publish")
	if err := os.Rename(filepath.Join(o.cfg.Dir, rec.File), filepath.Join(o.cfg.Dir, rec.Final)); err != nil {
		return fmt.Errorf("file output: publish: %w", err)
	}
	o.files++
	return nil
}

// breakLocked records err, with checkpointing, as the error that keeps any
// further checkpoint from completing, and returns it.
func (o *Output) breakLocked(err error) error {
	if o.env.Checkpointing && o.broken == nil {
		o.broken = err
	}
	return err
}

func (o *Output) brokenErrLocked() error {
	return fmt.Errorf("file output: data may be missing from a file since an earlier error, so no checkpoint can complete; restart the pipeline to resume from the last one: %w", o.broken)
}

// Snapshot flushes and fsyncs the current file (and the directory, when
// files were created since the last time), then records the pending files
// and the current file's size under this instance's key. It publishes
// nothing: Committed does, once the checkpoint is durable.
func (o *Output) Snapshot(ctx context.Context, w runtime.StateWriter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.broken != nil {
		return o.brokenErrLocked()
	}
	st := outputState{Version: stateVersion, Seq: o.seq}
	var active fileRecord
	if o.f != nil {
		if err := o.w.Flush(); err != nil {
			return o.breakLocked(fmt.Errorf("file output: write %s: %w", o.tmpPath, err))
		}
		if err := o.f.Sync(); err != nil {
			return o.breakLocked(fmt.Errorf("file output: fsync %s: %w", o.tmpPath, err))
		}
		active = o.activeLocked()
		st.Active = &active
	}
	if o.dirDirty {
		if err := syncDir(o.cfg.Dir); err != nil {
			return err
		}
		o.dirDirty = false
	}
	for _, p := range o.pending {
		st.Pending = append(st.Pending, p.fileRecord)
	}
	val, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("file output: snapshot: %w", err)
	}
	if err := w.Set(o.stateKey, val); err != nil {
		return fmt.Errorf("file output: snapshot: %w", err)
	}
	for i := range o.pending {
		o.pending[i].snapped = true
	}
	o.snapTaken, o.snapActive = true, active
	return nil
}

// Committed publishes the files the last Snapshot recorded as pending, and
// the file it recorded as current if that has been closed since without
// growing. Files closed later stay pending for the next checkpoint. A file
// that fails to publish stays pending and is tried again at the next
// checkpoint.
func (o *Output) Committed(ctx context.Context, id uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.snapTaken {
		return nil
	}
	covered := o.snapActive
	o.snapTaken, o.snapActive = false, fileRecord{}
	o.doneActive = covered
	var errs []error
	published := 0
	kept := o.pending[:0]
	for _, p := range o.pending {
		if !p.snapped && (covered.File == "" || p.fileRecord != covered) {
			kept = append(kept, p)
			continue
		}
		if err := o.publishLocked(p.fileRecord); err != nil {
			errs = append(errs, err)
			p.snapped = true // covered: publish at the next Committed
			kept = append(kept, p)
			continue
		}
		published++
	}
	clear(o.pending[len(kept):])
	o.pending = kept
	if published > 0 {
		if err := syncDir(o.cfg.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Restore settles the files of this instance before the first event, from
// the state of the last completed checkpoint r holds:
//
//   - every file the state records, pending or current, that is still in
//     progress is cut back to its recorded size and published (the crash
//     came before Committed or Close published it; doing it again is
//     idempotent); one that is gone was published before;
//   - every other in-progress file of this instance is deleted: it holds
//     only events after the checkpoint, which the inputs replay. Without
//     state (no checkpoint yet, or none with this output) that is every
//     in-progress file, even one left by a run without checkpointing.
//
// New files are numbered after every file still present and every one the
// state records.
func (o *Output) Restore(ctx context.Context, r runtime.StateReader) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil || len(o.pending) > 0 {
		return errors.New("file output: Restore after Write")
	}
	st, err := o.readStateLocked(r)
	if err != nil {
		return err
	}
	recs := st.Pending
	if st.Active != nil {
		recs = append(recs[:len(recs):len(recs)], *st.Active)
	}
	known := make(map[string]bool, len(recs))
	published := 0
	for _, rec := range recs {
		known[rec.File] = true
		ok, err := o.settleLocked(rec)
		if err != nil {
			return err
		}
		if ok {
			published++
		}
	}
	left, _, err := o.scan()
	if err != nil {
		return err
	}
	deleted := 0
	for _, l := range left {
		if known[l.name] {
			continue
		}
		if err := os.Remove(filepath.Join(o.cfg.Dir, l.name)); err != nil {
			return fmt.Errorf("file output: restore: %w", err)
		}
		deleted++
	}
	// Numbers of deleted files are used again: they were never published.
	_, seq, err := o.scan()
	if err != nil {
		return err
	}
	o.seq = max(seq, st.Seq)
	if published+deleted > 0 {
		if err := syncDir(o.cfg.Dir); err != nil {
			return err
		}
		o.log.LogAttrs(ctx, slog.LevelInfo, "file output settled files from before the restart",
			slog.Int("published", published), slog.Int("deleted", deleted))
	}
	return nil
}

// readStateLocked decodes and checks this instance's state; it is zero
// when there is none.
func (o *Output) readStateLocked(r runtime.StateReader) (outputState, error) {
	var st outputState
	val, ok, err := r.Get(o.stateKey)
	if err != nil {
		return st, fmt.Errorf("file output: restore: %w", err)
	}
	if !ok {
		return st, nil
	}
	if err := json.Unmarshal(val, &st); err != nil {
		return st, fmt.Errorf("file output: restore: decode state %s: %w", o.stateKey, err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("file output: restore: state %s has version %d, this version of weir reads %d: run the weir that wrote the checkpoint", o.stateKey, st.Version, stateVersion)
	}
	bad := st.Seq < 0
	for _, rec := range st.Pending {
		bad = bad || !rec.valid()
	}
	if st.Active != nil {
		bad = bad || !st.Active.valid()
	}
	if bad {
		return st, fmt.Errorf("file output: restore: state %s is corrupt: %s", o.stateKey, val)
	}
	return st, nil
}

// valid reports whether rec names an in-progress file and a published
// file in the output's directory.
func (rec fileRecord) valid() bool {
	plain := func(s string) bool {
		return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
	}
	return plain(rec.File) && strings.HasPrefix(rec.File, ".") && strings.HasSuffix(rec.File, inProgressExt) &&
		plain(rec.Final) && !strings.HasPrefix(rec.Final, ".") && rec.Size >= 0
}

// settleLocked publishes a file the last checkpoint recorded, cut back to
// the recorded size and fsynced. It reports false if the file is no longer
// in progress: it was published before (and its reader may have moved it
// away since).
func (o *Output) settleLocked(rec fileRecord) (bool, error) {
	path := filepath.Join(o.cfg.Dir, rec.File)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("file output: restore: %w", err)
	}
	err = cutAndSync(f, rec.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("file output: restore %s: %w", path, err)
	}
	return true, o.publishLocked(rec)
}

// cutAndSync truncates f to size and fsyncs it.
func cutAndSync(f *os.File, size int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() < size {
		return fmt.Errorf("%d bytes, fewer than the %d the last checkpoint recorded: the file was changed outside weir or the disk lost data", st.Size(), size)
	}
	if st.Size() > size {
		if err := f.Truncate(size); err != nil {
			return err
		}
	}
	return f.Sync()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file output: fsync directory %s: %w", dir, err)
	}
	return nil
}
