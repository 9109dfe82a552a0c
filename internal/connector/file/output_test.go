package file

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// fakeClock is a settable clock for time rotation.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func outputEnv(instance int) runtime.Env {
	return runtime.Env{Pipeline: "p", Node: "out", Instance: instance, Parallelism: 4}
}

func newTestOutput(t *testing.T, cfg OutputConfig, instance int, clock *fakeClock) *Output {
	t.Helper()
	now := time.Now
	if clock != nil {
		now = clock.now
	}
	o, err := newOutput(cfg, outputEnv(instance), now)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func events(values ...string) []event.Event {
	evs := make([]event.Event, len(values))
	for i, v := range values {
		evs[i] = event.Event{Value: []byte(v)}
	}
	return evs
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func readAllFiles(t *testing.T, dir string, names []string) string {
	t.Helper()
	var sb strings.Builder
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	return sb.String()
}

func mustWrite(t *testing.T, o *Output, values ...string) {
	t.Helper()
	if err := o.Write(t.Context(), events(values...)); err != nil {
		t.Fatal(err)
	}
}

func mustFlush(t *testing.T, o *Output) {
	t.Helper()
	if err := o.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestOutputAtomicPublish(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "out") // created on demand
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	clock := &fakeClock{t: t0}
	o := newTestOutput(t, cfg, 2, clock)
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("files before the first event: %v", names)
	}
	mustWrite(t, o, `{"a":1}`, `{"a":2}`)
	mustFlush(t, o)
	if names := listDir(t, dir); !slices.Equal(names, []string{".events-2-1.inprogress"}) {
		t.Fatalf("while writing: %v, want only the hidden in-progress file", names)
	}
	clock.add(90 * time.Second)
	mustWrite(t, o, `{"a":3}`)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, dir)
	if !slices.Equal(names, []string{"events-20240501T120000Z-2-000001.ndjson"}) {
		t.Fatalf("after close: %v", names)
	}
	if got := readAllFiles(t, dir, names); got != "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n" {
		t.Fatalf("content %q", got)
	}
}

func TestOutputCloseWithoutEventsCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	o := newTestOutput(t, cfg, 0, nil)
	mustWrite(t, o)
	mustFlush(t, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("files: %v", names)
	}
}

func TestOutputRotatesBySize(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.Prefix = "web-log" // a dash in the prefix must not confuse parsing
	cfg.Suffix = ".json"
	cfg.RotateBytes = 100
	o := newTestOutput(t, cfg, 0, &fakeClock{t: t0})
	var all []string
	for i := range 20 {
		v := fmt.Sprintf(`{"n":%03d,"pad":"%s"}`, i, strings.Repeat("x", 10)) // 30 bytes + \n
		all = append(all, v)
		mustWrite(t, o, v)
	}
	big := `"` + strings.Repeat("B", 200) + `"` // larger than rotate_bytes: a file of its own
	all = append(all, big)
	mustWrite(t, o, big, `1`)
	all = append(all, `1`)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := listDir(t, dir)
	name := regexp.MustCompile(`^web-log-20240501T120000Z-0-(\d{6})\.json$`)
	for i, n := range names {
		m := name.FindStringSubmatch(n)
		if m == nil || m[1] != fmt.Sprintf("%06d", i+1) {
			t.Fatalf("file %d is %q", i, n)
		}
		st, _ := os.Stat(filepath.Join(dir, n))
		if st.Size() > 100 && !strings.Contains(readAllFiles(t, dir, []string{n}), "BBB") {
			t.Fatalf("%s has %d bytes, above rotate_bytes", n, st.Size())
		}
	}
	// 20 lines of 31 bytes: 3 per file, then the big event alone, then "1".
	if len(names) != 9 {
		t.Fatalf("%d files: %v", len(names), names)
	}
	if got := readAllFiles(t, dir, names); got != strings.Join(all, "\n")+"\n" {
		t.Fatalf("content differs: %q", got)
	}
}

