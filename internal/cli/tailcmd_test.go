package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// running is a `weir run` started in-process, its control plane on a free
// port.
type running struct {
	addr   string // host:port of the control plane
	stderr *lockedBuffer
	done   chan int // the exit code
	cancel context.CancelFunc
}

// startRun runs `weir run` on yaml (which must not set control or
// logging) until the test ends, and waits for its control plane.
func startRun(t *testing.T, yaml string) *running {
	t.Helper()
	path := writeFile(t, "pipeline.yaml", "control: {address: \"127.0.0.1:0\"}\nlogging: {format: json}\nstatus: \"off\"\n"+yaml)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stderr: &lockedBuffer{}, done: make(chan int, 1), cancel: cancel}
	go func() {
		var stdout lockedBuffer
		r.done <- Main(ctx, []string{"run", path}, strings.NewReader(""), &stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-r.done:
			if code != ExitOK {
				t.Errorf("weir run exit code %d\n%s", code, r.stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Errorf("weir run did not stop\n%s", r.stderr.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for r.addr == "" {
		if time.Now().After(deadline) {
			t.Fatalf("weir run logged no control address:\n%s", r.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
		sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
		for sc.Scan() {
			var l struct{ Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "control plane listening" {
				r.addr = strings.TrimPrefix(l.Address, "http://")
			}
		}
	}
	return r
}

const watchedPipeline = `name: watched
inputs:
  gen: {type: generate, rate: 2000, seed: 3}
processors:
  purchases: {type: filter, from: gen, expr: 'type == "purchase"'}
  tagged: {type: map, from: purchases, set: {tagged: 'true'}}
outputs:
  sink: {type: discard, from: tagged}
`

// weir tail against a running pipeline prints NDJSON events of the node,
// filtered, and stops after --limit; flags go before or after ADDR NODE.
func TestTailCommand(t *testing.T) {
	r := startRun(t, watchedPipeline)
	for _, args := range [][]string{
		{"tail", r.addr, "tagged", "--limit", "5", "--filter", "price > 10"},
		{"tail", "--limit", "5", "--rate", "500", "--filter", "price > 10", "http://" + r.addr, "tagged"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
			t.Fatalf("%v: exit code %d\n%s", args, code, stderr.String())
		}
		lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
		if len(lines) != 5 {
			t.Fatalf("%v printed %d lines, want 5:\n%s", args, len(lines), stdout.String())
		}
		for _, l := range lines {
			var ev struct {
				Node, Seen string
				Value      struct {
					Type   string
					Tagged bool
					Price  float64
				}
			}
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			if ev.Node != "tagged" || ev.Seen == "" || ev.Value.Type != "purchase" || !ev.Value.Tagged || ev.Value.Price <= 10 {
				t.Errorf("line %s: want a tagged purchase over 10 from node tagged", l)
			}
		}
	}
}

// Without --limit, weir tail runs until Ctrl-C (ctx), then exits 0.
func TestTailCommandUntilInterrupt(t *testing.T) {
	r := startRun(t, watchedPipeline)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var stdout, stderr lockedBuffer
	if code := Main(ctx, []string{"tail", r.addr, "gen"}, strings.NewReader(""), &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit code %d\n%s", code, stderr.String())
	}
	if n := strings.Count(stdout.String(), "\n"); n < 5 {
		t.Errorf("%d events in 500ms of a 2000 events/s pipeline", n)
	}
}

// When the pipeline ends, so does the tail, with exit code 0.
func TestTailCommandPipelineEnds(t *testing.T) {
	r := startRun(t, `name: finite
inputs:
  gen: {type: generate, rate: 1000, count: 500}
outputs:
  sink: {type: discard, from: gen}
`)
	var stdout, stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(t.Context(), []string{"tail", r.addr, "sink"}, strings.NewReader(""), &stdout, &stderr)
	}()
	select {
	case code := <-done:
		if code != ExitOK || !strings.Contains(stderr.String(), "the pipeline stopped") {
			t.Errorf("exit code %d, stderr %q; want 0 and the pipeline stopped", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("weir tail did not end with the pipeline")
	}
	if stdout.String() == "" {
		t.Error("weir tail printed nothing")
	}
}

func TestTailCommandErrors(t *testing.T) {
	r := startRun(t, watchedPipeline)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		args   []string
		code   int
		stderr []string
	}{
		{[]string{"tail"}, ExitConfig, []string{"expected ADDR and NODE, got 0", "Usage:"}},
		{[]string{"tail", r.addr}, ExitConfig, []string{"expected ADDR and NODE, got 1"}},
		{[]string{"tail", r.addr, "nope"}, ExitConfig, []string{`no node named "nope"`, `hint: one of "gen"`}},
		{[]string{"tail", r.addr, "gen", "--filter", "type = 1"}, ExitConfig, []string{"filter, column 6", "hint:"}},
		{[]string{"tail", r.addr, "gen", "--rate", "5000"}, ExitConfig, []string{"at most 1000"}},
		{[]string{"tail", r.addr, "gen", "--limit", "-1"}, ExitConfig, []string{"must not be negative"}},
		{[]string{"tail", "ftp://" + r.addr, "gen"}, ExitConfig, []string{"not a control address"}},
		{[]string{"tail", closed, "gen"}, ExitFailure, []string{"cannot reach the control plane at http://" + closed}},
		{[]string{"tail", "--bogus", r.addr, "gen"}, ExitConfig, []string{"-bogus"}},
	} {
		var stdout, stderr bytes.Buffer
		code := Main(t.Context(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code {
			t.Errorf("%v: exit code %d, want %d\n%s", tc.args, code, tc.code, stderr.String())
		}
		for _, w := range tc.stderr {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr lacks %q:\n%s", tc.args, w, stderr.String())
			}
		}
		if stdout.Len() != 0 {
			t.Errorf("%v: stdout %q", tc.args, stdout.String())
		}
	}
}

func TestReadSSE(t *testing.T) {
	in := ": ping\n\nevent: open\ndata: {\"id\":\"t1\"}\n\ndata: a\ndata: b\r\n\nevent: end\ndata: {}\n\n"
	var got []string
	err := readSSE(strings.NewReader(in), func(name string, data []byte) bool {
		got = append(got, fmt.Sprintf("%s=%s", name, data))
		return true
	})
	want := []string{`open={"id":"t1"}`, "=a\nb", "end={}"}
	if fmt.Sprint(got) != fmt.Sprint(want) || err == nil {
		t.Errorf("readSSE = %q, %v; want %q and EOF", got, err, want)
	}
	long := "data: " + strings.Repeat("x", 100<<10) + "\n\n"
	var n int
	_ = readSSE(strings.NewReader(long), func(_ string, data []byte) bool { n = len(data); return false })
	if n != 100<<10 {
		t.Errorf("a 100 KiB data line came out as %d bytes", n)
	}
}
