package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

var (
	pipelineNameRe = regexp.MustCompile(`^[a-z0-9_-]+$`)
	nodeNameRe     = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// Load reads the pipeline file at path and parses it; see Parse.
func Load(path string) (*Pipeline, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse parses and checks a pipeline file; file names it in positions.
//
// A file that is not valid YAML gives a single *Error. Otherwise every
// problem found is returned at once as Errors, sorted by position, and the
// Pipeline is returned too, holding what could be read, so that callers can
// add the problems of the nodes' component fields (Node.Decode) to the same
// report. Only a nil error means the Pipeline is fit to run, and even then
// the DAG builder still checks that from and dead_letter name existing
// nodes and that the graph has no cycle.
func Parse(file string, data []byte) (*Pipeline, error) {
	root, serr := parseYAML(file, data)
	if serr != nil {
		return nil, serr
	}
	d := newDecoder(file, newSource(data))
	if root.Kind != yaml.MappingNode {
		d.add(root, "", "got "+gotText(root, nil), "a mapping with name, inputs and outputs",
			"a pipeline file is a mapping: keys such as name: and inputs: at the start of lines")
		return nil, d.result()
	}
	spec := defaultSpec()
	d.value(root, "", reflect.ValueOf(&spec).Elem(), nil)
	p := &Pipeline{
		File:    file,
		Name:    spec.Name,
		Control: spec.Control,
		Logging: spec.Logging,
		Status:  spec.Status,
		Runtime: spec.Runtime,
		State:   spec.State,
	}
	if spec.Name != "" && !pipelineNameRe.MatchString(spec.Name) {
		d.add(d.lookupField(root, "name"), "name", fmt.Sprintf("invalid pipeline name %q", spec.Name),
			"lower-case letters, digits, _ and -", suggestName(spec.Name, true))
	}
	seen := map[string]*Node{}
	d.nodes(p, spec.Inputs, InputNode, seen)
	d.nodes(p, spec.Processors, ProcessorNode, seen)
	d.nodes(p, spec.Outputs, OutputNode, seen)
	if errs := d.result(); errs != nil {
		return p, errs
	}
	return p, nil
}

// suggestName returns a hint with a well-formed version of name.
func suggestName(name string, lower bool) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r)) || r == '_' || r == '-':
			if lower {
				r = unicode.ToLower(r)
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	s := strings.Trim(b.String(), "_")
	if s == "" {
		return "use a name such as my_pipeline"
	}
	return fmt.Sprintf("try %q", s)
}

// nodes reads one section (inputs, processors or outputs) into p.Nodes.
func (d *decoder) nodes(p *Pipeline, sec *yaml.Node, kind NodeKind, seen map[string]*Node) {
	section := kind.section()
	sec = d.deref(sec)
	if sec == nil {
		return // absent: the struct decode reported it if required
	}
	empty := sec.Kind == yaml.ScalarNode && sec.Tag == nullTag && sec.Style&yaml.TaggedStyle == 0
	if sec.Kind != yaml.MappingNode && !empty {
		d.add(sec, section, "got "+gotText(sec, nil), "a mapping of node names to nodes",
			fmt.Sprintf("write each %s as its name and a colon, with its fields indented below", kind))
		return
	}
	var pairs []pair
	if !empty {
		pairs = d.pairs(sec, section, true)
	}
	if len(pairs) == 0 && kind != ProcessorNode {
		d.add(sec, section, "no "+section+" are defined", "at least one "+kind.String(),
			fmt.Sprintf("add %s: a name with type: and its fields indented below", kind.article()))
	}
	for _, pr := range pairs {
		name, path := pr.key.Value, join(section, pr.key.Value)
		if !nodeNameRe.MatchString(name) {
			d.add(pr.key, path, fmt.Sprintf("invalid node name %q", name), "letters, digits, _ and -", suggestName(name, false))
		}
		if prev := seen[name]; prev != nil {
			d.add(pr.key, path, fmt.Sprintf("node name %q is already used by %s at line %d, column %d", name, prev.Kind.article(), prev.Pos.Line, prev.Pos.Col),
				"a name unique across inputs, processors and outputs", "rename one of them, and the from lists that name it")
			continue
		}
		val := d.deref(pr.val)
		if val == nil || val.Kind != yaml.MappingNode {
			if val == nil {
				val = pr.val
			}
			d.add(val, path, "got "+gotText(val, nil), "a mapping with type: and the node's fields",
				fmt.Sprintf("write the node's fields indented below %q, starting with type: <component>", name+":"))
			continue
		}
		c := defaultNode()
		d.top = &topOpts{ignoreUnknown: true}
		d.value(val, path, reflect.ValueOf(&c).Elem(), nil)
		d.top = nil
		n := &Node{
			Name:        name,
			Kind:        kind,
			Type:        c.Type,
			Pos:         nodePos(d.file, pr.key),
			From:        c.From,
			Parallelism: c.Parallelism,
			Edge:        c.Edge,
			KeyBy:       c.KeyBy,
			OnError:     c.OnError,
			DeadLetter:  c.DeadLetter,
			EventTime:   &c.EventTime,
			Spec:        val,
			src:         d.src,
		}
		d.checkNode(n)
		seen[name] = n
		p.Nodes = append(p.Nodes, n)
	}
}

