package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/runtime"
)

// TestKafkaExactlyOnceMultiProcess: a kfake cluster in the test process and
// three weir processes (the real binary) in one consumer group, reading a
// 12-partition topic through a map into another topic with guarantee
// exactly_once. The test feeds the input continuously; one process is
// killed with SIGKILL mid-stream (its partitions move to the others once
// its session times out) and restarted later (partitions move back). At
// the end the output topic, read with read_committed, must hold every
// input record exactly once.
//
// The pipeline also counts the records per key in 10 s tumbling windows of
// event time (the record timestamps: 10 ms apart), so its window state
// must follow the partitions between processes (the changelog). A
// partition that moves to a process whose watermark is ahead delivers
// late events; allowed_lateness takes them, and the window emits an
// updated result for each: the last result of each key and window must
// equal a brute-force count of the input. The feeder ends with a record
// far in the future on every partition, which closes every window.
//
// restore_ms is the time from the restarted process's start until the
// first record it wrote is visible to a read_committed consumer (so it
// includes joining the group, the rebalance and one checkpoint).
func TestKafkaExactlyOnceMultiProcess(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ", ")
	dir := t.TempDir()

	names := []string{"a", "b", "c"}
	cfgs := map[string]string{}
	for _, n := range names {
		cfgs[n] = filepath.Join(dir, n+".yaml")
		must(t, os.WriteFile(cfgs[n], fmt.Appendf(nil, `
name: multi
control: {address: ""}
status: off
logging: {format: json}
state:
  dir: %[1]s/state-%[2]s
  checkpoint_interval: 200ms
runtime:
  shutdown_timeout: 20s
inputs:
  in:
    type: kafka
    brokers: [%[3]s]
    topics: [in]
    group: multi
    parallelism: 1
    session_timeout: 6s
    heartbeat_interval: 1s
    rebalance_timeout: 10s
processors:
  tag:
    type: map
    from: in
    set: {proc: '"%[2]s"'}
  counts:
    type: window
    from: in
    key_by: key()
    window: tumbling
    size: 10s
    allowed_lateness: 1h
    aggregates: {n: count()}
outputs:
  out:
    type: kafka
    from: [tag, counts]
    parallelism: 1
    brokers: [%[3]s]
    topic: out
    guarantee: exactly_once
    transaction_timeout: 30s
`, dir, n, brokers), 0o644))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The feeder: batches of unique ids, keyed over all partitions.
	src, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var produced atomic.Int64
	stopFeed := make(chan struct{})
	fed := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stopFeed:
				fed <- nil
				return
			default:
			}
			from := produced.Load()
			recs := make([]*kgo.Record, 0, 100)
			for i := from; i < from+100; i++ {
				recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%97), Value: fmt.Appendf(nil, `{"id":%d}`, i), Timestamp: eventTime(i)})
			}
			if err := src.ProduceSync(ctx, recs...).FirstErr(); err != nil {
				fed <- err
				return
			}
			produced.Add(100)
			time.Sleep(50 * time.Millisecond)
		}
	}()

	// The watcher: the output as a read_committed consumer sees it.
	w := &outWatch{seen: map[int64]int{}, first: map[string]time.Time{}}
	wcl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer wcl.Close()
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			fs := wcl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachRecord(w.add)
		}
	}()

	procs := map[string]*weirProc{}
	var logs []*syncBuffer
	startProc := func(n string) {
		p := startWeir(t, cfgs[n])
		procs[n] = p
		logs = append(logs, p.stderr)
	}
	defer func() {
		for _, p := range procs {
			_ = p.cmd.Process.Kill()
		}
	}()
	for _, n := range names {
		startProc(n)
	}
	if !w.waitFor(func() bool { return w.procs() == 3 }, 30*time.Second) {
		t.Fatalf("not every process wrote output within 30s (%d did)\n%s", w.procs(), dumpLogs(procs))
	}
	time.Sleep(time.Second)
	_ = procs["c"].cmd.Process.Signal(syscall.SIGKILL)
	<-procs["c"].done
	killedAt := produced.Load()
	// c's partitions move to a and b once its session times out (6 s).
	time.Sleep(9 * time.Second)
	restartAt := time.Now()
	w.reset("c")
	startProc("c")
	if !w.waitFor(func() bool { return !w.firstOf("c").IsZero() }, 30*time.Second) {
		t.Fatalf("the restarted process wrote nothing within 30s\n%s", dumpLogs(procs))
	}
	restoreMS := w.firstOf("c").Sub(restartAt).Milliseconds()
	time.Sleep(2 * time.Second)
	close(stopFeed)
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	counted := produced.Load() // the records the windows count
	// One record per partition far in the future closes every window.
	var closers []*kgo.Record
	for p := range int32(12) {
		for j := 0; ; j++ {
			if k := fmt.Sprintf("close-%d", j); runtime.KafkaPartition([]byte(k), 12) == p {
				id := counted + int64(p)
				closers = append(closers, &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, `{"id":%d}`, id), Timestamp: eventTime(counted + 1e9)})
				break
			}
		}
	}
	if err := src.ProduceSync(ctx, closers...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	produced.Add(int64(len(closers)))
	total := produced.Load()
	if !w.waitFor(func() bool { return w.distinct() >= int(total) }, 60*time.Second) {
		t.Fatalf("the output holds %d of %d ids after 60s\n%s", w.distinct(), total, dumpLogs(procs))
	}
	for _, n := range names {
		_ = procs[n].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range names {
		select {
		case err := <-procs[n].done:
			if err != nil {
				t.Fatalf("%s: clean stop failed: %v\n%s", n, err, tail(procs[n].stderr.String(), 30))
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop\n%s", n, tail(procs[n].stderr.String(), 30))
		}
	}
	cancel()
	<-watchDone

	// A fresh read of the whole output, read_committed.
	count, wins := readCommitted(t, c.ListenAddrs(), "out", int(total))
	var out, dups, lost int64
	for _, k := range count {
		out += int64(k)
		if k > 1 {
			dups += int64(k - 1)
		}
	}
	for id := range total {
		if count[id] == 0 {
			lost++
		}
	}
	gens := map[string]bool{}
	re := regexp.MustCompile(`"msg":"kafka: partitions assigned".*?"generation":(\d+)`)
	for _, l := range logs {
		for _, m := range re.FindAllStringSubmatch(l.String(), -1) {
			gens[m[1]] = true
		}
	}
	// The brute-force reference of the windowed counts.
	want := map[winID]int{}
	for i := range counted {
		want[winID{fmt.Sprintf("k%d", i%97), eventTime(i).UnixMilli() / 10000 * 10000}]++
	}
	wrong := 0
	for w, n := range want {
		if got := wins[w]; got != n {
			if wrong < 10 {
				t.Errorf("window %s at %d: count %d, want %d", w.key, w.start, got, n)
			}
			wrong++
		}
	}
	for w := range wins {
		if _, ok := want[w]; !ok {
			t.Errorf("window %s at %d: a result, and no input", w.key, w.start)
			wrong++
		}
	}
	var restores []string
	reRestore := regexp.MustCompile(`"msg":"keyed state of partitions restored from the changelog".*?"took_ms":([0-9.]+)`)
	for _, l := range logs {
		for _, m := range reRestore.FindAllStringSubmatch(l.String(), -1) {
			restores = append(restores, m[1])
		}
	}
	summary := fmt.Sprintf("input=%d output=%d dups=%d lost=%d rebalances=%d restore_ms=%d windows=%d window_mismatches=%d", total, out, dups, lost, len(gens), restoreMS, len(want), wrong)
	fmt.Println(summary)
	t.Logf("%s (killed after %d records; partition state restores took %v ms)", summary, killedAt, restores)
	if dups != 0 || lost != 0 || out != total || wrong != 0 {
		t.Fatalf("%s\n%s", summary, dumpLogs(procs))
	}
	if len(gens) < 3 {
		t.Fatalf("%s: expected rebalances at the start, after the kill and after the restart", summary)
	}
}

type weirProc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

// syncBuffer is a buffer written by exec's copier and read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startWeir(t *testing.T, cfg string) *weirProc {
	t.Helper()
	cmd := exec.Command(weirBin, "run", cfg)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &weirProc{cmd: cmd, stderr: stderr, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p
}

func dumpLogs(procs map[string]*weirProc) string {
	var b strings.Builder
	for n, p := range procs {
		fmt.Fprintf(&b, "--- %s ---\n%s\n", n, tail(p.stderr.String(), 25))
	}
	return b.String()
}

// outWatch follows the output topic.
type outWatch struct {
	mu    sync.Mutex
	seen  map[int64]int
	first map[string]time.Time // first record seen of each process
}

func (w *outWatch) add(r *kgo.Record) {
	var v struct {
		ID   *int64
		Proc string
	}
	if json.Unmarshal(r.Value, &v) != nil || v.ID == nil {
		return // a window result
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen[*v.ID]++
	if _, ok := w.first[v.Proc]; !ok {
		w.first[v.Proc] = time.Now()
	}
}

func (w *outWatch) reset(proc string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.first, proc)
}

func (w *outWatch) firstOf(proc string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.first[proc]
}

func (w *outWatch) procs() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.first)
}

func (w *outWatch) distinct() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seen)
}

func (w *outWatch) waitFor(cond func() bool, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// eventTime is the timestamp of record i: 10 ms apart.
func eventTime(i int64) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * 10 * time.Millisecond)
}

// winID names a window result: its key and start (Unix milliseconds).
type winID struct {
	key   string
	start int64
}

// readCommitted reads topic from the start with read_committed until it
// has want records and then a second passes without one (or a minute
// passes), and counts each id; window results go to the map of the last
// count of each window.
func readCommitted(t *testing.T, brokers []string, topic string, want int) (map[int64]int, map[winID]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	count := map[int64]int{}
	wins := map[winID]int{}
	total := 0
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			var v struct {
				ID    *int64
				Key   string
				Start *int64 `json:"window_start"`
				N     int
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("bad output record %q", r.Value)
			}
			if v.Start != nil {
				wins[winID{v.Key, *v.Start}] = v.N // the last result wins
				return
			}
			if v.ID == nil {
				t.Fatalf("output record without id %q", r.Value)
			}
			count[*v.ID]++
			n++
		})
		total += n
		if n == 0 && (total >= want || time.Now().After(deadline)) {
			return count, wins
		}
	}
}
