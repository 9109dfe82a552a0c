package runtime

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-dev/weir/internal/dag"
)

// NodeStats are the live counters of one node, summed over its instances.
// They are updated once per batch with atomic adds and read by the metrics
// collector, the status line and the control plane.
type NodeStats struct {
	Name string
	Kind dag.Kind
	Type string

	In          atomic.Uint64 // events received (for inputs: events read)
	Out         atomic.Uint64 // events passed downstream (for outputs: written and flushed)
	Filtered    atomic.Uint64 // events dropped on purpose by the node's logic
	Errors      atomic.Uint64 // events whose processing failed
	Dropped     atomic.Uint64 // failed events dropped by the error policy
	DeadLetters atomic.Uint64 // failed events sent to the dead-letter output

	// Outputs: when a Write or Flush last failed, and when a Flush last
	// wrote events (Unix nanoseconds; 0: never). The control plane's health
	// reads them; LastError has the failure.
	FailedAt  atomic.Int64
	FlushedAt atomic.Int64
	lastErr   atomic.Pointer[string]

	tap  tap        // live subscribers (tap.go)
	errs errSamples // recent failed events (errsample.go)
}

// LastError is the error of the node's last failed write or flush.
func (n *NodeStats) LastError() string {
	if s := n.lastErr.Load(); s != nil {
		return *s
	}
	return ""
}

// failed records a failed write or flush.
func (n *NodeStats) failed(err error) {
	msg := err.Error()
	n.lastErr.Store(&msg)
	n.FailedAt.Store(time.Now().UnixNano())
}

// Lag sums what the instances of input node have read from their source
// but not yet had acknowledged, for inputs that can tell (a Lag method,
// such as the log and http inputs'); ok is false for the others.
func (p *Pipeline) Lag(node string) (lag int64, ok bool) {
	for _, inst := range p.insts {
		if l, has := inst.input.(interface{ Lag() int64 }); has && inst.stage.Head().Name == node {
			lag += l.Lag()
			ok = true
		}
	}
	return lag, ok
}

// StageStats are the live counters of one stage, summed over its instances.
type StageStats struct {
	Name         string
	Busy         LiveTime // nanoseconds spent working
	Backpressure LiveTime // nanoseconds blocked on a full downstream queue
	Batches      atomic.Uint64
	queues       []*Queue
	started      time.Time
	parallelism  int
}

// QueueDepth sums the stage's input queues: events and bytes queued, and the
// bounds.
func (s *StageStats) QueueDepth() (events, bytes, capEvents, capBytes int64) {
	for _, q := range s.queues {
		e, b := q.Depth()
		ce, cb := q.Capacity()
		events += e
		bytes += b
		capEvents += int64(ce)
		capBytes += int64(cb)
	}
	return
}

// QueueHighWater reports the largest depth, in events, any of the stage's
// queues ever reached.
func (s *StageStats) QueueHighWater() int {
	hw := 0
	for _, q := range s.queues {
		hw = max(hw, q.HighWater())
	}
	return hw
}

// Parallelism is the number of instances of the stage.
func (s *StageStats) Parallelism() int { return s.parallelism }

// metrics holds the Prometheus side: histograms that need observation, and
// a collector that reads the atomics at scrape time.
type metrics struct {
	batchSeconds   *prometheus.HistogramVec
	latencySeconds *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, p *Pipeline) *metrics {
	m := &metrics{
		batchSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_stage_batch_duration_seconds",
			Help:    "Time a stage takes to process one batch: the processing latency of the events in it.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12),
		}, []string{"stage"}),
		latencySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_output_latency_seconds",
			Help:    "End-to-end latency: from the input reading a batch to the output flushing it.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 12),
		}, []string{"node"}),
	}
	if reg != nil {
		reg.MustRegister(m.batchSeconds, m.latencySeconds, &collector{p: p})
	}
	return m
}

var (
	descIn          = prometheus.NewDesc("weir_node_events_in_total", "Events received by the node (for inputs: read from the source).", []string{"node", "kind"}, nil)
	descOut         = prometheus.NewDesc("weir_node_events_out_total", "Events the node passed on (for outputs: written and flushed).", []string{"node", "kind"}, nil)
	descFiltered    = prometheus.NewDesc("weir_node_events_filtered_total", "Events the node dropped on purpose (a filter).", []string{"node"}, nil)
	descErrors      = prometheus.NewDesc("weir_node_errors_total", "Events whose processing failed at the node.", []string{"node"}, nil)
	descDropped     = prometheus.NewDesc("weir_node_events_dropped_total", "Failed events dropped by the node's error policy.", []string{"node"}, nil)
	descDeadLetters = prometheus.NewDesc("weir_node_dead_letters_total", "Failed events sent to the node's dead-letter output.", []string{"node"}, nil)
	descBusy        = prometheus.NewDesc("weir_stage_busy_seconds_total", "Time the stage's instances spent working; its rate divided by parallelism is the busy fraction (capacity).", []string{"stage"}, nil)
	descBackpress   = prometheus.NewDesc("weir_stage_backpressure_seconds_total", "Time the stage's instances spent blocked on a full downstream queue.", []string{"stage"}, nil)
	descParallel    = prometheus.NewDesc("weir_stage_parallelism", "Number of instances of the stage.", []string{"stage"}, nil)
	descQEvents     = prometheus.NewDesc("weir_queue_events", "Events waiting in the stage's input queues.", []string{"stage"}, nil)
	descQBytes      = prometheus.NewDesc("weir_queue_bytes", "Bytes waiting in the stage's input queues.", []string{"stage"}, nil)
	descQCapEvents  = prometheus.NewDesc("weir_queue_capacity_events", "Bound of the stage's input queues, in events.", []string{"stage"}, nil)
	descQCapBytes   = prometheus.NewDesc("weir_queue_capacity_bytes", "Bound of the stage's input queues, in bytes.", []string{"stage"}, nil)
)

type collector struct{ p *Pipeline }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIn, descOut, descFiltered, descErrors, descDropped, descDeadLetters,
		descBusy, descBackpress, descParallel, descQEvents, descQBytes, descQCapEvents, descQCapBytes} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, n := range c.p.nodes {
		kind := n.Kind.String()
		counter(descIn, float64(n.In.Load()), n.Name, kind)
		counter(descOut, float64(n.Out.Load()), n.Name, kind)
		counter(descFiltered, float64(n.Filtered.Load()), n.Name)
		counter(descErrors, float64(n.Errors.Load()), n.Name)
		counter(descDropped, float64(n.Dropped.Load()), n.Name)
		counter(descDeadLetters, float64(n.DeadLetters.Load()), n.Name)
	}
	for _, s := range c.p.stages {
		counter(descBusy, float64(s.Busy.Load())/1e9, s.Name)
		counter(descBackpress, float64(s.Backpressure.Load())/1e9, s.Name)
		gauge(descParallel, float64(s.parallelism), s.Name)
		if len(s.queues) > 0 {
			e, b, ce, cb := s.QueueDepth()
			gauge(descQEvents, float64(e), s.Name)
			gauge(descQBytes, float64(b), s.Name)
			gauge(descQCapEvents, float64(ce), s.Name)
			gauge(descQCapBytes, float64(cb), s.Name)
		}
	}
}