func TestOutputRotatesByTime(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateInterval = time.Minute
	clock := &fakeClock{t: t0}
	o := newTestOutput(t, cfg, 1, clock)
	mustWrite(t, o, "1")
	clock.add(30 * time.Second)
	mustWrite(t, o, "2")
	mustFlush(t, o)
	if names := listDir(t, dir); len(names) != 1 || !strings.HasSuffix(names[0], ".inprogress") {
		t.Fatalf("rotated too early: %v", names)
	}
	clock.add(30 * time.Second)
	mustFlush(t, o) // idle: the runtime still flushes, which publishes
	names := listDir(t, dir)
	if !slices.Equal(names, []string{"events-20240501T120000Z-1-000001.ndjson"}) {
		t.Fatalf("after a minute: %v", names)
	}
	clock.add(5 * time.Minute)
	mustWrite(t, o, "3")
	clock.add(2 * time.Minute)
	mustWrite(t, o, "4") // the file is too old: rotated before this write
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names = listDir(t, dir)
	want := []string{
		"events-20240501T120000Z-1-000001.ndjson",
		"events-20240501T120600Z-1-000002.ndjson",
		"events-20240501T120800Z-1-000003.ndjson",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v, want %v", names, want)
	}
	if got := readAllFiles(t, dir, names); got != "1\n2\n3\n4\n" {
		t.Fatalf("content %q", got)
	}
}

func TestOutputRecoversLeftovers(t *testing.T) {
	dir := t.TempDir()
	// A crashed run of instance 0 left file 7 in progress, with a torn last
	// line, and had published file 9. Instance 1's leftover is not ours.
	writeFile(t, filepath.Join(dir, ".events-0-7.inprogress"), "a\nb\npart")
	writeFile(t, filepath.Join(dir, ".events-0-8.inprogress"), "")
	writeFile(t, filepath.Join(dir, "events-20240101T000000Z-0-000009.ndjson"), "old\n")
	writeFile(t, filepath.Join(dir, ".events-1-3.inprogress"), "other\n")
	writeFile(t, filepath.Join(dir, ".other-0-4.inprogress"), "other prefix\n")
	mtime := time.Date(2024, 4, 30, 23, 59, 58, 0, time.UTC)
	if err := os.Chtimes(filepath.Join(dir, ".events-0-7.inprogress"), mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, ".events-0-8.inprogress"), mtime, mtime); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	o := newTestOutput(t, cfg, 0, &fakeClock{t: t0})
	want := []string{
		".events-1-3.inprogress",
		".other-0-4.inprogress",
		"events-20240101T000000Z-0-000009.ndjson",
		"events-20240430T235958Z-0-000007.ndjson",
		"events-20240430T235958Z-0-000008.ndjson",
	}
	if names := listDir(t, dir); !slices.Equal(names, want) {
		t.Fatalf("after recovery: %v, want %v", names, want)
	}
	if got := readAllFiles(t, dir, []string{"events-20240430T235958Z-0-000007.ndjson"}); got != "a\nb\n" {
		t.Fatalf("recovered content %q, want the torn line cut", got)
	}
	mustWrite(t, o, "new")
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if names := listDir(t, dir); !slices.Contains(names, "events-20240501T120000Z-0-000010.ndjson") {
		t.Fatalf("new file does not continue after seq 9: %v", names)
	}
}

func TestOutputConcurrentInstances(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 1000
	cfg.Sync = true
	var wg sync.WaitGroup
	const per = 500
	for inst := range 4 {
		o := newTestOutput(t, cfg, inst, nil)
		wg.Go(func() {
			ctx := context.Background()
			for i := range per {
				if err := o.Write(ctx, events(fmt.Sprintf(`{"i":%d,"n":%d}`, inst, i))); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					if err := o.Flush(ctx); err != nil {
						t.Error(err)
					}
				}
			}
			if err := o.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	names := listDir(t, dir)
	seen := map[string]bool{}
	for _, n := range names {
		if strings.HasPrefix(n, ".") {
			t.Fatalf("left in progress: %s", n)
		}
		if seen[n] {
			t.Fatalf("duplicate %s", n)
		}
		seen[n] = true
	}
	lines := strings.Split(strings.TrimSuffix(readAllFiles(t, dir, names), "\n"), "\n")
	if len(lines) != 4*per {
		t.Fatalf("%d lines, want %d", len(lines), 4*per)
	}
	slices.Sort(lines)
	if len(slices.Compact(lines)) != 4*per {
		t.Fatal("lines lost or duplicated")
	}
}

func TestOutputValidate(t *testing.T) {
	cfg := DefaultOutputConfig()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "dir:") {
		t.Fatalf("missing dir: %v", err)
	}
	bad := OutputConfig{Dir: "x", Prefix: ".hidden", Suffix: "a/b", RotateBytes: -1, RotateInterval: -time.Second}
	err := bad.Validate()
	for _, f := range []string{"prefix:", "suffix:", "rotate_bytes:", "rotate_interval:"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("Validate(%+v) = %v, want a %s error", bad, err, f)
		}
	}
}
