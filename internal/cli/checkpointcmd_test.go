package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/state"
)

// runCheckpointCmd runs "weir checkpoint ARGS..." through Main.
func runCheckpointCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(t.Context(), append([]string{"checkpoint"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// writeTestStore writes a store with three checkpoints through the state
// API, as a pipeline with a file input and a dedup processor would, and
// closes it.
func writeTestStore(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s, err := state.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	commit := func(id uint64, write func(tx *state.Txn)) {
		t.Helper()
		tx := s.Begin()
		write(tx)
		if err := tx.Commit(id); err != nil {
			t.Fatal(err)
		}
	}
	commit(1, func(tx *state.Txn) {
		w := tx.Writer("files")
		_ = w.Set([]byte("pos/0//data/a.ndjson"), []byte(`{"v":1,"line":10,"offset":300}`))
		d := tx.Writer("dedup")
		_ = d.Set([]byte{0x01, 0, 0, 0, 0, 0xfe}, []byte{0xff})
		_ = d.Set([]byte{0x01, 0, 0, 0, 1, 0x02}, nil)
	})
	commit(2, func(tx *state.Txn) {
		_ = tx.Writer("files").Set([]byte("pos/0//data/a.ndjson"), []byte(`{"v":1,"line":20,"offset":600}`))
	})
	commit(3, func(tx *state.Txn) {
		w := tx.Writer("files")
		_ = w.Set([]byte("pos/0//data/a.ndjson"), []byte(`{"v":1,"line":25,"offset":750}`))
		_ = w.Set([]byte("pos/0//data/b.ndjson"), []byte("plain text"))
		_ = tx.Writer("dedup").Delete([]byte{0x01, 0, 0, 0, 1, 0x02})
	})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckpointList(t *testing.T) {
	dir := writeTestStore(t)
	code, out, errOut := runCheckpointCmd(t, "list", dir)
	if code != ExitOK || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("list:\n%s", out)
	}
	if want := fmt.Sprintf("state store %s: 3 checkpoint(s) remembered, the last is 3", dir); lines[0] != want {
		t.Errorf("head %q, want %q", lines[0], want)
	}
	for _, f := range []string{"ID", "COMPLETED", "AGE", "DURATION", "BYTES", "NODES WRITTEN"} {
		if !strings.Contains(lines[1], f) {
			t.Errorf("header %q lacks %s", lines[1], f)
		}
	}
	for i, want := range []struct{ prefix, nodes string }{{"1 ", "dedup, files"}, {"2 ", "files"}, {"3 (last) ", "dedup, files"}} {
		l := lines[2+i]
		if !strings.HasPrefix(l, want.prefix) || !strings.HasSuffix(l, want.nodes) || !strings.Contains(l, "Z  ") {
			t.Errorf("row %q, want %q ... %q", l, want.prefix, want.nodes)
		}
	}

	code, out, _ = runCheckpointCmd(t, "list", "--format", "json", dir)
	if code != ExitOK {
		t.Fatalf("code %d", code)
	}
	var got listOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.Dir != dir || got.Last == nil || *got.Last != 3 || len(got.Checkpoints) != 3 {
		t.Fatalf("json %+v", got)
	}
	for i, c := range got.Checkpoints {
		if c.ID != uint64(i+1) || c.Last != (i == 2) || c.Bytes <= 0 || c.Duration <= 0 || c.AgeSeconds < 0 || c.AgeSeconds > 60 ||
			time.Since(c.Time) > time.Minute {
			t.Errorf("checkpoint %d: %+v", i, c)
		}
	}
	wantNodes := []state.NodeWrite{{Node: "dedup", Deletes: 1}, {Node: "files", Sets: 2, Bytes: 20 + 30 + 20 + 10}}
	if fmt.Sprint(got.Checkpoints[2].Nodes) != fmt.Sprint(wantNodes) {
		t.Errorf("nodes %+v, want %+v", got.Checkpoints[2].Nodes, wantNodes)
	}
	if !strings.Contains(out, `"duration_ns": `) || !strings.Contains(out, `"age_seconds": `) {
		t.Errorf("json lacks fields:\n%s", out)
	}
	// --json is --format json, as for weir log inspect; flags may follow DIR.
	if code, out2, _ := runCheckpointCmd(t, "list", dir, "--json"); code != ExitOK || !json.Valid([]byte(out2)) {
		t.Errorf("--json: code %d\n%s", code, out2)
	}
}

func TestCheckpointInspect(t *testing.T) {
	dir := writeTestStore(t)
	code, out, errOut := runCheckpointCmd(t, "inspect", dir)
	if code != ExitOK || errOut != "" {
		t.Fatalf("code %d, stderr %q", code, errOut)
	}
	for _, f := range []string{
		fmt.Sprintf("checkpoint 3 (the last) in %s\n", dir),
		"  completed  ", " ago)\n", "  duration   ", "  written    ",
		"NODE WRITTEN", "RANGE DELETES",
		"state as of checkpoint 3: 2 node(s), 3 key(s), 87 bytes\n",
		"  NODE   KEYS  KEY BYTES  VALUE BYTES\n",
		"  dedup  1     6          1\n",
		"  files  2     40         40\n",
	} {
		if !strings.Contains(out, f) {
			t.Errorf("inspect lacks %q:\n%s", f, out)
		}
	}
	if strings.Contains(out, "pos/0/") {
		t.Errorf("keys listed without --keys:\n%s", out)
	}

	code, out, _ = runCheckpointCmd(t, "inspect", "--keys", dir, "3")
	if code != ExitOK {
		t.Fatalf("code %d", code)
	}
	for _, f := range []string{
		"node dedup: 1 key(s)\n  KEY             VALUE BYTES\n  0x01000000" + "00fe  1\n",
		"node files: 2 key(s)\n",
		"  pos/0//data/a.ndjson  30\n",
		"  pos/0//data/b.ndjson  10\n",
	} {
		if !strings.Contains(out, f) {
			t.Errorf("inspect --keys lacks %q:\n%s", f, out)
		}
	}
	code, out, _ = runCheckpointCmd(t, "inspect", "--values", "--node", "files", dir)
	if code != ExitOK || strings.Contains(out, "node dedup") ||
		!strings.Contains(out, `pos/0//data/a.ndjson  30           {"v":1,"line":25,"offset":750}`) ||
		!strings.Contains(out, "pos/0//data/b.ndjson  10           plain text") {
		t.Errorf("inspect --values --node files: code %d\n%s", code, out)
	}

	code, out, _ = runCheckpointCmd(t, "inspect", "--format", "json", "--values", dir)
	if code != ExitOK {
		t.Fatalf("code %d", code)
	}
	var got struct {
		Checkpoint struct {
			ID   uint64
			Last bool
		}
		State struct {
			Nodes []struct {
				Node     string
				Keys     int64
				KeyBytes int64 `json:"key_bytes"`
				Entries  []map[string]any
			}
			Totals inspectTotal
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if got.Checkpoint.ID != 3 || !got.Checkpoint.Last || len(got.State.Nodes) != 2 || got.State.Totals != (inspectTotal{Nodes: 2, Keys: 3, KeyBytes: 46, ValueBytes: 41}) {
		t.Fatalf("json %+v", got)
	}
	dedup, files := got.State.Nodes[0], got.State.Nodes[1]
	if fmt.Sprint(dedup.Entries) != "[map[key_hex:0100000000fe value_bytes:1 value_hex:ff]]" {
		t.Errorf("dedup entries %v", dedup.Entries)
	}
	if fmt.Sprint(files.Entries) != "[map[key:pos/0//data/a.ndjson value:map[line:25 offset:750 v:1] value_bytes:30] map[key:pos/0//data/b.ndjson value:plain text value_bytes:10]]" {
		t.Errorf("files entries %v", files.Entries)
	}

	// An older checkpoint: its record, but no state — the store keeps only
	// the last one's.
	code, out, _ = runCheckpointCmd(t, "inspect", dir, "2")
	if code != ExitOK || !strings.Contains(out, "checkpoint 2 in ") || strings.Contains(out, "(the last)") ||
		!strings.Contains(out, "  files         1     0        0              50\n") ||
		!strings.Contains(out, "state: the store keeps the state of the last checkpoint only (3)") {
		t.Errorf("inspect 2: code %d\n%s", code, out)
	}
	code, out, _ = runCheckpointCmd(t, "inspect", "--json", dir, "1")
	if code != ExitOK || !strings.Contains(out, `"state": null`) || !strings.Contains(out, `"note": "the store keeps`) {
		t.Errorf("inspect --json 1: code %d\n%s", code, out)
	}
}

func TestCheckpointErrors(t *testing.T) {
	store := writeTestStore(t)
	empty := t.TempDir()
	fresh := t.TempDir() // a store no checkpoint was written to
	s, err := state.Open(fresh, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string
		stdout string
	}{
		{name: "no subcommand", args: nil, code: ExitConfig, stderr: []string{"Usage:", "weir checkpoint list"}},
		{name: "help", args: []string{"help"}, code: ExitOK, stdout: "Usage:"},
		{name: "unknown subcommand", args: []string{"show", store}, code: ExitConfig, stderr: []string{`unknown command "show"`}},
		{name: "list without DIR", args: []string{"list"}, code: ExitConfig, stderr: []string{"expected the state DIR, got 0 arguments"}},
		{name: "list with two", args: []string{"list", store, store}, code: ExitConfig, stderr: []string{"got 2 arguments"}},
		{name: "inspect with three", args: []string{"inspect", store, "1", "2"}, code: ExitConfig, stderr: []string{"an optional checkpoint ID, got 3"}},
		{name: "bad format", args: []string{"list", "--format", "yaml", store}, code: ExitConfig, stderr: []string{`unknown format "yaml"`}},
		{name: "bad flag", args: []string{"inspect", "--frobnicate", store}, code: ExitConfig, stderr: []string{"-frobnicate"}},
		{name: "bad ID", args: []string{"inspect", store, "x"}, code: ExitConfig, stderr: []string{`checkpoint ID "x" is not a positive number`}},
		{name: "forgotten ID", args: []string{"inspect", store, "9"}, code: ExitConfig, stderr: []string{"checkpoint 9 is not remembered", "1 to 3"}},
		{name: "unknown node", args: []string{"inspect", "--node", "nope", store}, code: ExitConfig, stderr: []string{`node "nope" has no state`, "dedup, files"}},
		{name: "missing DIR", args: []string{"list", filepath.Join(empty, "nope")}, code: ExitConfig, stderr: []string{"does not exist", "no weir state store"}},
		{name: "not a store", args: []string{"inspect", empty}, code: ExitConfig, stderr: []string{"holds no Pebble database", "state.dir"}},
		{name: "no checkpoint yet: list", args: []string{"list", fresh}, code: ExitOK, stdout: "no completed checkpoint yet"},
		{name: "no checkpoint yet: inspect", args: []string{"inspect", fresh}, code: ExitConfig, stderr: []string{"no completed checkpoint in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCheckpointCmd(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
			for _, f := range tc.stderr {
				if !strings.Contains(errOut, f) {
					t.Errorf("stderr lacks %q:\n%s", f, errOut)
				}
			}
			if !strings.Contains(out, tc.stdout) || tc.stdout == "" && out != "" {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, "LOCK")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("inspecting a directory that is not a store left a LOCK file in it: %v", err)
	}
}

// TestCheckpointStoreInUse: while a pipeline has the store open, the
// commands say so (exit 1) and leave it alone.
func TestCheckpointStoreInUse(t *testing.T) {
	dir := writeTestStore(t)
	s, err := state.Open(dir, nil) // the running pipeline
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"list", "inspect"} {
		code, out, errOut := runCheckpointCmd(t, cmd, dir)
		if code != ExitFailure || out != "" || !strings.Contains(errOut, dir+" is in use by a running weir: stop the pipeline") ||
			!strings.Contains(errOut, "weir_checkpoint_age_seconds") {
			t.Errorf("%s: code %d, stdout %q, stderr:\n%s", cmd, code, out, errOut)
		}
	}
	tx := s.Begin()
	_ = tx.Writer("files").Set([]byte("k"), []byte("v"))
	if err := tx.Commit(4); err != nil {
		t.Fatalf("the pipeline cannot commit after an inspection: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	code, out, _ := runCheckpointCmd(t, "list", dir)
	if code != ExitOK || !strings.Contains(out, "4 (last)") {
		t.Errorf("after the pipeline stopped: code %d\n%s", code, out)
	}
}
