package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAppendReadRoundTrip(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{})
	defer p.Close()
	in := sampleRecords()
	if base := mustAppend(t, p, in...); base != 0 {
		t.Fatalf("base = %d, want 0", base)
	}
	if base := mustAppend(t, p, Record{Timestamp: t0, Value: []byte("second")}); base != 3 {
		t.Fatalf("base = %d, want 3", base)
	}
	for i := range in {
		in[i].Offset = int64(i)
	}
	want := append(in, Record{Offset: 3, Timestamp: t0, Value: []byte("second")})
	assertRecords(t, readAll(t, p, 0), want)
	assertRecords(t, readAll(t, p, 2), want[2:])
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HighWatermark = %d, want 4", hw)
	}
	if s := p.LogStartOffset(); s != 0 {
		t.Fatalf("LogStartOffset = %d, want 0", s)
	}
}

func TestAppendStampsZeroTimestamp(t *testing.T) {
	now := time.UnixMilli(1_234_567)
	p := mustOpen(t, t.TempDir(), Options{Now: func() time.Time { return now }})
	defer p.Close()
	mustAppend(t, p, Record{Value: []byte("x")})
	if got := readAll(t, p, 0)[0].Timestamp; !got.Equal(now) {
		t.Fatalf("Timestamp = %v, want %v", got, now)
	}
}

func TestReadFromBounds(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{})
	defer p.Close()
	for i := range 10 {
		mustAppend(t, p, Record{Timestamp: t0, Value: val(i)}) // 12 bytes each
	}
	recs, next, err := p.ReadFrom(3, 30)
	if err != nil || len(recs) != 2 || next != 5 || recs[0].Offset != 3 {
		t.Fatalf("ReadFrom(3, 30) = %d records, next %d, %v; want 2, 5", len(recs), next, err)
	}
	// At least one record, whatever maxBytes.
	if recs, next, err := p.ReadFrom(9, 1); err != nil || len(recs) != 1 || next != 10 {
		t.Fatalf("ReadFrom(9, 1) = %d records, next %d, %v", len(recs), next, err)
	}
	if recs, next, err := p.ReadFrom(10, 100); err != nil || len(recs) != 0 || next != 10 {
		t.Fatalf("ReadFrom(hw) = %d records, next %d, %v", len(recs), next, err)
	}
	for _, off := range []int64{-1, 11} {
		if _, _, err := p.ReadFrom(off, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("ReadFrom(%d) err = %v, want ErrOffsetOutOfRange", off, err)
		}
	}
}

func TestOffsetsContinueAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	for round := range 3 {
		p := mustOpen(t, dir, Options{})
		if base := mustAppend(t, p, Record{Value: val(2 * round)}, Record{Value: val(2*round + 1)}); base != int64(2*round) {
			t.Fatalf("round %d: base = %d", round, base)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p := mustOpen(t, dir, Options{})
	defer p.Close()
	recs := readAll(t, p, 0)
	if len(recs) != 6 {
		t.Fatalf("read %d records, want 6", len(recs))
	}
	for i, r := range recs {
		if r.Offset != int64(i) || string(r.Value) != string(val(i)) {
			t.Fatalf("record %d = %d %q", i, r.Offset, r.Value)
		}
	}
	if m := p.Metrics(); m.Recovery.TornTails != 0 {
		t.Fatalf("recovery = %+v, want clean", m.Recovery)
	}
}

func TestSegmentRoll(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 300, IndexIntervalBytes: 100}
	p := mustOpen(t, dir, opts)
	for i := range 50 {
		mustAppend(t, p, Record{Timestamp: t0.Add(time.Duration(i) * time.Second), Value: val(i)})
	}
	if n := p.Metrics().Segments; n < 5 {
		t.Fatalf("%d segments, want several", n)
	}
	check := func(p *Partition) {
		t.Helper()
		for _, from := range []int64{0, 7, 23, 49} {
			recs := readAll(t, p, from)
			if len(recs) != 50-int(from) {
				t.Fatalf("from %d: read %d records", from, len(recs))
			}
			for i, r := range recs {
				if r.Offset != from+int64(i) || string(r.Value) != string(val(int(r.Offset))) {
					t.Fatalf("from %d: record %d = %d %q", from, i, r.Offset, r.Value)
				}
			}
		}
		for _, i := range []int{0, 1, 17, 49} {
			off, err := p.OffsetForTime(t0.Add(time.Duration(i)*time.Second - time.Millisecond))
			if err != nil || off != int64(i) {
				t.Fatalf("OffsetForTime(#%d) = %d, %v", i, off, err)
			}
		}
		if off, err := p.OffsetForTime(t0.Add(time.Hour)); err != nil || off != 50 {
			t.Fatalf("OffsetForTime(future) = %d, %v; want 50", off, err)
		}
	}
	check(p)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, dir, opts)
	defer p.Close()
	check(p)
	if base := mustAppend(t, p, Record{Value: val(50)}); base != 50 {
		t.Fatalf("base after reopen = %d", base)
	}
	// Sealed segments kept their index files.
	if r := p.Metrics().Recovery; r.IndexesRebuilt != 1 {
		t.Fatalf("IndexesRebuilt = %d, want 1 (the last segment only)", r.IndexesRebuilt)
	}
}

