package window

import (
	"math"
	"reflect"
	"testing"
)

func sampleWin() *win {
	hll := make([]byte, 1<<hllP)
	hll[7], hll[4000] = 3, 9
	dense := make([]byte, 1<<hllP)
	for i := range dense {
		dense[i] = byte(i % 5)
	}
	return &win{fired: true, dirty: true, accs: []acc{
		{N: 3},
		{N: 2, SumI: -7},
		{N: 1, Float: true, SumF: math.Pi},
		{Best: `"x"`, BestT: -5, HasB: true, By: "12"},
		{Counts: map[string]int64{`"a"`: 2, "17": 1}},
		{HLL: hll},
		{HLL: dense},
		{List: []string{"1", `"two"`, "null"}},
		{},
	}}
}

// TestCodecRoundTrip: every field of every aggregate survives encoding.
func TestCodecRoundTrip(t *testing.T) {
	in := sampleWin()
	v := encodeWin(nil, in)
	out := &win{}
	if err := decodeWin(v, len(in.accs), out); err != nil {
		t.Fatal(err)
	}
	if out.fired != in.fired || out.dirty != in.dirty {
		t.Fatalf("flags %v %v", out.fired, out.dirty)
	}
	for i := range in.accs {
		in.accs[i].mem = in.accs[i].footprint()
		if !reflect.DeepEqual(in.accs[i], out.accs[i]) {
			t.Fatalf("acc %d: got %+v, want %+v", i, out.accs[i], in.accs[i])
		}
	}
	if err := decodeWin(v, len(in.accs)+1, out); err == nil {
		t.Fatal("a window of another number of aggregates decoded")
	}
	for n := range len(v) {
		if err := decodeWin(v[:n], len(in.accs), &win{}); err == nil {
			t.Fatalf("a value cut to %d of %d bytes decoded", n, len(v))
		}
	}
}

// FuzzDecodeWin: damaged values fail with an error, never a panic or a
// huge allocation; what decodes encodes back to a value that decodes the
// same.
func FuzzDecodeWin(f *testing.F) {
	f.Add(encodeWin(nil, sampleWin()), 9)
	f.Add(encodeWin(nil, &win{accs: make([]acc, 2)}), 2)
	f.Add([]byte{1, 0, 1, 0x20, 0xff, 0xff, 0xff, 0xff, 0x0f}, 1)
	f.Fuzz(func(t *testing.T, v []byte, naggs int) {
		if naggs < 0 || naggs > 64 {
			return
		}
		wd := &win{}
		if decodeWin(v, naggs, wd) != nil {
			return
		}
		again := &win{}
		if err := decodeWin(encodeWin(nil, wd), naggs, again); err != nil {
			t.Fatalf("re-encoded value does not decode: %v", err)
		}
		for i := range wd.accs {
			if math.IsNaN(wd.accs[i].SumF) {
				return // NaN is never equal to itself
			}
		}
		if !reflect.DeepEqual(wd.accs, again.accs) {
			t.Fatalf("round trip changed %+v into %+v", wd.accs, again.accs)
		}
	})
}
