package log

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// SyncRecordEnv is the environment variable that turns on the fsync
// recorder, for crash tests only. When it names a file, Open records every
// completed fsync of a log file — a segment, an index, the meta and readers
// files, and the directory fsync that makes a created or renamed file
// durable — by appending one line "<absolute path>\t<size in bytes>\n" to
// it: how much of that file a power loss at that moment would leave. Set it
// before the log is created, and apply the record with CutToSynced after
// killing the process.
const SyncRecordEnv = "WEIR_TEST_SYNC_RECORD"

// recordSyncsFromEnv wraps fsys in a sync recorder when SyncRecordEnv is set.
func recordSyncsFromEnv(fsys fileSystem) fileSystem {
	if path := os.Getenv(SyncRecordEnv); path != "" {
		return newSyncRecorder(fsys, path)
	}
	return fsys
}

// syncRecorder is a fileSystem that appends a line to the record file for
// each file made durable, in this model of a power loss:
//
//   - a file's bytes are durable up to its size at its last completed
//     fsync;
//   - a file this process created exists after a power loss only once a
//     directory fsync completed after its creation;
//   - a file renamed to a new name exists once the directory is fsynced; a
//     file renamed over an existing one counts as replaced at once, with
//     the size it had at its last fsync (a power loss could leave the old
//     file or the new one; a simulation can only keep the new one).
//
// Files it has not seen created are taken as durable. Lines are written
// after the fsync completed, so a line never claims more than is durable.
type syncRecorder struct {
	fileSystem
	out string

	// mu guards files and the order of lines in out.
	mu    sync.Mutex
	files map[string]*recordedFile
}

// recordedFile is a file this process created or renamed.
type recordedFile struct {
	durable bool  // its directory entry is durable
	synced  int64 // size at its last fsync
}

func newSyncRecorder(fsys fileSystem, out string) *syncRecorder {
	return &syncRecorder{fileSystem: fsys, out: out, files: map[string]*recordedFile{}}
}

// emitLocked appends one line to the record file. Called with mu held.
func (r *syncRecorder) emitLocked(path string, size int64) error {
	f, err := os.OpenFile(r.out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("sync record: %w", err)
	}
	_, err = f.WriteString(path + "\t" + strconv.FormatInt(size, 10) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync record: %w", err)
	}
	return nil
}

func (r *syncRecorder) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	path, err := filepath.Abs(name)
	if err != nil {
		return nil, err
	}
	existed := true
	if flag&os.O_CREATE != 0 {
		_, err := r.Stat(path)
		existed = err == nil
	}
	f, err := r.fileSystem.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if !existed {
		r.mu.Lock()
		r.files[path] = &recordedFile{}
		r.mu.Unlock()
	}
	return &recordingFile{file: f, r: r, path: path}, nil
}

// synced records a completed fsync of path at size.
func (r *syncRecorder) synced(path string, size int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rf := r.files[path]
	if rf != nil {
		rf.synced = size
		if !rf.durable {
			return nil
		}
	}
	return r.emitLocked(path, size)
}

func (r *syncRecorder) Rename(oldname, newname string) error {
	src, err := filepath.Abs(oldname)
	if err != nil {
		return err
	}
	dst, err := filepath.Abs(newname)
	if err != nil {
		return err
	}
	_, serr := r.Stat(dst)
	replaces := serr == nil
	srcSize := int64(0)
	if fi, err := r.Stat(src); err == nil {
		srcSize = fi.Size()
	}
	if err := r.fileSystem.Rename(oldname, newname); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	moved := &recordedFile{synced: srcSize} // not created here: all of it durable
	if rf := r.files[src]; rf != nil {
		moved.synced = rf.synced
	}
	delete(r.files, src)
	if old := r.files[dst]; replaces && (old == nil || old.durable) {
		moved.durable = true
		r.files[dst] = moved
		return r.emitLocked(dst, moved.synced)
	}
	r.files[dst] = moved
	return nil
}

func (r *syncRecorder) Remove(name string) error {
	if err := r.fileSystem.Remove(name); err != nil {
		return err
	}
	if path, err := filepath.Abs(name); err == nil {
		r.mu.Lock()
		delete(r.files, path)
		r.mu.Unlock()
	}
	return nil
}

func (r *syncRecorder) SyncDir(name string) error {
	dir, err := filepath.Abs(name)
	if err != nil {
		return err
	}
	// Only entries made before the fsync started are covered by it.
	r.mu.Lock()
	var pending []string
	for path, rf := range r.files {
		if !rf.durable && filepath.Dir(path) == dir {
			pending = append(pending, path)
		}
	}
	r.mu.Unlock()
	if err := r.fileSystem.SyncDir(name); err != nil {
		return err
	}
	slices.Sort(pending)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, path := range pending {
		if rf := r.files[path]; rf != nil && !rf.durable {
			rf.durable = true
			if err := r.emitLocked(path, rf.synced); err != nil {
				return err
			}
		}
	}
	return nil
}

// recordingFile reports its completed fsyncs to the recorder.
type recordingFile struct {
	file
	r    *syncRecorder
	path string
}

func (f *recordingFile) Sync() error {
	// The size before the fsync is what it covers for sure.
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if err := f.file.Sync(); err != nil {
		return err
	}
	return f.r.synced(f.path, fi.Size())
}

// CutToSynced is a test helper for crash tests: it turns the log files
// under dirs into what a power loss would have left, according to the
// record written while SyncRecordEnv named recordFile. Every regular file
// is truncated to the last size recorded for it (a file already shorter
// is left alone), and a file never recorded — created and not made durable
// since — is deleted. Directories are left alone. Run it only once nothing
// writes the log any more: after the writing process was killed (say, by
// SIGKILL), or, in-process, after its partitions were closed.
func CutToSynced(recordFile string, dirs ...string) error {
	b, err := os.ReadFile(recordFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read sync record: %w", err)
	}
	sizes := map[string]int64{}
	for len(b) > 0 {
		line, rest, complete := bytes.Cut(b, []byte("\n"))
		b = rest
		if !complete {
			break // a line cut short never counted
		}
		i := bytes.LastIndexByte(line, '\t')
		if i < 0 {
			return fmt.Errorf("sync record %q: bad line %q", recordFile, line)
		}
		n, err := strconv.ParseInt(string(line[i+1:]), 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("sync record %q: bad line %q", recordFile, line)
		}
		sizes[string(line[:i])] = n
	}
	record, err := filepath.Abs(recordFile)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range dirs {
		root, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		errs = append(errs, filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			if err != nil || !e.Type().IsRegular() || path == record {
				return err
			}
			size, ok := sizes[path]
			if !ok {
				return os.Remove(path)
			}
			fi, err := e.Info()
			if err != nil {
				return err
			}
			if fi.Size() > size {
				return os.Truncate(path, size)
			}
			return nil
		}))
	}
	return errors.Join(errs...)
}
