package collector

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/weir-dev/weir/internal/log"
)

// benchEvent returns event i: about 200 bytes of compact JSON, shaped like
// a web-analytics event.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"event_id":"%08x-1b5e-4d6a-8a8e-2f3c4d5e6f70","type":"view","user_id":"u_%d","ts":%d,"page":"/products/%d","referrer":"https://www.example.com/","props":{"price":19.99,"currency":"EUR"}}`,
		i, i%10000, 1714550400000+int64(i), i%977)
}

// BenchmarkCollectorBatch100 measures acknowledged events per second with
// batches of 100 events of about 200 bytes: real HTTP over loopback into a
// real log, 64 keep-alive connections (a fleet of SDK clients). One op is
// one request.
//
// Sub-benchmarks: durability=fsync is the product's default and the figure
// that counts; durability=none takes the disk out, to show the CPU cost of
// HTTP and the collector; log-only appends the same records straight to the
// log from as many goroutines, the ceiling the disk allows.
func BenchmarkCollectorBatch100(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(benchEvent(i))
	}
	body.WriteByte(']')
	benchVariants(b, pathBatch, body.Bytes(), 100, 64)
}

// BenchmarkCollectorSingle measures acknowledged requests per second with
// one event each: real HTTP over loopback into a real log, 64 keep-alive
// connections. One op is one request. Sub-benchmarks as for
// BenchmarkCollectorBatch100.
func BenchmarkCollectorSingle(b *testing.B) {
	benchVariants(b, pathEvents, []byte(benchEvent(1)), 1, 64)
}

func benchVariants(b *testing.B, path string, body []byte, events, conns int) {
	b.Run("durability=fsync", func(b *testing.B) { benchCollector(b, log.DurabilityFsync, path, body, events, conns) })
	b.Run("durability=none", func(b *testing.B) { benchCollector(b, log.DurabilityNone, path, body, events, conns) })
	b.Run("log-only", func(b *testing.B) { benchLogOnly(b, path, body, events, conns) })
}

// benchLogOnly appends what the collector would, straight to a log with
// fsync from conns goroutines: no HTTP, no parsing.
func benchLogOnly(b *testing.B, path string, body []byte, events, conns int) {
	p, err := log.Open(b.TempDir(), log.Options{Durability: log.DurabilityFsync})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	s, err := New(testConfig(), partitionAppender{p}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	form := formBatch
	if path == pathEvents {
		form = formSingle
	}
	st := s.states.Get().(*reqState)
	if err := st.dec.decode(body, form); err != nil || st.dec.accepted != events {
		b.Fatalf("decode: %v", err)
	}
	recs := s.records(st, &fasthttp.RequestCtx{}, s.tenants[sha256.Sum256([]byte(keyShop))], body, time.Now())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	b.ResetTimer()
	for range conns {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := p.Append(context.Background(), recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

func benchCollector(b *testing.B, durability log.Durability, path string, body []byte, events, conns int) {
	p, err := log.Open(b.TempDir(), log.Options{Durability: durability})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	cfg := testConfig()
	cfg.Limits.MaxInFlight = 2 * conns
	s := newServer(b, cfg, partitionAppender{p}, Options{})
	request := []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		path, keyShop, len(body), body))

	clients := make([]*rawClient, conns)
	for i := range clients {
		clients[i] = dialRaw(b, s.Addr().String())
		clients[i].do(b, request) // connect and warm up
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	b.ResetTimer()
	for _, c := range clients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if !c.do(b, request) {
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	if cpu > 0 {
		b.ReportMetric(float64(b.N*events)/cpu.Seconds(), "events/cpu-s")
	}
	m := p.Metrics()
	b.ReportMetric(float64(m.Appends)/float64(max(m.Syncs, 1)), "appends/fsync")
	if got := p.HighWatermark(); got != int64((b.N+conns)*events) {
		b.Errorf("log holds %d records, want %d", got, (b.N+conns)*events)
	}
	for _, c := range clients {
		c.conn.Close()
	}
}

// rawClient speaks just enough HTTP/1.1 for the benchmark, so the client's
// CPU cost, which shares the machine with the server, stays small.
type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(b *testing.B, addr string) *rawClient {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	return &rawClient{conn: conn, r: bufio.NewReaderSize(conn, 4096)}
}

// do sends request and reads the response; it reports a non-200 answer as
// an error.
func (c *rawClient) do(b *testing.B, request []byte) bool {
	if _, err := c.conn.Write(request); err != nil {
		b.Error(err)
		return false
	}
	status, err := c.r.ReadSlice('\n')
	if err != nil {
		b.Error(err)
		return false
	}
	ok := bytes.HasPrefix(status, []byte("HTTP/1.1 200 "))
	length := -1
	for {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			b.Error(err)
			return false
		}
		if len(line) <= 2 {
			break
		}
		if k, v, found := bytes.Cut(line, []byte(":")); found && bytes.EqualFold(k, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if length < 0 {
		b.Error("response without Content-Length")
		return false
	}
	if _, err := c.r.Discard(length); err != nil {
		b.Error(err)
		return false
	}
	if !ok {
		b.Errorf("answered %s", bytes.TrimSpace(status))
		return false
	}
	return true
}

// BenchmarkDecodeBatch100 measures framing and validating a batch of 100
// events of about 200 bytes, the collector's own work per request besides
// HTTP and the log. One op is one batch.
func BenchmarkDecodeBatch100(b *testing.B) {
	var body bytes.Buffer
	body.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(benchEvent(i))
	}
	body.WriteByte(']')
	d := newDecoder(DefaultConfig().Limits, []string{"event_id", "messageId"})
	b.SetBytes(int64(body.Len()))
	b.ReportAllocs()
	for b.Loop() {
		if err := d.decode(body.Bytes(), formBatch); err != nil || d.accepted != 100 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}
