package dedup

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

func restored(t *testing.T, d *Dedup, s *memStore, env runtime.Env, at int64) *harness {
	t.Helper()
	env.Checkpointing = true
	h := newHarness(t, d, env, &fakeClock{t: at})
	if err := h.p.Restore(context.Background(), s); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	return h
}

// Snapshots write only what changed: the ids inserted since the last one,
// and one DeleteRange for the buckets that expired.
func TestSnapshotWritesChanges(t *testing.T) {
	d := mustCompile(t, DefaultConfig())
	s := newMemStore()
	h := restored(t, d, s, runtime.Env{}, benchStart)
	for i := range 1000 {
		h.send(benchStart+int64(i)*int64(time.Second), "acme", fmt.Sprint(i))
		h.send(benchStart+int64(i)*int64(time.Second), "acme", fmt.Sprint(i))
	}
	b := checkpoint(t, s, h.p)
	if b.count('s') != 1000+2 || s.ids(0) != 1000 { // ids, meta, floor
		t.Fatalf("first checkpoint: %d sets, %d ids stored", b.count('s'), s.ids(0))
	}
	// Ten more, across a bucket boundary (1012.5 s): the floor moves.
	for i := 1000; i < 1100; i += 10 {
		h.send(benchStart+int64(i)*int64(time.Second), "acme", fmt.Sprint(i))
	}
	if b = checkpoint(t, s, h.p); b.count('s') != 10+1 || b.count('r') != 1 {
		t.Fatalf("second checkpoint: %d sets, %d range deletes; want 11, 1", b.count('s'), b.count('r'))
	}
	if b = checkpoint(t, s, h.p); len(b.ops) != 0 {
		t.Fatalf("a checkpoint with nothing new wrote %d operations", len(b.ops))
	}
	// Two hours on, every id has expired: one DeleteRange removes them all.
	later := benchStart + int64(2*time.Hour)
	h.send(later, "acme", "new")
	b = checkpoint(t, s, h.p)
	if b.count('r') != 1 || b.count('s') != 2 || s.ids(0) != 1 {
		t.Fatalf("after expiry: %d range deletes, %d sets, %d ids stored", b.count('r'), b.count('s'), s.ids(0))
	}
}

// A checkpoint that fails (no Committed) is written again by the next.
func TestFailedCheckpoint(t *testing.T) {
	d := mustCompile(t, DefaultConfig())
	s := newMemStore()
	h := restored(t, d, s, runtime.Env{}, benchStart)
	h.send(benchStart, "acme", "a")
	if err := h.p.Snapshot(context.Background(), &memBatch{}); err != nil { // lost
		t.Fatal(err)
	}
	h.send(benchStart+1, "acme", "b")
	checkpoint(t, s, h.p)
	h2 := restored(t, d, s, runtime.Env{}, benchStart+2)
	if h2.send(benchStart+2, "acme", "a") || h2.send(benchStart+2, "acme", "b") {
		t.Fatal("an id of the failed checkpoint was lost")
	}
}

// When the change log outgrows the set (ids churn faster than checkpoints),
// a snapshot rewrites the instance's ids instead; the result is the same.
func TestFullRewrite(t *testing.T) {
	d := mustCompile(t, Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: time.Minute, MaxIDs: 1000})
	s := newMemStore()
	h := restored(t, d, s, runtime.Env{}, benchStart)
	for i := range 3 * minFullRewrite {
		h.send(benchStart+int64(i)*int64(time.Millisecond), "acme", fmt.Sprint(i))
	}
	if !h.p.full {
		t.Fatal("no full rewrite pending")
	}
	b := checkpoint(t, s, h.p)
	held := h.p.stats().held
	if b.count('s') != held+2 || s.ids(0) != held {
		t.Fatalf("full rewrite: %d sets, %d ids stored, %d held", b.count('s'), s.ids(0), held)
	}
	last := benchStart + int64(3*minFullRewrite-1)*int64(time.Millisecond)
	h2 := restored(t, d, s, runtime.Env{}, last)
	if h2.p.stats().held != held || h2.send(last, "acme", fmt.Sprint(3*minFullRewrite-1)) {
		t.Fatalf("restored %d ids, want %d", h2.p.stats().held, held)
	}
}

