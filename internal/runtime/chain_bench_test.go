package runtime

import (
	"context"
	"testing"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
)

type nopProc struct{}

func (nopProc) Process(*Record) (bool, error) { return true, nil }

// BenchmarkChainStage measures what a fused stage adds per event, without
// the goroutines and queues around it: the per-event loop over three
// processors, counters, compaction and the batch's byte accounting. One op
// is one event.
func BenchmarkChainStage(b *testing.B) {
	n := &dag.Node{Name: "p", Kind: dag.Processor}
	stats := &NodeStats{Name: "p"}
	inst := &instance{
		p:        &Pipeline{},
		procs:    []Processor{nopProc{}, nopProc{}, nopProc{}},
		nodes:    []*NodeStats{stats, stats, stats},
		handlers: []*errHandler{{node: n, stats: stats}, {node: n, stats: stats}, {node: n, stats: stats}},
	}
	val := []byte(`{"id":1,"k":"a"}`)
	batch := event.GetBatch()
	ack := event.NewAck(1<<62, nil)
	for range 256 {
		batch.Append(event.Event{Value: val, Ack: ack})
	}
	var (
		rec    Record
		ar     arena
		acker  acker
		counts = make([]nodeCounts, 3)
	)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 256 {
		batch.Events = batch.Events[:256]
		if err := inst.processBatch(context.Background(), batch, &rec, &ar, &acker, counts); err != nil {
			b.Fatal(err)
		}
	}
}
