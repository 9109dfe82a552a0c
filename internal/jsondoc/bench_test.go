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

var benchNested = []byte(`{"event_id":"5f0c6a1e","user":{"id":"u_10432","geo":{"country":"DE","city":"Berlin"},"tags":["a","b"]},"items":[{"sku":"p42","qty":2},{"sku":"p7","qty":1}],"ts":1763900000123}`)

func BenchmarkLookupNested(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchNested)))
	var d Doc
	if err := d.Parse(benchNested); err != nil {
		b.Fatal(err)
	}
	country := []Seg{Key("user"), Key("geo"), Key("country")}
	qty := []Seg{Key("items"), Index(1), Key("qty")}
	for b.Loop() {
		if v := d.Lookup(country); v.Kind != String {
			b.Fatal(v)
		}
		if v := d.Lookup(qty); v.Kind != Int {
			b.Fatal(v)
		}
	}
}

func BenchmarkParseSetNestedAppend(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchNested)))
	var d Doc
	var out []byte
	city := []Seg{Key("user"), Key("geo"), Key("city")}
	from, to := []Seg{Key("event_id")}, []Seg{Key("id")}
	for b.Loop() {
		if err := d.Parse(benchNested); err != nil {
			b.Fatal(err)
		}
		if err := d.Set(city, StringValue([]byte("Hamburg"))); err != nil {
			b.Fatal(err)
		}
		if _, err := d.Rename(from, to); err != nil {
			b.Fatal(err)
		}
		out = d.AppendJSON(out[:0])
	}
}

// BenchmarkLookupEvent: one field of a collector event, after Parse and
// after ParseUnchecked (what a filter on an http input's events does).
func BenchmarkLookupEvent(b *testing.B) {
	raw := []byte(`{"event_id":"13c2dfac-3e31-44ed-afb3-1a71e5c0dc5e","type":"click","user_id":"u_824033","session_id":"s_619c8251","ts":1767225611100,"page":"/products/108","props":{"price":103.16,"currency":"EUR"}}`)
	for _, c := range []struct {
		name  string
		parse func(d *Doc)
	}{
		{"parse", func(d *Doc) {
			if err := d.Parse(raw); err != nil {
				b.Fatal(err)
			}
		}},
		{"unchecked", func(d *Doc) { d.ParseUnchecked(raw) }},
	} {
		for _, path := range [][]Seg{{Key("type")}, {Key("props"), Key("currency")}} {
			b.Run(c.name+"/"+FormatPath(path), func(b *testing.B) {
				var d Doc
				b.SetBytes(int64(len(raw)))
				for b.Loop() {
					c.parse(&d)
					if d.Lookup(path).Kind != String {
						b.Fatal("not found")
					}
				}
			})
		}
	}
}
