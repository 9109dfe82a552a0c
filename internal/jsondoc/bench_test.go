package jsondoc

import "testing"

var benchEvent = []byte(`{"event_id":"5f0c6a1e-3b7d-4c2a-9e8f-1a2b3c4d5e6f","user_id":"u_10432","type":"click","ts":1763900000123,"price":12.99,"page":"/products/42?ref=home","user_agent":"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"}`)

func BenchmarkValidate(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	for b.Loop() {
		if err := Validate(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	var d Doc
	for b.Loop() {
		if err := d.Parse(benchEvent); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupTopLevel(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	var d Doc
	if err := d.Parse(benchEvent); err != nil {
		b.Fatal(err)
	}
	typ := []Seg{Key("type")}
	price := []Seg{Key("price")}
	ts := []Seg{Key("ts")}
	for b.Loop() {
		if v := d.Lookup(typ); v.Kind != String {
			b.Fatal(v)
		}
		if v := d.Lookup(price); v.Kind != Float {
			b.Fatal(v)
		}
		if v := d.Lookup(ts); v.Kind != Int {
			b.Fatal(v)
		}
	}
}

func BenchmarkParseSetDeleteAppend(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchEvent)))
	var d Doc
	var out []byte
	score := []Seg{Key("score")}
	ua := []Seg{Key("user_agent")}
	for b.Loop() {
		if err := d.Parse(benchEvent); err != nil {
			b.Fatal(err)
		}
		if err := d.Set(score, FloatValue(0.875)); err != nil {
			b.Fatal(err)
		}
		d.Delete(ua)
		out = d.AppendJSON(out[:0])
	}
	if len(out) == 0 {
		b.Fatal("empty output")
	}
}
