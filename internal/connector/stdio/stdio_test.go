package stdio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func env() runtime.Env {
	return runtime.Env{Pipeline: "p", Node: "io", Parallelism: 1, BatchSize: 8, Linger: 10 * time.Millisecond}
}

func newStdin(t *testing.T, cfg StdinConfig, r io.Reader) *Stdin {
	t.Helper()
	in, err := NewStdin(cfg, env(), r)
	if err != nil {
		t.Fatal(err)
	}
	return in.(*Stdin)
}

func TestStdinReadsToEOF(t *testing.T) {
	in := newStdin(t, DefaultStdinConfig(), strings.NewReader("{\"a\":1}\r\n\nnope\n{\"a\":2}"))
	var o testkit.Outlet
	if err := in.Run(t.Context(), &o); err != nil {
		t.Fatal(err)
	}
	if got := o.Values(); !slices.Equal(got, []string{`{"a":1}`, `{"a":2}`}) {
		t.Fatalf("values %q", got)
	}
	rs := o.Rejects()
	if len(rs) != 1 || rs[0].Event.Offset != 3 {
		t.Fatalf("rejects %+v", rs)
	}
	if src, _ := rs[0].Event.Header("source"); string(src) != "stdin" {
		t.Fatalf("source header %q", src)
	}
	select {
	case <-in.done:
	default:
		t.Fatal("Run returned before its read goroutine")
	}
	if err := in.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if in.rd.Acked() != 2 {
		t.Fatalf("acked %d", in.rd.Acked())
	}
}

func TestStdinDeliversSlowInputPromptly(t *testing.T) {
	pr, pw := io.Pipe()
	cfg := DefaultStdinConfig()
	cfg.Codec = "lines"
	in := newStdin(t, cfg, pr)
	var o testkit.Outlet
	done := make(chan error, 1)
	go func() { done <- in.Run(t.Context(), &o) }()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		fmt.Fprintf(pw, "line %d\n", i)
		// Batches hold 8 events, but each line arrives on its own.
		if err := o.WaitEvents(ctx, i+1); err != nil {
			t.Fatalf("line %d not delivered while stdin is idle", i)
		}
	}
	pw.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestStdinCancelWhileReadBlocks(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	in := newStdin(t, DefaultStdinConfig(), pr)
	var o testkit.Outlet
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, &o) }()
	time.Sleep(10 * time.Millisecond) // let Run block in a read
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return while its read was blocked")
	}
	// The read goroutine ends when the blocked read returns.
	pw.Close()
	closeCtx, cancelClose := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancelClose()
	if err := in.Close(closeCtx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-in.done:
	default:
		t.Fatal("read goroutine still running after its read returned")
	}
}

func TestStdinCancelInterruptsOSPipe(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	in := newStdin(t, DefaultStdinConfig(), pr)
	var o testkit.Outlet
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, &o) }()
	pw.WriteString("{}\n")
	if err := o.WaitEvents(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	// The deadline unblocks the read itself: Close finds the goroutine gone.
	closeCtx, cancelClose := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancelClose()
	in.Close(closeCtx)
	select {
	case <-in.done:
	default:
		t.Fatal("read goroutine not interrupted")
	}
}

func TestStdinConfig(t *testing.T) {
	bad := StdinConfig{Codec: "csv", MaxLineBytes: 0}
	err := bad.Validate()
	if err == nil || !strings.Contains(err.Error(), "codec:") || !strings.Contains(err.Error(), "max_line_bytes:") {
		t.Fatalf("Validate: %v", err)
	}
	e := env()
	e.Parallelism = 2
	if _, err := NewStdin(DefaultStdinConfig(), e, strings.NewReader("")); err == nil {
		t.Fatal("parallelism 2 accepted")
	}
}

// lineChecker is a writer that is not safe for concurrent use (the race
// detector sees overlapping calls) and checks that every Write holds whole
// lines.
type lineChecker struct {
	t     *testing.T
	buf   bytes.Buffer
	calls int
}

func (w *lineChecker) Write(p []byte) (int, error) {
	w.calls++
	if len(p) == 0 || p[len(p)-1] != '\n' {
		w.t.Errorf("write of %d bytes does not end a line", len(p))
	}
	return w.buf.Write(p)
}

func TestStdoutLinesNeverInterleave(t *testing.T) {
	w := &lineChecker{t: t}
	cfg := DefaultStdoutConfig()
	cfg.BufferBytes = 1000 // many flushes from inside Write
	const instances, per = 4, 2000
	var wg sync.WaitGroup
	for inst := range instances {
		e := env()
		e.Instance, e.Parallelism = inst, instances
		out, err := NewStdout(cfg, e, w)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			ctx := context.Background()
			for i := 0; i < per; i += 10 {
				var evs []event.Event
				for j := i; j < i+10; j++ {
					// Lines of varying length, some longer than the buffer.
					v := fmt.Sprintf("i%d-%05d-%s", inst, j, strings.Repeat("x", (j*37)%1500))
					evs = append(evs, event.Event{Value: []byte(v)})
				}
				if err := out.Write(ctx, evs); err != nil {
					t.Error(err)
				}
				if i%100 == 0 {
					if err := out.Flush(ctx); err != nil {
						t.Error(err)
					}
				}
			}
			if err := out.Close(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(w.buf.String(), "\n"), "\n")
	if len(lines) != instances*per {
		t.Fatalf("%d lines, want %d", len(lines), instances*per)
	}
	next := make([]int, instances)
	for _, l := range lines {
		var inst, j int
		if _, err := fmt.Sscanf(l, "i%d-%05d-", &inst, &j); err != nil {
			t.Fatalf("mangled line %.40q", l)
		}
		if want := fmt.Sprintf("i%d-%05d-%s", inst, j, strings.Repeat("x", (j*37)%1500)); l != want {
			t.Fatalf("line %.40q is not whole", l)
		}
		if j != next[inst] {
			t.Fatalf("instance %d: line %d after %d", inst, j, next[inst]-1)
		}
		next[inst]++
	}
	t.Logf("%d writes", w.calls)
}

type failWriter struct{}

func (failWriter) Write(p []byte) (int, error) { return 0, errors.New("broken pipe") }

func TestStdoutWriteError(t *testing.T) {
	out, err := NewStdout(DefaultStdoutConfig(), env(), failWriter{})
	if err != nil {
		t.Fatal(err)
	}
	out.Write(t.Context(), []event.Event{{Value: []byte("x")}})
	if err := out.Flush(t.Context()); err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Fatalf("Flush: %v", err)
	}
	if err := (StdoutConfig{}).Validate(); err == nil {
		t.Fatal("buffer_bytes 0 accepted")
	}
}
