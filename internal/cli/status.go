package cli

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
)

// status reports progress while a pipeline runs: a live line redrawn every
// second on a terminal, or a summary log line every 10 s otherwise.
type status struct {
	p        *runtime.Pipeline
	mode     string // auto, on, off
	terminal bool
	w        io.Writer
	log      *slog.Logger
	began    time.Time

	mu      sync.Mutex
	prevIn  uint64
	prevOut uint64
	prevT   time.Time
}

func newStatus(p *runtime.Pipeline, mode string, terminal bool, w io.Writer, log *slog.Logger) *status {
	if mode == "on" {
		terminal = true
	}
	return &status{p: p, mode: mode, terminal: terminal, w: w, log: log, began: time.Now(), prevT: time.Now()}
}

type totals struct {
	in, out, filtered, errors, dropped, deadLetters uint64
}

func (s *status) totals() totals {
	var t totals
	for _, n := range s.p.Nodes() {
		switch n.Kind {
		case dag.Input:
			t.in += n.In.Load() // read, including records rejected as malformed
		case dag.Output:
			t.out += n.Out.Load()
		}
		t.filtered += n.Filtered.Load()
		t.errors += n.Errors.Load()
		t.dropped += n.Dropped.Load()
		t.deadLetters += n.DeadLetters.Load()
	}
	return t
}

// start begins periodic reporting; the returned func stops it.
func (s *status) start() func() {
	if s.mode == "off" {
		return func() {}
	}
	every := 10 * time.Second
	if s.terminal {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.report()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
		if s.terminal {
			s.clear()
		}
	}
}

func (s *status) rates() (t totals, inRate, outRate float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t = s.totals()
	now := time.Now()
	dt := now.Sub(s.prevT).Seconds()
	if dt > 0 {
		inRate = float64(t.in-s.prevIn) / dt
		outRate = float64(t.out-s.prevOut) / dt
	}
	s.prevIn, s.prevOut, s.prevT = t.in, t.out, now
	return t, inRate, outRate
}

func (s *status) report() {
	t, inRate, outRate := s.rates()
	if s.terminal {
		line := fmt.Sprintf("weir %s  in %s/s  out %s/s  │ read %s  written %s  filtered %s  errors %s  %s",
			s.p.Graph().Name, human(inRate), human(outRate), human(float64(t.in)), human(float64(t.out)),
			human(float64(t.filtered)), human(float64(t.errors)), time.Since(s.began).Truncate(time.Second))
		fmt.Fprintf(s.w, "\r\033[K%s", line)
		return
	}
	s.log.Info("progress",
		slog.String("in_rate", human(inRate)+"/s"), slog.String("out_rate", human(outRate)+"/s"),
		slog.Uint64("read", t.in), slog.Uint64("written", t.out), slog.Uint64("filtered", t.filtered),
		slog.Uint64("errors", t.errors), slog.Uint64("dead_letters", t.deadLetters))
}

func (s *status) clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprint(s.w, "\r\033[K")
}

// summary logs the totals of the run and how it ended.
func (s *status) summary(err error) {
	t := s.totals()
	elapsed := time.Since(s.began)
	attrs := []any{
		slog.Uint64("read", t.in), slog.Uint64("written", t.out), slog.Uint64("filtered", t.filtered),
		slog.Uint64("errors", t.errors), slog.Uint64("dropped", t.dropped), slog.Uint64("dead_letters", t.deadLetters),
		slog.String("elapsed", elapsed.Truncate(time.Millisecond).String()),
	}
	if secs := elapsed.Seconds(); secs > 0 {
		attrs = append(attrs, slog.String("avg_in_rate", human(float64(t.in)/secs)+"/s"))
	}
	if err != nil {
		s.log.Error("pipeline failed", append(attrs, slog.Any("err", err))...)
		return
	}
	s.log.Info("pipeline stopped", attrs...)
}

// human formats n with a k/M/G suffix. The unit is chosen after rounding,
// so 999,999 reads 1M rather than 1000k.
func human(n float64) string {
	if math.Round(n) < 1e4 {
		return strconv.FormatFloat(n, 'f', 0, 64)
	}
	units := []struct {
		div    float64
		suffix string
		prec   int
	}{{1e3, "k", 1}, {1e6, "M", 2}, {1e9, "G", 2}}
	for i, u := range units {
		s := strconv.FormatFloat(n/u.div, 'f', u.prec, 64)
		if v, _ := strconv.ParseFloat(s, 64); v < 1000 || i == len(units)-1 {
			return trim(s) + u.suffix
		}
	}
	return ""
}

func trim(num string) string {
	if strings.Contains(num, ".") {
		num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	}
	return num
}
