package file

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

// newCheckpointInput returns an input of a pipeline with checkpoints,
// restored from the last checkpoint of store.
func newCheckpointInput(t *testing.T, cfg InputConfig, store *memStore, logs *bytes.Buffer) *Input {
	t.Helper()
	env := inputEnv()
	env.BatchSize = 2
	env.Checkpointing = true
	if logs != nil {
		env.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	in := newTestInput(t, cfg, env)
	if err := in.Restore(t.Context(), store.reader()); err != nil {
		t.Fatal(err)
	}
	return in
}

// checkpointInput takes a checkpoint of in into store: Snapshot, commit,
// Committed.
func checkpointInput(t *testing.T, store *memStore, in *Input) {
	t.Helper()
	tx := &memTxn{}
	if err := in.Snapshot(t.Context(), tx); err != nil {
		t.Fatal(err)
	}
	if err := in.Committed(t.Context(), store.commit(tx)); err != nil {
		t.Fatal(err)
	}
}

// waitDrained waits, as the checkpoint coordinator's drain does, until no
// batch of in is in flight: an outlet has recorded a batch once its Emit
// ran, but the reader gives back its own reference on the batch only after
// Emit returns.
func waitDrained(t *testing.T, in *Input) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for in.InFlight() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d batches still in flight after 5s", in.InFlight())
		}
		time.Sleep(time.Millisecond)
	}
}

// cutOutlet blocks, as the checkpoint gate does, the Emit after the first
// n.
type cutOutlet struct {
	*testkit.Outlet
	n    int
	seen int // Run goroutine only
}

func (c *cutOutlet) Emit(ctx context.Context, b *event.Batch) error {
	c.seen++
	if c.seen == c.n+1 {
		c.Block()
	}
	return c.Outlet.Emit(ctx, b)
}

// seen renders emitted events as line:value and rejects as
// source:line:error.
func seen(o *testkit.Outlet) (events, rejects []string) {
	for _, e := range o.Events() {
		events = append(events, fmt.Sprintf("%d:%s", e.Offset, e.Value))
	}
	for _, r := range o.Rejects() {
		src, _ := r.Event.Header("source")
		rejects = append(rejects, fmt.Sprintf("%s:%d:%v", filepath.Base(string(src)), r.Event.Offset, r.Err))
	}
	return events, rejects
}

// runUntilCut runs in until it blocks in its (n+1)-th Emit or ends, then
// acknowledges everything recorded — as the coordinator's drain waits for
// — and takes a checkpoint. It stops in and returns what was emitted and
// rejected before the cut.
func runUntilCut(t *testing.T, in *Input, store *memStore, n int) (events, rejects []string, finished bool) {
	t.Helper()
	o := &cutOutlet{Outlet: &testkit.Outlet{ManualAck: true}, n: n}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, o) }()
	deadline := time.After(5 * time.Second)
	var runErr error
wait:
	for {
		select {
		case runErr = <-done:
			finished = true
			break wait
		case <-deadline:
			t.Fatal("Run neither blocked nor ended")
		case <-time.After(time.Millisecond):
			if o.Waiting() == 1 {
				break wait
			}
		}
	}
	if runErr != nil {
		t.Fatalf("Run: %v", runErr)
	}
	o.Ack()
	want := 1 // the batch blocked at the gate
	if finished {
		want = 0
	}
	if got := in.InFlight(); got != want {
		t.Fatalf("in flight %d after the drain, want %d", got, want)
	}
	checkpointInput(t, store, in)
	cancel()
	if !finished {
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v", err)
		}
	}
	events, rejects = seen(o.Outlet)
	return events, rejects, finished
}

// runToEnd runs in to its end, acknowledging everything.
func runToEnd(t *testing.T, in *Input) (events, rejects []string, err error) {
	t.Helper()
	var o testkit.Outlet
	err = in.Run(t.Context(), &o)
	events, rejects = seen(&o)
	return events, rejects, err
}

