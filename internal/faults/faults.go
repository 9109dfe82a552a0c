// Package faults kills the process at named points, for crash tests.
//
// With WEIR_CRASH_AT=name:n in the environment, the n-th call of Point(name)
// sends SIGKILL to the process itself: the process dies there, mid-step,
// exactly as a crash or a kill -9 would leave it. Without the variable a
// Point costs one load of a boolean. Only tests set it; docs/guarantees.md
// lists the points.
package faults

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var (
	armed bool
	point string
	left  atomic.Int64
)

func init() {
	spec := os.Getenv("WEIR_CRASH_AT")
	name, n, ok := strings.Cut(spec, ":")
	if !ok || name == "" {
		return
	}
	count, err := strconv.ParseInt(n, 10, 64)
	if err != nil || count < 1 {
		return
	}
	armed, point = true, name
	left.Store(count)
}

// Point marks a place where a crash test may kill the process.
func Point(name string) {
	if !armed || name != point {
		return
	}
	if left.Add(-1) == 0 {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // SIGKILL is not handled: nothing runs after it
	}
}
