package cli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/state"
)

const checkpointUsage = `Usage:
  weir checkpoint list [--format text|json] DIR
                        the checkpoints the state store remembers, oldest first
  weir checkpoint inspect [--format text|json] [--keys] [--values] [--node NAME] DIR [ID]
                        one checkpoint (default: the last) and the state per node

DIR is a pipeline's state.dir. The store is only read, but Pebble lets one
process at a time open it, even to read: stop the pipeline first. While it
runs, its /metrics has weir_checkpoint_duration_seconds,
weir_checkpoint_size_bytes and weir_checkpoint_age_seconds.
Exit codes: 0 ok, 1 the store is in use or cannot be read, 2 bad usage, no
state store in DIR, or no such checkpoint.
`

// checkpointEnv is what the checkpoint commands need from outside; tests
// replace now.
type checkpointEnv struct {
	now func() time.Time
}

// cmdCheckpoint runs "weir checkpoint SUBCOMMAND".
func cmdCheckpoint(args []string, stdout, stderr io.Writer) int {
	return runCheckpoint(args, stdout, stderr, checkpointEnv{now: time.Now})
}

func runCheckpoint(args []string, stdout, stderr io.Writer, env checkpointEnv) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, checkpointUsage)
		return ExitConfig
	}
	switch args[0] {
	case "list":
		return checkpointList(args[1:], stdout, stderr, env)
	case "inspect":
		return checkpointInspect(args[1:], stdout, stderr, env)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, checkpointUsage)
		return ExitOK
	default:
		fmt.Fprintf(stderr, "weir checkpoint: unknown command %q\n\n%s", args[0], checkpointUsage)
		return ExitConfig
	}
}

// formatFlags are the output flags both commands take.
type formatFlags struct {
	format string
	json   bool
}

func (f *formatFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "format", "text", "output format: text or json")
	fs.BoolVar(&f.json, "json", false, "same as --format json")
}

// asJSON reports whether to print JSON; ok=false means a bad --format.
func (f *formatFlags) asJSON(cmd string, stderr io.Writer) (asJSON, ok bool) {
	switch {
	case f.json || f.format == "json":
		return true, true
	case f.format == "text":
		return false, true
	}
	fmt.Fprintf(stderr, "weir checkpoint %s: unknown format %q (expected text or json)\n", cmd, f.format)
	return false, false
}

// parseArgs parses flags placed before, between or after the positional
// arguments, of which there must be between least and most.
func parseArgs(fs *flag.FlagSet, args []string, least, most int, stderr io.Writer) ([]string, bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\nFlags of weir checkpoint %s:\n", checkpointUsage, fs.Name())
		fs.PrintDefaults()
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, false
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) < least || len(pos) > most {
		what := "the state DIR"
		if most > 1 {
			what = "the state DIR and an optional checkpoint ID"
		}
		fmt.Fprintf(stderr, "weir checkpoint %s: expected %s, got %d arguments\n", fs.Name(), what, len(pos))
		return nil, false
	}
	return pos, true
}

// openStore opens the store in dir read-only. The returned code is ExitOK
// on success.
func openStore(cmd, dir string, stderr io.Writer) (*state.Store, int) {
	s, err := state.OpenReadOnly(dir)
	switch {
	case err == nil:
		return s, ExitOK
	case errors.Is(err, state.ErrNoStore):
		fmt.Fprintf(stderr, "weir checkpoint %s: %v\nDIR is the state.dir of a pipeline that has run with it.\n", cmd, err)
		return nil, ExitConfig
	case errors.Is(err, state.ErrLocked):
		fmt.Fprintf(stderr, "weir checkpoint %s: %s is in use by a running weir: stop the pipeline to inspect its checkpoints.\n"+
			"While it runs, its /metrics has weir_checkpoint_duration_seconds, weir_checkpoint_size_bytes and weir_checkpoint_age_seconds.\n(%v)\n",
			cmd, dir, err)
		return nil, ExitFailure
	default:
		fmt.Fprintf(stderr, "weir checkpoint %s: %v\n", cmd, err)
		return nil, ExitFailure
	}
}

// listEntry is one checkpoint as list and inspect print it.
type listEntry struct {
	state.Checkpoint
	// Last marks the last completed checkpoint, the one a restart resumes
	// from.
	Last       bool    `json:"last"`
	AgeSeconds float64 `json:"age_seconds"`
}

