package bench

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/connector/generate"
	"github.com/weir-dev/weir/internal/runtime"
)

var (
	inputOnce sync.Once
	inputPath string
	inputN    int
	inputErr  error
)

// benchInput writes 1,000,000 generated events (~200 bytes each) to a temp
// file once per process.
func benchInput(b *testing.B) (string, int) {
	inputOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-bench-")
		if err != nil {
			inputErr = err
			return
		}
		inputPath = filepath.Join(dir, "events.ndjson")
		f, err := os.Create(inputPath)
		if err != nil {
			inputErr = err
			return
		}
		defer f.Close()
		w := bufio.NewWriterSize(f, 1<<20)
		cfg := generate.DefaultConfig()
		cfg.StartTime = "2026-01-01T00:00:00Z"
		inputN = 1_000_000
		var buf []byte
		for i := range inputN {
			buf = generate.Event(7, int64(i), cfg, buf[:0])
			buf = append(buf, '\n')
			if _, err := w.Write(buf); err != nil {
				inputErr = err
				return
			}
		}
		inputErr = w.Flush()
	})
	if inputErr != nil {
		b.Fatal(inputErr)
	}
	return inputPath, inputN
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkE2EJSONPipeline runs bench/e2e/pipeline.yaml — NDJSON file,
// parse, filter type != "view", add a computed field, drop a field,
// serialize, discard — over 1,000,000 events per op. It reports events/s
// (wall clock) and events per CPU second (the per-core figure, as Flink's
// Nexmark reports count it).
func BenchmarkE2EJSONPipeline(b *testing.B) {
	path, n := benchInput(b)
	b.Setenv("INPUT", path)
	l, err := app.Load("e2e/pipeline.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(fileSize(b, path))
	b.ResetTimer()
	var cpu time.Duration
	for b.Loop() {
		p, err := runtime.New(l.Graph, l.Factory(), l.RuntimeOptions())
		if err != nil {
			b.Fatal(err)
		}
		c0 := cpuTime()
		if err := p.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		if got := p.Node("events").Out.Load(); got != uint64(n) {
			b.Fatalf("read %d events, want %d", got, n)
		}
	}
	events := float64(n) * float64(b.N)
	b.ReportMetric(events/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(events/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(0, "ns/op")
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