// A change of parallelism: every new instance loads the ids of all former
// ones, rewrites its own, and instance 0 deletes those of instances that no
// longer exist.
func TestRescale(t *testing.T) {
	d := mustCompile(t, DefaultConfig())
	s := newMemStore()
	var hs []*harness
	for i := range 3 {
		hs = append(hs, restored(t, d, s, runtime.Env{Instance: i, Parallelism: 3}, benchStart))
	}
	for i := range 300 {
		hs[i%3].send(benchStart, "acme", fmt.Sprint(i))
	}
	checkpoint(t, s, hs[0].p, hs[1].p, hs[2].p)
	if s.ids(-1) != 300 {
		t.Fatalf("%d ids stored, want 300", s.ids(-1))
	}
	// Down to 2: both load all 300.
	hs = hs[:0]
	for i := range 2 {
		hs = append(hs, restored(t, d, s, runtime.Env{Instance: i, Parallelism: 2}, benchStart+1))
	}
	for i, h := range hs {
		if got := h.p.stats().held; got != 300 {
			t.Fatalf("instance %d holds %d ids, want 300", i, got)
		}
	}
	hs[0].send(benchStart+1, "acme", "new")
	checkpoint(t, s, hs[0].p, hs[1].p)
	if s.ids(2) != 0 || s.ids(0) != 301 || s.ids(1) != 300 {
		t.Fatalf("after the rescale checkpoint: ids of instances 0, 1, 2 = %d, %d, %d", s.ids(0), s.ids(1), s.ids(2))
	}
	// Same parallelism again: each loads its own.
	h := restored(t, d, s, runtime.Env{Instance: 1, Parallelism: 2}, benchStart+2)
	if got := h.p.stats().held; got != 300 || h.send(benchStart+2, "acme", "7") {
		t.Fatalf("instance 1 holds %d ids", got)
	}
}

func TestRestoreRejectsUnknownFormat(t *testing.T) {
	s := newMemStore()
	s.data[string(metaKey)] = []byte{9, 0, 0, 0, 1}
	h := newHarness(t, mustCompile(t, DefaultConfig()), runtime.Env{Checkpointing: true}, &fakeClock{t: benchStart})
	if err := h.p.Restore(context.Background(), s); err == nil {
		t.Fatal("no error for state of an unknown version")
	}
}

// The acknowledgement rule: a checkpoint taken after an original and its
// duplicate holds the id, so neither is delivered twice whatever happens
// after; and an original replayed from before it (which weir never does,
// the input positions being part of the same cut) is dropped.
func TestDuplicateCommittedWithOriginal(t *testing.T) {
	d := mustCompile(t, DefaultConfig())
	s := newMemStore()
	h := restored(t, d, s, runtime.Env{}, benchStart)
	if !h.send(benchStart, "acme", "u1") || h.send(benchStart+1, "acme", "u1") {
		t.Fatal("original dropped or duplicate passed")
	}
	checkpoint(t, s, h.p)
	if s.ids(0) != 1 {
		t.Fatalf("the checkpoint holds %d ids, want 1", s.ids(0))
	}
	h = restored(t, d, s, runtime.Env{}, benchStart+2)
	if h.send(benchStart+2, "acme", "u1") {
		t.Fatal("the original replayed after the checkpoint passed")
	}
}

