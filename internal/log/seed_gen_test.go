package log

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecodeBatch seeds")

// rawBatch frames payload as a sealed batch of count records with the
// first timestamp and max timestamp 0, so a hand-made payload gets a valid
// header and CRC.
func rawBatch(payload []byte, count uint32, base, write int64) []byte {
	b := make([]byte, headerSize, headerSize+len(payload))
	copy(b, batchMagicBytes)
	binary.BigEndian.PutUint32(b[offCount:], count)
	binary.BigEndian.PutUint32(b[offPayloadLen:], uint32(len(payload)))
	b = append(b, payload...)
	sealBatch(b, base, write)
	return b
}

// fuzzSeeds are the checked-in corpus of FuzzDecodeBatch: valid batches of
// several shapes, and damaged ones of the kinds recovery meets (torn,
// zeroed, flipped) or that only the decoder's strictness catches (their
// CRC is valid).
func fuzzSeeds() map[string][]byte {
	full, _ := encodeBatch(nil, sampleRecords(), 0)
	sealBatch(full, 1, 1)
	one, _ := encodeBatch(nil, []Record{{Value: []byte("x")}}, 5)
	sealBatch(one, 0, 0)
	// A later batch of a group commit: write offset below base offset.
	grouped, _ := encodeBatch(nil, []Record{{Timestamp: t0, Key: []byte("k"), Value: []byte(`{"n":1}`)},
		{Timestamp: t0, Value: []byte(`{"n":2}`)}}, 0)
	sealBatch(grouped, 9, 4)
	headers, _ := encodeBatch(nil, []Record{{Timestamp: t0, Headers: []Header{{Key: "a", Value: []byte("1")},
		{Key: "a", Value: nil}, {Key: "", Value: []byte{}}}}}, 0)
	sealBatch(headers, 1<<40, 1<<40)

	flip := func(b []byte, at int) []byte {
		c := bytes.Clone(b)
		c[at] ^= 0x01
		return c
	}
	zeroed := bytes.Clone(full)
	clear(zeroed[headerSize+4:])
	return map[string][]byte{
		"valid-3-records":        full,
		"valid-1-record":         one,
		"valid-grouped-write":    grouped,
		"valid-headers":          headers,
		"bad-crc":                flip(full, len(full)-1),
		"header-only":            full[:headerSize],
		"truncated-payload":      full[:len(full)-3],
		"zeroed-payload":         zeroed,
		"flipped-count":          flip(full, offCount+3),
		"flipped-length":         flip(full, offPayloadLen+3),
		"flipped-magic":          flip(full, 0),
		"flipped-write-offset":   flip(grouped, offWrite+7),
		"empty":                  {},
		"trailing-byte-good-crc": rawBatch([]byte{0, 0, 1, 2, 'x', 0, 0}, 1, 0, 0),
		"long-uvarint-good-crc":  rawBatch([]byte{0x80, 0x00, 0, 1, 2, 'x', 0}, 1, 0, 0),
		"long-varint-good-crc":   rawBatch([]byte{0, 0x80, 0x00, 1, 2, 'x', 0}, 1, 0, 0),
		"too-many-headers":       rawBatch([]byte{0, 0, 1, 1, 0x7f}, 1, 0, 0),
		"negative-length":        rawBatch([]byte{0, 0, 3, 1, 0}, 1, 0, 0),
	}
}

// TestFuzzSeeds writes the checked-in seed corpus of FuzzDecodeBatch when
// run with -update-seeds, and otherwise checks it is present and decodes
// as its name says.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	for name, b := range fuzzSeeds() {
		path := filepath.Join(dir, name)
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if *updateSeeds {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Errorf("seed %s missing or stale (run go test -run TestFuzzSeeds -update-seeds): %v", name, err)
		}
		_, _, err := decodeBatch(b, nil)
		if valid := strings.HasPrefix(name, "valid-"); valid != (err == nil) {
			t.Errorf("seed %s: decode error %v", name, err)
		}
	}
}
