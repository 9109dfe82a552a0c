package file

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/runtime"
)

// InputConfig is the YAML configuration of a file input.
type InputConfig struct {
	Path         string          `yaml:"path" required:"true" doc:"File to read, or a glob (files are read in lexical order)."`
	Codec        string          `yaml:"codec" enum:"json|lines" default:"json" doc:"json: every line must be a JSON document (others are rejected); lines: any text."`
	Compression  string          `yaml:"compression" enum:"auto|none|gzip" default:"auto" doc:"auto reads files ending in .gz as gzip."`
	Follow       bool            `yaml:"follow" default:"false" doc:"Keep reading the last file as it grows, like tail -F, instead of stopping at its end."`
	PollInterval time.Duration   `yaml:"poll_interval" default:"250ms" doc:"How often a followed file is checked for new data, truncation and rotation."`
	MaxLineBytes config.ByteSize `yaml:"max_line_bytes" default:"1MiB" doc:"Longest accepted line; longer lines are rejected and skipped."`
}

// DefaultInputConfig returns the defaults, to decode the YAML over.
func DefaultInputConfig() InputConfig {
	return InputConfig{
		Codec:        "json",
		Compression:  "auto",
		PollInterval: 250 * time.Millisecond,
		MaxLineBytes: 1 << 20,
	}
}

// maxLineLimit bounds max_line_bytes: a line is held in memory whole.
const maxLineLimit = 1 << 30

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil.
func (c InputConfig) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, &config.FieldError{Field: "path", Msg: "missing", Expected: "a file path or a glob such as logs/*.ndjson"})
	} else if _, err := filepath.Match(c.Path, ""); err != nil {
		errs = append(errs, &config.FieldError{Field: "path", Msg: fmt.Sprintf("bad glob %q: %v", c.Path, err), Hint: "escape a literal [ as \\["})
	}
	if _, err := lines.ParseCodec(c.Codec); err != nil {
		errs = append(errs, &config.FieldError{Field: "codec", Msg: fmt.Sprintf("unknown codec %q", c.Codec), Expected: "json or lines"})
	}
	switch c.Compression {
	case "auto", "none":
	case "gzip":
		if c.Follow {
			errs = append(errs, &config.FieldError{Field: "follow", Msg: "cannot follow a gzip file", Hint: "set follow: false, or read the uncompressed file"})
		}
	default:
		errs = append(errs, &config.FieldError{Field: "compression", Msg: fmt.Sprintf("unknown compression %q", c.Compression), Expected: "auto, none or gzip"})
	}
	if c.Follow && c.PollInterval <= 0 {
		errs = append(errs, &config.FieldError{Field: "poll_interval", Msg: fmt.Sprintf("poll_interval is %v", c.PollInterval), Expected: "a positive duration such as 250ms"})
	}
	if c.MaxLineBytes < 1 || c.MaxLineBytes > maxLineLimit {
		errs = append(errs, &config.FieldError{Field: "max_line_bytes", Msg: fmt.Sprintf("max_line_bytes is %d", c.MaxLineBytes), Expected: "between 1 and 1GiB"})
	}
	return errors.Join(errs...)
}

// Input reads files. Use NewInput.
//
// With checkpointing (runtime.Env.Checkpointing) it is runtime.Stateful and
// a runtime.Drainer: each checkpoint records, per file, the position up to
// which every line is acknowledged, and Run resumes every file from its
// position (input_state.go). Run, Restore and the coordinator's Snapshot
// and Committed share the fields below mu.
type Input struct {
	cfg      InputConfig
	env      runtime.Env
	log      *slog.Logger
	progress lines.Progress
	rd       *lines.Reader
	ckpt     bool // env.Checkpointing
	// lo wraps Run's outlet with checkpoints. Run goroutine only.
	lo *lineOutlet
	// rejecting counts Reject calls in progress.
	rejecting atomic.Int32

	mu sync.Mutex
	// resume holds the checkpointed positions not yet resumed from, by
	// file key; stored the positions the store holds; stale the keys of
	// files path no longer matches, to delete.
	resume map[string]filePos
	stored map[string]filePos
	stale  map[string]bool
	// cur is the current reading; done the readings of whole files, in
	// reading order.
	cur  *reading
	done []*reading
	// What the Snapshot awaiting Committed wrote.
	snap      map[string]filePos
	snapStale []string
	snapTaken bool
}

var (
	_ runtime.Input       = (*Input)(nil)
	_ runtime.InputCloser = (*Input)(nil)
	_ runtime.Stateful    = (*Input)(nil)
	_ runtime.Drainer     = (*Input)(nil)
)