// checkNode checks the rules that tie a node's common fields together and
// fills in FromPos and DeadLetterPos.
func (d *decoder) checkNode(n *Node) {
	keys := map[string]pair{}
	for _, p := range d.pairs(n.Spec, "", false) {
		keys[p.key.Value] = p
	}
	path := n.Path()
	field := func(k string) string { return path + "." + k }
	valueOf := func(k string) *yaml.Node { return d.deref(keys[k].val) }

	if n.Parallelism < 1 {
		d.add(valueOf("parallelism"), field("parallelism"), fmt.Sprintf("parallelism is %d", n.Parallelism),
			"an integer of at least 1", "it is the number of instances of this node; leave it out for 1")
	}

	from, hasFrom := keys["from"]
	if n.Kind == InputNode {
		for _, k := range []string{"from", "edge", "key_by"} {
			if p, ok := keys[k]; ok {
				hint := "inputs read from outside the pipeline; remove from, or move this node under processors or outputs"
				if k != "from" {
					hint = fmt.Sprintf("%s says how events from upstream reach a node, and an input has no upstream; remove it", k)
				}
				d.add(p.key, field(k), fmt.Sprintf("%s is not allowed on an input", k), "an input without from, edge and key_by", hint)
			}
		}
		n.From, n.Edge, n.KeyBy = nil, "", nil
		if _, ok := keys["event_time"]; !ok {
			n.EventTime = nil
		}
		if et := n.EventTime; et != nil {
			if et.MaxOutOfOrderness < 0 {
				d.add(valueOf("event_time"), field("event_time.max_out_of_orderness"), "max_out_of_orderness is negative", "a duration of 0s or more", "it is how late an event may arrive; 0s means in order")
			}
			if et.IdleTimeout < 0 {
				d.add(valueOf("event_time"), field("event_time.idle_timeout"), "idle_timeout is negative", "a duration of 0s or more", "0s means a partition never counts as idle")
			}
		}
	} else {
		if p, ok := keys["event_time"]; ok {
			d.add(p.key, field("event_time"), "event_time is only allowed on an input", "an input with event_time",
				"event time and watermarks are made where events enter the pipeline; move event_time to the input(s) this node reads from")
		}
		n.EventTime = nil
		fv := d.deref(from.val)
		switch {
		case !hasFrom && n.Kind == ProcessorNode:
			// An output without from is valid when it is some node's
			// dead_letter; the graph builder checks that.
			d.errs.Add(missingField(d.file, n.Spec, path, "from", "an upstream node name or a list of them", "the node or nodes it reads from"))
		case len(n.From) == 0 && fv != nil && !d.reported(field("from")):
			d.add(fv, field("from"), "from names no node", "an upstream node name or a list of them", "name the node or nodes this "+n.Kind.String()+" reads from")
		}
		n.FromPos = d.fromPos(fv, len(n.From))
		d.checkEdge(n, keys)
	}

	if n.OnError == OnErrorDeadLetter && n.DeadLetter == "" {
		d.add(valueOf("on_error"), field("dead_letter"), "on_error is dead_letter but no dead_letter output is named",
			"dead_letter: <output name>", "add dead_letter: <name of an output> under "+path)
	}
	if dl, ok := keys["dead_letter"]; ok {
		n.DeadLetterPos = nodePos(d.file, d.deref(dl.val))
		if n.DeadLetter != "" && n.OnError != OnErrorDeadLetter {
			d.add(dl.key, field("dead_letter"), fmt.Sprintf("dead_letter is set but on_error is %s", n.OnError), "on_error: dead_letter",
				fmt.Sprintf("add on_error: dead_letter to send failed events to %q, or remove dead_letter", n.DeadLetter))
		}
	}
}

