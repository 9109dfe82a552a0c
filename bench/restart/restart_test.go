// Package restart measures how long weir takes to resume with a large
// window state, and how much memory it holds meanwhile: the real binary
// builds the state from stdin with checkpoints on, is killed (SIGKILL),
// and is started again; the time runs from the start of the new process
// until the result of the first event after it comes out.
//
// `go test ./bench/restart/` builds about 20 MB of state with a 1 MiB
// cache (every window is spilled); `make bench-restart` builds 1.1 GB with
// the default 64 MiB cache (WEIR_RESTART_STATE_MB, WEIR_RESTART_CACHE).
// It asserts no time: it prints the figures.
package restart

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/state"
)

// The events: one for the key "probe" in the window [t0, t0+1m), then n
// with keys of their own an hour later, each with a payload of payloadLen
// random characters that count_distinct keeps, so each window holds about
// a kilobyte. max_out_of_orderness 2h keeps the watermark behind every
// window while the state is built; the event after the restart moves it
// past the probe's window alone, which fires from the store.
const (
	payloadLen = 1000
	t0         = int64(1_704_067_200_000) // 2024-01-01, ms
)

func pipeline(stateDir, addr, cache string) string {
	return fmt.Sprintf(`
name: restart
control: {address: %q}
status: off
logging: {level: warn}
state: {dir: %s, checkpoint_interval: 1s}
inputs:
  in: {type: stdin, event_time: {expr: t, max_out_of_orderness: 2h}}
processors:
  w:
    type: window
    from: in
    key_by: k
    parallelism: 2
    window: tumbling
    size: 1m
    cache_bytes: %s
    aggregates:
      n: count()
      d: count_distinct(p)
outputs:
  out: {type: stdout, from: w}
`, addr, stateDir, cache)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func TestRestartWithLargeWindowState(t *testing.T) {
	stateMB, err := strconv.Atoi(envOr("WEIR_RESTART_STATE_MB", "20"))
	if err != nil {
		t.Fatal(err)
	}
	cache := envOr("WEIR_RESTART_CACHE", "1MiB")
	if stateMB > 100 && testing.Short() {
		t.Skip("large state in -short mode")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "weir")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/weir").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	addr := freePort(t)
	cfg := filepath.Join(dir, "restart.yaml")
	stateDir := filepath.Join(dir, "state")
	if err := os.WriteFile(cfg, []byte(pipeline(stateDir, addr, cache)), 0o644); err != nil {
		t.Fatal(err)
	}
	n := stateMB * 1_000_000 / (payloadLen + 30)

	// Build: feed the events, wait until they are all in a checkpoint.
	cmd := exec.Command(bin, "run", cfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	var peak int64
	done := make(chan error, 1)
	go func() { done <- feed(stdin, n) }()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		case <-time.After(500 * time.Millisecond):
			peak = max(peak, rss(cmd.Process.Pid))
		}
	}
	var ckpt float64
	for {
		m := metrics(t, addr)
		if m[`weir_node_events_in_total{kind="processor",node="w"}`] >= float64(n+1) {
			ckpt = m[`weir_checkpoints_total{result="completed"}`]
			break
		}
		peak = max(peak, rss(cmd.Process.Pid))
		time.Sleep(200 * time.Millisecond)
	}
	// The checkpoint in progress may have begun before the last event.
	for metrics(t, addr)[`weir_checkpoints_total{result="completed"}`] < ckpt+2 {
		peak = max(peak, rss(cmd.Process.Pid))
		time.Sleep(100 * time.Millisecond)
	}
	build := time.Since(start)
	held := rss(cmd.Process.Pid)
	if path := os.Getenv("WEIR_RESTART_HEAP_PROFILE"); path != "" {
		saveHeapProfile(t, addr, path)
	}
	peak = max(peak, held)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	st, err := state.OpenReadOnly(stateDir)
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := st.Nodes()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var stateBytes, keys int64
	for _, ns := range nodes {
		if ns.Node == "w" {
			stateBytes, keys = ns.KeyBytes+ns.ValueBytes, ns.Keys
		}
	}
	if keys < int64(n) {
		t.Fatalf("the checkpoint holds %d keys of node w, want at least %d windows", keys, n)
	}

	// Restart: the first event's result is the probe window's.
	cmd = exec.Command(bin, "run", cfg)
	stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	if _, err := fmt.Fprintf(stdin, `{"k":"after","t":%d,"p":"x"}`+"\n", t0+2*3600_000+2*60_000); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	restart := time.Since(start)
	after := rss(cmd.Process.Pid)
	want := fmt.Sprintf(`{"key":"probe","window_start":%d,"window_end":%d,"n":1,"d":1}`, t0, t0+60_000)
	if strings.TrimSpace(line) != want {
		t.Fatalf("first result after the restart %q, want %q", line, want)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()

	fmt.Printf("windows=%d state_bytes=%.3g store_dir_bytes=%.3g cache_bytes=%s build_s=%.1f rss_build_peak_mb=%d rss_holding_mb=%d restart_ms=%d rss_after_restart_mb=%d\n",
		keys, float64(stateBytes), float64(dirSize(t, stateDir)), cache, build.Seconds(), peak>>20, held>>20, restart.Milliseconds(), after>>20)
}

// feed writes the probe's event and n others, then leaves stdin open (a
// closed stdin would end the input and fire every window).
func feed(w io.Writer, n int) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	const chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	p := make([]byte, payloadLen)
	if _, err := fmt.Fprintf(bw, `{"k":"probe","t":%d,"p":"x"}`+"\n", t0); err != nil {
		return err
	}
	for i := range n {
		for j := range p {
			p[j] = chars[rng.IntN(len(chars))]
		}
		if _, err := fmt.Fprintf(bw, `{"k":"k%09d","t":%d,"p":"%s"}`+"\n", i, t0+3600_000+int64(i%60_000), p); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// rss is the process's resident set in bytes (0 when unknown).
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// metrics reads the control plane's counters, by name with labels.
func metrics(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	var resp *http.Response
	var err error
	for range 100 {
		if resp, err = http.Get("http://" + addr + "/metrics"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			v, _ := strconv.ParseFloat(l[i+1:], 64)
			out[l[:i]] = v
		}
	}
	return out
}

func dirSize(t *testing.T, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// saveHeapProfile saves the running process's heap profile (debug=1: with
// its runtime.MemStats) to path.
func saveHeapProfile(t *testing.T, addr, path string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/debug/pprof/heap")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
