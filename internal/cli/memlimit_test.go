package cli

import (
	"bytes"
	"context"
	"log/slog"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/state"
)

// The Go runtime's share of runtime.memory_limit: all of it without a state
// store; with one, what the store's off-heap memory leaves, and never less
// than a quarter.
func TestGoMemoryLimit(t *testing.T) {
	load := func(yaml string) *app.Loaded {
		t.Helper()
		l, err := app.LoadBytes("m.yaml", []byte(yaml))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	const base = "name: m\ninputs:\n  g: {type: generate}\noutputs:\n  o: {type: discard, from: g}\n"
	log := slog.New(slog.DiscardHandler)
	const mib = 1 << 20
	if got := goMemoryLimit(512*mib, load(base), log); got != 512*mib {
		t.Errorf("without state: %d, want all of it", got)
	}
	l := load(base + "state: {dir: /tmp/x, block_cache: 64MiB}\n")
	if got, want := goMemoryLimit(512*mib, l, log), int64(512*mib)-state.OffHeap(64*mib); got != want || want >= 512*mib-64*mib {
		t.Errorf("with a 64 MiB block cache: %d, want %d", got, want)
	}
	if got := goMemoryLimit(100*mib, l, log); got != 25*mib {
		t.Errorf("a limit below the store's needs: %d, want a quarter", got)
	}
}

// weir run sets GOMAXPROCS to the CPUs plus runtime.extra_procs, once (a
// second run in the same process does not add again), unless the
// GOMAXPROCS environment variable is set.
func TestExtraProcs(t *testing.T) {
	t.Cleanup(func() { goruntime.GOMAXPROCS(cpuProcs) })
	run := func(extra, env string) int {
		t.Helper()
		t.Setenv("GOMAXPROCS", env)
		path := writeFile(t, "procs.yaml", "name: procs\ncontrol: {address: \"\"}\nstatus: \"off\"\n"+
			"runtime: {extra_procs: "+extra+"}\n"+
			"inputs:\n  gen: {type: generate, count: 10}\noutputs:\n  out: {type: discard, from: gen}\n")
		var stdout, stderr bytes.Buffer
		if code := Main(context.Background(), []string{"run", path}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
			t.Fatalf("run exit code %d\n%s", code, stderr.String())
		}
		return goruntime.GOMAXPROCS(0)
	}
	for _, c := range []struct {
		extra, env string
		want       int
	}{
		{"1", "", cpuProcs + 1},
		{"1", "", cpuProcs + 1}, // not cpuProcs + 2
		{"2", "", cpuProcs + 2},
		{"0", "", cpuProcs + 2},  // 0 leaves GOMAXPROCS alone
		{"3", "7", cpuProcs + 2}, // the environment wins
	} {
		if got := run(c.extra, c.env); got != c.want {
			t.Errorf("extra_procs %s, GOMAXPROCS=%q: GOMAXPROCS %d, want %d", c.extra, c.env, got, c.want)
		}
	}
}