// appended is what one Append call wrote.
type appended struct {
	base int64
	vals [][]byte
}

func TestConcurrentAppendsDenseAndDurable(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{SegmentBytes: 64 << 10})
	const writers, per = 16, 60
	var mu sync.Mutex
	var all []appended
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				n := 1 + i%3
				recs := make([]Record, n)
				vals := make([][]byte, n)
				for j := range recs {
					vals[j] = fmt.Appendf(nil, "w%d-i%d-j%d", w, i, j)
					recs[j].Value = vals[j]
				}
				base, err := p.Append(context.Background(), recs)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				all = append(all, appended{base, vals})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	m := p.Metrics()
	t.Logf("appends=%d writes=%d syncs=%d segments=%d", m.Appends, m.Writes, m.Syncs, m.Segments)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].base < all[j].base })
	var next int64
	for _, a := range all {
		if a.base != next {
			t.Fatalf("append at %d, want %d: offsets not dense or not distinct", a.base, next)
		}
		next += int64(len(a.vals))
	}
	p = mustOpen(t, dir, Options{SegmentBytes: 64 << 10})
	defer p.Close()
	recs := readAll(t, p, 0)
	if int64(len(recs)) != next {
		t.Fatalf("read %d records after reopen, want %d", len(recs), next)
	}
	for _, a := range all {
		for j, v := range a.vals {
			if got := recs[a.base+int64(j)].Value; string(got) != string(v) {
				t.Fatalf("offset %d = %q, want %q", a.base+int64(j), got, v)
			}
		}
	}
}

