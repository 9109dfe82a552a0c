package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
type Output struct {
	cfg      OutputConfig
	env      runtime.Env
	log      *slog.Logger
	instance string
	// now is the clock; tests replace it.
	now func() time.Time

	// The current in-progress file; f is nil when none is open.
	f       *os.File
	w       *bufio.Writer
	tmpPath string
	first   time.Time // time of the first write
	size    int64     // bytes written to it, buffered or not
	seq     int       // seq of the current (or last) file

	files  int64 // files published
	events int64 // events written
}

var _ runtime.Output = (*Output)(nil)

// NewOutput returns instance env.Instance of a file output. It creates the
// directory if needed and publishes files left in progress by an earlier run
// of the same instance (see the package doc).
func NewOutput(cfg OutputConfig, env runtime.Env) (runtime.Output, error) {
	return newOutput(cfg, env, time.Now)
}

func newOutput(cfg OutputConfig, env runtime.Env, now func() time.Time) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &Output{cfg: cfg, env: env, log: env.Logger, instance: strconv.Itoa(env.Instance), now: now}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.log = o.log.With(slog.Int("instance", env.Instance))
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("file output: %w", err)
	}
	if err := o.recover(); err != nil {
		return nil, err
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

// recover publishes this instance's leftover in-progress files and sets seq
// past every file of this instance. Leftovers are never deleted: their
// events may have been acknowledged. A torn last line (written by a full
// write buffer, never flushed by Flush and so never acknowledged) is cut off
// so that the published file is whole NDJSON.
func (o *Output) recover() error {
	entries, err := os.ReadDir(o.cfg.Dir)
	if err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	type leftover struct {
		name string
		seq  int
	}
	var left []leftover
	for _, e := range entries {
		if seq, ok := o.parseFinal(e.Name()); ok {
			o.seq = max(o.seq, seq)
		} else if seq, ok := o.parseTmp(e.Name()); ok {
			o.seq = max(o.seq, seq)
			left = append(left, leftover{e.Name(), seq})
		}
	}
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
	if err := o.rotateIfOld(); err != nil {
		return err
	}
	for i := range evs {
		v := evs[i].Value
		n := int64(len(v)) + 1
		if o.f != nil && o.cfg.RotateBytes > 0 && o.size > 0 && o.size+n > int64(o.cfg.RotateBytes) {
			if err := o.finish(); err != nil {
				return err
			}
		}
		if o.f == nil {
			if err := o.open(); err != nil {
				return err
			}
		}
		// bufio errors are sticky: checking the last write covers both.
		_, _ = o.w.Write(v)
		if err := o.w.WriteByte('\n'); err != nil {
			return fmt.Errorf("file output: write %s: %w", o.tmpPath, err)
		}
		o.size += n
	}
	o.events += int64(len(evs))
	return nil
}

// Flush writes buffered data to the file (and fsyncs it with sync: true),
// then rotates the file if it is too old.
func (o *Output) Flush(ctx context.Context) error {
	if o.f == nil {
		return nil
	}
	if err := o.w.Flush(); err != nil {
		return fmt.Errorf("file output: write %s: %w", o.tmpPath, err)
	}
	if o.cfg.Sync {
		if err := o.f.Sync(); err != nil {
			return fmt.Errorf("file output: fsync %s: %w", o.tmpPath, err)
		}
	}
	return o.rotateIfOld()
}

// Close publishes the current file, if any.
func (o *Output) Close(ctx context.Context) error {
	err := o.finish()
	o.log.LogAttrs(ctx, slog.LevelInfo, "file output closed",
		slog.Int64("events", o.events), slog.Int64("files", o.files))
	return err
}

func (o *Output) rotateIfOld() error {
	if o.f != nil && o.cfg.RotateInterval > 0 && o.now().Sub(o.first) >= o.cfg.RotateInterval {
		return o.finish()
	}
	return nil
}

// open creates the next in-progress file.
func (o *Output) open() error {
	o.seq++
	o.tmpPath = filepath.Join(o.cfg.Dir, o.tmpName(o.seq))
	f, err := os.OpenFile(o.tmpPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	o.f = f
	if o.w == nil {
		o.w = bufio.NewWriterSize(f, writeBuffer)
	} else {
		o.w.Reset(f)
	}
	o.first = o.now()
	o.size = 0
	return nil
}

// finish flushes, fsyncs and closes the current file, renames it to its
// final name and fsyncs the directory. Without a current file it does
// nothing. On error the file is left in progress (and published at the next
// start).
func (o *Output) finish() error {
	f := o.f
	if f == nil {
		return nil
	}
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
		return fmt.Errorf("file output: finish %s: %w", o.tmpPath, err)
	}
	final := filepath.Join(o.cfg.Dir, o.finalName(o.first, o.seq))
	if err := os.Rename(o.tmpPath, final); err != nil {
		return fmt.Errorf("file output: %w", err)
	}
	if err := syncDir(o.cfg.Dir); err != nil {
		return err
	}
	o.files++
	return nil
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
