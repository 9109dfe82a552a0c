package httpin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v3"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/file"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

// kafkaCluster starts franz-go's in-process broker with topic "events" of 3
// partitions.
func kafkaCluster(t *testing.T) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func kafkaConfig(t *testing.T, brokers []string) Config {
	t.Helper()
	c := DefaultConfig()
	c.Address = "127.0.0.1:0"
	c.Tenants = map[string][]string{"acme": {"k1"}}
	c.Kafka.Brokers, c.Kafka.Topic, c.Kafka.Group = brokers, "events", "collector"
	c.Kafka.CommitInterval = 50 * time.Millisecond
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// topicRecords reads the whole topic with a client of its own until it
// holds want records (or 10 s pass), by event_id header.
func topicRecords(t *testing.T, brokers []string, want int) map[string][]*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	got, n := map[string][]*kgo.Record{}, 0
	for n < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == "event_id" {
					got[string(h.Value)] = append(got[string(h.Value)], r)
				}
			}
			n++
		})
	}
	return got
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// outputIDs counts the events the pipeline received, by event id.
func outputIDs(out *testkit.Outlet) map[string]int {
	ids := map[string]int{}
	for _, e := range out.Events() {
		id, _ := e.Header("event_id")
		ids[string(id)]++
	}
	return ids
}

