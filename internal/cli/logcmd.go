package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/log"
)

const logUsage = `Usage:
  weir log inspect [--json] DIR
                        partitions, offsets, segments and readers of a log
  weir log dump [--partition N] [--from OFFSET] [--limit N] DIR
                        print records as NDJSON
  weir log tail [--partition N] [--from-end N] [--poll DURATION] DIR
                        print the last records, then new ones until Ctrl-C

DIR is a log directory (partitions 0, 1, ...) or one partition's directory.
The log is only read — no lock, no recovery — so it may be in use by a
running weir; reading stops at a write still in progress.
Exit codes: 0 ok, 1 read failure or corruption, 2 bad usage or no log in DIR.
`

// logEnv is what the log commands need from outside; tests replace wait.
type logEnv struct {
	// wait pauses tail for d between polls; false means stop (ctx done).
	wait func(ctx context.Context, d time.Duration) bool
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cmdLog runs "weir log SUBCOMMAND".
func cmdLog(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runLog(ctx, args, stdout, stderr, logEnv{wait: sleepCtx})
}

func runLog(ctx context.Context, args []string, stdout, stderr io.Writer, env logEnv) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, logUsage)
		return ExitConfig
	}
	switch args[0] {
	case "inspect":
		return logInspect(args[1:], stdout, stderr)
	case "dump":
		return logDump(args[1:], stdout, stderr)
	case "tail":
		return logTail(ctx, args[1:], stdout, stderr, env)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, logUsage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "weir log: unknown command %q\n\n%s", args[0], logUsage)
		return ExitConfig
	}
}

// parseDir parses flags placed before or after the one DIR argument.
func parseDir(fs *flag.FlagSet, args []string, stderr io.Writer) (string, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags of weir log %s:\n", logUsage, fs.Name())
		fs.PrintDefaults()
	}
	var dirs []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", false
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(dirs) != 1 {
		fmt.Fprintf(stderr, "weir log %s: expected one log DIR, got %d arguments\n", fs.Name(), len(dirs))
		return "", false
	}
	return dirs[0], true
}

// logPartition is one partition being read.
type logPartition struct {
	num int
	r   *log.Reader
}

// openPartitions opens the partitions of dir read-only: all of them, or
// only number only when it is >= 0. The returned code is ExitOK on success.
func openPartitions(cmd, dir string, only int, stderr io.Writer) ([]logPartition, int) {
	found, err := log.FindPartitions(dir)
	if err != nil {
		fmt.Fprintf(stderr, "weir log %s: %v\n", cmd, err)
		return nil, ExitConfig
	}
	var out []logPartition
	for _, pd := range found {
		if only >= 0 && pd.Partition != only {
			continue
		}
		r, err := log.OpenReader(pd.Dir)
		if err != nil {
			closePartitions(out)
			fmt.Fprintf(stderr, "weir log %s: partition %d: %v\n", cmd, pd.Partition, err)
			return nil, ExitFailure
		}
		out = append(out, logPartition{num: pd.Partition, r: r})
	}
	if len(out) == 0 {
		fmt.Fprintf(stderr, "weir log %s: no partition %d in %s (it has %d)\n", cmd, only, dir, len(found))
		return nil, ExitConfig
	}
	return out, ExitOK
}

func closePartitions(ps []logPartition) {
	for _, p := range ps {
		_ = p.r.Close() // read-only
	}
}

// readFailed prints a read error; a *log.CorruptionError gets a pointer to
// what an operator does about it.
func readFailed(stderr io.Writer, cmd string, partition int, err error) int {
	fmt.Fprintf(stderr, "weir log %s: partition %d: %v\n", cmd, partition, err)
	if _, ok := errors.AsType[*log.CorruptionError](err); ok {
		fmt.Fprintln(stderr, "The data before the damage was printed. docs/log.md (\"Corruption\") says what to do.")
	}
	return ExitFailure
}

