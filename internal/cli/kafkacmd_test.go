package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKafkaCommands: topics, describe and tail against an in-process
// Kafka-protocol broker.
func TestKafkaCommands(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "orders", "users"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := strings.Join(c.ListenAddrs(), ",")
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"n":%d}`, i),
			Headers: []kgo.RecordHeader{{Key: "src", Value: []byte("test")}}})
	}
	recs = append(recs, &kgo.Record{Value: []byte("not json")})
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	run := func(args ...string) (int, string, string) {
		var o, e bytes.Buffer
		code := cmdKafka(context.Background(), args, &o, &e)
		return code, o.String(), e.String()
	}
	code, out, errOut := run("topics", "--brokers", brokers)
	if code != ExitOK || !strings.Contains(out, "orders") || !strings.Contains(out, "users") || !strings.Contains(out, "3") {
		t.Fatalf("topics: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("describe", "--brokers", brokers, "orders")
	if code != ExitOK || !strings.Contains(out, "3 partition(s)") || !strings.Contains(out, "11\n") {
		t.Fatalf("describe: %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = run("tail", "--brokers", brokers, "--from", "beginning", "--limit", "11", "orders")
	if code != ExitOK {
		t.Fatalf("tail: %d\n%s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 11 {
		t.Fatalf("tail printed %d lines, want 11:\n%s", len(lines), out)
	}
	sawText := false
	for _, l := range lines {
		var r tailRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("tail line %q: %v", l, err)
		}
		if string(r.Value) == `"not json"` {
			sawText = true
		} else if r.Key == nil || r.Headers["src"] != "test" {
			t.Fatalf("tail lost the key or headers: %s", l)
		}
	}
	if !sawText {
		t.Fatal("a non-JSON value was not printed as a string")
	}
	if code, _, _ := run("describe", "--brokers", brokers, "nope"); code != ExitFailure {
		t.Fatalf("describe of a missing topic: exit %d, want %d", code, ExitFailure)
	}
	if code, _, _ := run("tail", "orders"); code != ExitConfig {
		t.Fatalf("tail without brokers: exit %d, want %d", code, ExitConfig)
	}
}
