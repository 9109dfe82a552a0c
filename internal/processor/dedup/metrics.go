package dedup

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// maxTenantLabels bounds the tenant label of the duplicates metric: the
// tenants of ttl_by_tenant and the first others seen get their own value,
// later ones are counted as "other".
const maxTenantLabels = 64

// tenantLabels assigns the tenant label values of one node. Index 0 is
// "other". Instances share it; once full it never changes and is read
// without the lock.
type tenantLabels struct {
	full  atomic.Bool
	mu    sync.Mutex
	idx   map[string]int // guarded by mu until full is set
	names []string       // guarded by mu
}

func newTenantLabels(known []string) *tenantLabels {
	l := &tenantLabels{idx: map[string]int{}, names: []string{"other"}}
	for _, t := range known {
		l.add(t)
	}
	return l
}

func (l *tenantLabels) add(t string) int {
	if i, ok := l.idx[t]; ok {
		return i
	}
	if len(l.names) > maxTenantLabels {
		return 0
	}
	name := t
	if name == "" {
		name = "none"
	}
	l.idx[t] = len(l.names)
	l.names = append(l.names, name)
	if len(l.names) > maxTenantLabels {
		l.full.Store(true)
	}
	return len(l.names) - 1
}

// index returns the label index of tenant t.
func (l *tenantLabels) index(t []byte) int {
	if l.full.Load() {
		return l.idx[string(t)]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.add(string(t))
}

func (l *tenantLabels) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.names...)
}

var (
	descDuplicates = prometheus.NewDesc("weir_dedup_duplicates_total",
		"Events dropped because their id was seen within the ttl, by tenant (the first 64 tenants seen, then \"other\").", []string{"node", "tenant"}, nil)
	descHeld = prometheus.NewDesc("weir_dedup_ids_held",
		"Ids remembered, summed over the node's instances.", []string{"node"}, nil)
	descMemory = prometheus.NewDesc("weir_dedup_memory_bytes",
		"Memory of the id tables and of the changes not yet checkpointed, summed over the node's instances.", []string{"node"}, nil)
	descEvicted = prometheus.NewDesc("weir_dedup_evicted_early_total",
		"Ids forgotten before their ttl because max_ids was reached: their duplicates pass.", []string{"node"}, nil)
	descMissing = prometheus.NewDesc("weir_dedup_missing_key_total",
		"Events passed on without a check because their key was missing, null or empty.", []string{"node"}, nil)
)

// collector reads every dedup instance registered with one registry at
// scrape time; the instances keep plain counters under their own mutex.
type collector struct {
	mu    sync.Mutex
	procs []*Processor
}

// register adds p to the registry's dedup collector, creating it the first
// time.
func register(reg prometheus.Registerer, p *Processor) error {
	c := &collector{}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if !errors.As(err, &are) {
			return fmt.Errorf("dedup metrics: %w", err)
		}
		existing, ok := are.ExistingCollector.(*collector)
		if !ok {
			return fmt.Errorf("dedup metrics: another collector has the same metric names: %w", err)
		}
		c = existing
	}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return nil
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDuplicates, descHeld, descMemory, descEvicted, descMissing} {
		ch <- d
	}
}

type nodeTotals struct {
	held, memory, evicted, missing float64
	dups                           map[string]float64
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	procs := append([]*Processor(nil), c.procs...)
	c.mu.Unlock()
	nodes := map[string]*nodeTotals{}
	var order []string
	for _, p := range procs {
		n := nodes[p.env.Node]
		if n == nil {
			n = &nodeTotals{dups: map[string]float64{}}
			nodes[p.env.Node] = n
			order = append(order, p.env.Node)
		}
		s := p.stats()
		n.held += float64(s.held)
		n.memory += float64(s.memory)
		n.evicted += float64(s.evicted)
		n.missing += float64(s.missing)
		for i, name := range p.d.labels.list() {
			n.dups[name] += float64(s.dups[i])
		}
	}
	for _, node := range order {
		n := nodes[node]
		ch <- prometheus.MustNewConstMetric(descHeld, prometheus.GaugeValue, n.held, node)
		ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, n.memory, node)
		ch <- prometheus.MustNewConstMetric(descEvicted, prometheus.CounterValue, n.evicted, node)
		ch <- prometheus.MustNewConstMetric(descMissing, prometheus.CounterValue, n.missing, node)
		for tenant, v := range n.dups {
			ch <- prometheus.MustNewConstMetric(descDuplicates, prometheus.CounterValue, v, node, tenant)
		}
	}
}