// Inspect output, also its JSON form.
type inspectLog struct {
	Dir        string             `json:"dir"`
	Partitions []inspectPartition `json:"partitions"`
	Totals     inspectTotals      `json:"totals"`
}

type inspectPartition struct {
	Partition      int              `json:"partition"`
	Dir            string           `json:"dir"`
	LogStartOffset int64            `json:"log_start_offset"`
	HighWatermark  int64            `json:"high_watermark"`
	Records        int64            `json:"records"`
	Bytes          int64            `json:"bytes"`
	Segments       []inspectSegment `json:"segments"`
	Readers        []inspectReader  `json:"readers"`
	// Damage is the corruption found, if any.
	Damage string `json:"damage,omitempty"`
}

type inspectSegment struct {
	File         string `json:"file"`
	BaseOffset   int64  `json:"base_offset"`
	EndOffset    int64  `json:"end_offset"`
	Records      int64  `json:"records"`
	Bytes        int64  `json:"bytes"`
	FileBytes    int64  `json:"file_bytes"`
	MaxTimestamp string `json:"max_timestamp,omitempty"`
}

type inspectReader struct {
	Name            string `json:"name"`
	CommittedOffset int64  `json:"committed_offset"`
	Lag             int64  `json:"lag"`
}

type inspectTotals struct {
	Partitions int   `json:"partitions"`
	Segments   int   `json:"segments"`
	Records    int64 `json:"records"`
	Bytes      int64 `json:"bytes"`
}

func logInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	dir, ok := parseDir(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	parts, code := openPartitions("inspect", dir, -1, stderr)
	if code != ExitOK {
		return code
	}
	defer closePartitions(parts)
	out := inspectLog{Dir: dir}
	var failures []error
	for _, p := range parts {
		ip, err := inspectOne(p)
		if err != nil {
			failures = append(failures, fmt.Errorf("partition %d: %w", p.num, err))
		}
		out.Partitions = append(out.Partitions, ip)
		out.Totals.Partitions++
		out.Totals.Segments += len(ip.Segments)
		out.Totals.Records += ip.Records
		out.Totals.Bytes += ip.Bytes
	}
	var err error
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(out)
	} else {
		err = writeInspect(stdout, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir log inspect: %v\n", err)
		return ExitFailure
	}
	for _, f := range failures {
		fmt.Fprintf(stderr, "weir log inspect: %v\n", f)
	}
	if len(failures) > 0 {
		return ExitFailure
	}
	return ExitOK
}

// inspectOne describes one partition; err is its damage or a failure to
// read its readers file (the description is still filled in).
func inspectOne(p logPartition) (inspectPartition, error) {
	r := p.r
	ip := inspectPartition{Partition: p.num, Dir: r.Dir(), LogStartOffset: r.LogStartOffset(), HighWatermark: r.HighWatermark(),
		Segments: []inspectSegment{}, Readers: []inspectReader{}}
	ip.Records = ip.HighWatermark - ip.LogStartOffset
	for _, s := range r.Segments() {
		is := inspectSegment{File: filepath.Base(s.Path), BaseOffset: s.BaseOffset, EndOffset: s.EndOffset,
			Records: s.EndOffset - s.BaseOffset, Bytes: s.Bytes, FileBytes: s.FileBytes}
		if !s.MaxTimestamp.IsZero() {
			is.MaxTimestamp = formatTime(s.MaxTimestamp)
		}
		ip.Segments = append(ip.Segments, is)
		ip.Bytes += s.Bytes
	}
	var errs []error
	committed, err := r.Committed()
	if err != nil {
		errs = append(errs, err)
	}
	for name, off := range committed {
		ip.Readers = append(ip.Readers, inspectReader{Name: name, CommittedOffset: off, Lag: max(0, ip.HighWatermark-off)})
	}
	slices.SortFunc(ip.Readers, func(a, b inspectReader) int { return strings.Compare(a.Name, b.Name) })
	if d := r.Damage(); d != nil {
		ip.Damage = d.Error()
		errs = append(errs, d)
	}
	return ip, errors.Join(errs...)
}

