package reliability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaBackpressureBoundsMemory: the real binary consumes a topic of
// ~300 MB into an output that cannot write (stdout into a pipe nobody
// reads). The kafka input must stop fetching while downstream is full: the
// process's resident memory stays far below the backlog, which stays in
// Kafka.
func TestKafkaBackpressureBoundsMemory(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("big"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	pad := strings.Repeat("x", 3000)
	const total = 100_000
	for i := 0; i < total; i += 5000 {
		recs := make([]*kgo.Record, 0, 5000)
		for j := i; j < i+5000; j++ {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"pad":%q}`, j, pad)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()

	dir := t.TempDir()
	cfg := filepath.Join(dir, "p.yaml")
	must(t, os.WriteFile(cfg, fmt.Appendf(nil, `
name: bp
control: {address: ""}
status: off
runtime: {queue_bytes: 8MiB}
inputs:
  in: {type: kafka, brokers: [%s], topics: [big], group: bp, fetch_max_bytes: 4MiB}
outputs:
  out: {type: stdout, from: in}
`, strings.Join(brokers, ", ")), 0o644))
	cmd := exec.Command(weirBin, "run", cfg)
	stdout, err := cmd.StdoutPipe() // read one line, then never again: the output blocks
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	first := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if !strings.HasPrefix(line, `{"id":`) {
			t.Fatalf("first output line %.80q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no output: the pipeline did not consume the topic")
	}
	peak := 0
	for range 30 {
		time.Sleep(100 * time.Millisecond)
		peak = max(peak, rssKiB(t, cmd.Process.Pid))
	}
	t.Logf("backlog %d MiB in Kafka, weir's peak RSS %d MiB", total*3000>>20, peak>>10)
	if peak == 0 {
		t.Fatal("could not read the process's RSS")
	}
	// Queues (8 MiB), fetch buffers (4 MiB each, a few), the Go runtime
	// and Pebble-free baseline: well under the ~290 MB backlog.
	if peak > 120<<10 {
		t.Fatalf("weir's RSS reached %d MiB with a blocked output: the kafka input kept fetching", peak>>10)
	}
}

// rssKiB reads VmRSS of pid, in KiB (0 when unknown).
func rssKiB(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}
