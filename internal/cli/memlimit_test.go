package cli

import (
	"log/slog"
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
