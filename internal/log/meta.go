package log

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Meta file v2 ("meta" in the partition directory), replaced atomically
// like the readers file:
//
//	weir-partition 2
//	start <offset>
//	active <offset>
//	synced <bytes>
//
// start: every offset from start on is held (segments before it may remain
// after an interrupted deletion). active: the base offset of the newest
// segment created, so a segment missing at either end of the partition is
// detected rather than mistaken for retention or a shorter log. synced: how
// many bytes of the active segment were durable at the last clean close (0
// when unknown): damage below it is corruption, never a torn tail. Version 1
// files (without the synced line) are read as synced 0.
const (
	metaFile     = "meta"
	metaHeader   = "weir-partition 2"
	metaHeaderV1 = "weir-partition 1"
)

type partitionMeta struct {
	start, active int64
	// synced applies to the segment at active; a roll resets it.
	synced int64
}

func (m partitionMeta) encode() []byte {
	return fmt.Appendf(nil, "%s\nstart %d\nactive %d\nsynced %d\n", metaHeader, m.start, m.active, m.synced)
}

// loadMeta reads the meta file; ok is false when there is none (a new
// partition, or one written before the file existed).
func loadMeta(fsys fileSystem, dir string) (m partitionMeta, ok bool, err error) {
	path := filepath.Join(dir, metaFile)
	b, err := readFile(fsys, path)
	if isNotExist(err) {
		return m, false, nil
	}
	if err != nil {
		return m, false, fmt.Errorf("read meta file: %w", err)
	}
	bad := func(why string) error {
		return fmt.Errorf("meta file %q: %s (moving it aside lets the partition open: it is rewritten from the segments found, without the check for missing segments)", path, why)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	v1 := len(lines) == 3 && lines[0] == metaHeaderV1
	if !v1 && (len(lines) != 4 || lines[0] != metaHeader) {
		return m, false, bad(fmt.Sprintf("want 4 lines starting with %q", metaHeader))
	}
	field := func(line, name string) (int64, error) {
		v, ok := strings.CutPrefix(line, name+" ")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n < 0 {
			return 0, bad(fmt.Sprintf("bad line %q", line))
		}
		return n, nil
	}
	if m.start, err = field(lines[1], "start"); err != nil {
		return m, false, err
	}
	if m.active, err = field(lines[2], "active"); err != nil {
		return m, false, err
	}
	if !v1 {
		if m.synced, err = field(lines[3], "synced"); err != nil {
			return m, false, err
		}
	}
	if m.start > m.active {
		return m, false, bad(fmt.Sprintf("start %d after active %d", m.start, m.active))
	}
	return m, true, nil
}

func writeMeta(fsys fileSystem, dir string, m partitionMeta) error {
	if err := replaceFile(fsys, dir, metaFile, m.encode()); err != nil {
		return fmt.Errorf("write meta file: %w", err)
	}
	return nil
}
