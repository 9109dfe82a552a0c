// Package e2e tests the real weir binary: built once, run as a subprocess,
// stopped with real signals.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

var weirBin string

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "weir-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weirBin = filepath.Join(dir, "weir")
	build := exec.Command("go", "build", "-race", "-o", weirBin, "../../cmd/weir")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build weir:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// weirCmd prepares a run of the weir binary that cannot hang the suite:
// past its deadline the process gets SIGQUIT, so the Go runtime prints every
// goroutine to its stderr (which the test shows), and is killed 10 s later.
func weirCmd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, weirBin, args...)
	cmd.Cancel = func() error {
		t.Errorf("weir %s still running after 2m: sent SIGQUIT for a goroutine dump", strings.Join(args, " "))
		return cmd.Process.Signal(syscall.SIGQUIT)
	}
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

func weir(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := weirCmd(t, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func TestVersion(t *testing.T) {
	out, _, code := weir(t, "version")
	if code != 0 || !strings.HasPrefix(out, "weir ") {
		t.Fatalf("version: code %d, %q", code, out)
	}
}

// The quickstart runs as the README says, prints events within seconds and
// stops cleanly (exit 0) on SIGINT.
func TestQuickstartStopsCleanly(t *testing.T) {
	cmd := weirCmd(t, "run", "../../examples/quickstart.yaml")
	cmd.Env = append(os.Environ(), "WEIR_CONTROL_ADDRESS=127.0.0.1:0", "RATE=200")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	lines := 0
	deadline := time.AfterFunc(20*time.Second, func() { _ = cmd.Process.Kill() })
	defer deadline.Stop()
	for lines < 5 && sc.Scan() {
		var ev map[string]any
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("quickstart printed a non-JSON line %q", sc.Text())
		}
		if ev["type"] == "view" || ev["price_with_tax"] == nil || ev["user_agent"] != nil {
			t.Fatalf("quickstart event not filtered/enriched: %s", sc.Text())
		}
		lines++
	}
	if lines < 5 {
		t.Fatalf("quickstart printed %d events; stderr:\n%s", lines, stderr.String())
	}
	_ = cmd.Process.Signal(os.Interrupt)
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("quickstart did not exit 0 after SIGINT: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "pipeline stopped") {
		t.Fatalf("no summary on stop:\n%s", stderr.String())
	}
}

// A graceful stop of the real process loses nothing it read: every event
// the generator produced is in the output files exactly once, and the
// output's in-progress file was finished (renamed).
func TestSigtermLosesNothing(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "p.yaml", `
name: stop
control: {address: ""}
status: off
logging: {format: json}
inputs:
  web: {type: generate, rate: 50000, seed: 3, parallelism: 2}
processors:
  tag:
    type: map
    from: web
    parallelism: 2
    set: {seen: true}
outputs:
  files: {type: file, from: tag, dir: `+filepath.Join(dir, "out")+`, rotate_bytes: 1MiB}
`)
	cmd := weirCmd(t, "run", cfg)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	var read int
	for _, line := range strings.Split(stderr.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == "pipeline stopped" {
			read = int(rec["read"].(float64))
		}
	}
	if read == 0 {
		t.Fatalf("no summary with read count:\n%s", stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	seen := map[string]bool{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			t.Fatalf("in-progress file left behind: %s", f)
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var ev struct {
				ID   string `json:"event_id"`
				Seen bool   `json:"seen"`
			}
			if err := json.Unmarshal(line, &ev); err != nil || !ev.Seen {
				t.Fatalf("bad output line %q: %v", line, err)
			}
			if seen[ev.ID] {
				t.Fatalf("event %s written twice", ev.ID)
			}
			seen[ev.ID] = true
		}
	}
	if len(seen) != read {
		t.Fatalf("read %d events, output has %d", read, len(seen))
	}
	t.Logf("read=%d written=%d files=%d", read, len(seen), len(files))
}

// Bad configs exit 2 with every problem at file:line:col.
func TestValidateErrors(t *testing.T) {
	cases, _ := filepath.Glob("testdata/*.yaml")
	if len(cases) == 0 {
		t.Fatal("no testdata")
	}
	for _, c := range cases {
		t.Run(filepath.Base(c), func(t *testing.T) {
			_, stderr, code := weir(t, "validate", c)
			golden := strings.TrimSuffix(c, ".yaml") + ".golden"
			got := fmt.Sprintf("exit %d\n%s", code, stderr)
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("weir validate %s:\n got: %s\nwant: %s", c, got, want)
			}
		})
	}
}

