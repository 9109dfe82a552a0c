package log

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecodeBatch seeds")

// TestFuzzSeeds writes the checked-in seed corpus of FuzzDecodeBatch when
// run with -update-seeds, and otherwise checks it is present.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeBatch")
	full, _ := encodeBatch(nil, sampleRecords(), 0)
	sealBatch(full, 1, 1)
	one, _ := encodeBatch(nil, []Record{{Value: []byte("x")}}, 5)
	sealBatch(one, 0, 0)
	bad := append([]byte(nil), full...)
	bad[len(bad)-1] ^= 1
	seeds := map[string][]byte{"valid-3-records": full, "valid-1-record": one, "bad-crc": bad, "header-only": full[:headerSize]}
	for name, b := range seeds {
		path := filepath.Join(dir, name)
		if !*updateSeeds {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed %s missing (run go test -run TestFuzzSeeds -update-seeds): %v", name, err)
			}
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
