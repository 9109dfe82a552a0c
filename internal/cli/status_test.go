package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/runtime"
)

func TestHuman(t *testing.T) {
	for _, tc := range []struct {
		n    float64
		want string
	}{
		{0, "0"},
		{0.4, "0"},
		{12.6, "13"},
		{999, "999"},
		{9999, "9999"},
		{10_000, "10k"},
		{12_345, "12.3k"},
		{100_000, "100k"},
		{999_900, "999.9k"},
		{1_000_000, "1M"},
		{1_234_567, "1.23M"},
		{10_500_000, "10.5M"},
		{120_000_000, "120M"},
		{1e9, "1G"},
		{2.5e9, "2.5G"},
		{1.234e12, "1234G"},
	} {
		if got := human(tc.n); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// Values just below a unit boundary round up into it and should be written
// with the larger unit.
func TestHumanRoundsAcrossUnits(t *testing.T) {
	for _, tc := range []struct {
		n    float64
		want string
	}{
		{9_999.7, "10k"},
		{999_999, "1M"},
		{999_999_999, "1G"},
	} {
		if got := human(tc.n); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// runPipeline loads and runs a pipeline to completion and returns it.
func runPipeline(t *testing.T, yaml string) *runtime.Pipeline {
	t.Helper()
	l, err := app.LoadBytes("status.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	opts := l.RuntimeOptions()
	opts.Logger = slog.New(slog.DiscardHandler)
	p, err := runtime.New(l.Graph, l.Factory(), opts)
	if err != nil {
		t.Fatalf("runtime.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
	return p
}

// logLines decodes the JSON log lines in buf.
func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

const tinyPipeline = `
name: tiny
control: {address: ""}
inputs:
  gen: {type: generate, count: 1000, seed: 3}
processors:
  purchases: {type: filter, from: gen, expr: 'type == "purchase"'}
outputs:
  sink: {type: discard, from: purchases}
`

func TestSummary(t *testing.T) {
	p := runPipeline(t, tinyPipeline)
	passed := p.Node("purchases").Out.Load()
	if passed == 0 || passed == 1000 {
		t.Fatalf("the filter passed %d of 1000 events; the test needs some of each", passed)
	}

	var buf bytes.Buffer
	newStatus(p, "off", false, &buf, slog.New(slog.NewJSONHandler(&buf, nil))).summary(nil)
	lines := logLines(t, &buf)
	if len(lines) != 1 {
		t.Fatalf("summary wrote %d log lines, want 1", len(lines))
	}
	l := lines[0]
	want := map[string]any{
		"level": "INFO", "msg": "pipeline stopped",
		"read": 1000.0, "written": float64(passed), "filtered": float64(1000 - passed),
		"errors": 0.0, "dropped": 0.0, "dead_letters": 0.0,
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("summary %s = %v, want %v", k, l[k], v)
		}
	}
	for _, k := range []string{"elapsed", "avg_in_rate"} {
		if s, _ := l[k].(string); s == "" {
			t.Errorf("summary has no %s: %v", k, l)
		}
	}

	buf.Reset()
	newStatus(p, "off", false, &buf, slog.New(slog.NewJSONHandler(&buf, nil))).summary(errors.New("boom"))
	lines = logLines(t, &buf)
	if len(lines) != 1 || lines[0]["level"] != "ERROR" || lines[0]["msg"] != "pipeline failed" || lines[0]["err"] != "boom" || lines[0]["read"] != 1000.0 {
		t.Errorf("summary of a failure = %v, want one ERROR line with err boom and the totals", lines)
	}
}

// Records an input rejects (a malformed line) were read too: "read" counts
// them, as the input's weir_node_events_in_total does.
func TestSummaryCountsRejectedAsRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.ndjson")
	if err := os.WriteFile(path, []byte("{\"a\":1}\n{\"a\":\n{\"a\":3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := runPipeline(t, fmt.Sprintf(`
name: tiny
control: {address: ""}
inputs:
  lines: {type: file, path: %q}
outputs:
  sink: {type: discard, from: lines}
`, path))
	if in := p.Node("lines").In.Load(); in != 3 {
		t.Fatalf("input In = %d, want 3 lines", in)
	}
	var buf bytes.Buffer
	newStatus(p, "off", false, &buf, slog.New(slog.NewJSONHandler(&buf, nil))).summary(nil)
	l := logLines(t, &buf)[0]
	if l["read"] != 3.0 || l["written"] != 2.0 || l["errors"] != 1.0 {
		t.Errorf("summary read %v written %v errors %v, want 3, 2, 1", l["read"], l["written"], l["errors"])
	}
}

func TestReport(t *testing.T) {
	p := runPipeline(t, tinyPipeline)
	written := p.Node("sink").Out.Load()

	t.Run("terminal", func(t *testing.T) {
		var out, logs bytes.Buffer
		s := newStatus(p, "on", false, &out, slog.New(slog.NewJSONHandler(&logs, nil)))
		if !s.terminal {
			t.Fatal(`mode "on" did not force the terminal line`)
		}
		s.report()
		line := out.String()
		if !strings.HasPrefix(line, "\r\033[K") {
			t.Fatalf("terminal report %q does not start with \\r\\033[K", line)
		}
		if strings.Contains(line, "\n") {
			t.Errorf("terminal report %q contains a newline; it must redraw one line", line)
		}
		for _, want := range []string{"weir tiny", "read 1000", fmt.Sprintf("written %d", written), fmt.Sprintf("filtered %d", 1000-written), "errors 0"} {
			if !strings.Contains(line, want) {
				t.Errorf("terminal report %q does not contain %q", line, want)
			}
		}
		if logs.Len() != 0 {
			t.Errorf("terminal report also logged: %s", logs.String())
		}
		out.Reset()
		s.clear()
		if out.String() != "\r\033[K" {
			t.Errorf("clear wrote %q", out.String())
		}
	})

	t.Run("log", func(t *testing.T) {
		var out, logs bytes.Buffer
		s := newStatus(p, "auto", false, &out, slog.New(slog.NewJSONHandler(&logs, nil)))
		s.report()
		if out.Len() != 0 {
			t.Errorf("non-terminal report wrote %q to the terminal writer", out.String())
		}
		lines := logLines(t, &logs)
		if len(lines) != 1 || lines[0]["msg"] != "progress" || lines[0]["read"] != 1000.0 || lines[0]["written"] != float64(written) {
			t.Errorf("progress log = %v, want read 1000 written %d", lines, written)
		}
		// The rates are per interval: nothing happened since the last
		// report, so the next one shows 0/s.
		logs.Reset()
		time.Sleep(10 * time.Millisecond)
		s.report()
		lines = logLines(t, &logs)
		if len(lines) != 1 || lines[0]["in_rate"] != "0/s" || lines[0]["out_rate"] != "0/s" {
			t.Errorf("second progress log = %v, want in_rate and out_rate 0/s", lines)
		}
	})

	t.Run("off", func(t *testing.T) {
		var out, logs bytes.Buffer
		s := newStatus(p, "off", false, &out, slog.New(slog.NewJSONHandler(&logs, nil)))
		stop := s.start()
		stop()
		if out.Len() != 0 || logs.Len() != 0 {
			t.Errorf("status off wrote %q / %q", out.String(), logs.String())
		}
	})

	t.Run("start and stop clear the terminal line", func(t *testing.T) {
		var out bytes.Buffer
		s := newStatus(p, "on", false, &out, slog.New(slog.DiscardHandler))
		stop := s.start()
		stop()
		if !strings.HasSuffix(out.String(), "\r\033[K") {
			t.Errorf("stop left %q; want the line cleared", out.String())
		}
	})
}

// writeFile writes a pipeline file in a temp dir and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

const goodFile = `name: good
control: {address: ""}
status: "off"
inputs:
  gen: {type: generate, count: 100}
outputs:
  sink: {type: discard, from: gen}
`

// The error is on line 7: "pasre" starts at column 31.
const badFile = `name: bad
inputs:
  gen: {type: generate, count: 100}
processors:
  parse: {type: map, from: gen, set: {x: '1'}}
outputs:
  sink: {type: discard, from: pasre}
`

func TestMainCommands(t *testing.T) {
	good := writeFile(t, "good.yaml", goodFile)
	bad := writeFile(t, "bad.yaml", badFile)
	for _, tc := range []struct {
		name       string
		args       []string
		code       int
		stdout     []string // fragments
		stderr     []string
		emptyOut   bool
		stdoutHead string
	}{
		{name: "no arguments", args: nil, code: ExitConfig, stderr: []string{"Usage:"}, emptyOut: true},
		{name: "version", args: []string{"version"}, code: ExitOK, stdoutHead: "weir "},
		{name: "--version", args: []string{"--version"}, code: ExitOK, stdoutHead: "weir "},
		{name: "help", args: []string{"help"}, code: ExitOK, stdout: []string{"Usage:", "weir validate FILE"}},
		{name: "unknown command", args: []string{"frobnicate"}, code: ExitConfig, stderr: []string{`unknown command "frobnicate"`, "Usage:"}, emptyOut: true},
		{name: "validate ok", args: []string{"validate", good}, code: ExitOK, stdout: []string{good + `: ok: pipeline "good", 2 nodes in 2 stages`}},
		{name: "validate bad", args: []string{"validate", bad}, code: ExitConfig,
			stderr: []string{bad + `:7:31: outputs.sink.from: no node named "pasre"`, `did you mean "parse"?`, "1 problem(s) in " + bad}, emptyOut: true},
		{name: "validate missing file", args: []string{"validate", filepath.Join(t.TempDir(), "nope.yaml")}, code: ExitConfig, stderr: []string{"nope.yaml"}, emptyOut: true},
		{name: "validate without file", args: []string{"validate"}, code: ExitConfig, stderr: []string{"expected one pipeline FILE, got 0"}, emptyOut: true},
		{name: "validate two files", args: []string{"validate", good, good}, code: ExitConfig, stderr: []string{"got 2 arguments"}, emptyOut: true},
		{name: "graph text", args: []string{"graph", good}, code: ExitOK, stdoutHead: "pipeline good: 2 nodes in 2 stages"},
		{name: "graph dot", args: []string{"graph", "-format", "dot", good}, code: ExitOK, stdoutHead: `digraph "good" {`},
		{name: "graph bogus format", args: []string{"graph", "-format", "bogus", good}, code: ExitConfig, stderr: []string{`unknown format "bogus"`}, emptyOut: true},
		{name: "graph bad flag", args: []string{"graph", "-frobnicate", good}, code: ExitConfig, stderr: []string{"-frobnicate"}, emptyOut: true},
		{name: "graph bad file", args: []string{"graph", bad}, code: ExitConfig, stderr: []string{bad + ":7:31:"}, emptyOut: true},
		{name: "run bad file", args: []string{"run", bad}, code: ExitConfig, stderr: []string{bad + ":7:31:"}, emptyOut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, f := range tc.stdout {
				if !strings.Contains(stdout.String(), f) {
					t.Errorf("stdout does not contain %q:\n%s", f, stdout.String())
				}
			}
			for _, f := range tc.stderr {
				if !strings.Contains(stderr.String(), f) {
					t.Errorf("stderr does not contain %q:\n%s", f, stderr.String())
				}
			}
			if tc.emptyOut && stdout.Len() != 0 {
				t.Errorf("stdout is not empty: %q", stdout.String())
			}
			if tc.stdoutHead != "" && !strings.HasPrefix(stdout.String(), tc.stdoutHead) {
				t.Errorf("stdout %q does not start with %q", stdout.String(), tc.stdoutHead)
			}
		})
	}
}

// weir run on a finite pipeline runs it to the end, writes every event and
// exits 0.
func TestMainRun(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, "run.yaml", fmt.Sprintf(`name: run
control: {address: ""}
status: "off"
logging: {format: json}
inputs:
  gen: {type: generate, count: 250, seed: 5}
outputs:
  out: {type: file, from: gen, dir: %q}
`, dir))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr bytes.Buffer
	if code := Main(ctx, []string{"run", path}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("run exit code %d, want 0\n%s", code, stderr.String())
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	if err != nil || len(files) != 1 {
		t.Fatalf("output files = %v, %v; want one", files, err)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != 250 {
		t.Errorf("output has %d lines, want 250", n)
	}
	var stopped map[string]any
	for _, l := range logLines(t, &stderr) {
		if l["msg"] == "pipeline stopped" {
			stopped = l
		}
	}
	if stopped == nil || stopped["read"] != 250.0 || stopped["written"] != 250.0 {
		t.Errorf("summary line = %v, want read 250 written 250", stopped)
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Main owns every goroutine it starts: once it has returned it writes
// nothing more, even when the caller later cancels ctx.
func TestMainRunLeavesNothingBehind(t *testing.T) {
	path := writeFile(t, "run.yaml", `name: run
control: {address: ""}
status: "off"
inputs:
  gen: {type: generate, count: 10}
outputs:
  out: {type: discard, from: gen}
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr lockedBuffer
	if code := Main(ctx, []string{"run", path}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("run exit code %d\n%s", code, stderr.String())
	}
	after := stderr.String()
	cancel()
	time.Sleep(100 * time.Millisecond)
	if extra := strings.TrimPrefix(stderr.String(), after); extra != "" {
		t.Errorf("Main wrote to stderr after it returned:\n%s", extra)
	}
}