// writeInputFiles writes a plain file with an empty and a malformed line, a
// gzip file and a file whose last line has no newline, and returns the
// events and rejects that reading them all gives.
func writeInputFiles(t *testing.T, dir string) (events, rejects []string) {
	var a strings.Builder
	for i := 1; i <= 9; i++ {
		switch i {
		case 3:
			a.WriteString("\n")
		case 6:
			a.WriteString("{broken\n")
		default:
			fmt.Fprintf(&a, "{\"a\":%d}\n", i)
			events = append(events, fmt.Sprintf(`%d:{"a":%d}`, i, i))
		}
	}
	rejects = append(rejects, "a.ndjson:6:line 6: invalid JSON at byte 1: unexpected character 'b'; want a string as object key")
	writeFile(t, filepath.Join(dir, "a.ndjson"), a.String())
	var b strings.Builder
	for i := 1; i <= 7; i++ {
		fmt.Fprintf(&b, "{\"b\":%d}\n", i)
		events = append(events, fmt.Sprintf(`%d:{"b":%d}`, i, i))
	}
	gzipFile(t, filepath.Join(dir, "b.ndjson.gz"), b.String())
	writeFile(t, filepath.Join(dir, "c.ndjson"), "{\"c\":1}\n{\"c\":2}\n{\"c\":3}")
	events = append(events, `1:{"c":1}`, `2:{"c":2}`, `3:{"c":3}`)
	return events, rejects
}

// TestInputCheckpointResumesAfterEveryCut cuts a run after every batch in
// turn, checkpoints, and restarts from the checkpoint: every line is then
// emitted exactly once over the two runs, with its line number in its file.
func TestInputCheckpointResumesAfterEveryCut(t *testing.T) {
	dir := t.TempDir()
	wantEvents, wantRejects := writeInputFiles(t, dir)
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "*")
	for n := 0; ; n++ {
		store := newMemStore()
		ev1, rj1, finished := runUntilCut(t, newCheckpointInput(t, cfg, store, nil), store, n)
		ev2, rj2, err := runToEnd(t, newCheckpointInput(t, cfg, store, nil))
		if err != nil {
			t.Fatalf("cut after %d batches: second run: %v", n, err)
		}
		if got := append(ev1, ev2...); !slices.Equal(got, wantEvents) {
			t.Fatalf("cut after %d batches: events\n%q\n+ %q\nwant %q", n, ev1, ev2, wantEvents)
		}
		// A line rejected while its batch was being filled, when that batch
		// is the one the cut keeps out, is rejected again after the
		// restart: rejects are at least once (docs/connectors.md).
		if got := slices.Compact(append(rj1, rj2...)); !slices.Equal(got, wantRejects) {
			t.Fatalf("cut after %d batches: rejects %q + %q, want %q", n, rj1, rj2, wantRejects)
		}
		if finished {
			if len(ev2)+len(rj2) != 0 {
				t.Fatalf("a finished run was read again: %q %q", ev2, rj2)
			}
			if n < 5 {
				t.Fatalf("finished after %d batches: the cuts were not inside the files", n)
			}
			return
		}
	}
}