// NewInput returns a file input. It must run as a single instance.
func NewInput(cfg InputConfig, env runtime.Env) (runtime.Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Parallelism > 1 {
		return nil, fmt.Errorf("file input %q: parallelism is %d, but a file is read by one instance; set parallelism: 1", env.Node, env.Parallelism)
	}
	codec, _ := lines.ParseCodec(cfg.Codec)
	in := &Input{cfg: cfg, env: env, log: env.Logger, ckpt: env.Checkpointing,
		resume: map[string]filePos{}, stored: map[string]filePos{}, stale: map[string]bool{}}
	if in.log == nil {
		in.log = slog.New(slog.DiscardHandler)
	}
	in.rd = lines.NewReader(lines.Options{
		Codec:        codec,
		Deferred:     env.DeferValidation,
		MaxLineBytes: int(cfg.MaxLineBytes),
		BatchSize:    env.BatchSize,
		Progress:     &in.progress,
	})
	return in, nil
}

// Acknowledged returns the position up to which every record has been
// acknowledged, with line and offset counted from the start of its file.
func (in *Input) Acknowledged() lines.Position {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.committedLocked()
}

// Run reads the files. Without follow it returns nil after the last file's
// end; with follow it returns only when ctx ends or on an error.
func (in *Input) Run(ctx context.Context, out runtime.Outlet) error {
	if in.ckpt {
		in.lo = &lineOutlet{in: in, out: out}
		out = in.lo
	}
	files, err := in.expand(ctx)
	if err != nil {
		return err
	}
	if in.ckpt {
		in.forget(files)
	}
	err = in.readFiles(ctx, out, files)
	if in.ckpt && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// A stop: hand over the lines already read, so that the final
		// checkpoint covers them — lines rejected among them are handled
		// already and must not be rejected again after the restart.
		if ferr := in.rd.Flush(context.WithoutCancel(ctx), out); ferr != nil {
			return ferr
		}
	}
	return err
}

func (in *Input) readFiles(ctx context.Context, out runtime.Outlet, files []string) error {
	for i, path := range files {
		if in.cfg.Follow && i == len(files)-1 {
			if in.gzipped(path) {
				return fmt.Errorf("file input: cannot follow gzip file %s; set follow: false", path)
			}
			return in.follow(ctx, out, path)
		}
		if err := in.readFile(ctx, out, path); err != nil {
			return err
		}
	}
	return nil
}

