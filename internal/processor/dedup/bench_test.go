package dedup

import (
	"encoding/binary"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// benchIDs is how many ids the benchmarks hold.
const benchIDs = 10_000_000

// steady is an instance holding benchIDs ids of a 1h tenant, with the clock
// advancing so that ids expire as fast as new ones arrive: the steady state
// of a busy collector.
type steady struct {
	p    *Processor
	clk  *fakeClock
	info tenantInfo
	step int64
	id   uint64
	key  [16]byte
}

func newSteady(b *testing.B, persist bool) *steady {
	b.Helper()
	cfg := DefaultConfig()
	cfg.MaxIDs = 2 * benchIDs
	d := mustCompile(b, cfg)
	s := &steady{clk: &fakeClock{t: benchStart}, step: int64(time.Hour) / benchIDs}
	var err error
	s.p, err = d.newProcessor(runtime.Env{Node: "d", Parallelism: 1, Checkpointing: persist}, s.clk.now)
	if err != nil {
		b.Fatal(err)
	}
	s.info = s.p.tenantInfo([]byte("acme"))
	copy(s.key[8:], "-sdk-evt")
	for range benchIDs {
		s.p.check(s.next(), s.info, s.clk.t, -1)
	}
	s.p.delta = s.p.delta[:0]
	return s
}

// next returns the fingerprint of a new id and moves the clock.
func (s *steady) next() uint64 {
	s.id++
	binary.LittleEndian.PutUint64(s.key[:8], s.id)
	s.clk.t += s.step
	return fingerprint(s.info.hash, s.key[:])
}

func (s *steady) report(b *testing.B) {
	st := s.p.stats()
	reportCPU(b)
	b.ReportMetric(float64(st.held), "ids")
	b.ReportMetric(float64(s.p.tab.memoryBytes())/float64(st.held), "bytes/id")
}

// cpuStart is the process CPU time when the timer was last reset. On a
// shared machine wall-clock ns/op includes time the benchmark waited for a
// core; cpu-ns/op does not.
var cpuStart time.Duration

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func resetTimer(b *testing.B) {
	b.ResetTimer()
	cpuStart = processCPU()
}

func reportCPU(b *testing.B) {
	if cpu := processCPU() - cpuStart; cpu > 0 && b.N > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkDedup10M measures one lookup+insert of a new id while the
// instance holds 10 million: "table" is the hash table alone (fingerprint,
// floor, probe, insert); "instance" adds what Process adds around it (the
// mutex, the change log of checkpoints).
func BenchmarkDedup10M(b *testing.B) {
	b.Run("table", func(b *testing.B) {
		s := newSteady(b, false)
		t, g, ttl := s.p.tab, s.p.d.gran, s.info.ttl
		b.ReportAllocs()
		resetTimer(b)
		for b.Loop() {
			fp := s.next()
			if f := s.clk.t / g; f > t.floor {
				t.advance(f)
			}
			if held, _ := t.put(fp, (s.clk.t+ttl)/g+1); held {
				b.Fatal("a new id was held")
			}
		}
		b.StopTimer()
		s.report(b)
	})
	b.Run("instance", func(b *testing.B) {
		s := newSteady(b, true)
		b.ReportAllocs()
		resetTimer(b)
		for b.Loop() {
			if s.p.check(s.next(), s.info, s.clk.t, -1) {
				b.Fatal("a new id was held")
			}
			if len(s.p.delta) == 1<<20 {
				s.p.delta = s.p.delta[:0] // a checkpoint took them
			}
		}
		b.StopTimer()
		s.report(b)
	})
}

// BenchmarkMutex is the cost of the instance's lock per event, uncontended.
func BenchmarkMutex(b *testing.B) {
	var mu sync.Mutex
	n := 0
	for b.Loop() {
		mu.Lock()
		n++
		mu.Unlock()
	}
}

// sdkEvent is an analytics event as SDKs send it, about 400 bytes, with a
// 16-digit id at a fixed place so the benchmark can change it in place.
const sdkEvent = `{"type":"track","event":"Order Completed","messageId":"ID-0000000000000000","org":"acme",` +
	`"userId":"u-84512","timestamp":"2024-05-01T12:00:00.000Z","context":{"library":{"name":"analytics.js","version":"4.1.0"},` +
	`"page":{"path":"/checkout/done","url":"https://shop.example.com/checkout/done"},"locale":"en-US"},` +
	`"properties":{"order_id":"o-1299","total":129.5,"currency":"EUR","products":[{"sku":"a-1","qty":2},{"sku":"b-7","qty":1}]}}`

// BenchmarkProcess runs Process on real JSON records while 10 million ids
// are held, every event new: "headers" reads the id and tenant from the
// collector's headers (the JSON is never parsed), "json" from the body.
func BenchmarkProcess(b *testing.B) {
	for _, bc := range []struct {
		name, key, tenant string
		batched           bool // as in a pipeline: the lock and the clock once per 256 events
	}{
		{"headers", `meta("event_id")`, `meta("tenant")`, false},
		{"headers-batched", `meta("event_id")`, `meta("tenant")`, true},
		{"json", "messageId", "org", false},
		{"json-batched", "messageId", "org", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Key.Src, cfg.Tenant.Src, cfg.MaxIDs = bc.key, bc.tenant, 2*benchIDs
			d := mustCompile(b, cfg)
			clk := &fakeClock{t: benchStart}
			p, err := d.newProcessor(runtime.Env{Node: "d", Parallelism: 1, Checkpointing: true}, clk.now)
			if err != nil {
				b.Fatal(err)
			}
			step := int64(time.Hour) / benchIDs
			info := p.tenantInfo([]byte("acme"))
			for i := range uint64(benchIDs) {
				clk.t += step
				p.check(mix(i)|1, info, clk.t, -1)
			}
			p.delta = p.delta[:0]
			value := []byte(sdkEvent)
			idAt := len(`{"type":"track","event":"Order Completed","messageId":"ID-`)
			id := value[idAt : idAt+16]
			hdrID := make([]byte, 16)
			ev := event.Event{Value: value, Headers: []event.Header{
				{Key: "tenant", Value: []byte("acme")}, {Key: "received_at", Value: []byte("2024-05-01T12:00:00.123Z")},
				{Key: "event_id", Value: hdrID}}}
			var rec runtime.Record
			n := uint64(0)
			b.SetBytes(int64(len(value)))
			b.ReportAllocs()
			resetTimer(b)
			for b.Loop() {
				n++
				if bc.batched && n%256 == 1 {
					p.BeginBatch(0)
				}
				putHex(id, n)
				putHex(hdrID, n)
				clk.t += step
				rec.Reset(&ev)
				keep, err := p.Process(&rec)
				if err != nil || !keep {
					b.Fatalf("Process = %v, %v", keep, err)
				}
				if len(p.delta) == 1<<20 {
					p.delta = p.delta[:0]
				}
				if bc.batched && n%256 == 0 {
					p.EndBatch()
				}
			}
			if p.inBatch {
				p.EndBatch()
			}
			b.StopTimer()
			reportCPU(b)
		})
	}
}

// putHex writes n as 16 hex digits, with two 8-byte stores: the hash reads
// the id as 8-byte words right after, and a word assembled from byte
// stores could not be forwarded to it (the read would wait for the writes
// to retire, which a real input, writing long before, never causes).
func putHex(dst []byte, n uint64) {
	const digits = "0123456789abcdef"
	var w [2]uint64
	for i := range 16 {
		w[i/8] |= uint64(digits[n>>(60-4*i)&15]) << (8 * (i % 8))
	}
	binary.LittleEndian.PutUint64(dst[0:8], w[0])
	binary.LittleEndian.PutUint64(dst[8:16], w[1])
}