// Every example the docs point at is a valid pipeline.
func TestValidateOK(t *testing.T) {
	examples, _ := filepath.Glob("../../examples/*.yaml")
	if len(examples) < 3 {
		t.Fatalf("examples: %v", examples)
	}
	for _, ex := range examples {
		out, stderr, code := weir(t, "validate", ex)
		if code != 0 || !strings.Contains(out, "ok") {
			t.Errorf("%s: code %d\n%s%s", ex, code, out, stderr)
		}
	}
}

func TestGraph(t *testing.T) {
	out, _, code := weir(t, "graph", "../../examples/quickstart.yaml")
	if code != 0 || !strings.Contains(out, "fused stage") || !strings.Contains(out, "not_views") {
		t.Fatalf("graph text: code %d\n%s", code, out)
	}
	dot, _, code := weir(t, "graph", "-format", "dot", "../../examples/quickstart.yaml")
	if code != 0 || !regexp.MustCompile(`(?s)^digraph "quickstart" \{.*"web" -> "not_views".*\}\n$`).MatchString(dot) {
		t.Fatalf("graph dot: code %d\n%s", code, dot)
	}
}

// A runtime failure (on_error: fail) exits 1.
func TestRuntimeFailureExits1(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.ndjson", "{\"a\":1}\nnot json\n{\"a\":2}\n")
	cfg := writeFile(t, dir, "p.yaml", `
name: fail
control: {address: ""}
inputs:
  in: {type: file, path: `+in+`, on_error: fail}
outputs:
  out: {type: discard, from: in}
`)
	_, stderr, code := weir(t, "run", cfg)
	if code != 1 || !strings.Contains(stderr, "line 2") {
		t.Fatalf("code %d, want 1 with the line number\n%s", code, stderr)
	}
}

// Malformed lines go to the dead letter with their position; the rest
// flows; exit 0.
func TestMalformedLinesDeadLettered(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.ndjson", "{\"a\":1}\n{\"a\":\n{\"a\":3}\n")
	cfg := writeFile(t, dir, "p.yaml", `
name: dl
control: {address: ""}
inputs:
  in: {type: file, path: `+in+`, on_error: dead_letter, dead_letter: bad}
outputs:
  out: {type: stdout, from: in}
  bad: {type: file, dir: `+filepath.Join(dir, "bad")+`}
`)
	stdout, stderr, code := weir(t, "run", cfg)
	if code != 0 || stdout != "{\"a\":1}\n{\"a\":3}\n" {
		t.Fatalf("code %d stdout %q\n%s", code, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "bad", "*.ndjson"))
	if len(files) != 1 {
		t.Fatalf("dead-letter files: %v", files)
	}
	data, _ := os.ReadFile(files[0])
	var dl map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(data), &dl); err != nil {
		t.Fatalf("dead letter %q: %v", data, err)
	}
	if dl["offset"] != float64(2) || dl["value"] != `{"a":` || dl["source"] != in || dl["node"] != "in" {
		t.Fatalf("dead letter lacks the line, its position or the node: %v", dl)
	}
}