// TestInputCheckpointState checks the key layout docs/format/state.md
// describes.
func TestInputCheckpointState(t *testing.T) {
	dir := t.TempDir()
	writeInputFiles(t, dir)
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "*")
	store := newMemStore()
	in := newCheckpointInput(t, cfg, store, nil)
	if _, _, finished := runUntilCut(t, in, store, 3); finished {
		t.Fatal("finished")
	}
	a, err := os.ReadFile(filepath.Join(dir, "a.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "a.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	// Three batches of two events each were acknowledged: lines 1-2, 3-5
	// (3 is empty) and 6-8 (6 was rejected) of a.ndjson.
	want := map[string]string{"pos/0/" + abs: fmt.Sprintf(`{"v":1,"line":8,"offset":%d,"head_bytes":%d,"head_crc32c":%d}`,
		bytes.Index(a, []byte(`{"a":9}`)), len(a), crc32.Checksum(a, castagnoli))}
	if fmt.Sprint(store.state) != fmt.Sprint(want) {
		t.Fatalf("state %v,\nwant %v", store.state, want)
	}

	in = newCheckpointInput(t, cfg, store, nil)
	if _, _, err := runToEnd(t, in); err != nil {
		t.Fatal(err)
	}
	checkpointInput(t, store, in)
	if len(store.state) != 3 {
		t.Fatalf("state %v", store.state)
	}
	for k, v := range store.state {
		var p filePos
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(strings.TrimPrefix(k, "pos/0/"))
		if err != nil || p.Size != st.Size() || p.Line == 0 {
			t.Errorf("%s = %s: a file read to its end records its size (%v)", k, v, err)
		}
	}
	// Nothing changed: the next checkpoint writes nothing.
	tx := &memTxn{}
	if err := in.Snapshot(t.Context(), tx); err != nil || len(tx.ops) != 0 {
		t.Fatalf("snapshot without progress wrote %d keys (%v)", len(tx.ops), err)
	}
}

func TestInputCheckpointChangedFile(t *testing.T) {
	tenLines := func(prefix string) string {
		var b strings.Builder
		for i := 1; i <= 10; i++ {
			fmt.Fprintf(&b, "%s line %02d\n", prefix, i)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name    string
		gz      bool
		replace string // the file's content after the first run
		want    string // the error, or "" for a resume
		resumed []string
	}{
		{name: "appended", replace: tenLines("x") + "x line 11\n", resumed: []string{"x line 05", "x line 06", "x line 07", "x line 08", "x line 09", "x line 10", "x line 11"}},
		{name: "truncated", replace: "x line 01\n", want: "has 10 bytes, fewer than the 40 (line 4) the last checkpoint recorded as read"},
		{name: "shorter than its head", replace: tenLines("x")[:60], want: "has 60 bytes, fewer than the 100 it had when the last checkpoint was taken"},
		{name: "replaced", replace: tenLines("y"), want: "is not the file the last checkpoint read (its first 100 bytes differ)"},
		{name: "gzip appended", gz: true, replace: tenLines("x") + "x line 11\n", resumed: []string{"x line 05", "x line 06", "x line 07", "x line 08", "x line 09", "x line 10", "x line 11"}},
		{name: "gzip truncated", gz: true, replace: "x line 01\n", want: "has 10 bytes uncompressed, fewer than the 40 (line 4) the last checkpoint recorded as read"},
		{name: "gzip replaced", gz: true, replace: tenLines("y"), want: "its first 100 bytes differ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "in.log")
			write := func(data string) {
				if tc.gz {
					gzipFile(t, path, data)
				} else {
					writeFile(t, path, data)
				}
			}
			write(tenLines("x"))
			cfg := DefaultInputConfig()
			cfg.Path, cfg.Codec = path, "lines"
			if tc.gz {
				cfg.Compression = "gzip"
			}
			store := newMemStore()
			if _, _, finished := runUntilCut(t, newCheckpointInput(t, cfg, store, nil), store, 2); finished {
				t.Fatal("finished")
			}
			write(tc.replace)
			events, _, err := runToEnd(t, newCheckpointInput(t, cfg, store, nil))
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, e := range events {
					got = append(got, e[strings.LastIndexByte(e, ':')+1:])
				}
				if !slices.Equal(got, tc.resumed) || !strings.HasPrefix(events[0], "5:") {
					t.Fatalf("resumed with %q, want %q from line 5", events, tc.resumed)
				}
				return
			}
			if !errors.Is(err, ErrFileChanged) || !strings.Contains(err.Error(), path+" ") || !strings.Contains(err.Error(), tc.want) || len(events) != 0 {
				t.Fatalf("Run: %v (events %q), want ErrFileChanged: %s %s", err, events, path, tc.want)
			}
		})
	}
}

