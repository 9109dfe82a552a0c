package stdio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// StdoutConfig is the YAML configuration of a stdout output.
type StdoutConfig struct {
	BufferBytes config.ByteSize `yaml:"buffer_bytes" default:"256KiB" doc:"Lines are collected up to this size before being written; a flush writes them sooner."`
}

// DefaultStdoutConfig returns the defaults, to decode the YAML over.
func DefaultStdoutConfig() StdoutConfig {
	return StdoutConfig{BufferBytes: 256 << 10}
}

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil.
func (c StdoutConfig) Validate() error {
	var errs []error
	if c.BufferBytes < 1 || c.BufferBytes > 1<<30 {
		errs = append(errs, &config.FieldError{Field: "buffer_bytes", Msg: fmt.Sprintf("buffer_bytes is %d", c.BufferBytes), Expected: "between 1 and 1GiB"})
	}
	return errors.Join(errs...)
}

// writerLocks holds one mutex per writer shared by stdout outputs
// (io.Writer → *sync.Mutex). Entries are never removed: there are few
// writers (os.Stdout, test buffers).
var writerLocks sync.Map

// lockFor returns the mutex shared by every output writing to w. Writers of
// a type that cannot be a map key get a mutex of their own.
func lockFor(w io.Writer) *sync.Mutex {
	if !reflect.TypeOf(w).Comparable() {
		return new(sync.Mutex)
	}
	mu, _ := writerLocks.LoadOrStore(w, new(sync.Mutex))
	return mu.(*sync.Mutex)
}

// Stdout writes events to a writer, normally os.Stdout. Use NewStdout.
type Stdout struct {
	env   runtime.Env
	log   *slog.Logger
	w     io.Writer
	wmu   *sync.Mutex // shared with every Stdout writing to w
	buf   []byte      // whole lines not yet written
	limit int

	events int64
}

var _ runtime.Output = (*Stdout)(nil)

// NewStdout returns a stdout output writing to w. Instances given the same
// (comparable) w never interleave their lines.
func NewStdout(cfg StdoutConfig, env runtime.Env, w io.Writer) (runtime.Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("stdout output: nil writer")
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Stdout{
		env:   env,
		log:   log.With(slog.Int("instance", env.Instance)),
		w:     w,
		wmu:   lockFor(w),
		limit: int(cfg.BufferBytes),
	}, nil
}

// Write buffers each event's value and a newline, writing the buffer out
// when it is full.
func (s *Stdout) Write(ctx context.Context, evs []event.Event) error {
	for i := range evs {
		v := evs[i].Value
		if len(s.buf) > 0 && len(s.buf)+len(v)+1 > s.limit {
			if err := s.Flush(ctx); err != nil {
				return err
			}
		}
		s.buf = append(s.buf, v...)
		s.buf = append(s.buf, '\n')
	}
	s.events += int64(len(evs))
	return nil
}

// Flush writes the buffered lines in one call under the writer's lock.
func (s *Stdout) Flush(ctx context.Context) error {
	if len(s.buf) == 0 {
		return nil
	}
	s.wmu.Lock()
	_, err := s.w.Write(s.buf)
	s.wmu.Unlock()
	if cap(s.buf) > 4*s.limit {
		s.buf = nil // one huge line: do not keep its buffer
	} else {
		s.buf = s.buf[:0]
	}
	if err != nil {
		return fmt.Errorf("stdout output: write: %w", err)
	}
	return nil
}

// Close flushes what is buffered.
func (s *Stdout) Close(ctx context.Context) error {
	err := s.Flush(ctx)
	s.log.LogAttrs(ctx, slog.LevelDebug, "stdout output closed", slog.Int64("events", s.events))
	return err
}
