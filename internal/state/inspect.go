package state

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

var (
	// ErrNoStore means a directory holds no weir state store: it is
	// missing, holds no Pebble database, or holds one weir did not write.
	ErrNoStore = errors.New("no weir state store")
	// ErrLocked means another process — a running weir — has the store
	// open: Pebble allows one process per database, even for reading.
	ErrLocked = errors.New("the state store is in use by another process")
)

// OpenReadOnly opens the store in dir to read it: no file is created or
// changed, no compaction runs, and Txn commits fail. It still takes the
// directory's lock, so it fails with ErrLocked while a pipeline runs on the
// store, and it fails with ErrNoStore when dir holds no state store.
func OpenReadOnly(dir string) (*Store, error) {
	return openReadOnly(dir, vfs.Default)
}

func openReadOnly(dir string, fs vfs.FS) (*Store, error) {
	st, err := fs.Stat(dir)
	switch {
	case errors.Is(err, iofs.ErrNotExist):
		return nil, fmt.Errorf("state: %s does not exist: %w", dir, ErrNoStore)
	case err != nil:
		return nil, fmt.Errorf("state: %w", err)
	case !st.IsDir():
		return nil, fmt.Errorf("state: %s is not a directory: %w", dir, ErrNoStore)
	}
	// Look before locking: locking creates a LOCK file, which must not be
	// left in a directory that is not a store.
	names, err := fs.List(dir)
	if err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	pebbleDir := false
	for _, n := range names {
		if n == "CURRENT" || strings.HasPrefix(n, "marker.manifest.") {
			pebbleDir = true
		}
	}
	if !pebbleDir {
		return nil, fmt.Errorf("state: %s holds no Pebble database: %w", dir, ErrNoStore)
	}
	lock, err := pebble.LockDirectory(dir, fs)
	if err != nil {
		return nil, fmt.Errorf("state: %s: %w (%w)", dir, ErrLocked, err)
	}
	s, err := openWith(dir, nil, &pebble.Options{FS: fs, ReadOnly: true, Lock: lock})
	if err != nil {
		_ = lock.Close()
		return nil, err
	}
	s.lock = lock
	if err := s.checkKeys(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// checkKeys reports ErrNoStore when the first or last key of the database
// is not one weir writes.
func (s *Store) checkKeys() error {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	defer func() { _ = it.Close() }()
	for _, ok := range []bool{it.First(), it.Last()} {
		if !ok {
			break
		}
		if k := it.Key(); len(k) < 2 || k[1] != 0 || !strings.ContainsRune("smht", rune(k[0])) {
			return fmt.Errorf("state: %s holds a Pebble database that weir did not write (key %q): %w", s.dir, k, ErrNoStore)
		}
	}
	return it.Error()
}

// NodeState summarizes one node's state in the last completed checkpoint.
type NodeState struct {
	Node string `json:"node"`
	Keys int64  `json:"keys"`
	// KeyBytes and ValueBytes are the sizes of the node's keys (without the
	// store's prefix) and values.
	KeyBytes   int64 `json:"key_bytes"`
	ValueBytes int64 `json:"value_bytes"`
}

// Nodes summarizes the state of every node in the last completed
// checkpoint, by node name. It reads every key.
func (s *Store) Nodes() ([]NodeState, error) {
	lo := []byte("s\x00")
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, fmt.Errorf("state: nodes: %w", err)
	}
	defer func() { _ = it.Close() }()
	var out []NodeState
	for it.First(); it.Valid(); it.Next() {
		rest := it.Key()[len(lo):]
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, fmt.Errorf("state: key %q has no node name", it.Key())
		}
		node := rest[:i]
		if n := len(out); n == 0 || out[n-1].Node != string(node) {
			out = append(out, NodeState{Node: string(node)})
		}
		ns := &out[len(out)-1]
		ns.Keys++
		ns.KeyBytes += int64(len(rest) - i - 1)
		ns.ValueBytes += int64(len(it.Value()))
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("state: nodes: %w", err)
	}
	return out, nil
}
