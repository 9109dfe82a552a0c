package file

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

// fileFactory builds the file input and output of a test pipeline.
type fileFactory struct {
	in  InputConfig
	out OutputConfig
}

func (f fileFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return NewInput(f.in, env)
}

func (f fileFactory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	return nil, fmt.Errorf("no processor %q in this test", n.Name)
}

func (f fileFactory) NewOutput(_ *dag.Node, env runtime.Env) (runtime.Output, error) {
	return NewOutput(f.out, env)
}

// TestPipelineFileToFileExactlyOnce runs file → file with a state store on
// disk and checkpoints every few milliseconds, stops it (a graceful stop,
// as Ctrl-C) soon after each start, and starts it again until the input has
// read everything: the published output files hold every input line exactly
// once, in order. A last start reads nothing and publishes nothing.
func TestPipelineFileToFileExactlyOnce(t *testing.T) {
	root := t.TempDir()
	inDir, outDir, stateDir := filepath.Join(root, "in"), filepath.Join(root, "out"), filepath.Join(root, "state")
	if err := os.MkdirAll(inDir, 0o755); err != nil {
		t.Fatal(err)
	}
	const perFile = 20_000
	var want strings.Builder
	for _, name := range []string{"a.ndjson", "b.ndjson.gz", "c.ndjson"} {
		var b strings.Builder
		for i := range perFile {
			fmt.Fprintf(&b, `{"file":%q,"n":%d,"pad":"%s"}`+"\n", name, i, strings.Repeat("x", i%23))
		}
		if strings.HasSuffix(name, ".gz") {
			gzipFile(t, filepath.Join(inDir, name), b.String())
		} else {
			writeFile(t, filepath.Join(inDir, name), b.String())
		}
		want.WriteString(b.String())
	}
	g := testkit.Graph(t, `
name: copy
inputs:
  in: {type: file}
outputs:
  out: {type: file, from: in}
`)
	f := fileFactory{in: DefaultInputConfig(), out: DefaultOutputConfig()}
	f.in.Path = filepath.Join(inDir, "*")
	f.out.Dir = outDir
	f.out.RotateBytes = 256 << 10

	// run runs the pipeline until it has written some events and completed
	// a checkpoint after that, then stops it; it reports whether the
	// pipeline ended on its own first, having read everything.
	run := func() (finished bool) {
		t.Helper()
		st, err := state.Open(stateDir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
		}()
		var mark uint64 // the checkpoint to stop after
		pl, err := runtime.New(g, f, runtime.Options{BatchSize: 128, Linger: time.Millisecond, Store: testkit.StateStore(st), CheckpointInterval: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- pl.Run(ctx) }()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		deadline := time.After(time.Minute)
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return true
			case <-tick.C:
				// Once the output has written something in this run, stop
				// after the next checkpoint.
				if mark == 0 && pl.Node("out").Out.Load() > 0 {
					mark, _ = st.Last()
					mark++
				}
				if last, _ := st.Last(); mark > 0 && last >= mark {
					cancel()
					if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
						t.Fatalf("Run after a stop: %v", err)
					}
					return false
				}
			case <-deadline:
				t.Fatal("no checkpoint in a minute")
			}
		}
	}

	stops := 0
	for !run() {
		stops++
		if got := readAllFiles(t, outDir, sortBySeq(t, published(t, outDir, false))); !strings.HasPrefix(want.String(), got) {
			t.Fatalf("after stop %d the output is not a prefix of the input (%d bytes)", stops, len(got))
		}
		if stops > 1000 {
			t.Fatal("the pipeline makes no progress across restarts")
		}
	}
	if stops == 0 {
		t.Fatal("the pipeline read everything before its first checkpoint: the test stopped nothing")
	}
	names := sortBySeq(t, published(t, outDir, false))
	if got := readAllFiles(t, outDir, names); got != want.String() {
		t.Fatalf("after %d stops the output differs from the input: %d bytes, want %d", stops, len(got), want.Len())
	}
	if !run() {
		t.Fatal("a pipeline with nothing left to read did not end")
	}
	if after := published(t, outDir, false); len(after) != len(names) {
		t.Fatalf("a restart after the end published %d more files", len(after)-len(names))
	}
	t.Logf("%d stops, %d output files", stops, len(names))
}
