package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/control"
)

// weir top --once against a running pipeline prints one table with a row
// per node.
func TestTopCommandOnce(t *testing.T) {
	r := startRun(t, watchedPipeline)
	time.Sleep(1200 * time.Millisecond) // a sample a second apart: rates
	var stdout, stderr bytes.Buffer
	if code := Main(t.Context(), []string{"top", r.addr, "--once"}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit code %d\n%s", code, stderr.String())
	}
	out := stdout.String()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 6 || !strings.HasPrefix(lines[0], "weir top — pipeline watched at "+r.addr+" — running") {
		t.Fatalf("top printed:\n%s", out)
	}
	if f := strings.Fields(lines[1]); strings.Join(f, " ") != "NODE KIND IN/S OUT/S BUSY BACKPR QUEUE ERRORS LAG" {
		t.Errorf("header %q", lines[1])
	}
	rows := map[string][]string{}
	for _, l := range lines[2:] {
		f := strings.Fields(l)
		rows[f[0]] = f
	}
	for node, kind := range map[string]string{"gen": "input", "purchases": "processor", "tagged": "processor", "sink": "output"} {
		f := rows[node]
		if len(f) != 9 || f[1] != kind || !strings.HasSuffix(f[4], "%") || !strings.HasSuffix(f[5], "%") {
			t.Errorf("row of %s = %q", node, f)
		}
	}
	if f := rows["gen"]; f[6] != "-" || f[2] == "0" {
		t.Errorf("gen row %q: want a rate in and no queue", f)
	}
	if f := rows["sink"]; !strings.HasSuffix(f[6], "%") {
		t.Errorf("sink row %q: want its queue fill", f)
	}
	if strings.Contains(out, "\033[") {
		t.Error("--once drew terminal escapes")
	}
}

// Without --once and without a terminal, weir top prints one table per
// interval until Ctrl-C.
func TestTopCommandRepeats(t *testing.T) {
	r := startRun(t, watchedPipeline)
	ctx, cancel := context.WithTimeout(context.Background(), 550*time.Millisecond)
	defer cancel()
	var stdout, stderr lockedBuffer
	if code := Main(ctx, []string{"top", "--interval", "100ms", r.addr}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit code %d\n%s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "weir top — "); n < 3 {
		t.Errorf("%d tables in 550ms at 100ms intervals:\n%s", n, stdout.String())
	}
}

func TestTopCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"top"}, ExitConfig, "expected one ADDR, got 0"},
		{[]string{"top", "127.0.0.1:1", "--interval", "1ms"}, ExitConfig, "too short"},
		{[]string{"top", "127.0.0.1:1", "--once"}, ExitFailure, "cannot reach the control plane at http://127.0.0.1:1"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%v: exit code %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.stderr)
		}
	}
}

func TestWriteTop(t *testing.T) {
	lag, age := int64(12345), 2.5
	st := control.Stats{Pipeline: "p", Uptime: 65, Running: true,
		Nodes: []control.NodeStats{
			{Name: "in", Kind: "input", InRate: 12345, OutRate: 12345, Busy: 0.5, Lag: &lag},
			{Name: "out", Kind: "output", InRate: 10, Busy: 0.999, Backpress: 0.25, Errors: 3, Queue: &control.Queue{Fill: 0.5}},
		},
		Checkpoints: &control.CkptStats{LastID: 7, Age: &age}}
	var b strings.Builder
	writeTop(&b, st, "http://host:1")
	want := []string{
		"— running, up 1m5s — ",
		"— checkpoint 7, 2.5s ago",
		"in    input   12.3k  12.3k  50%   0%      -      0       12.3k",
		"out   output  10     0      100%  25%     50%    3       -",
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}