func hasMeta(path string) bool { return strings.ContainsAny(path, `*?[\`) }

// expand returns the files to read. A plain path is returned as is (opening
// it reports a missing file); a glob that matches nothing is an error,
// unless following, when the input waits for a match.
func (in *Input) expand(ctx context.Context) ([]string, error) {
	if !hasMeta(in.cfg.Path) {
		return []string{in.cfg.Path}, nil
	}
	logged := false
	for {
		files, err := filepath.Glob(in.cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("file input: glob %q: %w", in.cfg.Path, err)
		}
		files = regularFiles(files)
		if len(files) > 0 {
			sort.Strings(files)
			return files, nil
		}
		if !in.cfg.Follow {
			return nil, fmt.Errorf("file input: path %q matches no files", in.cfg.Path)
		}
		if !logged {
			in.log.Info("file input waiting for files to match", slog.String("path", in.cfg.Path))
			logged = true
		}
		if err := sleep(ctx, in.cfg.PollInterval); err != nil {
			return nil, err
		}
	}
}

// regularFiles drops directories and the like from a glob's matches.
func regularFiles(paths []string) []string {
	out := paths[:0]
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			out = append(out, p)
		}
	}
	return out
}

func (in *Input) gzipped(path string) bool {
	return in.cfg.Compression == "gzip" || in.cfg.Compression == "auto" && strings.HasSuffix(path, ".gz")
}

// readFile reads one whole file, or what is left of it after its
// checkpointed position.
func (in *Input) readFile(ctx context.Context, out runtime.Outlet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file input: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	gz := in.gzipped(path)
	content := func() (io.Reader, error) {
		if !gz {
			return f, nil
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, fmt.Errorf("file input: read %s as gzip: %w", path, err)
		}
		return zr, nil // Close only reports errors that Read reports
	}
	src, err := content()
	if err != nil {
		return err
	}
	r, src, err := in.begin(path, f, src, gz, content)
	if err != nil {
		return err
	}
	in.rd.Reset(path)
	if err := in.rd.ReadFrom(ctx, out, src); err != nil {
		return err
	}
	if err := in.rd.Finish(ctx, out); err != nil {
		return err
	}
	return in.finish(r, f)
}

// followed is the file a follow loop has open.
type followed struct {
	f   *os.File
	fi  os.FileInfo
	src io.Reader // f's content through the reading's head recorder
	r   *reading  // nil without checkpoints
}

// read returns the number of bytes read from the file since its start.
func (fl *followed) read(rd *lines.Reader) int64 {
	if fl.r == nil {
		return rd.BytesRead()
	}
	return fl.r.base.Offset + rd.BytesRead()
}

// follow reads path and keeps reading it as it grows, until ctx ends.
func (in *Input) follow(ctx context.Context, out runtime.Outlet, path string) error {
	var fl *followed
	defer func() {
		if fl != nil {
			_ = fl.f.Close() // read-only: nothing to lose
		}
	}()
	open := func() error {
		nf, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("file input: %w", err)
		}
		nfi, err := nf.Stat()
		if err != nil {
			_ = nf.Close() // read-only: nothing to lose
			return fmt.Errorf("file input: %w", err)
		}
		r, src, err := in.begin(path, nf, nf, false, func() (io.Reader, error) { return nf, nil })
		if err != nil {
			_ = nf.Close() // read-only: nothing to lose
			return err
		}
		fl = &followed{f: nf, fi: nfi, src: src, r: r}
		in.rd.Reset(path)
		return nil
	}
	if err := open(); err != nil {
		return err
	}
	waiting := false // logged that path is missing
	for {
		if fl != nil {
			if err := in.rd.ReadFrom(ctx, out, fl.src); err != nil {
				return err
			}
			rotated, err := in.checkFile(ctx, out, path, fl)
			if err != nil {
				return err
			}
			if rotated {
				_ = fl.f.Close() // read-only: nothing to lose
				fl = nil
			}
		}
		if fl == nil {
			switch err := open(); {
			case err == nil:
				waiting = false
				in.log.Info("file input opened rotated file", slog.String("path", path))
				continue // read it at once
			case errors.Is(err, fs.ErrNotExist):
				if !waiting {
					in.log.Info("file input waiting for rotated file", slog.String("path", path))
					waiting = true
				}
			default:
				return err
			}
		}
		if err := sleep(ctx, in.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// checkFile runs at EOF of a followed file. On truncation it rewinds the
// file and starts over; if path now names another file (rotation) it reads
// the open file to its end, finishes it and reports rotated, and the caller
// opens path again.
func (in *Input) checkFile(ctx context.Context, out runtime.Outlet, path string, fl *followed) (rotated bool, err error) {
	cur, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Renamed away and not yet replaced: keep reading what we have.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("file input: %w", err)
	case !os.SameFile(cur, fl.fi):
		// Data may have been appended between our EOF and the rename.
		if err := in.rd.ReadFrom(ctx, out, fl.src); err != nil {
			return false, err
		}
		if err := in.rd.Finish(ctx, out); err != nil {
			return false, err
		}
		in.log.Info("file input finished rotated file", slog.String("path", path),
			slog.Int64("lines", in.rd.Position().Line))
		return true, nil
	}
	st, err := fl.f.Stat()
	if err != nil {
		return false, fmt.Errorf("file input: %w", err)
	}
	if read := fl.read(in.rd); st.Size() < read {
		in.log.Warn("file input: file truncated, reading it again from the start",
			slog.String("path", path), slog.Int64("size", st.Size()), slog.Int64("read", read))
		if _, err := fl.f.Seek(0, io.SeekStart); err != nil {
			return false, fmt.Errorf("file input: rewind %s: %w", path, err)
		}
		in.rd.Reset(path)
		if in.ckpt {
			fl.r = &reading{path: path, key: fileKey(path)}
			fl.src = &headTee{in: in, r: fl.r, Reader: fl.f}
			in.start(fl.r)
		}
	}
	return false, nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close logs how far the input got and what was acknowledged.
func (in *Input) Close(ctx context.Context) error {
	c := in.Acknowledged()
	in.log.LogAttrs(ctx, slog.LevelInfo, "file input closed",
		slog.String("committed_file", c.Source), slog.Int64("committed_line", c.Line),
		slog.Int64("committed_offset", c.Offset),
		slog.Int64("emitted", in.rd.Emitted()), slog.Int64("acknowledged", in.rd.Acked()),
		slog.Int64("rejected", in.rd.Rejected()))
	return nil
}