// TestGroupCommit holds the first fsync (of a single append) until the 15
// other appenders are queued, so the second write must carry all of them: 16 appends, 2 syncs.
func TestGroupCommit(t *testing.T) {
	fsys := &testFS{}
	var p *Partition
	first := true
	entered := make(chan struct{})
	fsys.onSync = func() {
		if !first {
			return
		}
		first = false
		close(entered)
		for len(p.reqs) < 15 {
			time.Sleep(time.Millisecond)
		}
	}
	p, err := open(t.TempDir(), Options{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var wg sync.WaitGroup
	app := func(i int) {
		wg.Go(func() {
			if _, err := p.Append(context.Background(), []Record{{Value: val(i)}}); err != nil {
				t.Error(err)
			}
		})
	}
	app(0)
	<-entered // the committer is in the first fsync, holding a group of one
	for i := 1; i < 16; i++ {
		app(i)
	}
	wg.Wait()
	m := p.Metrics()
	if m.Appends != 16 || m.Writes != 2 || m.Syncs != 2 || fsys.syncs.Load() != 2 {
		t.Fatalf("appends=%d writes=%d syncs=%d fs syncs=%d; want 16, 2, 2, 2", m.Appends, m.Writes, m.Syncs, fsys.syncs.Load())
	}
	if hw := p.HighWatermark(); hw != 16 {
		t.Fatalf("HighWatermark = %d, want 16", hw)
	}
	// Every batch of the second write names offset 1 as its write's start.
	s := p.segments[0]
	for pos := int64(0); pos < s.size; {
		h, err := readHeaderAt(s.f, pos, s.size)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(h.base, 1); h.write != want {
			t.Fatalf("batch %d: write offset %d, want %d", h.base, h.write, want)
		}
		pos += h.size()
	}
}

func TestFailedSyncFailsPartition(t *testing.T) {
	fsys := &testFS{}
	dir := t.TempDir()
	p, err := open(dir, Options{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, Record{Value: val(0)})
	fsys.failSync.Store(true)
	if _, err := p.Append(context.Background(), []Record{{Value: val(1)}}); !errors.Is(err, ErrFailed) || !errors.Is(err, errInjected) {
		t.Fatalf("Append err = %v, want ErrFailed wrapping the cause", err)
	}
	fsys.failSync.Store(false) // a later success must not revive it
	for range 3 {
		if _, err := p.Append(context.Background(), []Record{{Value: val(2)}}); !errors.Is(err, ErrFailed) {
			t.Fatalf("later Append err = %v, want ErrFailed", err)
		}
	}
	if hw := p.HighWatermark(); hw != 1 {
		t.Fatalf("HighWatermark = %d, want 1 (the failed append is not visible)", hw)
	}
	_ = p.Close()
}

func TestFailedWriteFailsPartitionAndRecovers(t *testing.T) {
	fsys := &testFS{}
	dir := t.TempDir()
	p, err := open(dir, Options{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, p, Record{Value: val(0)})
	fsys.failWrite.Store(true)
	if _, err := p.Append(context.Background(), []Record{{Value: val(1)}}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Append err = %v, want ErrFailed", err)
	}
	_ = p.Close()
	// The half-written batch is a torn tail.
	p = mustOpen(t, dir, Options{})
	defer p.Close()
	if r := p.Metrics().Recovery; r.TornTails != 1 || r.TruncatedBytes == 0 {
		t.Fatalf("recovery = %+v, want one torn tail", r)
	}
	if base := mustAppend(t, p, Record{Value: val(1)}); base != 1 {
		t.Fatalf("base = %d, want 1", base)
	}
}

func TestCloseAndCancel(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{Durability: DurabilityNone})
	mustAppend(t, p, Record{Value: val(0)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := p.Append(ctx, []Record{{Value: val(1)}}); err == nil {
		// The committer may have taken it before seeing the cancel; both
		// outcomes are allowed, an error just must not be nil-and-lost.
		t.Log("cancelled append was acknowledged")
	}
	if _, err := p.Append(context.Background(), nil); err == nil {
		t.Fatal("empty Append succeeded")
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	default:
		t.Fatal("committer still running after Close")
	}
	if _, err := p.Append(context.Background(), []Record{{Value: val(1)}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close = %v, want ErrClosed", err)
	}
	if _, _, err := p.ReadFrom(0, 10); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadFrom after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}
}

func TestAppendTooLarge(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{MaxAppendBytes: 1024})
	defer p.Close()
	if _, err := p.Append(context.Background(), []Record{{Value: make([]byte, 2000)}}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestOptionsValidateReportsAll(t *testing.T) {
	err := Options{Durability: 7, SegmentBytes: -1, QueueDepth: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{"durability", "segment bytes", "queue depth"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestLogPartitions(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range l.Partitions() {
		for j := range i + 1 {
			mustAppend(t, l.Partition(i), Record{Value: val(j)})
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = OpenLog(dir, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := range 3 {
		if hw := l.Partition(i).HighWatermark(); hw != int64(i+1) {
			t.Fatalf("partition %d: HighWatermark = %d, want %d", i, hw, i+1)
		}
	}
	if _, err := OpenLog(t.TempDir(), 0, Options{}); err == nil {
		t.Fatal("OpenLog with 0 partitions succeeded")
	}
}

// TestReadWhileAppending reads concurrently with appends, segment rolls and
// retention: every read is dense, in order and has the values written.
func TestReadWhileAppending(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{SegmentBytes: 2000, Durability: DurabilityNone})
	defer p.Close()
	const writers, per = 4, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				if _, err := p.Append(context.Background(), []Record{{Key: val(w), Value: val(w*per + i)}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	seen := map[int64]string{}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	next := int64(0)
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		recs, n, err := p.ReadFrom(next, 500)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if r.Offset != next+int64(i) {
				t.Fatalf("read offset %d, want %d", r.Offset, next+int64(i))
			}
			seen[r.Offset] = string(r.Value)
		}
		next = n
		if next > 100 {
			if err := p.Commit("reader", next-100); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, r := range readAll(t, p, next) {
		seen[r.Offset] = string(r.Value)
	}
	if len(seen) != writers*per || p.HighWatermark() != writers*per {
		t.Fatalf("saw %d records, hw %d; want %d", len(seen), p.HighWatermark(), writers*per)
	}
	if p.Metrics().DeletedSegments == 0 {
		t.Fatal("retention deleted nothing")
	}
}

// TestReadFromChunks reads batches of mixed sizes — many small ones, some
// larger than a read-ahead chunk — with byte budgets from tiny to large,
// across segments, and checks that every record comes back once, in order,
// with its bytes, whatever the budget.
func TestReadFromChunks(t *testing.T) {
	// Reads from the file alone, and from the file and the kept tail.
	for _, tail := range []int{-1, 0} {
		t.Run(fmt.Sprintf("tail=%d", tail), func(t *testing.T) { testReadFromChunks(t, tail) })
	}
}

func testReadFromChunks(t *testing.T, tail int) {
	p := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1 << 20, TailBytes: tail})
	defer p.Close()
	var want [][]byte
	for i := range 400 {
		n := 1 + i%7
		size := 50 + (i*37)%300
		if i%50 == 7 {
			size = readAhead + 1000 // a batch bigger than a chunk
		}
		var recs []Record
		for j := range n {
			v := make([]byte, size)
			for k := range v {
				v[k] = byte(i + j + k)
			}
			recs = append(recs, Record{Timestamp: t0, Value: v})
			want = append(want, v)
		}
		mustAppend(t, p, recs...)
	}
	if len(p.segments) < 2 {
		t.Fatalf("%d segments; the test needs several", len(p.segments))
	}
	for _, budget := range []int{1, 500, 4096, readAhead, 1 << 20, 8 << 20} {
		off := int64(0)
		for off < int64(len(want)) {
			recs, next, err := p.ReadFrom(off, budget)
			if err != nil || len(recs) == 0 || next != off+int64(len(recs)) {
				t.Fatalf("budget %d: ReadFrom(%d) = %d records, next %d, %v", budget, off, len(recs), next, err)
			}
			for _, r := range recs {
				if r.Offset != off || string(r.Value) != string(want[off]) {
					t.Fatalf("budget %d: record %d differs (offset %d)", budget, off, r.Offset)
				}
				off++
			}
		}
	}
}

// TestTailServesRecentWrites: reads near the end of the active segment come
// from the writes the committer kept, reads further back from the file.
// The file is damaged under the live partition to tell the two apart: what
// the tail holds still reads back intact, what it no longer holds is
// reported as corruption.
func TestTailServesRecentWrites(t *testing.T) {
	dir := t.TempDir()
	const budget = 3000
	p := mustOpen(t, dir, Options{TailBytes: budget})
	defer p.Close()
	const n = 200
	for i := range n {
		mustAppend(t, p, Record{Timestamp: t0, Value: val(i)})
	}
	if p.tailHeld > budget || p.tailHeld < budget-200 || len(p.tail) == 0 {
		t.Fatalf("tail holds %d bytes in %d writes; want about %d", p.tailHeld, len(p.tail), budget)
	}
	kept := p.tail[0].base // the first offset the tail holds

	f, err := os.OpenFile(segPath(dir, 0), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, st.Size()), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()

	recs := readAll(t, p, kept)
	if len(recs) != int(n-kept) {
		t.Fatalf("read %d records from the tail, want %d", len(recs), n-kept)
	}
	for _, r := range recs {
		if string(r.Value) != string(val(int(r.Offset))) {
			t.Fatalf("record %d = %q, want %q", r.Offset, r.Value, val(int(r.Offset)))
		}
	}
	var ce *CorruptionError
	if _, _, err := p.ReadFrom(kept-1, 1<<20); !errors.As(err, &ce) {
		t.Fatalf("ReadFrom(%d) past the tail on a zeroed file = %v, want a *CorruptionError", kept-1, err)
	}
}

// TestTailFollowsRolls: the tail only ever holds writes of the active
// segment, within its budget, and reads across rolls return every record.
func TestTailFollowsRolls(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{SegmentBytes: 4000, TailBytes: 2500})
	defer p.Close()
	var want int64
	for i := range 300 {
		recs := make([]Record, 1+i%3)
		for j := range recs {
			recs[j] = Record{Timestamp: t0, Value: val(int(want))}
			want++
		}
		mustAppend(t, p, recs...)
		p.mu.RLock()
		active := p.segments[len(p.segments)-1]
		for _, c := range p.tail {
			if c.s != active {
				t.Fatalf("after append %d the tail holds a write of segment %d; the active one is %d", i, c.s.base, active.base)
			}
		}
		if p.tailHeld > 2500 {
			t.Fatalf("tail holds %d bytes, budget 2500", p.tailHeld)
		}
		p.mu.RUnlock()
		if i%37 == 0 {
			for from := int64(0); from < want; from += 13 {
				got := readAll(t, p, from)
				if int64(len(got)) != want-from || got[0].Offset != from || string(got[len(got)-1].Value) != string(val(int(want-1))) {
					t.Fatalf("after append %d: readAll(%d) = %d records, want %d", i, from, len(got), want-from)
				}
			}
		}
	}
	if len(p.segments) < 3 {
		t.Fatalf("%d segments; the test needs rolls", len(p.segments))
	}
}