// checkEdge checks edge and key_by of a processor or output.
func (d *decoder) checkEdge(n *Node, keys map[string]pair) {
	field := n.Path() + "."
	switch {
	case n.KeyBy != nil && n.Edge == "":
		n.Edge = EdgeKeyHash
	case n.KeyBy != nil && n.Edge != EdgeKeyHash:
		d.add(keys["key_by"].key, field+"key_by", fmt.Sprintf("key_by needs edge key_hash, but edge is %s", n.Edge), "edge: key_hash, or no edge",
			"remove the edge line (key_by implies key_hash), or remove key_by")
	case n.KeyBy == nil && n.Edge == EdgeKeyHash:
		if _, ok := keys["key_by"]; !ok { // a key_by with errors was reported already
			d.add(d.deref(keys["edge"].val), field+"edge", "edge key_hash needs key_by", "a key_by expression",
				"add key_by: <expression>, e.g. key_by: user_id")
		}
	}
}

// fromPos returns the positions of the names in a from value holding n of
// them.
func (d *decoder) fromPos(fv *yaml.Node, n int) []Pos {
	if fv == nil || n == 0 {
		return nil
	}
	if fv.Kind == yaml.ScalarNode {
		return []Pos{nodePos(d.file, fv)}
	}
	if fv.Kind != yaml.SequenceNode || len(fv.Content) != n {
		return nil
	}
	out := make([]Pos, n)
	for i, c := range fv.Content {
		if c = d.deref(c); c != nil {
			out[i] = nodePos(d.file, c)
		}
	}
	return out
}

// parseYAML parses the file into a node tree, or returns its syntax error.
func parseYAML(file string, data []byte) (*yaml.Node, *Error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "the file is empty",
				Expected: "a mapping with name, inputs and outputs", Hint: "a pipeline needs at least a name, one input and one output"}
		}
		return nil, syntaxError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, syntaxError(file, data, err)
	default:
		return nil, &Error{Pos: Pos{File: file, Line: max(extra.Line, 1), Col: 1}, Msg: "the file holds more than one YAML document",
			Expected: "one document", Hint: `remove the "---" line and what follows it`}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &Error{Pos: Pos{File: file, Line: 1, Col: 1}, Msg: "the file is empty",
				Expected: "a mapping with name, inputs and outputs", Hint: "a pipeline needs at least a name, one input and one output"}
		}
		root = root.Content[0]
	}
	return root, nil
}

var yamlLineRe = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// Problems of yaml.v3's parser (as opposed to its scanner) report 0-based
// line numbers.
var parserProblems = []string{
	"did not find expected <document start>", "did not find expected <stream-start>",
	"did not find expected key", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected ',' or ']'",
	"did not find expected ',' or '}'", "found duplicate %TAG directive",
	"found duplicate %YAML directive", "found incompatible YAML document",
	"found undefined tag handle",
}