// TestInputCheckpointFollow: a followed file resumes where the checkpoint
// left it, with the lines appended while the pipeline was stopped; one that
// was truncated or rotated meanwhile is read from its start, with a warning.
func TestInputCheckpointFollow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "one\ntwo\nthree\n")
	cfg := followConfig(path)
	store := newMemStore()

	// run runs the input until it emitted want, the first with line number
	// first, and stops it after a checkpoint.
	run := func(logs *bytes.Buffer, first int64, want ...string) {
		t.Helper()
		in := newCheckpointInput(t, cfg, store, logs)
		o := &testkit.Outlet{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- in.Run(ctx, o) }()
		waitValues(t, o, want...)
		waitDrained(t, in)
		checkpointInput(t, store, in)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v", err)
		}
		if got := o.Events()[0].Offset; got != first {
			t.Fatalf("first line number %d, want %d", got, first)
		}
	}
	run(nil, 1, "one", "two", "three")
	appendFile(t, path, "four\nfive\n")
	run(nil, 4, "four", "five")

	// Truncated and rewritten with more than was read: the fingerprint
	// tells.
	writeFile(t, path, "ONE\nTWO\nTHREE\nFOUR\nFIVE\nSIX\n")
	var logs bytes.Buffer
	run(&logs, 1, "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX")
	if !strings.Contains(logs.String(), "not the one the last checkpoint read; reading it from its start") ||
		!strings.Contains(logs.String(), "its first 24 bytes differ") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
	// Shorter than the position.
	writeFile(t, path, "1\n")
	logs.Reset()
	run(&logs, 1, "1")
	if !strings.Contains(logs.String(), "has 2 bytes, fewer than the 28 (line 6) the last checkpoint recorded as read") {
		t.Fatalf("no warning:\n%s", logs.String())
	}
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestInputCheckpointTruncatedWhileFollowed: after a live truncation the
// checkpoint records the position in the new content, from its start.
func TestInputCheckpointTruncatedWhileFollowed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	writeFile(t, path, "aaaa\nbbbb\ncccc\n")
	cfg := followConfig(path)
	store := newMemStore()
	in := newCheckpointInput(t, cfg, store, nil)
	o := &testkit.Outlet{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, o) }()
	waitValues(t, o, "aaaa", "bbbb", "cccc")
	writeFile(t, path, "x\n")
	waitValues(t, o, "aaaa", "bbbb", "cccc", "x")
	waitDrained(t, in)
	checkpointInput(t, store, in)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var p filePos
	for _, v := range store.state {
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			t.Fatal(err)
		}
	}
	if p.Line != 1 || p.Offset != 2 || p.HeadBytes != 2 {
		t.Fatalf("position %+v, want line 1 of the new content", p)
	}
	appendFile(t, path, "y\n")
	in = newCheckpointInput(t, cfg, store, nil)
	o = &testkit.Outlet{}
	ctx, cancel = context.WithCancel(t.Context())
	defer cancel()
	go func() { done <- in.Run(ctx, o) }()
	waitValues(t, o, "y")
	if off := o.Events()[0].Offset; off != 2 {
		t.Fatalf("line number %d, want 2", off)
	}
	cancel()
	<-done
}

// TestInputCheckpointForgetsUnmatchedFiles: positions of files path no
// longer matches are deleted at the next checkpoint.
func TestInputCheckpointForgetsUnmatchedFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "old.ndjson"), "{}\n")
	writeFile(t, filepath.Join(dir, "new.ndjson"), "{}\n")
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "*.ndjson")
	store := newMemStore()
	in := newCheckpointInput(t, cfg, store, nil)
	if _, _, err := runToEnd(t, in); err != nil {
		t.Fatal(err)
	}
	checkpointInput(t, store, in)
	if len(store.state) != 2 {
		t.Fatalf("state %v", store.state)
	}
	if err := os.Remove(filepath.Join(dir, "old.ndjson")); err != nil {
		t.Fatal(err)
	}
	in = newCheckpointInput(t, cfg, store, nil)
	if ev, _, err := runToEnd(t, in); err != nil || len(ev) != 0 {
		t.Fatalf("events %q, %v", ev, err)
	}
	checkpointInput(t, store, in)
	for k := range store.state {
		if !strings.HasSuffix(k, "/new.ndjson") {
			t.Fatalf("state %v keeps %s", store.state, k)
		}
	}
	if len(store.state) != 1 {
		t.Fatalf("state %v", store.state)
	}
	// A file that appears again under the old name is a new file.
	writeFile(t, filepath.Join(dir, "old.ndjson"), "{\"again\":1}\n")
	if ev, _, err := runToEnd(t, newCheckpointInput(t, cfg, store, nil)); err != nil || !slices.Equal(ev, []string{`1:{"again":1}`}) {
		t.Fatalf("events %q, %v", ev, err)
	}
}

