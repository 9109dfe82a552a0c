// Package file holds the file input and the file output.
//
// The input reads newline-delimited records (NDJSON or plain lines) from a
// file or a glob of files in lexical order, optionally gzip-compressed, and
// can follow the last file like tail -F: appended data is read as it comes, a
// truncated file is read again from the start, and a rotated file is read to
// its end before the new file at the path is opened. Framing, validation and
// batching are those of package lines. Progress is tracked per batch; the
// committed position (file, line, byte offset) is the point up to which every
// record has been acknowledged. The input runs as a single instance. With
// checkpoints it records the committed position of every file it read in
// each checkpoint and resumes each file from it after a restart, checking
// by size and a fingerprint of the first bytes that the file is still the
// one it read (input_state.go; docs/format/state.md has the keys).
//
// The output writes each event's value plus '\n' to a hidden in-progress
// file, and publishes a file by fsync and atomic rename once it is rotated
// (by size or age) or the output closes, so readers of the directory never
// see a partial file. Each instance writes its own files.
//
// Threading: one goroutine per Input or Output value, as the runtime
// contracts say; Ack callbacks of the input may run on any goroutine.
package file