// TestReplayMatches is the exactly-once property: restoring a checkpoint
// taken at a cut and replaying the events after the cut gives every event
// the decision it got in an uninterrupted run. The stream has repeats
// within and beyond the ttl, two ttls, early expiry from max_ids,
// checkpoints before the cut (changes, expiry deletes, failed ones) and a
// restart that is instant (processing time does not move while down).
func TestReplayMatches(t *testing.T) {
	type ev struct {
		at         int64
		tenant, id string
	}
	for seed := range uint64(12) {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: 10 * time.Minute,
			TTLByTenant: map[string]time.Duration{"bigco": time.Hour}, MaxIDs: 200 + rng.IntN(2000)}
		d := mustCompile(t, cfg)
		evs := make([]ev, 6000)
		at := benchStart
		for i := range evs {
			at += int64(rng.IntN(int(2 * time.Second)))
			tenant := []string{"acme", "bigco", "initech"}[rng.IntN(3)]
			evs[i] = ev{at, tenant, fmt.Sprint(rng.IntN(1500))}
		}
		want := make([]bool, len(evs))
		ref := newHarness(t, d, runtime.Env{Checkpointing: true}, &fakeClock{t: benchStart})
		for i, e := range evs {
			want[i] = ref.send(e.at, e.tenant, e.id)
		}
		drops := 0
		for _, w := range want {
			if !w {
				drops++
			}
		}
		t.Logf("seed %d: max_ids %d, %d drops, %d evicted", seed, cfg.MaxIDs, drops, ref.p.stats().evicted)
		cut := 1 + rng.IntN(len(evs)-1)
		s := newMemStore()
		h := restored(t, d, s, runtime.Env{}, benchStart)
		for i, e := range evs[:cut] {
			if got := h.send(e.at, e.tenant, e.id); got != want[i] {
				t.Fatalf("seed %d: event %d decided differently before any restart", seed, i)
			}
			switch rng.IntN(400) {
			case 0:
				checkpoint(t, s, h.p)
			case 1:
				if err := h.p.Snapshot(context.Background(), &memBatch{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		checkpoint(t, s, h.p)
		h = restored(t, d, s, runtime.Env{}, evs[cut-1].at)
		for i := cut; i < len(evs); i++ {
			e := evs[i]
			if got := h.send(e.at, e.tenant, e.id); got != want[i] {
				t.Fatalf("seed %d, cut %d: event %d (%s/%s) passed=%v after the restart, %v without",
					seed, cut, i, e.tenant, e.id, got, want[i])
			}
		}
	}
}

// Snapshot, Committed and the metrics run on other goroutines than Process
// (run with -race).
func TestConcurrentSnapshot(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := mustCompile(t, Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: time.Minute, MaxIDs: 5000})
	s := newMemStore()
	p, err := d.newProcessor(runtime.Env{Node: "d", Parallelism: 1, Checkpointing: true, Registerer: reg}, func() int64 { return benchStart })
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Restore(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		var rec runtime.Record
		for i := range 50000 {
			ev := event.Event{Value: []byte(`{}`), Headers: []event.Header{
				{Key: "tenant", Value: []byte("acme")}, {Key: "event_id", Value: fmt.Appendf(nil, "%d", i%20000)}}}
			rec.Reset(&ev)
			if _, err := p.Process(&rec); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			checkpoint(t, s, p)
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	checkpoint(t, s, p)
	if got, held := s.ids(0), p.stats().held; got != held {
		t.Fatalf("store holds %d ids, the instance %d", got, held)
	}
}

// Restore rejects malformed state with an error, never a panic.
func FuzzRestore(f *testing.F) {
	f.Add([]byte{prefixMeta}, []byte{stateVersion, 0, 0, 0, 1}, appendIDKey(nil, 0, benchStart+int64(time.Minute), 42), []byte{})
	f.Add([]byte{prefixMeta}, []byte{stateVersion, 0, 0, 0, 2}, []byte{prefixIDs, 0, 0}, []byte{1})
	f.Add(floorKey(0), []byte{1, 2, 3}, appendIDKey(nil, 0, -1, 0), []byte{})
	d := mustCompile(f, DefaultConfig())
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 []byte) {
		s := newMemStore()
		s.data[string(k1)] = v1
		s.data[string(k2)] = v2
		h := newHarness(t, d, runtime.Env{Checkpointing: true}, &fakeClock{t: benchStart})
		if err := h.p.Restore(context.Background(), s); err != nil {
			return
		}
		h.send(benchStart, "acme", "x")
		checkpoint(t, s, h.p)
	})
}
