package log

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestEveryBitFlipIsCaught damages every byte of a small segment in turn and
// reads the partition back the way the log input does: a read either
// returns every record intact or fails; it never reports "nothing to read"
// below the high watermark (a reader would wait there forever) and never
// returns a record that differs from what was written. After a crash, damage
// to the last write may be a torn write and is truncated; after a clean
// close everything was acknowledged, so no damage is ever truncated.
func TestEveryBitFlipIsCaught(t *testing.T) {
	for _, clean := range []bool{false, true} {
		name := "after-crash"
		if clean {
			name = "after-clean-close"
		}
		t.Run(name, func(t *testing.T) {
			golden := t.TempDir()
			pos := batchLayout(t, golden, Options{}, 4)
			end := pos[len(pos)-2] // the last write may be torn after a crash
			if clean {
				p := mustOpen(t, golden, Options{})
				if err := p.Close(); err != nil {
					t.Fatal(err)
				}
				end = pos[len(pos)-1]
			}
			data := mustRead(t, segPath(golden, 0))
			for at := range end {
				for _, mask := range []byte{0x01, 0x80} {
					d := append([]byte(nil), data...)
					d[at] ^= mask
					checkFlip(t, golden, d, at, mask)
				}
			}
		})
	}
}

func checkFlip(t *testing.T, golden string, seg []byte, at int64, mask byte) {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(golden)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segPath(dir, 0), seg, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{})
	if err != nil {
		if _, ok := errors.AsType[*CorruptionError](err); !ok {
			t.Fatalf("byte %d mask %#x: open: %v, want a CorruptionError", at, mask, err)
		}
		return
	}
	defer p.Close()
	if r := p.Metrics().Recovery; r.TornTails != 0 {
		t.Fatalf("byte %d mask %#x: recovery truncated %d bytes of acknowledged data", at, mask, r.TruncatedBytes)
	}
	for off, hw := int64(0), p.HighWatermark(); off < hw; {
		recs, next, err := p.ReadFrom(off, 1<<20)
		for _, r := range recs {
			if want := string(val(int(r.Offset))); string(r.Value) != want {
				t.Fatalf("byte %d mask %#x: record %d read back as %q", at, mask, r.Offset, r.Value)
			}
		}
		if err != nil {
			return
		}
		if len(recs) == 0 || next <= off {
			t.Fatalf("byte %d mask %#x: read at %d of %d returned nothing and no error", at, mask, off, hw)
		}
		off = next
	}
}

// A segment cut short after a clean close lost acknowledged data: Open
// reports it instead of accepting the shorter log.
func TestCleanCloseThenCutIsCorruption(t *testing.T) {
	dir := t.TempDir()
	pos := batchLayout(t, dir, Options{}, 3)
	p := mustOpen(t, dir, Options{})
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{pos[2] + 5, pos[2], pos[1]} {
		if err := os.Truncate(segPath(dir, 0), cut); err != nil {
			t.Fatal(err)
		}
		_, err := Open(dir, Options{})
		if _, ok := errors.AsType[*CorruptionError](err); !ok {
			t.Fatalf("cut at %d: Open = %v, want a CorruptionError", cut, err)
		}
	}
}

// A meta file of version 1 (no synced line) still opens; the next clean
// close writes version 2.
func TestMetaV1Opens(t *testing.T) {
	dir := t.TempDir()
	batchLayout(t, dir, Options{}, 2)
	if err := os.WriteFile(filepath.Join(dir, metaFile), []byte("weir-partition 1\nstart 0\nactive 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, dir, Options{})
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HighWatermark = %d, want 4", hw)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	m, ok, err := loadMeta(osFS{}, dir)
	if err != nil || !ok || m.synced == 0 {
		t.Fatalf("meta after clean close: %+v ok=%v err=%v, want synced set", m, ok, err)
	}
}
