package dedup

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// benchStart is the fake clock's origin: a bucket boundary for a 1h ttl
// (56.25 s buckets), far from 0.
var benchStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

type fakeClock struct{ t int64 }

func (c *fakeClock) now() int64 { return c.t }

func mustCompile(tb testing.TB, cfg Config) *Dedup {
	tb.Helper()
	d, errs := Compile(cfg, "processors.d", func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		tb.Fatalf("Compile: %v", errs)
	}
	return d
}

// harness is one instance on a fake clock, fed events with "tenant" and
// "event_id" headers.
type harness struct {
	tb  testing.TB
	p   *Processor
	clk *fakeClock
	rec runtime.Record
	ev  event.Event
}

func newHarness(tb testing.TB, d *Dedup, env runtime.Env, clk *fakeClock) *harness {
	tb.Helper()
	if env.Node == "" {
		env.Node = "d"
	}
	if env.Parallelism == 0 {
		env.Parallelism = 1
	}
	p, err := d.newProcessor(env, clk.now)
	if err != nil {
		tb.Fatal(err)
	}
	return &harness{tb: tb, p: p, clk: clk}
}

// send processes one event at time at and reports whether it passed. A
// tenant or id of "-" leaves the header out; `""` sends it empty.
func (h *harness) send(at int64, tenant, id string) bool {
	h.tb.Helper()
	tenant, id = strings.ReplaceAll(tenant, `""`, ""), strings.ReplaceAll(id, `""`, "")
	h.clk.t = at
	h.ev = event.Event{Value: []byte(`{}`)}
	if tenant != "-" {
		h.ev.Headers = append(h.ev.Headers, event.Header{Key: "tenant", Value: []byte(tenant)})
	}
	if id != "-" {
		h.ev.Headers = append(h.ev.Headers, event.Header{Key: "event_id", Value: []byte(id)})
	}
	h.rec.Reset(&h.ev)
	keep, err := h.p.Process(&h.rec)
	if err != nil {
		h.tb.Fatalf("Process(%s, %s): %v", tenant, id, err)
	}
	return keep
}

// memStore is a state store over a sorted map: the committed state of one
// node. A memBatch collects one checkpoint's writes and applies them in
// order at commit, or not at all.
type memStore struct {
	mu   sync.Mutex
	data map[string][]byte
}

func newMemStore() *memStore { return &memStore{data: map[string][]byte{}} }

type memOp struct {
	kind       byte // 's' set, 'd' delete, 'r' delete range
	key, value []byte
	end        []byte
}

type memBatch struct{ ops []memOp }

func (b *memBatch) Set(key, value []byte) error {
	b.ops = append(b.ops, memOp{kind: 's', key: slices.Clone(key), value: slices.Clone(value)})
	return nil
}

func (b *memBatch) Delete(key []byte) error {
	b.ops = append(b.ops, memOp{kind: 'd', key: slices.Clone(key)})
	return nil
}

func (b *memBatch) DeleteRange(start, end []byte) error {
	b.ops = append(b.ops, memOp{kind: 'r', key: slices.Clone(start), end: slices.Clone(end)})
	return nil
}

func (b *memBatch) count(kind byte) int {
	n := 0
	for _, op := range b.ops {
		if op.kind == kind {
			n++
		}
	}
	return n
}

func (s *memStore) commit(b *memBatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, op := range b.ops {
		switch op.kind {
		case 's':
			s.data[string(op.key)] = op.value
		case 'd':
			delete(s.data, string(op.key))
		case 'r':
			for k := range s.data {
				if k >= string(op.key) && k < string(op.end) {
					delete(s.data, k)
				}
			}
		}
	}
}

func (s *memStore) Get(key []byte) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[string(key)]
	return v, ok, nil
}

func (s *memStore) Scan(start, end []byte, fn func(key, value []byte) error) error {
	s.mu.Lock()
	var keys []string
	for k := range s.data {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = s.data[k]
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), vals[i]); err != nil {
			return err
		}
	}
	return nil
}

// ids returns the number of id keys of instance inst (-1: every instance).
func (s *memStore) ids(inst int) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.data {
		if k[0] == prefixIDs && (inst < 0 || bytes.HasPrefix([]byte(k), instPrefix(uint32(inst)))) {
			n++
		}
	}
	return n
}

// checkpoint snapshots procs into one batch and commits it.
func checkpoint(tb testing.TB, s *memStore, procs ...*Processor) *memBatch {
	tb.Helper()
	b := &memBatch{}
	for _, p := range procs {
		if err := p.Snapshot(context.Background(), b); err != nil {
			tb.Fatalf("Snapshot: %v", err)
		}
	}
	s.commit(b)
	for _, p := range procs {
		if err := p.Committed(context.Background(), 1); err != nil {
			tb.Fatalf("Committed: %v", err)
		}
	}
	return b
}

// logBuffer is a slog handler target that tests read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) lines(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for line := range strings.SplitSeq(l.b.String(), "\n") {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
