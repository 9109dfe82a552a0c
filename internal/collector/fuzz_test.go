package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/weir-dev/weir/internal/jsondoc"
	"io"
	"net/http"
	"testing"
	"unicode/utf8"
)

// fuzzLimits are small, so that the fuzzer reaches every limit.
var fuzzLimits = LimitsConfig{MaxDepth: 4, MaxEventBytes: 200, MaxEventsPerBatch: 20, MaxDecompressedBytes: 1 << 20}

var fuzzIDFields = []string{"event_id", "messageId"}

// FuzzDecodeBatch checks the batch decoder against a reference built on
// encoding/json: it never panics; every accepted event is a JSON object,
// UTF-8, within the depth and size limits, without duplicate keys, with the
// right event id; and on input the reference can frame, both frame the same
// events, in order, byte for byte, and agree on which are accepted.
func FuzzDecodeBatch(f *testing.F) {
	for _, s := range []string{
		`[{"event_id":"a","x":1},{"messageId":"b"},{}]`,
		`{"batch":[{"messageId":"m1"},{"a":[1,2,{"b":null}]}],"sentAt":"2024-05-01T00:00:00Z"}`,
		"{\"a\":1}\n{\"b\":\"\\u00e9\"}\n\n{\"c\":true}\n",
		`{"event_id":"x","props":{"k":"v","n":-1.5e3}}`,
		`[{"a":1,"a":2},{"\u0061":1,"a":2},5,"s",[],{"a":{"b":{"c":{"d":{}}}}}]`,
		"[{\"bad\":\"\xff\"},{\"ok\":\"\xe2\x82\xac\"}]",
		`{"b\u0061tch":[{"x":1}]}`,
		`{"batch":[{"x":1}],"batch":[]}`,
		`[{"a":"\ud83d\ude00","\ud800":1,"\ufffd":2}]`,
		`[{"a":tru}]`,
		"{\"a\":1}\r\n[1]\r\n{\"x\":}\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	d := newDecoder(fuzzLimits, fuzzIDFields)
	f.Fuzz(func(t *testing.T, body []byte, ndjson bool) {
		form := formBatch
		if ndjson {
			form = formNDJSON
		}
		err := d.decode(body, form)
		checkEvents(t, d, body, err)
		want, wantStatus, ok := referenceDecode(body, form)
		if !ok {
			if wantStatus != 0 && err == nil {
				t.Fatalf("decoded %d events from a body the reference refuses (%d)", len(d.events), wantStatus)
			}
			return
		}
		if wantStatus != 0 {
			var be *bodyError
			if !errors.As(err, &be) || be.status != wantStatus {
				t.Fatalf("decode = %v, reference refuses with %d", err, wantStatus)
			}
			return
		}
		if err != nil {
			t.Fatalf("decode = %v; the reference frames %d events", err, len(want))
		}
		if len(want) != len(d.events) {
			t.Fatalf("%d events, reference %d", len(d.events), len(want))
		}
		for i, w := range want {
			e := d.events[i]
			got := body[e.start:e.end]
			if !bytes.Equal(got, w.raw) {
				t.Fatalf("event %d is %q, reference %q", i, got, w.raw)
			}
			if (e.prob == probNone) != w.accept {
				t.Fatalf("event %d %q: accepted %v (%s), reference %v", i, got, e.prob == probNone, e.reason, w.accept)
			}
		}
	})
}

// checkEvents checks what must hold for any body.
func checkEvents(t *testing.T, d *decoder, body []byte, err error) {
	t.Helper()
	if err != nil {
		var be *bodyError
		if !errors.As(err, &be) || (be.status != http.StatusBadRequest && be.status != http.StatusRequestEntityTooLarge) || be.msg == "" {
			t.Fatalf("decode error %v is not a 400 or 413 bodyError", err)
		}
		return
	}
	if len(d.events) == 0 || len(d.events) > fuzzLimits.MaxEventsPerBatch {
		t.Fatalf("%d events without an error", len(d.events))
	}
	accepted, prevEnd := 0, 0
	for i, e := range d.events {
		if e.start < prevEnd || e.end < e.start || e.end > len(body) {
			t.Fatalf("event %d spans [%d, %d) after %d in a body of %d bytes", i, e.start, e.end, prevEnd, len(body))
		}
		prevEnd = e.end
		raw := body[e.start:e.end]
		if e.prob != probNone {
			if e.reason == "" {
				t.Fatalf("event %d rejected without a reason", i)
			}
			continue
		}
		accepted++
		if !json.Valid(raw) || raw[0] != '{' {
			t.Fatalf("accepted event %d %q is not a JSON object", i, raw)
		}
		if !utf8.Valid(raw) {
			t.Fatalf("accepted event %d %q is not UTF-8", i, raw)
		}
		if len(raw) > int(fuzzLimits.MaxEventBytes) {
			t.Fatalf("accepted event %d has %d bytes", i, len(raw))
		}
		if !refAccept(raw, fuzzLimits.MaxDepth) {
			t.Fatalf("accepted event %d %q has a duplicate key or is too deep", i, raw)
		}
		// The http input marks accepted events checked (event.MarkChecked),
		// so pipelines read them with jsondoc's ParseUnchecked: they must
		// meet its terms, an object Parse accepts.
		var doc jsondoc.Doc
		if err := doc.Parse(raw); err != nil || doc.Root().Kind != jsondoc.Object {
			t.Fatalf("accepted event %d %q: jsondoc.Parse = %v, root %v; want an object", i, raw, err, doc.Root().Kind)
		}
		wantID, hasID := refEventID(raw)
		gotID := ""
		if e.idLen >= 0 {
			if e.idOff < e.start || e.idOff+e.idLen > e.end {
				t.Fatalf("event %d: id outside the event", i)
			}
			gotID = string(body[e.idOff : e.idOff+e.idLen])
			if e.idEsc {
				gotID = string(appendUnescaped(nil, []byte(gotID)))
			}
		}
		if hasID != (e.idLen >= 0) || gotID != wantID {
			t.Fatalf("event %d %q: id %q (%v), reference %q (%v)", i, raw, gotID, e.idLen >= 0, wantID, hasID)
		}
	}
	if accepted != d.accepted {
		t.Fatalf("d.accepted = %d, counted %d", d.accepted, accepted)
	}
}

// refEvent is an event as the reference frames it.
type refEvent struct {
	raw    []byte
	accept bool
}

// referenceDecode frames body with encoding/json. ok is false when it cannot
// say what the decoder must do in detail; status is then non-zero if the
// body must be refused. With ok, a non-zero status is the refusal expected.
func referenceDecode(body []byte, form bodyForm) (events []refEvent, status int, ok bool) {
	trimmed := bytes.Trim(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, http.StatusBadRequest, true
	}
	if form == formNDJSON {
		return refNDJSON(body)
	}
	if maxNesting(trimmed) > hardMaxDepth-2 {
		return nil, 0, false // the decoder's framing limit; either outcome is fine
	}
	switch trimmed[0] {
	case '[':
		if !json.Valid(trimmed) {
			return nil, http.StatusBadRequest, false // or 413 if too many events came first
		}
		return refArray(trimmed)
	case '{':
	default:
		return nil, http.StatusBadRequest, true
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	var first json.RawMessage
	if err := dec.Decode(&first); err != nil {
		return nil, http.StatusBadRequest, true
	}
	if int(dec.InputOffset()) < len(trimmed) {
		return refNDJSON(body)
	}
	batch, found, dup := refBatchMember(first)
	switch {
	case dup:
		return nil, http.StatusBadRequest, true
	case found && batch[0] == '[':
		return refArray(batch)
	}
	return []refEvent{{first, refAcceptSized(first)}}, 0, true
}

func refArray(arr []byte) ([]refEvent, int, bool) {
	var elems []json.RawMessage
	if err := json.Unmarshal(arr, &elems); err != nil {
		return nil, http.StatusBadRequest, true
	}
	switch {
	case len(elems) > fuzzLimits.MaxEventsPerBatch:
		return nil, http.StatusRequestEntityTooLarge, true
	case len(elems) == 0:
		return nil, http.StatusBadRequest, true
	}
	events := make([]refEvent, len(elems))
	for i, e := range elems {
		events[i] = refEvent{e, refAcceptSized(e)}
	}
	return events, 0, true
}

func refNDJSON(body []byte) ([]refEvent, int, bool) {
	var events []refEvent
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.Trim(line, " \t\r\n")
		if len(line) == 0 {
			continue
		}
		if len(events) == fuzzLimits.MaxEventsPerBatch {
			return nil, http.StatusRequestEntityTooLarge, true
		}
		events = append(events, refEvent{line, json.Valid(line) && refAcceptSized(line)})
	}
	if len(events) == 0 {
		return nil, http.StatusBadRequest, true
	}
	return events, 0, true
}

// refBatchMember finds the "batch" member of a top-level object.
func refBatchMember(obj []byte) (json.RawMessage, bool, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return nil, false, false
	}
	var batch json.RawMessage
	found := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false, false
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, false
		}
		if tok == "batch" {
			if found {
				return nil, true, true
			}
			batch, found = v, true
		}
	}
	return batch, found, false
}

