package log

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures acknowledged appends of 200-byte records, one or
// 100 per Append call, with 1 and 16 concurrent appenders, fsync on and
// off. One op is one Append call.
func BenchmarkAppend(b *testing.B) {
	for _, d := range []Durability{DurabilityFsync, DurabilityNone} {
		for _, perAppend := range []int{1, 100} {
			for _, writers := range []int{1, 16} {
				b.Run(fmt.Sprintf("durability=%s/records=%d/appenders=%d", d, perAppend, writers), func(b *testing.B) {
					benchAppend(b, d, perAppend, writers)
				})
			}
		}
	}
}

func benchAppend(b *testing.B, d Durability, perAppend, writers int) {
	p := mustOpen(b, b.TempDir(), Options{Durability: d})
	defer p.Close()
	recs := make([]Record, perAppend)
	for i := range recs {
		recs[i].Value = make([]byte, 200)
	}
	b.ReportAllocs()
	b.SetBytes(int64(200 * perAppend))
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		n := b.N / writers
		if w < b.N%writers {
			n++
		}
		wg.Go(func() {
			for range n {
				if _, err := p.Append(context.Background(), recs); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	m := p.Metrics()
	b.ReportMetric(float64(b.N*perAppend)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(m.Appends)/float64(max(m.Writes, 1)), "appends/write")
}

// BenchmarkReadFrom reads 1 MiB at a time from a partition of 200-byte
// records with three headers each (as the collector writes them), appended
// 100 per batch. It reports records per second.
// BenchmarkReadFrom reads back 100 writes of 100 records (about 3 MiB):
// from the file (tail off), and from the writes the committer kept.
func BenchmarkReadFrom(b *testing.B) {
	for _, c := range []struct {
		name string
		tail int
	}{{"file", -1}, {"tail", 0}} {
		b.Run(c.name, func(b *testing.B) { benchmarkReadFrom(b, c.tail) })
	}
}

func benchmarkReadFrom(b *testing.B, tail int) {
	p := mustOpen(b, b.TempDir(), Options{Durability: DurabilityNone, TailBytes: tail})
	defer p.Close()
	recs := make([]Record, 100)
	for i := range recs {
		recs[i] = Record{Key: []byte(fmt.Sprintf("id-%06d", i)), Value: make([]byte, 200),
			Headers: []Header{{Key: "tenant", Value: []byte("acme")}, {Key: "received_at", Value: []byte("2026-01-01T00:00:00.000Z")}, {Key: "event_id", Value: []byte(fmt.Sprintf("id-%06d", i))}}}
	}
	for range 100 {
		if _, err := p.Append(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
	hw := p.HighWatermark()
	b.ReportAllocs()
	var n, off int64
	for b.Loop() {
		got, next, err := p.ReadFrom(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		n += int64(len(got))
		off = next
		if off == hw {
			off = 0
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
