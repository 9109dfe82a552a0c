// Package reliability is weir's crash test: the real binary runs the
// collector pipeline (http → durable log → dedup → file output, with
// checkpoints) while a load generator sends batches of unique ids and
// retries every request that was not answered 200. The process is killed
// with SIGKILL at random times and restarted; after some kills the log
// files are also cut back to what was fsynced (a power loss). At the end,
// every id that was acknowledged must be in the published output exactly
// once.
//
// `make test` runs a short form; `make reliability` runs ≥ 20 cycles:
//
//	WEIR_RELIABILITY_CYCLES=25 go test -count 1 -run TestCrashLoop -v ./test/reliability/
package reliability

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/log"
)

var weirBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	weirBin = filepath.Join(dir, "weir")
	build := exec.Command("go", "build", "-o", weirBin, "../../cmd/weir")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build weir:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
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

const writeKey = "wk_reliability"

func pipeline(dir, addr string) string {
	return fmt.Sprintf(`
name: reliability
control: {address: ""}
status: off
logging: {format: json}
state:
  dir: %[1]s/state
  checkpoint_interval: 150ms
runtime:
  shutdown_timeout: 20s
inputs:
  collector:
    type: http
    address: %[2]s
    tenants:
      acme: [%[3]s]
    http: {shutdown_timeout: 5s}
    log:
      dir: %[1]s/log
      partitions: 2
      durability: fsync
      segment_bytes: 256KiB
processors:
  dedup:
    type: dedup
    from: collector
    ttl: 1h
outputs:
  out:
    type: file
    from: dedup
    dir: %[1]s/out
    rotate_bytes: 64KiB
`, dir, addr, writeKey)
}

// loadgen sends batches of unique ids and retries each one until it is
// answered 200. Acked ids are recorded only on 200.
type loadgen struct {
	url   string
	batch int
	next  atomic.Int64

	mu    sync.Mutex
	acked map[int64]bool

	sent, retries atomic.Int64
}

func (g *loadgen) run(ctx context.Context, stopNew <-chan struct{}) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		select {
		case <-stopNew:
			return
		default:
		}
		first := g.next.Add(int64(g.batch)) - int64(g.batch)
		var body bytes.Buffer
		for i := range g.batch {
			fmt.Fprintf(&body, "{\"event_id\":\"id-%d\",\"n\":%d,\"pad\":\"%s\"}\n", first+int64(i), first+int64(i), strings.Repeat("x", 120))
		}
		payload := body.Bytes()
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return // give up: these ids were never acknowledged
			}
			if attempt > 0 {
				g.retries.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(payload))
			req.Header.Set("Authorization", "Bearer "+writeKey)
			req.Header.Set("Content-Type", "application/x-ndjson")
			g.sent.Add(1)
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			rb, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				continue
			}
			var r struct{ Accepted int }
			if err := json.Unmarshal(rb, &r); err != nil || r.Accepted != g.batch {
				panic(fmt.Sprintf("200 with body %s", rb))
			}
			g.mu.Lock()
			for i := range g.batch {
				g.acked[first+int64(i)] = true
			}
			g.mu.Unlock()
			break
		}
	}
}

type proc struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

func start(t *testing.T, cfg, addr string, env []string) *proc {
	t.Helper()
	cmd := exec.Command(weirBin, "run", cfg)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, stderr: &stderr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("weir exited at start: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("weir did not listen on %s:\n%s", addr, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashLoop(t *testing.T) {
	cycles := 4
	if v := os.Getenv("WEIR_RELIABILITY_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		cycles = n
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("WEIR_RELIABILITY_SEED"); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed=%d (WEIR_RELIABILITY_SEED to repeat)", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	dir := t.TempDir()
	addr := freePort(t)
	cfg := filepath.Join(dir, "pipeline.yaml")
	if err := os.WriteFile(cfg, []byte(pipeline(dir, addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	syncRecord := filepath.Join(dir, "syncs.tsv")
	env := []string{log.SyncRecordEnv + "=" + syncRecord}

	g := &loadgen{url: "http://" + addr + "/v1/batch", batch: 50, acked: map[int64]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopNew := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { g.run(ctx, stopNew) })
	}

	powerLosses := 0
	for cycle := range cycles {
		p := start(t, cfg, addr, env)
		time.Sleep(time.Duration(150+rng.IntN(650)) * time.Millisecond)
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
		if cycle%2 == 1 {
			// Power loss: every log file back to its last fsynced size.
			if err := log.CutToSynced(syncRecord, filepath.Join(dir, "log")); err != nil {
				t.Fatalf("cycle %d: cut to synced: %v", cycle, err)
			}
			powerLosses++
		}
	}
	// Last run: no new batches; every pending one is retried until
	// answered; then a clean stop publishes the output.
	p := start(t, cfg, addr, env)
	close(stopNew)
	waitDone := make(chan struct{})
	go func() { wg.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("load generator did not finish its retries:\n%s", p.stderr.String())
	}
	// Let the pipeline catch up, then stop gracefully.
	time.Sleep(500 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("clean stop failed: %v\n%s", err, p.stderr.String())
		}
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("weir did not stop:\n%s", p.stderr.String())
	}

	count := map[int64]int{}
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*"))
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") {
			continue // in-progress files are not output
		}
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var ev struct{ N int64 }
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%s: bad line %q", f, sc.Text())
			}
			count[ev.N]++
		}
		fh.Close()
	}
	lost, dups := 0, 0
	for id := range g.acked {
		if count[id] == 0 {
			lost++
		}
	}
	for _, c := range count {
		if c > 1 {
			dups += c - 1
		}
	}
	summary := fmt.Sprintf("acked=%d acked_lost=%d dups_at_output=%d cycles=%d power_losses=%d requests=%d retries=%d",
		len(g.acked), lost, dups, cycles, powerLosses, g.sent.Load(), g.retries.Load())
	fmt.Println(summary)
	t.Log(summary)
	if len(g.acked) == 0 {
		t.Fatal("nothing was acknowledged: the test proves nothing")
	}
	if lost != 0 || dups != 0 {
		t.Fatalf("%s\nlast run's log:\n%s", summary, tail(p.stderr.String(), 40))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