func refAcceptSized(raw []byte) bool {
	return len(raw) <= int(fuzzLimits.MaxEventBytes) && refAccept(raw, fuzzLimits.MaxDepth)
}

// refAccept reports whether the well-formed JSON value raw is a valid
// event: an object, UTF-8, nested at most maxDepth deep, no key twice in
// one object (compared as encoding/json decodes them).
func refAccept(raw []byte, maxDepth int) bool {
	if len(raw) == 0 || raw[0] != '{' || !utf8.Valid(raw) {
		return false
	}
	type frame struct {
		obj     bool
		wantKey bool
		keys    map[string]bool
	}
	var stack []*frame
	deepest := 0
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj {
			if top.wantKey {
				k := tok.(string)
				if top.keys[k] {
					return false
				}
				top.keys[k] = true
				top.wantKey = false
				continue
			}
			top.wantKey = true
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{obj: d == '{', wantKey: d == '{', keys: map[string]bool{}})
			deepest = max(deepest, len(stack))
		}
	}
	return deepest <= maxDepth
}

// refEventID is the id the collector must find in an accepted event.
func refEventID(raw []byte) (string, bool) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", false
	}
	for _, f := range fuzzIDFields {
		var s string
		if v, ok := m[f]; ok && json.Unmarshal(v, &s) == nil && s != "" {
			return s, true
		}
	}
	return "", false
}

// maxNesting is the deepest nesting of brackets outside strings.
func maxNesting(b []byte) int {
	depth, deepest, inStr := 0, 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inStr && c == '\\':
			i++
		case c == '"':
			inStr = !inStr
		case inStr:
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}