// A 200 means the events are in the topic, with their key and headers;
// the pipeline reads each once, and a restart of the same group does not
// read them again.
func TestKafkaBufferedEvents(t *testing.T) {
	cluster := kafkaCluster(t)
	brokers := cluster.ListenAddrs()
	c := kafkaConfig(t, brokers)
	out := &testkit.Outlet{}
	n, _, stop := startInput(t, c, out)

	bodies := []string{
		`[{"event_id":"a","x":1},{"event_id":"b","x":2},{"event_id":"c"}]`,
		`{"event_id":"d"}`,
		"{\"event_id\":\"e\"}\n{\"event_id\":\"f\"}\n",
	}
	for _, b := range bodies {
		if code, body := post(t, n.Addr(), b); code != 200 {
			t.Fatalf("status %d: %s", code, body)
		}
	}
	ids := []string{"a", "b", "c", "d", "e", "f"}
	// Read with another client: everything answered 200 is in the topic.
	recs := topicRecords(t, brokers, len(ids))
	for _, id := range ids {
		rs := recs[id]
		if len(rs) != 1 {
			t.Fatalf("event %s is in the topic %d times", id, len(rs))
		}
		r := rs[0]
		if string(r.Key) != id || header(r, "tenant") != "acme" || header(r, "received_at") == "" {
			t.Fatalf("event %s: key %q headers %v", id, r.Key, r.Headers)
		}
		if at, err := time.Parse(time.RFC3339Nano, header(r, "received_at")); err != nil || !at.Equal(r.Timestamp) {
			t.Fatalf("event %s: received_at %q, record time %v", id, header(r, "received_at"), r.Timestamp)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := out.WaitEvents(ctx, len(ids)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // duplicates would show by now
	got := outputIDs(out)
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("event %s reached the pipeline %d times, want once: %v", id, got[id], got)
		}
	}
	for _, e := range out.Events() {
		if tenant, _ := e.Header("tenant"); string(tenant) != "acme" {
			t.Fatalf("event %s has tenant %q", e.Value, tenant)
		}
	}
	stop()

	// The same group resumes after what was processed.
	out = &testkit.Outlet{}
	n, _, stop = startInput(t, c, out)
	if code, body := post(t, n.Addr(), `{"event_id":"g"}`); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if err := out.WaitEvents(ctx, 1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stop()
	if got := outputIDs(out); len(got) != 1 || got["g"] != 1 {
		t.Fatalf("second run read %v, want only g", got)
	}
}

// While the brokers refuse to store (too few in-sync replicas for
// acks=all), requests are answered 503 with Retry-After, never 200; once
// they store again, retries succeed, and every event answered 200 reaches
// the pipeline.
func TestKafkaProduceFailureAnswers503(t *testing.T) {
	cluster := kafkaCluster(t)
	brokers := cluster.ListenAddrs()
	var failing atomic.Bool
	cluster.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if !failing.Load() {
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c := kafkaConfig(t, brokers)
	c.AppendTimeout = 500 * time.Millisecond
	out := &testkit.Outlet{}
	n, _, stop := startInput(t, c, out)
	defer stop()

	send := func(id string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr()+"/v1/events", strings.NewReader(`{"event_id":"`+id+`"}`))
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	acked := map[string]bool{}
	for i := range 5 {
		id := fmt.Sprintf("ok-%d", i)
		if resp := send(id); resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", id, resp.StatusCode)
		}
		acked[id] = true
	}

	failing.Store(true)
	var refused []string
	for i := range 3 {
		id := fmt.Sprintf("retry-%d", i)
		resp := send(id)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s while the brokers refuse: status %d Retry-After %q, want 503 with Retry-After", id, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
		refused = append(refused, id)
	}

	failing.Store(false)
	recovered := time.Now()
	// Clients retry what was refused; records the producer was still
	// retrying may get in too, so a refused event can be stored twice (the
	// event id tells them apart), never lost once answered 200.
	for i, id := range refused {
		deadline := time.Now().Add(10 * time.Second)
		for {
			resp := send(id)
			if resp.StatusCode == 200 {
				break
			}
			if resp.StatusCode != http.StatusServiceUnavailable || time.Now().After(deadline) {
				t.Fatalf("%s after the brokers recovered: status %d", id, resp.StatusCode)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if i == 0 {
			t.Logf("first 200 %v after the brokers recovered", time.Since(recovered).Round(time.Millisecond))
		}
		acked[id] = true
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for missing := true; missing; {
		got := outputIDs(out)
		missing = false
		for id := range acked {
			missing = missing || got[id] == 0
		}
		if missing && ctx.Err() != nil {
			t.Fatalf("events answered 200 missing from the pipeline: have %v, want %v", got, acked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	for id, k := range outputIDs(out) {
		switch {
		case !acked[id]:
			t.Errorf("event %q reached the pipeline and was never sent", id)
		case strings.HasPrefix(id, "ok-") && k != 1:
			t.Errorf("event %s reached the pipeline %d times, want once", id, k)
		case k > 2:
			t.Errorf("event %s reached the pipeline %d times, want at most twice (one refused send, one retry)", id, k)
		}
	}
}

// With max_lag, the consumer lag of the group members pushes back.
func TestKafkaMaxLagPushesBack(t *testing.T) {
	cluster := kafkaCluster(t)
	c := kafkaConfig(t, cluster.ListenAddrs())
	c.MaxLag = 3
	out := &testkit.Outlet{ManualAck: true}
	n, _, stop := startInput(t, c, out)
	defer stop()
	if code, body := post(t, n.Addr(), `[{"event_id":"1"},{"event_id":"2"},{"event_id":"3"},{"event_id":"4"}]`); code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := out.WaitEvents(ctx, 4); err != nil {
		t.Fatal(err)
	}
	if code, _ := post(t, n.Addr(), `{"event_id":"5"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("over max_lag: status %d, want 503", code)
	}
	out.Ack()
	if code, body := post(t, n.Addr(), `{"event_id":"6"}`); code != 200 {
		t.Fatalf("after catching up: status %d: %s", code, body)
	}
}

// Exactly one of log and kafka; errors name the field.
func TestBufferConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		fields     []string
	}{
		{"neither", ``, []string{"log"}},
		{"both", `
log: {dir: /tmp/x}
kafka: {brokers: [localhost:9092], topic: events, group: g}`, []string{"kafka"}},
		{"kafka without topic", `
kafka: {brokers: [localhost:9092], group: g}`, []string{"kafka.topic"}},
		{"kafka heartbeat", `
kafka: {brokers: [localhost:9092], topic: events, group: g, session_timeout: 6s, heartbeat_interval: 3s}`, []string{"kafka.heartbeat_interval"}},
		{"log without dir", `
log: {partitions: 2}`, []string{"log.dir"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n yaml.Node
			if err := yaml.Unmarshal([]byte("address: :0\ntenants: {acme: [k1]}\n"+tc.yaml), &n); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			errs := config.Decode("p.yaml", n.Content[0], "inputs.events", &cfg)
			if len(errs) == 0 {
				t.Fatal("no error")
			}
			var fields []string
			for _, e := range errs {
				fields = append(fields, strings.TrimPrefix(e.Field, "inputs.events."))
			}
			for _, f := range tc.fields {
				found := false
				for _, g := range fields {
					found = found || g == f
				}
				if !found {
					t.Errorf("errors name %v, want %s:\n%v", fields, f, errs)
				}
			}
		})
	}
	// A valid kafka block.
	var n yaml.Node
	if err := yaml.Unmarshal([]byte("tenants: {acme: [k1]}\nkafka: {brokers: [localhost:9092], topic: events, group: g}\n"), &n); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	if errs := config.Decode("p.yaml", n.Content[0], "", &cfg); len(errs) > 0 {
		t.Fatal(errs)
	}
	if !cfg.usesKafka() || cfg.Kafka.inputConfig().Topics[0] != "events" || cfg.Kafka.Compression != "lz4" {
		t.Fatalf("decoded %+v", cfg.Kafka)
	}
}

type pipelineFactory struct {
	node *Node
	dir  string
}

func (f pipelineFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return f.node.NewInput(env)
}
func (f pipelineFactory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	return nil, fmt.Errorf("no processor %q", n.Name)
}
func (f pipelineFactory) NewOutput(_ *dag.Node, env runtime.Env) (runtime.Output, error) {
	c := file.DefaultOutputConfig()
	c.Dir, c.RotateBytes = f.dir, 64
	return file.NewOutput(c, env)
}

// publishedIDs counts the event ids in the output files published so far.
func publishedIDs(t *testing.T, dir string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	ids := map[string]int{}
	for _, fn := range files {
		data, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			var ev struct {
				ID string `json:"event_id"`
			}
			if err := json.Unmarshal([]byte(l), &ev); err == nil && ev.ID != "" {
				ids[ev.ID]++
			}
		}
	}
	return ids
}

// In a pipeline with checkpoints, the topic's offsets are part of each
// checkpoint, and a restarted pipeline writes every event answered 200 to
// the file output exactly once. Two instances: partitions move between
// them during a run (the second joins the group after the first), and a
// partition that moves starts at the group's offset, which its previous
// owner committed once a checkpoint covered what it had emitted.
func TestKafkaBufferCheckpointedPipeline(t *testing.T) {
	cluster := kafkaCluster(t)
	c := kafkaConfig(t, cluster.ListenAddrs())
	root := t.TempDir()
	g := testkit.Graph(t, `
name: p
control: {address: ""}
inputs:
  collector: {type: http, parallelism: 2}
outputs:
  out: {type: file, from: collector}
`)
	var want []string
	for run := range 3 {
		st, err := state.Open(filepath.Join(root, "state"), nil)
		if err != nil {
			t.Fatal(err)
		}
		f := pipelineFactory{node: NewNode(c), dir: filepath.Join(root, "out")}
		pl, err := runtime.New(g, f, runtime.Options{Store: testkit.StateStore(st), CheckpointInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- pl.Run(ctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for f.node.Addr() == "" {
			if time.Now().After(deadline) {
				t.Fatal("collector did not start")
			}
			time.Sleep(time.Millisecond)
		}
		for i := range 10 {
			id := fmt.Sprintf("r%d-%d", run, i)
			if code, body := post(t, f.node.Addr(), `{"event_id":"`+id+`"}`); code != 200 {
				t.Fatalf("%s: status %d: %s", id, code, body)
			}
			want = append(want, id)
		}
		// Stop once part of this run's events are published: the rest
		// is read again from the checkpointed offsets by the next run.
		// The last run waits for all but the file still open (the stop
		// publishes it).
		enough := len(want) - 5
		if run == 2 {
			enough = len(want) - 1
		}
		for len(publishedIDs(t, f.dir)) < enough && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got := publishedIDs(t, filepath.Join(root, "out"))
	for _, id := range want {
		if got[id] != 1 {
			t.Errorf("event %s is in the output %d times, want once", id, got[id])
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d distinct events in the output, want %d", len(got), len(want))
	}
}
