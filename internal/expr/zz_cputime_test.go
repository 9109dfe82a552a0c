package expr

import (
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
)

func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_THREAD, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCPUTime reports CPU ns per Eval (immune to time spent descheduled).
func TestCPUTime(t *testing.T) {
	if os.Getenv("EXPR_CPUTIME") == "" {
		t.Skip()
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	exprs := []string{`type != "view"`, `price * 1.2`, `lower(page) + "x"`, `user_id`, `type in ["click","purchase"] && price > 10`}
	const n = 20_000_000
	env := benchEnv()
	path := env.paths[0]
	best := time.Duration(1 << 62)
	for range 5 {
		start := cpuNow()
		for range n {
			benchSink, _ = env.Field(path)
		}
		best = min(best, cpuNow()-start)
	}
	t.Logf("%-45s %6.2f ns/op", "Field alone", float64(best)/n)
	for _, src := range exprs {
		p := MustCompile(src)
		best := time.Duration(1 << 62)
		for range 5 {
			start := cpuNow()
			for range n {
				env.scratch = env.scratch[:0]
				benchSink, _ = p.Eval(env)
			}
			best = min(best, cpuNow()-start)
		}
		t.Logf("%-45s %6.2f ns/op", src, float64(best)/n)
	}
}
