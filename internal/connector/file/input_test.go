package file

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/connector/lines"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func inputEnv() runtime.Env {
	return runtime.Env{Pipeline: "p", Node: "files", Parallelism: 1, BatchSize: 4, Linger: 10 * time.Millisecond}
}

func newTestInput(t testing.TB, cfg InputConfig, env runtime.Env) *Input {
	t.Helper()
	in, err := NewInput(cfg, env)
	if err != nil {
		t.Fatal(err)
	}
	return in.(*Input)
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, path, data string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
}

func gzipFile(t testing.TB, path, data string) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(data))
	zw.Close()
	writeFile(t, path, buf.String())
}

func TestInputReadsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "in.ndjson")
	data := "{\"a\":1}\r\n\n{\"a\":2}\n{oops\n{\"a\":3}\n{\"a\":4}\n{\"a\":5}"
	writeFile(t, path, data)
	cfg := DefaultInputConfig()
	cfg.Path = path
	var logs bytes.Buffer
	env := inputEnv()
	env.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	in := newTestInput(t, cfg, env)
	o := testkit.Outlet{ManualAck: true}
	if err := in.Run(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range o.Events() {
		got = append(got, fmt.Sprintf("%d:%s", e.Offset, e.Value))
	}
	want := []string{`1:{"a":1}`, `3:{"a":2}`, `5:{"a":3}`, `6:{"a":4}`, `7:{"a":5}`}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	rs := o.Rejects()
	if len(rs) != 1 || rs[0].Event.Offset != 4 || !strings.HasPrefix(rs[0].Err.Error(), "line 4: invalid JSON") {
		t.Fatalf("rejects %+v", rs)
	}
	if src, _ := rs[0].Event.Header("source"); string(src) != path {
		t.Fatalf("source header %q, want %q", src, path)
	}
	if c := in.Acknowledged(); c.Line != 0 {
		t.Fatalf("committed %+v before acks", c)
	}
	o.Ack()
	if c := in.Acknowledged(); c != (lines.Position{Source: path, Line: 7, Offset: int64(len(data))}) {
		t.Fatalf("committed %+v after acks", c)
	}
	if err := in.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"committed_line=7", fmt.Sprintf("committed_offset=%d", len(data)), "acknowledged=5", "rejected=1"} {
		if !strings.Contains(logs.String(), s) {
			t.Errorf("close log lacks %s: %s", s, logs.String())
		}
	}
}

func TestInputGzip(t *testing.T) {
	dir := t.TempDir()
	gzipFile(t, filepath.Join(dir, "a.ndjson.gz"), "{\"z\":1}\n{\"z\":2}\n")
	gzipFile(t, filepath.Join(dir, "b.data"), "{\"z\":3}\n")
	cases := []struct {
		path, compression string
		want              []string
	}{
		{"a.ndjson.gz", "auto", []string{`{"z":1}`, `{"z":2}`}},
		{"a.ndjson.gz", "gzip", []string{`{"z":1}`, `{"z":2}`}},
		{"b.data", "gzip", []string{`{"z":3}`}},
	}
	for _, c := range cases {
		cfg := DefaultInputConfig()
		cfg.Path = filepath.Join(dir, c.path)
		cfg.Compression = c.compression
		var o testkit.Outlet
		if err := newTestInput(t, cfg, inputEnv()).Run(t.Context(), &o); err != nil {
			t.Fatal(err)
		}
		if got := o.Values(); !slices.Equal(got, c.want) {
			t.Errorf("%s with compression %s: %q, want %q", c.path, c.compression, got, c.want)
		}
	}
	// Not gzip at all.
	writeFile(t, filepath.Join(dir, "plain.gz"), "{}\n")
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "plain.gz")
	err := newTestInput(t, cfg, inputEnv()).Run(t.Context(), new(testkit.Outlet))
	if err == nil || !strings.Contains(err.Error(), "as gzip") {
		t.Fatalf("reading a plain file as gzip: %v", err)
	}
}

func TestInputGlobOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "b.ndjson"), "{\"f\":\"b1\"}\n{\"f\":\"b2\"}\n")
	writeFile(t, filepath.Join(dir, "a.ndjson"), "{\"f\":\"a1\"}\n")
	gzipFile(t, filepath.Join(dir, "c.ndjson.gz"), "{\"f\":\"c1\"}\n")
	writeFile(t, filepath.Join(dir, "skip.txt"), "nope\n")
	if err := os.Mkdir(filepath.Join(dir, "d.ndjson"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "*.ndjson*")
	var o testkit.Outlet
	in := newTestInput(t, cfg, inputEnv())
	if err := in.Run(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range o.Events() {
		got = append(got, fmt.Sprintf("%d:%s", e.Offset, e.Value))
	}
	want := []string{`1:{"f":"a1"}`, `1:{"f":"b1"}`, `2:{"f":"b2"}`, `1:{"f":"c1"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if c := in.Acknowledged(); c.Source != filepath.Join(dir, "c.ndjson.gz") || c.Line != 1 {
		t.Fatalf("committed %+v", c)
	}
}

func TestInputErrors(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultInputConfig()
	cfg.Path = filepath.Join(dir, "*.none")
	if err := newTestInput(t, cfg, inputEnv()).Run(t.Context(), new(testkit.Outlet)); err == nil || !strings.Contains(err.Error(), "matches no files") {
		t.Errorf("empty glob: %v", err)
	}
	cfg.Path = filepath.Join(dir, "missing.ndjson")
	if err := newTestInput(t, cfg, inputEnv()).Run(t.Context(), new(testkit.Outlet)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	env := inputEnv()
	env.Parallelism = 2
	if _, err := NewInput(cfg, env); err == nil || !strings.Contains(err.Error(), "parallelism: 1") {
		t.Errorf("parallelism 2: %v", err)
	}
	bad := InputConfig{Codec: "xml", Compression: "zip", MaxLineBytes: 0}
	err := bad.Validate()
	for _, field := range []string{"path:", "codec:", "compression:", "max_line_bytes:"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Validate(%+v) = %v, want a %s error", bad, err, field)
		}
	}
	follow := DefaultInputConfig()
	follow.Path, follow.Compression, follow.Follow = "x.gz", "gzip", true
	if err := follow.Validate(); err == nil || !strings.Contains(err.Error(), "follow:") {
		t.Errorf("follow with gzip: %v", err)
	}
}

// runFollow starts a following input and returns a function that stops it
// and returns Run's error.
func runFollow(t *testing.T, cfg InputConfig, o *testkit.Outlet) func() error {
	t.Helper()
	in := newTestInput(t, cfg, inputEnv())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, o) }()
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not stop")
			return nil
		}
	}
}

func waitValues(t *testing.T, o *testkit.Outlet, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := o.WaitEvents(ctx, len(want)); err != nil {
		t.Fatalf("waiting for %d events, have %q", len(want), o.Values())
	}
	if got := o.Values(); !slices.Equal(got, want) {
		t.Fatalf("values %q, want %q", got, want)
	}
}

func followConfig(path string) InputConfig {
	cfg := DefaultInputConfig()
	cfg.Path = path
	cfg.Codec = "lines"
	cfg.Follow = true
	cfg.PollInterval = 5 * time.Millisecond
	return cfg
}

func TestFollowAppendAndTruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "one\ntwo\n")
	var o testkit.Outlet
	stop := runFollow(t, followConfig(path), &o)
	waitValues(t, &o, "one", "two")

	appendFile(t, path, "three\nfo")
	waitValues(t, &o, "one", "two", "three")
	time.Sleep(30 * time.Millisecond) // several polls: the partial line stays buffered
	if got := o.Values(); len(got) != 3 {
		t.Fatalf("partial line emitted: %q", got)
	}
	appendFile(t, path, "ur\n")
	waitValues(t, &o, "one", "two", "three", "four")

	// Truncate and write less than was read: read again from the start.
	writeFile(t, path, "new\n")
	waitValues(t, &o, "one", "two", "three", "four", "new")
	evs := o.Events()
	if off := evs[len(evs)-1].Offset; off != 1 {
		t.Fatalf("line after truncation has number %d, want 1", off)
	}
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestFollowRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	writeFile(t, path, "a1\n")
	var o testkit.Outlet
	stop := runFollow(t, followConfig(path), &o)
	waitValues(t, &o, "a1")

	// Rotate: move the file away, keep writing to it for a moment (the
	// writer still has it open), then create a new one.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path+".1", "a2\na3-no-newline")
	waitValues(t, &o, "a1", "a2")
	writeFile(t, path, "b1\n")
	waitValues(t, &o, "a1", "a2", "a3-no-newline", "b1")
	appendFile(t, path, "b2\n")
	waitValues(t, &o, "a1", "a2", "a3-no-newline", "b1", "b2")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestFollowGlobAppliesToLastFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "1.log"), "x\n")
	writeFile(t, filepath.Join(dir, "2.log"), "y\n")
	var o testkit.Outlet
	stop := runFollow(t, followConfig(filepath.Join(dir, "*.log")), &o)
	waitValues(t, &o, "x", "y")
	appendFile(t, filepath.Join(dir, "1.log"), "ignored\n")
	appendFile(t, filepath.Join(dir, "2.log"), "z\n")
	waitValues(t, &o, "x", "y", "z")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestFollowWaitsForGlob(t *testing.T) {
	dir := t.TempDir()
	var o testkit.Outlet
	stop := runFollow(t, followConfig(filepath.Join(dir, "*.log")), &o)
	time.Sleep(20 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "late.log"), "hello\n")
	waitValues(t, &o, "hello")
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

func TestInputBackpressureAndCancel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "big.ndjson")
	writeFile(t, path, strings.Repeat("{}\n", 1000))
	cfg := DefaultInputConfig()
	cfg.Path = path
	var o testkit.Outlet
	o.Block()
	in := newTestInput(t, cfg, inputEnv())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, &o) }()
	if err := o.Wait(t.Context(), func(o *testkit.Outlet) bool { return o.WaitingLocked() == 1 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
}

// BenchmarkInput reads a 200,000-line NDJSON file (about 240 bytes a line)
// per iteration into an outlet that counts and acknowledges.
func BenchmarkInput(b *testing.B) {
	const n = 200_000
	path := filepath.Join(b.TempDir(), "events.ndjson")
	var buf bytes.Buffer
	for i := range n {
		fmt.Fprintf(&buf, `{"event_id":"%08x-0000-4000-8000-000000000000","user_id":"u_%d","type":"view","ts":%d,"price":0.00,"page":"/products/%d","user_agent":"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"}`+"\n",
			i, i%10000, 1714564800000+int64(i), i%977)
	}
	writeFile(b, path, buf.String())
	for _, codec := range []string{"json", "lines"} {
		b.Run("codec="+codec, func(b *testing.B) {
			cfg := DefaultInputConfig()
			cfg.Path = path
			cfg.Codec = codec
			env := inputEnv()
			env.BatchSize = 256
			b.SetBytes(int64(buf.Len()))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				in := newTestInput(b, cfg, env)
				o := &testkit.Outlet{CountOnly: true}
				if err := in.Run(context.Background(), o); err != nil {
					b.Fatal(err)
				}
				if ev, _ := o.Counts(); ev != n {
					b.Fatalf("%d events", ev)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n)/float64(b.N), "ns/event")
		})
	}
	// A floor to compare with: bufio.Scanner over the same file, validating
	// each line, with no batching, copying or acknowledgement.
	b.Run("baseline=scanner+validate", func(b *testing.B) {
		b.SetBytes(int64(buf.Len()))
		b.ReportAllocs()
		start := time.Now()
		for b.Loop() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			sc.Buffer(make([]byte, 256<<10), 1<<20)
			count := 0
			for sc.Scan() {
				if err := jsondoc.Validate(sc.Bytes()); err != nil {
					b.Fatal(err)
				}
				count++
			}
			f.Close()
			if count != n {
				b.Fatalf("%d lines", count)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/time.Since(start).Seconds(), "events/s")
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(n)/float64(b.N), "ns/event")
	})
}
