package control

import (
	"context"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/weir-dev/weir/internal/runtime"
)

// sampler records every node's and stage's counters once per interval in
// a fixed ring (15 minutes of seconds by default, allocated once), and the
// latency histograms in a short ring, from one goroutine: the pipeline's
// hot path never sees it. Rates and time series are differences between
// samples.
type sampler struct {
	p     *runtime.Pipeline
	g     prometheus.Gatherer
	every time.Duration

	mu    sync.Mutex
	ring  []sample
	head  int // index of the newest sample
	count int
	hists []histSnapshot // ring of the last len(hists) gathers
	hHead int
	hLen  int
}

type sample struct {
	at     int64 // Unix nanoseconds
	nodes  []nodeSample
	stages []stageSample
}

type nodeSample struct{ in, out, errors uint64 }

type stageSample struct {
	busy, backpressure int64 // nanoseconds, cumulative
	queueFill          float64
}

// histSnapshot holds the cumulative buckets of the latency histograms at
// one time, by series ("stage NAME" for batch durations, "output NAME"
// for end-to-end latency).
type histSnapshot struct {
	at     int64
	series map[string]hist
}

type hist struct {
	bounds []float64 // upper bounds, seconds, without +Inf
	counts []uint64  // cumulative count per bound
	total  uint64
}

const histKeep = 16

func newSampler(p *runtime.Pipeline, g prometheus.Gatherer, every, history time.Duration) *sampler {
	n := max(int(history/every), 2) + 1
	s := &sampler{p: p, g: g, every: every, ring: make([]sample, n), hists: make([]histSnapshot, histKeep)}
	for i := range s.ring {
		s.ring[i].nodes = make([]nodeSample, len(p.Nodes()))
		s.ring[i].stages = make([]stageSample, len(p.Stages()))
	}
	s.head = n - 1
	s.tick(time.Now())
	return s
}

// run samples every interval until ctx ends.
func (s *sampler) run(ctx context.Context) {
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.tick(now)
		}
	}
}

func (s *sampler) tick(now time.Time) {
	hs := gatherHists(s.g, now)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.head = (s.head + 1) % len(s.ring)
	s.count = min(s.count+1, len(s.ring))
	read(s.p, now, &s.ring[s.head])
	s.hHead = (s.hHead + 1) % len(s.hists)
	s.hLen = min(s.hLen+1, len(s.hists))
	s.hists[s.hHead] = hs
}

// read fills smp from the pipeline's counters; smp's slices are sized.
func read(p *runtime.Pipeline, now time.Time, smp *sample) {
	smp.at = now.UnixNano()
	for i, n := range p.Nodes() {
		smp.nodes[i] = nodeSample{in: n.In.Load(), out: n.Out.Load(), errors: n.Errors.Load()}
	}
	for i, st := range p.Stages() {
		smp.stages[i] = stageSample{busy: st.Busy.Load(), backpressure: st.Backpressure.Load(), queueFill: queueFill(st)}
	}
}

func queueFill(st *runtime.StageStats) float64 {
	e, b, ce, cb := st.QueueDepth()
	f := 0.0
	if ce > 0 {
		f = float64(e) / float64(ce)
	}
	if cb > 0 {
		f = max(f, float64(b)/float64(cb))
	}
	return f
}

// live returns a sample of the counters now.
func (s *sampler) live(now time.Time) sample {
	smp := sample{nodes: make([]nodeSample, len(s.p.Nodes())), stages: make([]stageSample, len(s.p.Stages()))}
	read(s.p, now, &smp)
	return smp
}

// base returns a copy of the newest sample taken at least window before
// now, or of the oldest one there is.
func (s *sampler) base(now time.Time, window time.Duration) sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := now.Add(-window).UnixNano()
	idx := s.head
	for k := 0; k < s.count; k++ {
		i := (s.head - k + len(s.ring)) % len(s.ring)
		idx = i
		if s.ring[i].at <= cut {
			break
		}
	}
	b := s.ring[idx]
	return sample{at: b.at, nodes: append([]nodeSample(nil), b.nodes...), stages: append([]stageSample(nil), b.stages...)}
}

