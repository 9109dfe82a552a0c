package log

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

func sampleRecords() []Record {
	return []Record{
		{Timestamp: t0, Key: []byte("k1"), Value: []byte(`{"a":1}`),
			Headers: []Header{{Key: "h1", Value: []byte("v1")}, {Key: "nil", Value: nil}, {Key: "empty", Value: []byte{}}}},
		{Timestamp: t0.Add(-5 * time.Millisecond), Key: nil, Value: []byte{}},
		{Timestamp: t0.Add(time.Hour), Key: []byte{}, Value: nil},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	in := sampleRecords()
	b, maxTS := encodeBatch(nil, in, 0)
	sealBatch(b, 42, 42)
	if want := t0.Add(time.Hour).UnixMilli(); maxTS != want {
		t.Fatalf("maxTS = %d, want %d", maxTS, want)
	}
	out, h, err := decodeBatch(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.base != 42 || h.count != 3 || h.maxTS != maxTS || h.firstTS != t0.UnixMilli() {
		t.Fatalf("header = %+v", h)
	}
	for i := range in {
		in[i].Offset = 42 + int64(i)
	}
	assertRecords(t, out, in)
}

func assertRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Offset != w.Offset || !g.Timestamp.Equal(w.Timestamp) ||
			!sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d = %+v, want %+v", i, g, w)
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || !sameBytes(g.Headers[j].Value, w.Headers[j].Value) {
				t.Fatalf("record %d header %d = %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
}

// sameBytes compares bytes and nil-ness.
func sameBytes(a, b []byte) bool { return (a == nil) == (b == nil) && bytes.Equal(a, b) }

func TestDecodeBatchRejectsEveryFlippedByte(t *testing.T) {
	b, _ := encodeBatch(nil, sampleRecords(), 0)
	sealBatch(b, 7, 7)
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, _, err := decodeBatch(c, nil); !errors.Is(err, errBadBatch) {
			t.Fatalf("flip at %d: err = %v, want errBadBatch", i, err)
		}
	}
	for n := range len(b) {
		if _, _, err := decodeBatch(b[:n], nil); !errors.Is(err, errBadBatch) {
			t.Fatalf("truncated to %d: err = %v, want errBadBatch", n, err)
		}
	}
}

func FuzzDecodeBatch(f *testing.F) {
	b, _ := encodeBatch(nil, sampleRecords(), 0)
	sealBatch(b, 1, 1)
	f.Add(b)
	one, _ := encodeBatch(nil, []Record{{Value: []byte("x")}}, 5)
	sealBatch(one, 0, 0)
	f.Add(one)
	f.Add([]byte{})
	f.Add(b[:headerSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, h, err := decodeBatch(data, nil)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				t.Fatalf("error not of class errBadBatch: %v", err)
			}
			return
		}
		if int64(len(recs)) != h.count {
			t.Fatalf("%d records, header says %d", len(recs), h.count)
		}
		// A valid batch re-encodes to the same bytes: one encoding per batch.
		again := reencode(recs, h)
		if !bytes.Equal(again, data) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, data)
		}
		recs2, h2, err := decodeBatch(again, nil)
		if err != nil || h2 != h {
			t.Fatalf("re-encoded batch: header %+v, %v; want %+v", h2, err, h)
		}
		assertRecords(t, recs2, recs)
	})
}

// reencode encodes decoded records again as the batch h described. A
// record whose timestamp is the zero time keeps it (encodeBatch stamps a
// zero Timestamp with its now).
func reencode(recs []Record, h batchHeader) []byte {
	b, _ := encodeBatch(nil, recs, time.Time{}.UnixMilli())
	sealBatch(b, h.base, h.write)
	return b
}

// FuzzDecodeRecords fuzzes the record decoder behind a valid header and
// CRC, which random bytes for FuzzDecodeBatch almost never reach.
func FuzzDecodeRecords(f *testing.F) {
	full, _ := encodeBatch(nil, sampleRecords(), 0)
	f.Add(uint8(3), full[headerSize:])
	f.Add(uint8(1), []byte{0, 0, 1, 0x02, 'x', 0})
	f.Add(uint8(200), []byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, count uint8, payload []byte) {
		b := make([]byte, headerSize, headerSize+len(payload))
		copy(b, batchMagicBytes)
		binary.BigEndian.PutUint32(b[offCount:], uint32(max(count, 1)))
		binary.BigEndian.PutUint32(b[offPayloadLen:], uint32(len(payload)))
		b = append(b, payload...)
		sealBatch(b, 10, 10)
		recs, h, err := decodeBatch(b, nil)
		if err != nil {
			if !errors.Is(err, errBadBatch) {
				t.Fatalf("error not of class errBadBatch: %v", err)
			}
			return
		}
		if int64(len(recs)) != h.count {
			t.Fatalf("%d records, header says %d", len(recs), h.count)
		}
		if again := reencode(recs, h); !bytes.Equal(again[headerSize:], payload) {
			t.Fatalf("re-encoded payload differs:\n%x\n%x", again[headerSize:], payload)
		}
	})
}
