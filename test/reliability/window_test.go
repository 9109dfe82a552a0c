package reliability

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/testkit"
)

// crashPoints are the places inside a checkpoint where the window crash
// test kills weir (internal/faults): before the state is written, before
// and after the synced commit of state and input positions, between the
// components' after-commit steps, in the middle of the window operator's
// snapshot, before a finished output file is renamed into place, and
// before an input position is committed to the log.
var crashPoints = []string{
	"checkpoint.before-snapshot",
	"window.snapshot",
	"checkpoint.before-commit",
	"checkpoint.after-commit",
	"checkpoint.committed-step",
	"file.publish",
	"log.commit",
	"join.snapshot",
}

// TestWindowCrashes runs a windowed pipeline over the local log (log →
// sliding and session windows and an interval join → file, checkpoints
// every 20 ms) and kills it with SIGKILL at
// every crash point in turn and at random times, restarting it each time
// from its checkpoint, until it finishes. Its published output must be
// identical, line for line, to that of a run without faults. The faulty
// runs give the sliding window no cache (cache_bytes: 0), so every one of
// its windows is spilled to the state store after each batch and read
// back, and restored lazily, while the reference keeps them in memory.
func TestWindowCrashes(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	writeCfg := filepath.Join(dir, "write.yaml")
	must(t, os.WriteFile(writeCfg, fmt.Appendf(nil, `
name: write
control: {address: ""}
status: off
inputs:
  web: {type: generate, count: 200000, seed: 5, users: 300, start_time: "2024-01-01T00:00:00Z"}
outputs:
  l: {type: log, from: web, dir: %s, partitions: 3, durability: none}
`, logDir), 0o644))
	if out, err := exec.Command(weirBin, "run", writeCfg).CombinedOutput(); err != nil {
		t.Fatalf("writing the log: %v\n%s", err, out)
	}

	pipeline := func(name, cache string) (cfg, out string) {
		out = filepath.Join(dir, name, "out")
		cfg = filepath.Join(dir, name+".yaml")
		must(t, os.WriteFile(cfg, fmt.Appendf(nil, `
name: windows
control: {address: ""}
status: off
state: {dir: %s, checkpoint_interval: 20ms}
inputs:
  l: {type: log, dir: %s, reader: %s, stop_at_end: true, event_time: {max_out_of_orderness: 50ms}}
processors:
  per_type:
    type: window
    from: l
    key_by: type
    parallelism: 2
    window: sliding
    size: 2s
    slide: 500ms
    cache_bytes: %s
    aggregates:
      n: count()
      users: count_distinct(user_id)
      top_price: max(price)
      first_user: first(user_id)
  sessions:
    type: window
    from: l
    key_by: user_id
    parallelism: 2
    window: session
    gap: 3s
    aggregates:
      n: count()
      pages: top_k(page, 2)
  buys:
    type: filter
    from: l
    expr: type != "view"
  click_then_buy:
    type: join
    from: buys
    key_by: user_id
    parallelism: 2
    left: type == "click"
    join: interval
    lower: 0s
    upper: 2s
outputs:
  out: {type: file, from: [per_type, sessions, click_then_buy], dir: %s, rotate_bytes: 8KiB}
`, filepath.Join(dir, name, "state"), logDir, name, cache, out), 0o644))
		return cfg, out
	}

	refCfg, refOut := pipeline("reference", "64MiB")
	if out, err := exec.Command(weirBin, "run", refCfg).CombinedOutput(); err != nil {
		t.Fatalf("reference run: %v\n%s", err, out)
	}
	want := publishedLines(t, refOut)
	if len(want) < 1000 {
		t.Fatalf("reference output has only %d lines", len(want))
	}

	cfg, out := pipeline("faulty", "0")
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	hit := map[string]bool{}
	runs, kills, randomKills := 0, 0, 0
	plan := slices.Clone(crashPoints)
	for finished := false; !finished; runs++ {
		if runs > 200 {
			t.Fatalf("not finished after %d runs", runs)
		}
		cmd := exec.Command(weirBin, "run", cfg)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		point, killAfter := "", time.Duration(0)
		switch {
		case len(plan) > 0:
			point, plan = plan[0], plan[1:]
			cmd.Env = append(os.Environ(), fmt.Sprintf("WEIR_CRASH_AT=%s:%d", point, 1+rng.IntN(3)))
		case randomKills < 6:
			randomKills++
			killAfter = time.Duration(30+rng.IntN(300)) * time.Millisecond
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if killAfter > 0 {
			proc := cmd.Process
			timer := time.AfterFunc(killAfter, func() { _ = proc.Kill() })
			defer timer.Stop()
		}
		err := cmd.Wait()
		switch {
		case err == nil:
			finished = true
		case killed(err):
			kills++
			if point != "" {
				hit[point] = true
			}
		default:
			t.Fatalf("run %d: %v\n%s", runs, err, tail(stderr.String(), 3000))
		}
	}
	got := publishedLines(t, out)
	if !slices.Equal(got, want) {
		missing, extra := testkit.DiffLines(want, got)
		t.Fatalf("output differs from the fault-free run: %d lines missing, %d extra (of %d); e.g. missing %q extra %q",
			len(missing), len(extra), len(want), first(missing), first(extra))
	}
	if len(hit) < 5 {
		t.Errorf("only %d crash points were reached (%v); the test needs at least 5", len(hit), hit)
	}
	t.Logf("runs=%d kills=%d crash_points_hit=%d lines=%d", runs, kills, len(hit), len(want))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func killed(err error) bool {
	ee, ok := err.(*exec.ExitError)
	if !ok {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// publishedLines returns every line of the published output files, sorted.
func publishedLines(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	slices.Sort(lines)
	return lines
}

func first(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}