// series returns copies of the samples of the last span (all of them for
// span <= 0), oldest first.
func (s *sampler) series(span time.Duration) []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var cut int64 = math.MinInt64
	if span > 0 {
		cut = s.ring[s.head].at - span.Nanoseconds()
	}
	var out []sample
	for k := s.count - 1; k >= 0; k-- {
		smp := s.ring[(s.head-k+len(s.ring))%len(s.ring)]
		if smp.at < cut {
			continue
		}
		out = append(out, sample{at: smp.at, nodes: append([]nodeSample(nil), smp.nodes...), stages: append([]stageSample(nil), smp.stages...)})
	}
	return out
}

// quantiles estimates the p50 and p99 of series key over the last window
// from the gathered histograms; ok is false when nothing was observed.
func (s *sampler) quantiles(key string, now time.Time, window time.Duration) (p50, p99 float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hLen == 0 {
		return 0, 0, false
	}
	newest := s.hists[s.hHead].series[key]
	var old hist
	cut := now.Add(-window).UnixNano()
	for k := 1; k < s.hLen; k++ {
		h := s.hists[(s.hHead-k+len(s.hists))%len(s.hists)]
		old = h.series[key]
		if h.at <= cut {
			break
		}
	}
	d := newest.minus(old)
	if d.total == 0 {
		return 0, 0, false
	}
	return d.quantile(0.5), d.quantile(0.99), true
}

func (h hist) minus(o hist) hist {
	if len(o.counts) != len(h.counts) || o.total > h.total {
		return h
	}
	d := hist{bounds: h.bounds, counts: make([]uint64, len(h.counts)), total: h.total - o.total}
	for i := range h.counts {
		d.counts[i] = h.counts[i] - o.counts[i]
	}
	return d
}

// quantile interpolates linearly inside the bucket holding rank q·total,
// as Prometheus' histogram_quantile does; past the last bound it answers
// the last bound.
func (h hist) quantile(q float64) float64 {
	rank := q * float64(h.total)
	i := sort.Search(len(h.counts), func(i int) bool { return float64(h.counts[i]) >= rank })
	if i == len(h.counts) {
		if len(h.bounds) == 0 {
			return 0
		}
		return h.bounds[len(h.bounds)-1]
	}
	lo, below := 0.0, uint64(0)
	if i > 0 {
		lo, below = h.bounds[i-1], h.counts[i-1]
	}
	in := h.counts[i] - below
	if in == 0 {
		return h.bounds[i]
	}
	return lo + (h.bounds[i]-lo)*(rank-float64(below))/float64(in)
}

// The histograms the API reads, and the label that names their series.
var histFamilies = map[string]struct{ label, prefix string }{
	"weir_stage_batch_duration_seconds": {"stage", "stage "},
	"weir_output_latency_seconds":       {"node", "output "},
}

func gatherHists(g prometheus.Gatherer, now time.Time) histSnapshot {
	hs := histSnapshot{at: now.UnixNano(), series: map[string]hist{}}
	mfs, _ := g.Gather() // a partial result is still useful
	for _, mf := range mfs {
		fam, ok := histFamilies[mf.GetName()]
		if !ok || mf.GetType() != dto.MetricType_HISTOGRAM {
			continue
		}
		for _, m := range mf.GetMetric() {
			name := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == fam.label {
					name = lp.GetValue()
				}
			}
			ph := m.GetHistogram()
			h := hist{total: ph.GetSampleCount()}
			for _, b := range ph.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					continue
				}
				h.bounds = append(h.bounds, b.GetUpperBound())
				h.counts = append(h.counts, b.GetCumulativeCount())
			}
			hs.series[fam.prefix+name] = h
		}
	}
	return hs
}
