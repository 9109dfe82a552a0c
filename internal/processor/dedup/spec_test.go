package dedup

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/runtime"
)

var update = flag.Bool("update", false, "rewrite the results in testdata/*.txt")

// TestSpec runs the scripts in testdata. Each line is a command; a line
// with "->" records its result, which the test compares (or rewrites with
// -update). Times are offsets from a bucket boundary.
//
//	config ttl=1h [TENANT=36h ...] [max_ids=N]   a new instance and store
//	at TIME TENANT ID -> pass|drop               one event ("-": no header)
//	stats [at TIME] -> held=N buckets=N ...      after moving the clock
//	checkpoint                                   snapshot and commit
//	restart at TIME                              a new instance restored from the store
func TestSpec(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runSpec(t, f) })
	}
}

type specRun struct {
	t     *testing.T
	d     *Dedup
	h     *harness
	store *memStore
}

func runSpec(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	r := &specRun{t: t}
	var out strings.Builder
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	for n, line := range lines {
		cmd, want, hasResult := strings.Cut(line, " -> ")
		cmd = strings.TrimSpace(cmd)
		if cmd == "" || strings.HasPrefix(cmd, "#") {
			out.WriteString(line + "\n")
			continue
		}
		got := r.exec(fmt.Sprintf("%s:%d", file, n+1), cmd)
		if hasResult || got != "" {
			if !*update && strings.TrimSpace(want) != got {
				t.Errorf("%s:%d: %s\n got: %s\nwant: %s", file, n+1, cmd, got, strings.TrimSpace(want))
			}
			out.WriteString(cmd + " -> " + got + "\n")
			continue
		}
		out.WriteString(line + "\n")
	}
	if *update {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (r *specRun) at(where, s string) int64 {
	d, err := time.ParseDuration(s)
	if err != nil {
		r.t.Fatalf("%s: %v", where, err)
	}
	return benchStart + int64(d)
}

func (r *specRun) exec(where, cmd string) string {
	f := strings.Fields(cmd)
	switch f[0] {
	case "config":
		cfg := DefaultConfig()
		cfg.TTLByTenant = map[string]time.Duration{}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "max_ids":
				n, err := strconv.Atoi(v)
				if err != nil {
					r.t.Fatalf("%s: %v", where, err)
				}
				cfg.MaxIDs = n
			default:
				d, err := time.ParseDuration(v)
				if err != nil {
					r.t.Fatalf("%s: %v", where, err)
				}
				if k == "ttl" {
					cfg.TTL = d
				} else {
					cfg.TTLByTenant[k] = d
				}
			}
		}
		r.d = mustCompile(r.t, cfg)
		r.store = newMemStore()
		r.h = newHarness(r.t, r.d, runtime.Env{Checkpointing: true}, &fakeClock{t: benchStart})
		return ""
	case "at":
		if len(f) != 4 {
			r.t.Fatalf("%s: want: at TIME TENANT ID", where)
		}
		if r.h.send(r.at(where, f[1]), f[2], f[3]) {
			return "pass"
		}
		return "drop"
	case "stats":
		if len(f) == 3 && f[1] == "at" {
			now := r.at(where, f[2])
			r.h.clk.t = now
			r.h.p.mu.Lock()
			r.h.p.tab.advance(now / r.d.gran)
			r.h.p.mu.Unlock()
		}
		s := r.h.p.stats()
		return fmt.Sprintf("held=%d buckets=%d evicted=%d missing=%d", s.held, s.buckets, s.evicted, s.missing)
	case "checkpoint":
		checkpoint(r.t, r.store, r.h.p)
		return ""
	case "restart":
		if len(f) != 3 || f[1] != "at" {
			r.t.Fatalf("%s: want: restart at TIME", where)
		}
		r.h = newHarness(r.t, r.d, runtime.Env{Checkpointing: true}, &fakeClock{t: r.at(where, f[2])})
		if err := r.h.p.Restore(context.Background(), r.store); err != nil {
			r.t.Fatalf("%s: Restore: %v", where, err)
		}
		return ""
	}
	r.t.Fatalf("%s: unknown command %q", where, f[0])
	return ""
}