// syntaxError turns a yaml.v3 syntax error into an Error. yaml.v3 gives a
// line (not always) and no column: the column is that of the first
// offending character where one can be found, else of the line's first
// non-blank character.
func syntaxError(file string, data []byte, err error) *Error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if m := yamlLineRe.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
		for _, p := range parserProblems {
			if msg == p {
				line++
				break
			}
		}
	}
	src := newSource(data)
	nlines := len(src.lines)
	if nlines > 1 && src.lines[nlines-1] == "" {
		nlines--
	}
	line = max(1, min(line, nlines))
	col := 0
	switch {
	case strings.HasPrefix(msg, "unknown anchor '"):
		name := strings.TrimSuffix(strings.TrimPrefix(msg, "unknown anchor '"), "' referenced")
		line, col = find(src, func(l string) int { return strings.Index(l, "*"+name) })
	case strings.Contains(msg, "control characters"):
		line, col = find(src, func(l string) int {
			return strings.IndexFunc(l, func(r rune) bool { return r != '\t' && unicode.IsControl(r) })
		})
	case strings.Contains(msg, "UTF-8") || strings.Contains(msg, "Unicode"):
		line, col = find(src, func(l string) int {
			for i, r := range l {
				if r == utf8.RuneError {
					return i
				}
			}
			return -1
		})
	}
	if line < 1 || line > len(src.lines) {
		line, col = 1, 0
	}
	text := src.lines[line-1]
	indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	tab := strings.Contains(msg, "tab") || strings.Contains(indent, "\t")
	switch {
	case col != 0:
	case tab:
		if i := strings.IndexByte(text, '\t'); i >= 0 {
			col = utf8.RuneCountInString(text[:i]) + 1
		}
	case strings.Contains(msg, "mapping values are not allowed"):
		// Point at the second ": " of a line such as "expr: a: b".
		if i := strings.Index(text, ": "); i >= 0 {
			if j := strings.Index(text[i+2:], ": "); j >= 0 && !strings.ContainsAny(text[:i+2+j], "'\"") {
				col = utf8.RuneCountInString(text[:i+2+j]) + 1
			}
		}
	}
	if col == 0 {
		col = utf8.RuneCountInString(indent) + 1
	}
	hint := syntaxHint(msg)
	if tab {
		hint = "indent with spaces: YAML does not allow tabs for indentation"
	}
	return &Error{Pos: Pos{File: file, Line: line, Col: col}, Msg: "invalid YAML: " + msg, Expected: "valid YAML", Hint: hint}
}

// find returns the line and column of the first match of at (a byte index in
// a line, or -1) in src.
func find(src *source, at func(string) int) (int, int) {
	for i, l := range src.lines {
		if j := at(l); j >= 0 {
			return i + 1, utf8.RuneCountInString(l[:j]) + 1
		}
	}
	return 0, 0
}

// syntaxHint suggests a fix for a YAML syntax problem.
func syntaxHint(msg string) string {
	switch {
	case strings.Contains(msg, "mapping values are not allowed"):
		return `quote a value that contains ": ", e.g. expr: 'a: b'; otherwise check this line's indentation`
	case strings.Contains(msg, "cannot start any token"):
		return "quote a value that starts with @ or `"
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "block sequence entries"):
		return "check the indentation: this line does not line up with the keys or list items around it"
	case strings.Contains(msg, "did not find expected ','"):
		return "close the [ or { that starts here, or quote the value"
	case strings.Contains(msg, "end of stream"):
		return "close the quote or bracket that starts here"
	case strings.Contains(msg, "could not find expected ':'"):
		return `put ": " after the key, or quote the value`
	case strings.Contains(msg, "unknown anchor"):
		return "define the anchor with &name before using *name"
	case strings.Contains(msg, "escape"):
		return `in double quotes write \\ for a backslash, or use single quotes`
	case strings.Contains(msg, "control characters"):
		return "remove the control character"
	case strings.Contains(msg, "UTF-8"):
		return "save the file as UTF-8"
	}
	return "check the indentation and quoting of this line and the one above"
}