type listOutput struct {
	Dir string `json:"dir"`
	// Last is the ID of the last completed checkpoint; absent when none.
	Last        *uint64     `json:"last,omitempty"`
	Checkpoints []listEntry `json:"checkpoints"`
}

func newEntry(c state.Checkpoint, last uint64, now time.Time) listEntry {
	return listEntry{Checkpoint: c, Last: c.ID == last, AgeSeconds: now.Sub(c.Time).Seconds()}
}

func checkpointList(args []string, stdout, stderr io.Writer, env checkpointEnv) int {
	fs := flag.NewFlagSet("list", flag.ContinueOnError)
	var ff formatFlags
	ff.register(fs)
	pos, ok := parseArgs(fs, args, 1, 1, stderr)
	if !ok {
		return ExitConfig
	}
	asJSON, ok := ff.asJSON("list", stderr)
	if !ok {
		return ExitConfig
	}
	s, code := openStore("list", pos[0], stderr)
	if code != ExitOK {
		return code
	}
	defer func() { _ = s.Close() }() // read-only
	list, err := s.List()
	if err != nil {
		fmt.Fprintf(stderr, "weir checkpoint list: %v\n", err)
		return ExitFailure
	}
	out := listOutput{Dir: pos[0], Checkpoints: []listEntry{}}
	last, hasLast := s.Last()
	if hasLast {
		out.Last = &last
	}
	now := env.now()
	for _, c := range list {
		out.Checkpoints = append(out.Checkpoints, newEntry(c, last, now))
	}
	if asJSON {
		err = writeJSON(stdout, out)
	} else {
		err = writeList(stdout, out)
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir checkpoint list: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func writeList(w io.Writer, l listOutput) error {
	b := &bytes.Buffer{}
	if len(l.Checkpoints) == 0 {
		fmt.Fprintf(b, "state store %s: no completed checkpoint yet\n", l.Dir)
		_, err := w.Write(b.Bytes())
		return err
	}
	fmt.Fprintf(b, "state store %s: %d checkpoint(s) remembered", l.Dir, len(l.Checkpoints))
	if l.Last != nil {
		fmt.Fprintf(b, ", the last is %d", *l.Last)
	}
	fmt.Fprintln(b)
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCOMPLETED\tAGE\tDURATION\tBYTES\tNODES WRITTEN")
	for _, c := range l.Checkpoints {
		id := strconv.FormatUint(c.ID, 10)
		if c.Last {
			id += " (last)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", id, formatTime(c.Time), formatAge(c.AgeSeconds),
			formatDuration(c.Duration), c.Bytes, nodeNames(c.Nodes))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}

// formatAge renders an age in seconds to a precision that suits it.
func formatAge(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < 0:
		return "-" // a clock that moved back
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

func formatDuration(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Millisecond {
		return d.Round(time.Microsecond).String()
	}
	return d.Round(100 * time.Microsecond).String()
}

func nodeNames(ns []state.NodeWrite) string {
	if len(ns) == 0 {
		return "-"
	}
	names := make([]string, len(ns))
	for i, n := range ns {
		names[i] = n.Node
	}
	return strings.Join(names, ", ")
}

// Inspect output, also its JSON form.
type inspectOutput struct {
	Dir        string    `json:"dir"`
	Checkpoint listEntry `json:"checkpoint"`
	// State is the state as of the checkpoint, present only for the last
	// one: the store keeps no other.
	State *inspectState `json:"state"`
	Note  string        `json:"note,omitempty"`
}

type inspectState struct {
	Nodes  []inspectNode `json:"nodes"`
	Totals inspectTotal  `json:"totals"`
}

type inspectNode struct {
	state.NodeState
	// Entries are the node's keys, with --keys.
	Entries []inspectEntry `json:"entries,omitempty"`
}

type inspectTotal struct {
	Nodes      int   `json:"nodes"`
	Keys       int64 `json:"keys"`
	KeyBytes   int64 `json:"key_bytes"`
	ValueBytes int64 `json:"value_bytes"`
}

// inspectEntry is one key: Key when it is printable text, else KeyHex.
// Value (with --values) is embedded when it is JSON, else a string when it
// is printable, else in ValueHex.
type inspectEntry struct {
	Key        json.RawMessage `json:"key,omitempty"`
	KeyHex     string          `json:"key_hex,omitempty"`
	ValueBytes int             `json:"value_bytes"`
	Value      json.RawMessage `json:"value,omitempty"`
	ValueHex   string          `json:"value_hex,omitempty"`

	// The text output's renderings.
	keyText, valueText string
}

func checkpointInspect(args []string, stdout, stderr io.Writer, env checkpointEnv) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	var ff formatFlags
	ff.register(fs)
	keys := fs.Bool("keys", false, "list each node's keys and the sizes of their values (printable keys as text, others in hex)")
	values := fs.Bool("values", false, "list the values too (implies --keys)")
	node := fs.String("node", "", "only this node's state")
	pos, ok := parseArgs(fs, args, 1, 2, stderr)
	if !ok {
		return ExitConfig
	}
	asJSON, ok := ff.asJSON("inspect", stderr)
	if !ok {
		return ExitConfig
	}
	var id uint64
	if len(pos) == 2 {
		n, err := strconv.ParseUint(pos[1], 10, 64)
		if err != nil || n == 0 {
			fmt.Fprintf(stderr, "weir checkpoint inspect: checkpoint ID %q is not a positive number\n", pos[1])
			return ExitConfig
		}
		id = n
	}
	dir := pos[0]
	s, code := openStore("inspect", dir, stderr)
	if code != ExitOK {
		return code
	}
	defer func() { _ = s.Close() }() // read-only
	last, hasLast := s.LastCheckpoint()
	if !hasLast {
		fmt.Fprintf(stderr, "weir checkpoint inspect: no completed checkpoint in %s yet\n", dir)
		return ExitConfig
	}
	rec, code := findCheckpoint(s, id, last, stderr)
	if code != ExitOK {
		return code
	}
	out := inspectOutput{Dir: dir, Checkpoint: newEntry(rec, last.ID, env.now())}
	if rec.ID == last.ID {
		st, code := readState(s, *node, *keys || *values, *values, stderr)
		if code != ExitOK {
			return code
		}
		out.State = st
	} else {
		out.Note = fmt.Sprintf("the store keeps the state of the last checkpoint only (%d); inspect that one to see it", last.ID)
	}
	var err error
	if asJSON {
		err = writeJSON(stdout, out)
	} else {
		err = writeInspectCheckpoint(stdout, out, *keys || *values, *values)
	}
	if err != nil {
		fmt.Fprintf(stderr, "weir checkpoint inspect: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}

// findCheckpoint returns the record of checkpoint id (0: the last).
func findCheckpoint(s *state.Store, id uint64, last state.Checkpoint, stderr io.Writer) (state.Checkpoint, int) {
	if id == 0 || id == last.ID {
		return last, ExitOK
	}
	list, err := s.List()
	if err != nil {
		fmt.Fprintf(stderr, "weir checkpoint inspect: %v\n", err)
		return state.Checkpoint{}, ExitFailure
	}
	for _, c := range list {
		if c.ID == id {
			return c, ExitOK
		}
	}
	first := last.ID
	if len(list) > 0 {
		first = list[0].ID
	}
	fmt.Fprintf(stderr, "weir checkpoint inspect: checkpoint %d is not remembered: the store keeps the last %d, here %d to %d (weir checkpoint list)\n",
		id, state.History, first, last.ID)
	return state.Checkpoint{}, ExitConfig
}

// readState summarizes the store's state per node (only node, when set),
// with each node's keys when withKeys is set.
func readState(s *state.Store, node string, withKeys, withValues bool, stderr io.Writer) (*inspectState, int) {
	nodes, err := s.Nodes()
	if err != nil {
		fmt.Fprintf(stderr, "weir checkpoint inspect: %v\n", err)
		return nil, ExitFailure
	}
	st := &inspectState{Nodes: []inspectNode{}}
	var names []string
	for _, ns := range nodes {
		names = append(names, ns.Node)
		if node != "" && ns.Node != node {
			continue
		}
		in := inspectNode{NodeState: ns}
		if withKeys {
			err := s.Reader(ns.Node).Scan(nil, nil, func(k, v []byte) error {
				in.Entries = append(in.Entries, newInspectEntry(k, v, withValues))
				return nil
			})
			if err != nil {
				fmt.Fprintf(stderr, "weir checkpoint inspect: node %q: %v\n", ns.Node, err)
				return nil, ExitFailure
			}
		}
		st.Nodes = append(st.Nodes, in)
		st.Totals.Nodes++
		st.Totals.Keys += ns.Keys
		st.Totals.KeyBytes += ns.KeyBytes
		st.Totals.ValueBytes += ns.ValueBytes
	}
	if node != "" && len(st.Nodes) == 0 {
		have := "none has"
		if len(names) > 0 {
			have = "nodes with state: " + strings.Join(names, ", ")
		}
		fmt.Fprintf(stderr, "weir checkpoint inspect: node %q has no state in the last checkpoint (%s)\n", node, have)
		return nil, ExitConfig
	}
	return st, ExitOK
}

// printable reports whether b is text that prints as itself: UTF-8 without
// control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func newInspectEntry(k, v []byte, withValue bool) inspectEntry {
	e := inspectEntry{ValueBytes: len(v)}
	e.Key, e.KeyHex, e.keyText = render(k)
	if !withValue {
		return e
	}
	if json.Valid(v) {
		var b bytes.Buffer
		_ = json.Compact(&b, v) // valid
		e.Value, e.valueText = b.Bytes(), b.String()
		return e
	}
	e.Value, e.ValueHex, e.valueText = render(v)
	return e
}

// render returns b as a JSON string when it is printable, else in hex,
// and its text rendering: as is, or 0x and hex.
func render(b []byte) (text json.RawMessage, hexForm, display string) {
	if printable(b) {
		return jsonString(string(b)), "", string(b)
	}
	h := hex.EncodeToString(b)
	return nil, h, "0x" + h
}

func writeInspectCheckpoint(w io.Writer, o inspectOutput, withKeys, withValues bool) error {
	b := &bytes.Buffer{}
	c := o.Checkpoint
	which := ""
	if c.Last {
		which = " (the last)"
	}
	fmt.Fprintf(b, "checkpoint %d%s in %s\n", c.ID, which, o.Dir)
	fmt.Fprintf(b, "  completed  %s (%s ago)\n", formatTime(c.Time), formatAge(c.AgeSeconds))
	fmt.Fprintf(b, "  duration   %s\n", formatDuration(c.Duration))
	fmt.Fprintf(b, "  written    %d bytes\n", c.Bytes)
	if len(c.Nodes) == 0 {
		fmt.Fprintln(b, "  no node wrote state in it (or an older weir did not record which)")
	} else {
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE WRITTEN\tSETS\tDELETES\tRANGE DELETES\tBYTES SET")
		for _, n := range c.Nodes {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", n.Node, n.Sets, n.Deletes, n.RangeDeletes, n.Bytes)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if o.State == nil {
		fmt.Fprintf(b, "\nstate: %s\n", o.Note)
		_, err := w.Write(b.Bytes())
		return err
	}
	t := o.State.Totals
	fmt.Fprintf(b, "\nstate as of checkpoint %d: %d node(s), %d key(s), %d bytes\n", c.ID, t.Nodes, t.Keys, t.KeyBytes+t.ValueBytes)
	if len(o.State.Nodes) > 0 {
		tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NODE\tKEYS\tKEY BYTES\tVALUE BYTES")
		for _, n := range o.State.Nodes {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\n", n.Node, n.Keys, n.KeyBytes, n.ValueBytes)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if withKeys {
		for _, n := range o.State.Nodes {
			fmt.Fprintf(b, "\nnode %s: %d key(s)\n", n.Node, n.Keys)
			tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
			if withValues {
				fmt.Fprintln(tw, "  KEY\tVALUE BYTES\tVALUE")
			} else {
				fmt.Fprintln(tw, "  KEY\tVALUE BYTES")
			}
			for _, e := range n.Entries {
				if withValues {
					fmt.Fprintf(tw, "  %s\t%d\t%s\n", e.keyText, e.ValueBytes, e.valueText)
				} else {
					fmt.Fprintf(tw, "  %s\t%d\n", e.keyText, e.ValueBytes)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}
