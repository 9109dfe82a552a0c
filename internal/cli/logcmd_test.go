package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/log"
)

var logT0 = time.UnixMilli(1_700_000_000_000) // 2023-11-14T22:13:20.000Z

// runLogCmd runs "weir log ARGS..." through Main.
func runLogCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), append([]string{"log"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func appendRecs(t *testing.T, p *log.Partition, recs ...log.Record) {
	t.Helper()
	if _, err := p.Append(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

// writeTestLog writes a two-partition log that stays open for writing, as
// a running weir would keep it: partition 0 has 30 records in several
// segments and two readers, partition 1 the records of every kind dump
// renders.
func writeTestLog(t *testing.T) (string, *log.Log) {
	t.Helper()
	dir := t.TempDir()
	l, err := log.OpenLog(dir, 2, log.Options{SegmentBytes: 500})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	p0 := l.Partition(0)
	for i := range 30 {
		appendRecs(t, p0, log.Record{Timestamp: logT0.Add(time.Duration(i) * time.Second), Value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	// audit registers first, so its commit keeps every segment.
	for _, c := range []struct {
		name string
		off  int64
	}{{"audit", 4}, {"sink", 25}} {
		if err := p0.Commit(c.name, c.off); err != nil {
			t.Fatal(err)
		}
	}
	appendRecs(t, l.Partition(1),
		log.Record{Timestamp: logT0, Key: []byte("k1"), Value: []byte("{\n  \"a\": [1, 2],\n  \"html\": \"<b>\"\n}"),
			Headers: []log.Header{{Key: "h", Value: []byte("v")}, {Key: "nil", Value: nil}, {Key: "bin", Value: []byte{0xff}}}},
		log.Record{Timestamp: logT0.Add(1500 * time.Millisecond), Value: []byte("plain text")},
		log.Record{Timestamp: logT0, Key: []byte{0xfe, 0x00}, Value: []byte{0xff, 0x00, 0x01}},
		log.Record{Timestamp: logT0, Key: []byte{}, Value: nil},
		log.Record{Timestamp: logT0, Value: []byte("42")},
	)
	return dir, l
}

func TestLogDump(t *testing.T) {
	dir, _ := writeTestLog(t)
	code, out, errOut := runLogCmd(t, "dump", dir, "--partition", "1")
	if code != ExitOK || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	want := `{"partition":1,"offset":0,"timestamp":"2023-11-14T22:13:20.000Z","key":"k1","value":{"a":[1,2],"html":"<b>"},"headers":[{"key":"h","value":"v"},{"key":"nil","value":null},{"key":"bin","value_base64":"/w=="}]}
{"partition":1,"offset":1,"timestamp":"2023-11-14T22:13:21.500Z","key":null,"value":"plain text","headers":[]}
{"partition":1,"offset":2,"timestamp":"2023-11-14T22:13:20.000Z","key_base64":"/gA=","value_base64":"/wAB","headers":[]}
{"partition":1,"offset":3,"timestamp":"2023-11-14T22:13:20.000Z","key":"","value":null,"headers":[]}
{"partition":1,"offset":4,"timestamp":"2023-11-14T22:13:20.000Z","key":null,"value":42,"headers":[]}
`
	if out != want {
		t.Fatalf("dump:\n%s\nwant:\n%s", out, want)
	}
	for line := range strings.Lines(out) {
		if !json.Valid([]byte(line)) {
			t.Fatalf("not JSON: %q", line)
		}
	}

	// All partitions, one after the other; --from applies to each, --limit
	// to the whole output.
	code, out, _ = runLogCmd(t, "dump", "--from", "3", "--limit", "28", dir)
	if code != ExitOK {
		t.Fatalf("code %d", code)
	}
	var got []string
	for line := range strings.Lines(out) {
		var r struct{ Partition, Offset int }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d", r.Partition, r.Offset))
	}
	if len(got) != 28 || got[0] != "0/3" || got[26] != "0/29" || got[27] != "1/3" {
		t.Fatalf("dump --from 3 --limit 28 = %v, want 0/3 ... 0/29 1/3", got)
	}
}

func TestLogInspect(t *testing.T) {
	dir, l := writeTestLog(t)
	code, out, errOut := runLogCmd(t, "inspect", "--json", dir)
	if code != ExitOK || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	var got inspectLog
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	p0 := got.Partitions[0]
	if got.Totals.Partitions != 2 || got.Totals.Records != 35 || p0.HighWatermark != 30 || p0.LogStartOffset != 0 || p0.Records != 30 {
		t.Fatalf("inspect = %+v", got)
	}
	if len(p0.Segments) != l.Partition(0).Metrics().Segments || len(p0.Segments) < 3 {
		t.Fatalf("%d segments, want %d (>= 3)", len(p0.Segments), l.Partition(0).Metrics().Segments)
	}
	var records, bytes int64
	for i, s := range p0.Segments {
		records += s.Records
		bytes += s.Bytes
		st, err := os.Stat(filepath.Join(dir, "0", s.File))
		if err != nil || st.Size() != s.Bytes || s.FileBytes != s.Bytes {
			t.Fatalf("segment %+v: file %v, %v", s, st, err)
		}
		if i > 0 && s.BaseOffset != p0.Segments[i-1].EndOffset {
			t.Fatalf("segments not contiguous: %+v", p0.Segments)
		}
	}
	last := p0.Segments[len(p0.Segments)-1]
	if records != 30 || bytes != p0.Bytes || last.MaxTimestamp != "2023-11-14T22:13:49.000Z" {
		t.Fatalf("segments total %d records, %d bytes, newest %q", records, bytes, last.MaxTimestamp)
	}
	wantReaders := []inspectReader{{"audit", 4, 26}, {"sink", 25, 5}}
	if fmt.Sprint(p0.Readers) != fmt.Sprint(wantReaders) {
		t.Fatalf("readers %+v, want %+v", p0.Readers, wantReaders)
	}

	code, out, _ = runLogCmd(t, "inspect", filepath.Join(dir, "0"))
	if code != ExitOK {
		t.Fatalf("code %d", code)
	}
	for _, s := range []string{"1 partition(s)", "partition 0", "log start offset 0, high watermark 30, 30 record(s)",
		"00000000000000000000.log", "[0, ", "audit", "sink", "READER", "COMMITTED", "LAG"} {
		if !strings.Contains(out, s) {
			t.Errorf("inspect output lacks %q:\n%s", s, out)
		}
	}
}

// TestLogReadsTornTailAndCorruption: a torn tail is where reading stops
// (exit 0); damage before valid data is a corruption error (exit 1) after
// the records before it. Neither changes a byte of the log.
func TestLogReadsTornTailAndCorruption(t *testing.T) {
	dir := t.TempDir()
	p, err := log.Open(dir, log.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		appendRecs(t, p, log.Record{Timestamp: logT0, Value: fmt.Appendf(nil, "value-%d", i)})
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	// As after a crash: the meta file does not vouch for the last write,
	// so a cut there reads as a torn tail.
	if err := os.WriteFile(filepath.Join(dir, "meta"), []byte("weir-partition 2\nstart 0\nactive 0\nsynced 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	seg := filepath.Join(dir, "00000000000000000000.log")
	orig, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	batch := len(orig) / 5

	if err := os.WriteFile(seg, orig[:len(orig)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runLogCmd(t, "dump", dir)
	if code != ExitOK || strings.Count(out, "\n") != 4 || errOut != "" {
		t.Fatalf("torn tail: code %d, %d lines, stderr %q", code, strings.Count(out, "\n"), errOut)
	}
	code, out, _ = runLogCmd(t, "inspect", dir)
	if code != ExitOK || !strings.Contains(out, fmt.Sprintf("(+%d unread)", batch-3)) {
		t.Fatalf("torn tail: inspect code %d:\n%s", code, out)
	}

	damaged := bytes.Clone(orig)
	damaged[2*batch+60] ^= 1 // the third batch's payload
	if err := os.WriteFile(seg, damaged, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runLogCmd(t, "dump", dir)
	if code != ExitFailure || strings.Count(out, "\n") != 2 ||
		!strings.Contains(errOut, fmt.Sprintf("corrupt segment %q: offsets [2, 3)", seg)) {
		t.Fatalf("corruption: code %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runLogCmd(t, "inspect", "--json", dir)
	if code != ExitFailure || !strings.Contains(out, `"damage": "log: corrupt segment`) || !strings.Contains(errOut, "corrupt segment") {
		t.Fatalf("corruption: inspect code %d, stdout %q, stderr %q", code, out, errOut)
	}
	if after, _ := os.ReadFile(seg); !bytes.Equal(after, damaged) {
		t.Fatal("reading changed the segment")
	}
}

// TestLogTail runs tail against a partition that is being written: it
// prints the last records, then each new one, and exits 0 when cancelled.
// The poll wait is a handshake, so every step is deterministic.
func TestLogTail(t *testing.T) {
	dir, l := writeTestLog(t)
	p := l.Partition(0)
	waiting, resume := make(chan struct{}), make(chan bool)
	env := logEnv{wait: func(ctx context.Context, _ time.Duration) bool {
		waiting <- struct{}{}
		return <-resume
	}}
	var out, errOut bytes.Buffer
	done := make(chan int)
	go func() {
		done <- runLog(context.Background(), []string{"tail", "--partition", "0", "--from-end", "2", dir}, &out, &errOut, env)
	}()
	offsets := func() string {
		var got []string
		for line := range strings.Lines(out.String()) {
			var r struct{ Offset int }
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%v: %q", err, line)
			}
			got = append(got, fmt.Sprint(r.Offset))
		}
		return strings.Join(got, " ")
	}
	<-waiting
	if got := offsets(); got != "28 29" {
		t.Fatalf("tail --from-end 2 printed offsets %q, want 28 29", got)
	}
	appendRecs(t, p, log.Record{Value: []byte(`"new"`)}, log.Record{Value: []byte(`"newer"`)})
	resume <- true
	<-waiting
	if got := offsets(); got != "28 29 30 31" || !strings.Contains(out.String(), `"value":"newer"`) {
		t.Fatalf("after two appends: offsets %q\n%s", offsets(), out.String())
	}
	resume <- true // nothing new: nothing printed
	<-waiting
	if got := offsets(); got != "28 29 30 31" {
		t.Fatalf("after an idle poll: offsets %q", got)
	}
	resume <- false // cancelled
	if code := <-done; code != ExitOK || errOut.Len() != 0 {
		t.Fatalf("code %d, stderr %q", code, errOut.String())
	}

	// The real wait: ctx cancellation ends it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out2 bytes.Buffer
	if code := runLog(ctx, []string{"tail", dir}, &out2, &errOut, logEnv{wait: sleepCtx}); code != ExitOK {
		t.Fatalf("cancelled tail: code %d", code)
	}
	if n := strings.Count(out2.String(), "\n"); n != 15 {
		t.Fatalf("tail of both partitions printed %d lines, want 10 + 5", n)
	}
}

func TestLogUsage(t *testing.T) {
	dir, _ := writeTestLog(t)
	for _, tc := range []struct {
		args   []string
		stderr string
	}{
		{nil, "Usage:"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"dump"}, "expected one log DIR, got 0"},
		{[]string{"dump", dir, dir}, "got 2 arguments"},
		{[]string{"inspect", "--bogus", dir}, "-bogus"},
		{[]string{"dump", "--limit", "-1", dir}, "non-negative"},
		{[]string{"tail", "--poll", "0s", dir}, "positive duration"},
		{[]string{"dump", "--partition", "7", dir}, "no partition 7"},
		{[]string{"inspect", t.TempDir()}, "no log in"},
		{[]string{"dump", filepath.Join(t.TempDir(), "nope")}, "nope"},
	} {
		code, out, errOut := runLogCmd(t, tc.args...)
		if code != ExitConfig || out != "" || !strings.Contains(errOut, tc.stderr) {
			t.Errorf("weir log %q: code %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, ExitConfig, tc.stderr)
		}
	}
	if code, out, _ := runLogCmd(t, "help"); code != ExitOK || !strings.Contains(out, "weir log inspect") {
		t.Errorf("weir log help: code %d, %q", code, out)
	}
}
