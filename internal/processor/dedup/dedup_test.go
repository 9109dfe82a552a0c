package dedup

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/runtime"
)

// decode parses a pipeline whose processor "d" is a dedup with the given
// fields (YAML lines indented by four spaces) and compiles it the way the
// app does. The first field is on line 9 of test.yaml.
func decode(t *testing.T, fields string) (*Dedup, config.Errors) {
	t.Helper()
	src := "name: t\n" +
		"inputs:\n" +
		"  in: {type: generate}\n" +
		"outputs: {out: {type: discard, from: d}}\n" +
		"processors:\n" +
		"  d:\n" +
		"    type: dedup\n" +
		"    from: in\n" +
		fields
	p, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, src)
	}
	n := p.Node("d")
	cfg := DefaultConfig()
	if errs := n.Decode(&cfg); len(errs) > 0 {
		return nil, errs
	}
	return Compile(cfg, n.Path(), n.FieldPos)
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		fields string
		want   []string
	}{
		{"    ttl: -1h\n", []string{"test.yaml:9:10: processors.d.ttl: ttl -1h0m0s is out of range (expected a duration above 0 and at most 8784h (366 days))"}},
		{"    ttl: 0s\n    max_ids: 0\n", []string{
			"test.yaml:9:10: processors.d.ttl: ttl 0s is out of range",
			"test.yaml:10:14: processors.d.max_ids: max_ids 0 is out of range (expected a number from 1 to 2147483648)",
		}},
		{"    ttl_by_tenant:\n      bigco: 36h\n      tiny: 0s\n", []string{"test.yaml:11:13: processors.d.ttl_by_tenant.tiny: ttl 0s is out of range"}},
		{"    key: meta(\"id\") +\n", []string{"test.yaml:9:22: processors.d.key: unexpected end of expression"}},
		{"    key: 'lenght(id)'\n", []string{"test.yaml:9:11: processors.d.key: unknown function \"lenght\""}},
		{"    key: id > 3\n    tenant: '[org]'\n", []string{
			"test.yaml:9:10: processors.d.key: the key expression yields bool (expected an expression that yields a string or a number)",
			"test.yaml:10:14: processors.d.tenant: the tenant expression yields array",
		}},
		{"    ttl: soon\n", []string{"test.yaml:9:10: processors.d.ttl:"}},
	} {
		t.Run(strings.TrimSpace(tc.fields), func(t *testing.T) {
			d, errs := decode(t, tc.fields)
			if d != nil || len(errs) != len(tc.want) {
				t.Fatalf("got %v, %d errors; want %d errors:\n%v", d, len(errs), len(tc.want), errs)
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tc.want[i]) {
					t.Errorf("error %d:\n got: %s\nwant: %s...", i, e, tc.want[i])
				}
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	d, errs := decode(t, "")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if d.ttl != int64(time.Hour) || d.maxIDs != 20_000_000 || d.gran != int64(time.Hour)/64 {
		t.Errorf("defaults: ttl %v, max_ids %d, bucket %v", time.Duration(d.ttl), d.maxIDs, time.Duration(d.gran))
	}
	// The default tags document DefaultConfig.
	def := DefaultConfig()
	for _, f := range config.Describe(Config{}) {
		var v string
		switch f.Name {
		case "key":
			v = def.Key.Src
		case "tenant":
			v = def.Tenant.Src
		case "ttl":
			v = "1h"
			if def.TTL != time.Hour {
				v = def.TTL.String()
			}
		case "max_ids":
			v = fmt.Sprint(def.MaxIDs)
		default:
			continue
		}
		if f.Default != v {
			t.Errorf("%s: default tag %q, DefaultConfig %q", f.Name, f.Default, v)
		}
	}
	// The bucket width covers the longest ttl in maxSpan buckets.
	if g := bucketWidth(int64(time.Minute), int64(30*24*time.Hour)); (30*24*int64(time.Hour))/g > maxSpan-2 {
		t.Errorf("bucket width %v too small for 30 days", time.Duration(g))
	}
}

// Keys and tenants from JSON fields; numbers as their JSON text.
func TestJSONKeys(t *testing.T) {
	d, errs := decode(t, "    key: event.id\n    tenant: org\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	h := newHarness(t, d, runtime.Env{}, &fakeClock{t: benchStart})
	for _, tc := range []struct {
		value string
		keep  bool
	}{
		{`{"org":"a","event":{"id":"x"}}`, true},
		{`{"org":"a","event":{"id":"x"}}`, false},
		{`{"org":"b","event":{"id":"x"}}`, true},
		{`{"org":"a","event":{"id":7}}`, true},
		{`{"org":"a","event":{"id":7}}`, false},
		{`{"org":"a","event":{"id":"7"}}`, false}, // the same bytes as the number
		{`{"org":"a","event":{"id":null}}`, true},
		{`{"org":"a","event":{"id":null}}`, true},
		{`{"org":"a","event":{}}`, true},
		{`{"event":{"id":"x"}}`, true},
		{`{"event":{"id":"x"}}`, false},
	} {
		ev := event.Event{Value: []byte(tc.value)}
		h.rec.Reset(&ev)
		keep, err := h.p.Process(&h.rec)
		if err != nil || keep != tc.keep {
			t.Errorf("%s: Process = %v, %v; want %v", tc.value, keep, err, tc.keep)
		}
	}
	if s := h.p.stats(); s.missing != 3 || s.held != 4 {
		t.Errorf("missing %d, held %d; want 3, 4", s.missing, s.held)
	}
	// Not JSON: the record's parse error, for the node's on_error.
	ev := event.Event{Value: []byte(`{"org":`), Offset: 9}
	h.rec.Reset(&ev)
	var pe *runtime.ParseError
	if keep, err := h.p.Process(&h.rec); keep || !errors.As(err, &pe) {
		t.Errorf("invalid JSON: Process = %v, %v; want a *runtime.ParseError", keep, err)
	}
	// An expression that fails on the data returns its error.
	d, errs = decode(t, "    key: int(n)\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	h = newHarness(t, d, runtime.Env{}, &fakeClock{t: benchStart})
	ev = event.Event{Value: []byte(`{"n":"abc"}`)}
	h.rec.Reset(&ev)
	var ee *expr.EvalError
	if keep, err := h.p.Process(&h.rec); keep || !errors.As(err, &ee) {
		t.Errorf("bad data: Process = %v, %v; want an *expr.EvalError", keep, err)
	}
}

// Ids of 1h tenants expire on time whatever bigco's 36h ids do, and their
// slots are used again: a second wave of ids takes no more memory.
func TestTenantIndependence(t *testing.T) {
	d := mustCompile(t, Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: time.Hour,
		TTLByTenant: map[string]time.Duration{"bigco": 36 * time.Hour}, MaxIDs: 1 << 20})
	h := newHarness(t, d, runtime.Env{}, &fakeClock{t: benchStart})
	const n = 100_000
	wave := func(start int64, prefix string) {
		for i := range n {
			at := start + int64(i)*int64(30*time.Minute)/n
			tenant := []string{"acme", "initech", "bigco"}[i%3]
			if !h.send(at, tenant, fmt.Sprint(prefix, i)) {
				t.Fatalf("new id %s%d dropped", prefix, i)
			}
		}
	}
	wave(benchStart, "w1-")
	s1 := h.p.stats()
	bigco := n / 3 // i%3 == 2
	if s1.held != n {
		t.Fatalf("held %d, want %d", s1.held, n)
	}
	// 1h + 30m + a bucket later every 1h id has expired.
	later := benchStart + int64(90*time.Minute) + d.gran
	if !h.send(later, "acme", "w1-0") || h.send(later, "bigco", "w1-2") {
		t.Fatalf("after 1h30m: acme's id should pass, bigco's be dropped")
	}
	s2 := h.p.stats()
	if s2.held != bigco+1 {
		t.Errorf("held after 1h ids expired: %d, want %d", s2.held, bigco+1)
	}
	if s2.buckets >= s1.buckets || s2.buckets > s1.buckets/2+2 {
		t.Errorf("buckets %d -> %d: the 1h buckets were not released", s1.buckets, s2.buckets)
	}
	mem := h.p.tab.memoryBytes()
	wave(later, "w2-")
	if s3 := h.p.stats(); s3.held != bigco+1+n {
		t.Errorf("held after a second wave: %d, want %d", s3.held, bigco+1+n)
	}
	// bigco's ids from the first wave are still there; the 1h ones of the
	// first wave were replaced, not added to.
	if got := h.p.tab.memoryBytes(); got != mem {
		t.Errorf("memory %d -> %d: expired slots were not reused", mem, got)
	}
}

func TestEvictionLogged(t *testing.T) {
	var logs logBuffer
	d := mustCompile(t, Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: time.Hour, MaxIDs: 10})
	h := newHarness(t, d, runtime.Env{Logger: logs.logger()}, &fakeClock{t: benchStart})
	for i := range 50 {
		h.send(benchStart+int64(i)*int64(time.Minute), "acme", fmt.Sprint(i))
	}
	// 40 evictions over 50 minutes: logged once every 10 seconds at most,
	// so here at most once per event that evicted.
	n := logs.lines("max_ids")
	if s := h.p.stats(); s.evicted == 0 || n == 0 || n > 40 || s.held > 10 {
		t.Errorf("evicted %d, held %d, %d log lines", s.evicted, s.held, n)
	}
	logs.b.Reset()
	for i := range 50 {
		h.send(benchStart+int64(50*time.Minute)+int64(i)*int64(time.Millisecond), "acme", fmt.Sprint("x", i))
	}
	if n := logs.lines("max_ids"); n != 1 {
		t.Errorf("%d log lines within 10s, want 1", n)
	}
}

func TestMemoryOnlyWarning(t *testing.T) {
	var logs logBuffer
	d := mustCompile(t, DefaultConfig())
	for i := range 3 {
		newHarness(t, d, runtime.Env{Instance: i, Parallelism: 3, Logger: logs.logger()}, &fakeClock{t: benchStart})
	}
	newHarness(t, d, runtime.Env{Checkpointing: true, Logger: logs.logger()}, &fakeClock{t: benchStart})
	if n := logs.lines("memory only"); n != 1 {
		t.Errorf("%d warnings, want 1 (instance 0, without checkpoints)", n)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	d := mustCompile(t, Config{Key: DefaultConfig().Key, Tenant: DefaultConfig().Tenant, TTL: time.Hour,
		TTLByTenant: map[string]time.Duration{"bigco": 36 * time.Hour}, MaxIDs: 1000})
	h0 := newHarness(t, d, runtime.Env{Node: "dd", Parallelism: 2, Registerer: reg}, &fakeClock{t: benchStart})
	h1 := newHarness(t, d, runtime.Env{Node: "dd", Instance: 1, Parallelism: 2, Registerer: reg}, &fakeClock{t: benchStart})
	other := newHarness(t, mustCompile(t, DefaultConfig()), runtime.Env{Node: "other", Registerer: reg}, &fakeClock{t: benchStart})
	for _, h := range []*harness{h0, h1} {
		h.send(benchStart, "bigco", "a")
		h.send(benchStart, "bigco", "a")
		h.send(benchStart, "acme", "a")
		h.send(benchStart, "acme", "a")
		h.send(benchStart, "acme", "-")
		for i := range 100 {
			h.send(benchStart, fmt.Sprint("t", i), "z")
			h.send(benchStart, fmt.Sprint("t", i), "z")
		}
	}
	other.send(benchStart, "x", "1")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			got[mf.GetName()+labels(m)] = value(m)
		}
	}
	want := map[string]float64{
		`weir_dedup_ids_held{node="dd"}`:                              2 * 102,
		`weir_dedup_ids_held{node="other"}`:                           1,
		`weir_dedup_evicted_early_total{node="dd"}`:                   0,
		`weir_dedup_missing_key_total{node="dd"}`:                     2,
		`weir_dedup_duplicates_total{node="dd",tenant="bigco"}`:       2,
		`weir_dedup_duplicates_total{node="dd",tenant="acme"}`:        2,
		`weir_dedup_duplicates_total{node="dd",tenant="t0"}`:          2,
		`weir_dedup_duplicates_total{node="dd",tenant="t61"}`:         2,
		`weir_dedup_duplicates_total{node="dd",tenant="other"}`:       2 * 38,
		`weir_dedup_duplicates_total{node="other",tenant="other"}`:    0,
		`weir_dedup_memory_bytes{node="other"}`:                       float64(other.p.tab.memoryBytes()),
		`weir_dedup_duplicates_total{node="dd",tenant="t62"}`:         0, // absent
		`weir_dedup_duplicates_total{node="dd",tenant="unused-name"}`: 0, // absent
	}
	for k, v := range want {
		if v == 0 && strings.Contains(k, "tenant=\"t62\"") || strings.Contains(k, "unused") {
			if _, ok := got[k]; ok {
				t.Errorf("%s is exported: the tenant label is not bounded", k)
			}
			continue
		}
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	n := 0
	for k := range got {
		if strings.HasPrefix(k, `weir_dedup_duplicates_total{node="dd"`) {
			n++
		}
	}
	if n != maxTenantLabels+1 {
		t.Errorf("%d tenant label values, want %d", n, maxTenantLabels+1)
	}
}

func labels(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// Another collector with the same metric names is an error, not a panic.
func TestMetricsConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "weir_dedup_ids_held", Help: "x"}, []string{"node"}))
	d := mustCompile(t, DefaultConfig())
	if _, err := d.newProcessor(runtime.Env{Node: "d", Registerer: reg}, (&fakeClock{t: benchStart}).now); err == nil {
		t.Fatal("no error for a conflicting collector")
	}
}

// Process allocates nothing in steady state.
func TestProcessAllocs(t *testing.T) {
	d := mustCompile(t, DefaultConfig())
	h := newHarness(t, d, runtime.Env{Checkpointing: true}, &fakeClock{t: benchStart})
	evs := make([]event.Event, 1000)
	for i := range evs {
		evs[i] = event.Event{Value: []byte(`{}`), Headers: []event.Header{
			{Key: "tenant", Value: []byte("acme")}, {Key: "event_id", Value: fmt.Appendf(nil, "e%d", i)}}}
	}
	i := 0
	allocs := testing.AllocsPerRun(5000, func() {
		h.rec.Reset(&evs[i%len(evs)])
		i++
		if _, err := h.p.Process(&h.rec); err != nil {
			t.Fatal(err)
		}
	})
	// The change log grows by doubling until a checkpoint takes it.
	if allocs > 0.01 {
		t.Errorf("%.3f allocations per event", allocs)
	}
}
