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
type Input struct {
	cfg      InputConfig
	env      runtime.Env
	log      *slog.Logger
	progress lines.Progress
	rd       *lines.Reader
}

var (
	_ runtime.Input       = (*Input)(nil)
	_ runtime.InputCloser = (*Input)(nil)
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
	in := &Input{cfg: cfg, env: env, log: env.Logger}
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

// Committed returns the position up to which every record has been
// acknowledged.
func (in *Input) Committed() lines.Position { return in.progress.Committed() }

// Run reads the files. Without follow it returns nil after the last file's
// end; with follow it returns only when ctx ends or on an error.
func (in *Input) Run(ctx context.Context, out runtime.Outlet) error {
	files, err := in.expand(ctx)
	if err != nil {
		return err
	}
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

// readFile reads one whole file.
func (in *Input) readFile(ctx context.Context, out runtime.Outlet, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("file input: %w", err)
	}
	defer func() { _ = f.Close() }()
	var src io.Reader = f
	if in.gzipped(path) {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return fmt.Errorf("file input: read %s as gzip: %w", path, err)
		}
		defer func() { _ = zr.Close() }()
		src = zr
	}
	in.rd.Reset(path)
	if err := in.rd.ReadFrom(ctx, out, src); err != nil {
		return err
	}
	return in.rd.Finish(ctx, out)
}

// follow reads path and keeps reading it as it grows, until ctx ends.
func (in *Input) follow(ctx context.Context, out runtime.Outlet, path string) error {
	var (
		f  *os.File
		fi os.FileInfo
	)
	defer func() {
		if f != nil {
			_ = f.Close() // read-only: nothing to lose
		}
	}()
	open := func() error {
		nf, err := os.Open(path)
		if err != nil {
			return err
		}
		nfi, err := nf.Stat()
		if err != nil {
			_ = nf.Close() // read-only: nothing to lose
			return err
		}
		f, fi = nf, nfi
		in.rd.Reset(path)
		return nil
	}
	if err := open(); err != nil {
		return fmt.Errorf("file input: %w", err)
	}
	waiting := false // logged that path is missing
	for {
		if f != nil {
			if err := in.rd.ReadFrom(ctx, out, f); err != nil {
				return err
			}
			rotated, err := in.checkFile(ctx, out, path, f, fi)
			if err != nil {
				return err
			}
			if rotated {
				_ = f.Close() // read-only: nothing to lose
				f = nil
			}
		}
		if f == nil {
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
				return fmt.Errorf("file input: %w", err)
			}
		}
		if err := sleep(ctx, in.cfg.PollInterval); err != nil {
			return err
		}
	}
}

// checkFile runs at EOF of a followed file. On truncation it rewinds f and
// starts over; if path now names another file (rotation) it reads f to its
// end, finishes it and reports rotated, and the caller opens path again.
func (in *Input) checkFile(ctx context.Context, out runtime.Outlet, path string, f *os.File, fi os.FileInfo) (rotated bool, err error) {
	cur, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Renamed away and not yet replaced: keep reading what we have.
		return false, nil
	case err != nil:
		return false, fmt.Errorf("file input: %w", err)
	case !os.SameFile(cur, fi):
		// Data may have been appended between our EOF and the rename.
		if err := in.rd.ReadFrom(ctx, out, f); err != nil {
			return false, err
		}
		if err := in.rd.Finish(ctx, out); err != nil {
			return false, err
		}
		in.log.Info("file input finished rotated file", slog.String("path", path),
			slog.Int64("lines", in.rd.Position().Line))
		return true, nil
	}
	st, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("file input: %w", err)
	}
	if st.Size() < in.rd.BytesRead() {
		in.log.Warn("file input: file truncated, reading it again from the start",
			slog.String("path", path), slog.Int64("size", st.Size()), slog.Int64("read", in.rd.BytesRead()))
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return false, fmt.Errorf("file input: rewind %s: %w", path, err)
		}
		in.rd.Reset(path)
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
	c := in.progress.Committed()
	in.log.LogAttrs(ctx, slog.LevelInfo, "file input closed",
		slog.String("committed_file", c.Source), slog.Int64("committed_line", c.Line),
		slog.Int64("committed_offset", c.Offset),
		slog.Int64("emitted", in.rd.Emitted()), slog.Int64("acknowledged", in.rd.Acked()),
		slog.Int64("rejected", in.rd.Rejected()))
	return nil
}
