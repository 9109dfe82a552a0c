package runtime_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// memStore is an in-memory runtime.StateStore whose commits are atomic
// copies; verify, when set, checks each checkpoint before it is committed.
type memStore struct {
	mu     sync.Mutex
	data   map[string][]byte // node + "\x00" + key
	last   uint64
	verify func(id uint64, data map[string][]byte) error
	err    error
}

func newMemStore() *memStore { return &memStore{data: map[string][]byte{}} }

func (m *memStore) Reader(node string) runtime.StateReader { return memReader{m, node + "\x00"} }
func (m *memStore) Begin() runtime.StateTxn                { return &memTxn{m: m, w: map[string][]byte{}} }
func (m *memStore) Last() (uint64, bool)                   { m.mu.Lock(); defer m.mu.Unlock(); return m.last, m.last > 0 }

func (m *memStore) get(k string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.data[k]
}

type memReader struct {
	m      *memStore
	prefix string
}

func (r memReader) Get(k []byte) ([]byte, bool, error) {
	v := r.m.get(r.prefix + string(k))
	return v, v != nil, nil
}

func (r memReader) Scan(start, end []byte, fn func(k, v []byte) error) error {
	r.m.mu.Lock()
	var keys []string
	for k := range r.m.data {
		if len(k) >= len(r.prefix) && k[:len(r.prefix)] == r.prefix {
			kk := k[len(r.prefix):]
			if kk >= string(start) && (end == nil || kk < string(end)) {
				keys = append(keys, kk)
			}
		}
	}
	r.m.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), r.m.get(r.prefix+k)); err != nil {
			return err
		}
	}
	return nil
}

type memTxn struct {
	m *memStore
	w map[string][]byte // nil value = delete
}

type memWriter struct {
	t      *memTxn
	prefix string
}

func (t *memTxn) Writer(node string) runtime.StateWriter { return memWriter{t, node + "\x00"} }
func (t *memTxn) Abort()                                 {}
func (t *memTxn) Commit(id uint64) error {
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	next := map[string][]byte{}
	for k, v := range t.m.data {
		next[k] = v
	}
	for k, v := range t.w {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	if t.m.verify != nil {
		if err := t.m.verify(id, next); err != nil {
			t.m.err = err
			return err
		}
	}
	t.m.data, t.m.last = next, id
	return nil
}

func (w memWriter) Set(k, v []byte) error { w.t.w[w.prefix+string(k)] = bytes.Clone(v); return nil }
func (w memWriter) Delete(k []byte) error { w.t.w[w.prefix+string(k)] = nil; return nil }
func (w memWriter) DeleteRange([]byte, []byte) error {
	return fmt.Errorf("not used by these tests")
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// posInput emits ids from its position, with one Ack per batch; it is a
// replayable input: its checkpointed state is the position below which
// everything is acknowledged.
type posInput struct {
	env   runtime.Env
	count uint64
	next  uint64        // owned by Run
	acked atomic.Uint64 // acknowledged batches
	sent  atomic.Uint64 // events emitted
	reg   atomic.Uint64 // batches registered
	// pos is the end of the last acknowledged batch (batches are
	// acknowledged in order in these tests): after a drain, the end of
	// everything emitted.
	pos atomic.Uint64
}

func (in *posInput) Run(ctx context.Context, out runtime.Outlet) error {
	for in.next < in.count && ctx.Err() == nil {
		b := event.GetBatch()
		for len(b.Events) < 7 && in.next < in.count {
			b.Append(event.Event{Value: fmt.Appendf(nil, `{"id":%d}`, in.next), Offset: int64(in.next)})
			in.next++
		}
		n := uint64(len(b.Events))
		end := in.next
		ack := event.NewAck(len(b.Events), func() { in.pos.Store(end); in.acked.Add(1) })
		for i := range b.Events {
			b.Events[i].Ack = ack
		}
		in.reg.Add(1) // registered before Emit, as Drainer requires
		if err := out.Emit(ctx, b); err != nil {
			return err
		}
		in.sent.Add(n)
	}
	return nil
}

func (in *posInput) InFlight() int { return int(in.reg.Load() - in.acked.Load()) }

func (in *posInput) Restore(_ context.Context, r runtime.StateReader) error {
	v, ok, err := r.Get([]byte("pos"))
	if ok {
		in.next = binary.BigEndian.Uint64(v)
	}
	in.pos.Store(in.next)
	return err
}

func (in *posInput) Snapshot(_ context.Context, w runtime.StateWriter) error {
	return w.Set([]byte("pos"), u64(in.pos.Load()))
}
func (in *posInput) Committed(context.Context, uint64) error { return nil }

// countProc counts the events it sees; the count is its state.
type countProc struct {
	mu sync.Mutex
	n  uint64
}

func (p *countProc) Process(*runtime.Record) (bool, error) {
	p.mu.Lock()
	p.n++
	p.mu.Unlock()
	return true, nil
}
func (p *countProc) Restore(_ context.Context, r runtime.StateReader) error {
	v, ok, err := r.Get([]byte("n"))
	if ok {
		p.n = binary.BigEndian.Uint64(v)
	}
	return err
}
func (p *countProc) Snapshot(_ context.Context, w runtime.StateWriter) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return w.Set([]byte("n"), u64(p.n))
}
func (p *countProc) Committed(context.Context, uint64) error { return nil }

// countOut counts the events it flushed; the count is its state, and
// Committed records which checkpoints it was told about.
type countOut struct {
	mu        sync.Mutex
	buffered  uint64
	flushed   uint64
	committed []uint64
	closed    bool
	closedAt  uint64 // checkpoints committed when Close ran
}

func (o *countOut) Write(_ context.Context, evs []event.Event) error {
	o.mu.Lock()
	o.buffered += uint64(len(evs))
	o.mu.Unlock()
	return nil
}
func (o *countOut) Flush(context.Context) error {
	o.mu.Lock()
	o.flushed += o.buffered
	o.buffered = 0
	o.mu.Unlock()
	return nil
}
func (o *countOut) Close(ctx context.Context) error {
	_ = o.Flush(ctx)
	o.mu.Lock()
	o.closed = true
	o.closedAt = uint64(len(o.committed))
	o.mu.Unlock()
	return nil
}
func (o *countOut) Restore(_ context.Context, r runtime.StateReader) error {
	v, ok, err := r.Get([]byte("n"))
	if ok {
		o.flushed = binary.BigEndian.Uint64(v)
	}
	return err
}
func (o *countOut) Snapshot(_ context.Context, w runtime.StateWriter) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return fmt.Errorf("snapshot after close")
	}
	return w.Set([]byte("n"), u64(o.flushed))
}
func (o *countOut) Committed(_ context.Context, id uint64) error {
	o.mu.Lock()
	o.committed = append(o.committed, id)
	o.mu.Unlock()
	return nil
}

