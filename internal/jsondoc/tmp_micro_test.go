package jsondoc

import "testing"

var sinkV Value

func benchLookup(b *testing.B, key string) {
	var d Doc
	if err := d.Parse(benchEvent); err != nil {
		b.Fatal(err)
	}
	p := []Seg{Key(key)}
	for b.Loop() {
		sinkV = d.Lookup(p)
	}
}
func BenchmarkMicroType(b *testing.B)    { benchLookup(b, "type") }
func BenchmarkMicroPrice(b *testing.B)   { benchLookup(b, "price") }
func BenchmarkMicroTs(b *testing.B)      { benchLookup(b, "ts") }
func BenchmarkMicroEventID(b *testing.B) { benchLookup(b, "event_id") }
func BenchmarkMicroMissing(b *testing.B) { benchLookup(b, "nope") }