// When an input feeds processors, the JSON check of its lines happens in
// the processors' single parse; malformed lines still follow the input's
// policy and keep their position.
func TestMalformedLinesCheckedDownstream(t *testing.T) {
	dir := t.TempDir()
	in := writeFile(t, dir, "in.ndjson", "{\"a\":1}\n{\"a\":\n{\"a\":3}\n")
	for _, policy := range []string{"dead_letter", "fail"} {
		t.Run(policy, func(t *testing.T) {
			dlField, bad := "", ""
			if policy == "dead_letter" {
				dlField, bad = ", dead_letter: bad", "\n  bad: {type: file, dir: "+filepath.Join(dir, policy)+"}"
			}
			cfg := writeFile(t, dir, policy+".yaml", `
name: deferred
control: {address: ""}
inputs:
  in: {type: file, path: `+in+`, on_error: `+policy+dlField+`}
processors:
  big: {type: filter, from: in, expr: a > 0}
outputs:
  out: {type: stdout, from: big}`+bad+`
`)
			stdout, stderr, code := weir(t, "run", cfg)
			if policy == "fail" {
				if code != 1 || !strings.Contains(stderr, in+":2: invalid JSON") {
					t.Fatalf("code %d, want 1 naming %s:2\n%s", code, in, stderr)
				}
				return
			}
			if code != 0 || stdout != "{\"a\":1}\n{\"a\":3}\n" {
				t.Fatalf("code %d stdout %q\n%s", code, stdout, stderr)
			}
			files, _ := filepath.Glob(filepath.Join(dir, policy, "*.ndjson"))
			if len(files) != 1 {
				t.Fatalf("dead-letter files: %v", files)
			}
			data, _ := os.ReadFile(files[0])
			var dl map[string]any
			if err := json.Unmarshal(bytes.TrimSpace(data), &dl); err != nil {
				t.Fatalf("dead letter %q: %v", data, err)
			}
			if dl["offset"] != float64(2) || dl["value"] != `{"a":` || dl["source"] != in || dl["node"] != "in" {
				t.Fatalf("dead letter lacks the line, its position or the input's name: %v", dl)
			}
		})
	}
}

// The collector example works as its header says: events posted to it end
// up in the output files once, duplicates dropped, after a clean stop.
func TestCollectorExample(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := weirCmd(t, "run", "../../examples/collector.yaml")
	cmd.Env = append(os.Environ(), "WEIR_CONTROL_ADDRESS=127.0.0.1:0", "WEIR_DATA="+dir, "WEIR_COLLECTOR_ADDRESS="+addr)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	post := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/events", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer dev-key")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for post(`{"event_id":"e1","type":"click"}`) != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("collector did not answer:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c := post(`{"event_id":"e1","type":"click"}`); c != 200 {
		t.Fatalf("duplicate: status %d", c)
	}
	if c := post(`{"event_id":"e2","type":"view"}`); c != 200 {
		t.Fatalf("status %d", c)
	}
	time.Sleep(200 * time.Millisecond)
	_ = cmd.Process.Signal(os.Interrupt)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGINT: %v\n%s", err, stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.ndjson"))
	var ids []string
	for _, f := range files {
		data, _ := os.ReadFile(f)
		for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
			var ev struct {
				ID string `json:"event_id"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("bad output line %q", line)
			}
			ids = append(ids, ev.ID)
		}
	}
	if strings.Join(ids, ",") != "e1,e2" {
		t.Fatalf("output ids %v, want [e1 e2] (duplicate dropped)\n%s", ids, stderr.String())
	}
}

// A log damaged before its tail stops weir with an error naming the segment
// (exit 1), every time, without truncating anything: no crash loop, no
// silent loss.
func TestCorruptLogStopsWithReport(t *testing.T) {
	dir := t.TempDir()
	logDir := filepath.Join(dir, "log")
	write := writeFile(t, dir, "write.yaml", `
name: write
control: {address: ""}
status: off
inputs:
  web: {type: generate, count: 3000, seed: 1}
outputs:
  l: {type: log, from: web, dir: `+logDir+`, partitions: 1}
`)
	if _, stderr, code := weir(t, "run", write); code != 0 {
		t.Fatalf("writing the log: exit %d\n%s", code, stderr)
	}
	segs, _ := filepath.Glob(filepath.Join(logDir, "0", "*.log"))
	if len(segs) == 0 {
		t.Fatal("no segment written")
	}
	seg := segs[0]
	data, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40 // one bit, well before the tail
	if err := os.WriteFile(seg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	read := writeFile(t, dir, "read.yaml", `
name: read
control: {address: ""}
status: off
inputs:
  l: {type: log, dir: `+logDir+`}
outputs:
  out: {type: discard, from: l}
`)
	for attempt := range 2 {
		_, stderr, code := weir(t, "run", read)
		if code != 1 || !strings.Contains(stderr, filepath.Base(seg)) {
			t.Fatalf("attempt %d: exit %d, want 1 with the segment named:\n%s", attempt, code, stderr)
		}
		st, err := os.Stat(seg)
		if err != nil || st.Size() != int64(len(data)) {
			t.Fatalf("attempt %d: the damaged segment was changed or removed (%v)", attempt, err)
		}
	}
}
