package log

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
)

// Log is a fixed set of partitions under one directory: partition i lives
// in the subdirectory named i.
type Log struct {
	dir        string
	partitions []*Partition
}

// OpenLog opens (creating if needed) partitions 0..n-1 of the log in dir.
// If any fails to open, the ones already open are closed and the error
// names the partition.
func OpenLog(dir string, n int, opts Options) (*Log, error) {
	if n < 1 {
		return nil, fmt.Errorf("log: %d partitions: want at least 1", n)
	}
	l := &Log{dir: dir}
	for i := range n {
		p, err := Open(filepath.Join(dir, strconv.Itoa(i)), opts)
		if err != nil {
			_ = l.Close()
			return nil, fmt.Errorf("open partition %d: %w", i, err)
		}
		l.partitions = append(l.partitions, p)
	}
	return l, nil
}

// Partitions returns the number of partitions.
func (l *Log) Partitions() int { return len(l.partitions) }

// Partition returns partition i; it panics if i is out of range.
func (l *Log) Partition(i int) *Partition { return l.partitions[i] }

// Dir is the log's directory.
func (l *Log) Dir() string { return l.dir }

// Close closes every partition and reports every error.
func (l *Log) Close() error {
	var errs []error
	for i, p := range l.partitions {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close partition %d: %w", i, err))
		}
	}
	return errors.Join(errs...)
}