type ckptFactory struct {
	in   *posInput
	proc *countProc
	out  *countOut
}

func (f *ckptFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	f.in.env = env
	return f.in, nil
}
func (f *ckptFactory) NewProcessor(*dag.Node, runtime.Env) (runtime.Processor, error) {
	return f.proc, nil
}
func (f *ckptFactory) NewOutput(*dag.Node, runtime.Env) (runtime.Output, error) { return f.out, nil }

// Every checkpoint is a consistent cut: the input's position equals the
// number of events the processor saw and the output flushed; the final one
// covers everything and is taken before the output closes; a second run
// restores from it.
func TestCheckpointsAreConsistentCuts(t *testing.T) {
	g := graph(t, `
name: ckpt
inputs:
  src: {type: x}
processors:
  count: {type: x, from: src}
outputs:
  out: {type: x, from: count}
`)
	store := newMemStore()
	store.verify = func(id uint64, d map[string][]byte) error {
		pos := binary.BigEndian.Uint64(d["src\x00pos"])
		seen := binary.BigEndian.Uint64(d["count\x00n"])
		out := binary.BigEndian.Uint64(d["out\x00n"])
		if pos != seen || seen != out {
			return fmt.Errorf("checkpoint %d is not a consistent cut: input at %d, processor saw %d, output flushed %d", id, pos, seen, out)
		}
		return nil
	}
	const total = 200_000
	f := &ckptFactory{in: &posInput{count: total}, proc: &countProc{}, out: &countOut{}}
	run := func() {
		p, err := runtime.New(g, f, runtime.Options{Store: store, CheckpointInterval: 2 * time.Millisecond, BatchSize: 64, QueueEvents: 256})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		defer cancel()
		if err := p.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if store.err != nil {
		t.Fatal(store.err)
	}
	last, _ := store.Last()
	if last < 2 {
		t.Fatalf("only %d checkpoints were taken", last)
	}
	if got := binary.BigEndian.Uint64(store.get("out\x00n")); got != total {
		t.Fatalf("final checkpoint: output at %d, want %d", got, total)
	}
	if !f.out.closed || f.out.closedAt != uint64(len(f.out.committed)) || f.out.committed[len(f.out.committed)-1] != last {
		t.Fatalf("the output closed after checkpoint %v, want after the final one %d", f.out.committed, last)
	}
	for i, id := range f.out.committed {
		if id != uint64(i+1) {
			t.Fatalf("Committed ids %v are not 1, 2, 3, ...", f.out.committed)
		}
	}

	// A second run with more input resumes from the final checkpoint.
	f2 := &ckptFactory{in: &posInput{count: total + 500}, proc: &countProc{}, out: &countOut{}}
	f = f2
	run()
	if store.err != nil {
		t.Fatal(store.err)
	}
	if f2.proc.n != total+500 || f2.in.sent.Load() != 500 {
		t.Fatalf("second run: processor count %d (want %d), events sent %d (want 500)", f2.proc.n, total+500, f2.in.sent.Load())
	}
}