// blockingRejects holds Reject calls until release is closed.
type blockingRejects struct {
	testkit.Outlet
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingRejects) Reject(ctx context.Context, e event.Event, err error) error {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	return b.Outlet.Reject(ctx, e, err)
}

// TestInputDrainerCountsRejects: a reject is handed over before its batch
// is registered; the drain must still wait for it.
func TestInputDrainerCountsRejects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	writeFile(t, path, "{bad\n{}\n")
	cfg := DefaultInputConfig()
	cfg.Path = path
	in := newCheckpointInput(t, cfg, newMemStore(), nil)
	o := &blockingRejects{entered: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- in.Run(t.Context(), o) }()
	<-o.entered
	if n := in.InFlight(); n != 1 {
		t.Fatalf("in flight %d while a reject is being handed over, want 1", n)
	}
	close(o.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := in.InFlight(); n != 0 {
		t.Fatalf("in flight %d at the end", n)
	}
}

// TestInputCheckpointBadState: state this version cannot read is an error
// at Restore, not a silent start from scratch.
func TestInputCheckpointBadState(t *testing.T) {
	cfg := DefaultInputConfig()
	cfg.Path = "x.ndjson"
	env := inputEnv()
	env.Checkpointing = true
	for _, c := range []struct{ state, want string }{
		{`{"v":1,`, "decode state"},
		{`{"v":2,"line":1,"offset":2}`, "version 2"},
		{`{"v":1,"line":5,"offset":2}`, "corrupt"},
		{`{"v":1,"line":1,"offset":2,"head_bytes":2000}`, "corrupt"},
	} {
		in := newTestInput(t, cfg, env)
		err := in.Restore(t.Context(), memReader{"pos/0//x.ndjson": c.state, "pos/1//other": "ignored"})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("state %s: %v, want %q", c.state, err, c.want)
		}
	}
}

var _ runtime.Outlet = (*blockingRejects)(nil)

// cancelOutlet cancels the run in the first Emit and lets it go on, as a
// stop that comes while a batch is being filled.
type cancelOutlet struct {
	testkit.Outlet
	cancel context.CancelFunc
}

func (c *cancelOutlet) Emit(ctx context.Context, b *event.Batch) error {
	c.cancel()
	return c.Outlet.Emit(ctx, b)
}

// TestInputCheckpointStopHandsOverReadLines: a stop hands over the lines
// read so far, so that the final checkpoint covers them — among them lines
// already rejected, which must not be rejected again after the restart.
func TestInputCheckpointStopHandsOverReadLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	writeFile(t, path, "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n{\"n\":4}\n{\"n\":5}\n{bad\n")
	cfg := DefaultInputConfig()
	cfg.Path = path
	store := newMemStore()
	in := newCheckpointInput(t, cfg, store, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	o := &cancelOutlet{cancel: cancel}
	if err := in.Run(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	checkpointInput(t, store, in)
	ev1, rj1 := seen(&o.Outlet)
	if len(ev1) != 5 || len(rj1) != 1 {
		t.Fatalf("before the stop: %q %q", ev1, rj1)
	}
	if ev, rj, err := runToEnd(t, newCheckpointInput(t, cfg, store, nil)); err != nil || len(ev)+len(rj) != 0 {
		t.Fatalf("after the restart: %q %q %v", ev, rj, err)
	}
}
