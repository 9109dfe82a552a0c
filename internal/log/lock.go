package log

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the partition's single-writer lock: Open holds an exclusive
// advisory lock (flock) on it until Close. The kernel releases the lock
// when the process ends, however it ends, so a crash never leaves a stale
// lock. The file holds the holder's process id, for error messages only.
const lockFile = "LOCK"

// lockDir takes the lock of the partition in dir.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	if held {
		holder := "another process"
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				holder = fmt.Sprintf("process %d", pid)
				if pid == os.Getpid() {
					holder = "this process"
				}
			}
		}
		_ = f.Close()
		return nil, fmt.Errorf("%w: %q is already open for writing by %s (it holds %s); only one writer at a time (reading needs no lock)",
			ErrLocked, dir, holder, lockFile)
	}
	// Best effort: the pid only improves the message above.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}