func writeInspect(w io.Writer, l inspectLog) error {
	b := &bytes.Buffer{}
	fmt.Fprintf(b, "log %s: %d partition(s), %d segment(s), %d record(s), %d bytes\n",
		l.Dir, l.Totals.Partitions, l.Totals.Segments, l.Totals.Records, l.Totals.Bytes)
	for _, p := range l.Partitions {
		fmt.Fprintf(b, "\npartition %d  %s\n", p.Partition, p.Dir)
		fmt.Fprintf(b, "  log start offset %d, high watermark %d, %d record(s), %d bytes\n",
			p.LogStartOffset, p.HighWatermark, p.Records, p.Bytes)
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  SEGMENT\tOFFSETS\tRECORDS\tBYTES\tNEWEST RECORD")
		for _, s := range p.Segments {
			size := fmt.Sprint(s.Bytes)
			if s.FileBytes > s.Bytes {
				size += fmt.Sprintf(" (+%d unread)", s.FileBytes-s.Bytes)
			}
			newest := s.MaxTimestamp
			if newest == "" {
				newest = "-"
			}
			fmt.Fprintf(tw, "  %s\t[%d, %d)\t%d\t%s\t%s\n", s.File, s.BaseOffset, s.EndOffset, s.Records, size, newest)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(p.Readers) == 0 {
			fmt.Fprintln(b, "  no registered readers")
		} else {
			tw = tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "  READER\tCOMMITTED\tLAG")
			for _, r := range p.Readers {
				fmt.Fprintf(tw, "  %s\t%d\t%d\n", r.Name, r.CommittedOffset, r.Lag)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if p.Damage != "" {
			fmt.Fprintf(b, "  DAMAGE: %s\n", p.Damage)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func logDump(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dump", flag.ContinueOnError)
	partition := fs.Int("partition", -1, "only this partition; -1: all, one after the other")
	from := fs.Int64("from", -1, "first offset of each partition; -1: its log start offset")
	limit := fs.Int64("limit", 0, "at most this many records in all (0: no limit)")
	dir, ok := parseDir(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	if *from < -1 || *limit < 0 || *partition < -1 {
		fmt.Fprintln(stderr, "weir log dump: --from, --limit and --partition take non-negative numbers")
		return ExitConfig
	}
	parts, code := openPartitions("dump", dir, *partition, stderr)
	if code != ExitOK {
		return code
	}
	defer closePartitions(parts)
	w := bufio.NewWriter(stdout)
	var written int64
	for _, p := range parts {
		next := min(max(*from, p.r.LogStartOffset()), p.r.HighWatermark())
		left := int64(0)
		if *limit > 0 {
			if left = *limit - written; left == 0 {
				break
			}
		}
		n, err := dumpRecords(w, p, &next, left)
		written += n
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return readFailed(stderr, "dump", p.num, err)
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "weir log dump: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// dumpRecords writes the records of p from *next on, up to its high
// watermark or, when limit > 0, limit records, and advances *next. A read
// error is returned after the records before it are written.
func dumpRecords(w io.Writer, p logPartition, next *int64, limit int64) (int64, error) {
	var n int64
	for limit <= 0 || n < limit {
		recs, nxt, err := p.r.ReadFrom(*next, 1<<20)
		if limit > 0 && int64(len(recs)) > limit-n {
			recs = recs[:limit-n]
			nxt, err = recs[len(recs)-1].Offset+1, nil
		}
		for _, rec := range recs {
			if err := writeRecord(w, p.num, rec); err != nil {
				return n, err
			}
			n++
		}
		*next = nxt
		if err != nil || len(recs) == 0 {
			return n, err
		}
	}
	return n, nil
}

func logTail(ctx context.Context, args []string, stdout, stderr io.Writer, env logEnv) int {
	fs := flag.NewFlagSet("tail", flag.ContinueOnError)
	partition := fs.Int("partition", -1, "only this partition; -1: all")
	fromEnd := fs.Int64("from-end", 10, "start this many records before the end of each partition")
	poll := fs.Duration("poll", 500*time.Millisecond, "how often to look for new records")
	dir, ok := parseDir(fs, args, stderr)
	if !ok {
		return ExitConfig
	}
	if *fromEnd < 0 || *partition < -1 || *poll <= 0 {
		fmt.Fprintln(stderr, "weir log tail: --from-end and --partition take non-negative numbers, --poll a positive duration")
		return ExitConfig
	}
	parts, code := openPartitions("tail", dir, *partition, stderr)
	if code != ExitOK {
		return code
	}
	defer closePartitions(parts)
	next := make([]int64, len(parts))
	for i, p := range parts {
		next[i] = max(p.r.LogStartOffset(), p.r.HighWatermark()-*fromEnd)
	}
	w := bufio.NewWriter(stdout)
	for {
		for i, p := range parts {
			_, err := dumpRecords(w, p, &next[i], 0)
			if errors.Is(err, log.ErrOffsetOutOfRange) && next[i] < p.r.LogStartOffset() {
				start := p.r.LogStartOffset()
				fmt.Fprintf(stderr, "weir log tail: partition %d: offsets [%d, %d) were deleted by retention before they were read\n", p.num, next[i], start)
				next[i] = start
				_, err = dumpRecords(w, p, &next[i], 0)
			}
			if ferr := w.Flush(); err == nil {
				err = ferr
			}
			if err != nil {
				return readFailed(stderr, "tail", p.num, err)
			}
		}
		if !env.wait(ctx, *poll) {
			return ExitOK
		}
		for _, p := range parts {
			if err := p.r.Refresh(); err != nil {
				return readFailed(stderr, "tail", p.num, err)
			}
		}
	}
}

// dumpRecord is one NDJSON line of dump and tail.
type dumpRecord struct {
	Partition   int             `json:"partition"`
	Offset      int64           `json:"offset"`
	Timestamp   string          `json:"timestamp"`
	Key         json.RawMessage `json:"key,omitempty"`
	KeyBase64   string          `json:"key_base64,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 string          `json:"value_base64,omitempty"`
	Headers     []dumpHeader    `json:"headers"`
}

type dumpHeader struct {
	Key         json.RawMessage `json:"key,omitempty"`
	KeyBase64   string          `json:"key_base64,omitempty"`
	Value       json.RawMessage `json:"value,omitempty"`
	ValueBase64 string          `json:"value_base64,omitempty"`
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }

// jsonString quotes s (valid UTF-8) without HTML escaping.
func jsonString(s string) json.RawMessage {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return json.RawMessage(strings.TrimSuffix(b.String(), "\n"))
}

// textOrBase64 renders bytes as a JSON string when they are UTF-8, else as
// base64 (the second result); nil is JSON null.
func textOrBase64(b []byte) (json.RawMessage, string) {
	switch {
	case b == nil:
		return json.RawMessage("null"), ""
	case utf8.Valid(b):
		return jsonString(string(b)), ""
	default:
		return nil, base64.StdEncoding.EncodeToString(b)
	}
}

func writeRecord(w io.Writer, partition int, r log.Record) error {
	line := dumpRecord{Partition: partition, Offset: r.Offset, Timestamp: formatTime(r.Timestamp), Headers: []dumpHeader{}}
	line.Key, line.KeyBase64 = textOrBase64(r.Key)
	if r.Value != nil && json.Valid(r.Value) {
		line.Value = r.Value // compacted onto one line by the encoder
	} else {
		line.Value, line.ValueBase64 = textOrBase64(r.Value)
	}
	for _, h := range r.Headers {
		var dh dumpHeader
		dh.Key, dh.KeyBase64 = textOrBase64([]byte(h.Key))
		dh.Value, dh.ValueBase64 = textOrBase64(h.Value)
		line.Headers = append(line.Headers, dh)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(line)
}
