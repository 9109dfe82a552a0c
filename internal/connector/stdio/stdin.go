// Package stdio holds the stdin input and the stdout output.
//
// The stdin input reads newline-delimited records (NDJSON or plain lines)
// with the framing of package lines and returns at EOF. Reads happen on a
// helper goroutine so that Run returns as soon as its context ends even while
// a read is blocked on a silent terminal or pipe; that goroutine exits when
// the blocked read returns (at the next input or EOF, or at once for readers
// with read deadlines, such as os.File pipes), and Close waits for it within
// its own context. Stdin is not replayable: an acknowledgement means only
// that the records were delivered downstream.
//
// The stdout output writes each event's value plus '\n'. Every instance
// buffers whole lines and hands them to the writer under a lock shared by
// all outputs writing to the same writer, so lines of concurrent instances
// never interleave.
package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/runtime"
)

// StdinConfig is the YAML configuration of a stdin input.
type StdinConfig struct {
	Codec        string          `yaml:"codec" enum:"json|lines" default:"json" doc:"json: every line must be a JSON document (others are rejected); lines: any text."`
	MaxLineBytes config.ByteSize `yaml:"max_line_bytes" default:"1MiB" doc:"Longest accepted line; longer lines are rejected and skipped."`
}

// DefaultStdinConfig returns the defaults, to decode the YAML over.
func DefaultStdinConfig() StdinConfig {
	return StdinConfig{Codec: "json", MaxLineBytes: 1 << 20}
}

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil.
func (c StdinConfig) Validate() error {
	var errs []error
	if _, err := lines.ParseCodec(c.Codec); err != nil {
		errs = append(errs, &config.FieldError{Field: "codec", Msg: fmt.Sprintf("unknown codec %q", c.Codec), Expected: "json or lines"})
	}
	if c.MaxLineBytes < 1 || c.MaxLineBytes > 1<<30 {
		errs = append(errs, &config.FieldError{Field: "max_line_bytes", Msg: fmt.Sprintf("max_line_bytes is %d", c.MaxLineBytes), Expected: "between 1 and 1GiB"})
	}
	return errors.Join(errs...)
}

// stdinSource names stdin in positions and in the "source" header of
// rejected events.
const stdinSource = "stdin"

// Stdin reads records from a reader, normally os.Stdin. Use NewStdin.
type Stdin struct {
	env runtime.Env
	log *slog.Logger
	r   io.Reader
	rd  *lines.Reader
	// done is closed when the read goroutine has exited; nil before Run.
	done chan struct{}
}

var (
	_ runtime.Input       = (*Stdin)(nil)
	_ runtime.InputCloser = (*Stdin)(nil)
)

// NewStdin returns a stdin input reading r. It must run as a single
// instance.
func NewStdin(cfg StdinConfig, env runtime.Env, r io.Reader) (runtime.Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if env.Parallelism > 1 {
		return nil, fmt.Errorf("stdin input %q: parallelism is %d, but stdin is read by one instance; set parallelism: 1", env.Node, env.Parallelism)
	}
	codec, _ := lines.ParseCodec(cfg.Codec)
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stdin{
		env: env,
		log: log,
		r:   r,
		rd: lines.NewReader(lines.Options{
			Codec:            codec,
			Deferred:         env.DeferValidation,
			MaxLineBytes:     int(cfg.MaxLineBytes),
			BatchSize:        env.BatchSize,
			FlushOnShortRead: true,
		}),
	}, nil
}

// Run reads until EOF (it returns nil) or until ctx ends. Run must be called
// once. It waits for its read goroutine unless it gave up on a blocked read,
// which Close then waits for.
func (s *Stdin) Run(ctx context.Context, out runtime.Outlet) error {
	a := &asyncReader{r: s.r, reqs: make(chan []byte), res: make(chan readResult, 1), done: make(chan struct{})}
	s.done = a.done
	go a.loop()
	stop := context.AfterFunc(ctx, a.interrupt)
	defer func() {
		stop()
		close(a.reqs)
		if a.abandoned {
			// The context's cancel closes Done before it starts the
			// AfterFunc: Run can get here first and stop it, so interrupt
			// the blocked read here too.
			a.interrupt()
		} else {
			<-a.done // idle: it exits at once
		}
	}()

	src := readerFunc(func(p []byte) (int, error) { return a.read(ctx, p) })
	s.rd.Reset(stdinSource)
	err := s.rd.ReadFrom(ctx, out, src)
	if err == nil {
		err = s.rd.Finish(ctx, out)
	}
	return err
}

// Close waits (within ctx) for the read goroutine and logs what was read.
func (s *Stdin) Close(ctx context.Context) error {
	if s.done != nil {
		select {
		case <-s.done:
		case <-ctx.Done():
			s.log.Warn("stdin input: a read is still blocked; it ends at the next input or EOF")
		}
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "stdin input closed",
		slog.Int64("lines", s.rd.Position().Line),
		slog.Int64("emitted", s.rd.Emitted()), slog.Int64("acknowledged", s.rd.Acked()),
		slog.Int64("rejected", s.rd.Rejected()))
	return nil
}

type readResult struct {
	n   int
	err error
}

// asyncReader performs the reads of one Run on its own goroutine, so that
// a Read waiting for input can be abandoned when the context ends. A
// buffer passed to an abandoned Read may still be written to later: the
// caller must not use it again (Run ends, and its Reader with it).
type asyncReader struct {
	r    io.Reader
	reqs chan []byte // closed by Run when it returns
	res  chan readResult
	done chan struct{}
	// abandoned is set (by the caller's goroutine) when a read was given up
	// on: the goroutine may still be blocked in it.
	abandoned bool
}

func (a *asyncReader) loop() {
	defer close(a.done)
	var err error // sticky: after an error every read reports it again
	for p := range a.reqs {
		n := 0
		if err == nil {
			n, err = a.r.Read(p)
		}
		a.res <- readResult{n, err} // buffered, and read or abandoned: never blocks
	}
}

// read reads through the goroutine until ctx ends.
func (a *asyncReader) read(ctx context.Context, p []byte) (int, error) {
	select {
	case a.reqs <- p:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	select {
	case r := <-a.res:
		return r.n, r.err
	case <-ctx.Done():
		a.abandoned = true
		return 0, ctx.Err()
	}
}

// interrupt unblocks a pending read where the reader allows it.
func (a *asyncReader) interrupt() {
	if d, ok := a.r.(interface{ SetReadDeadline(time.Time) error }); ok {
		_ = d.SetReadDeadline(time.Now())
	}
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
