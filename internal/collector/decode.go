package collector

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
)

// bodyForm says how a body is framed into events.
type bodyForm uint8

const (
	// formSingle: the body is one JSON object (POST /v1/events).
	formSingle bodyForm = iota
	// formBatch: detected from the body (POST /v1/batch): a JSON array of
	// objects, a {"batch": [...]} wrapper, NDJSON, or one object.
	formBatch
	// formNDJSON: one JSON object per line (an NDJSON Content-Type).
	formNDJSON
)

// event is one framed event of a body.
type event struct {
	start, end int     // the event's bytes: body[start:end]
	prob       problem // why it is rejected, or probNone
	reason     string  // for the client, when rejected
	idOff      int     // the event id's string contents in the body
	idLen      int     // -1 if the event has no id field
	idEsc      bool    // the id holds escapes
}

// bodyError refuses a whole body.
type bodyError struct {
	status int
	msg    string
}

func (e *bodyError) Error() string { return e.msg }

// decoder frames a body into events and validates each. It is reused from
// request to request and not safe for concurrent use.
type decoder struct {
	sc        scanner
	maxEvent  int
	maxEvents int
	events    []event
	accepted  int // events with prob == probNone
	arrayEnd  int // set by elements: the index past the closing ']'
}

func newDecoder(l LimitsConfig, idFields []string) *decoder {
	return &decoder{
		sc:        scanner{maxDepth: l.MaxDepth, idFields: idFields},
		maxEvent:  int(l.MaxEventBytes),
		maxEvents: l.MaxEventsPerBatch,
	}
}

// decode frames body as form says and validates every event, filling
// d.events in body order. A body that cannot be framed, or holds more than
// maxEvents events or none, is refused with a *bodyError; otherwise each
// event is accepted (prob == probNone) or rejected with a reason.
func (d *decoder) decode(body []byte, form bodyForm) error {
	d.events, d.accepted = d.events[:0], 0
	i := skipSpace(body, 0)
	if i == len(body) {
		return &bodyError{http.StatusBadRequest, "empty body: send an event object"}
	}
	switch form {
	case formSingle:
		switch body[i] {
		case '{':
			return d.single(body, i)
		case '[':
			return &bodyError{http.StatusBadRequest, "the body is a JSON array: POST /v1/events takes one event object; send batches to POST /v1/batch"}
		}
		return &bodyError{http.StatusBadRequest, "the body is not a JSON object: POST /v1/events takes one event object"}
	case formNDJSON:
		return d.ndjson(body)
	}
	switch body[i] {
	case '[':
		if err := d.elements(body, i); err != nil {
			return err
		}
		if j := skipSpace(body, d.arrayEnd); j < len(body) {
			return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: data after the array", j)}
		}
		return d.nonEmpty()
	case '{':
	default:
		return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: expected an array of event objects, a {\"batch\": [...]} object, or NDJSON", i)}
	}
	// An object: one event, a {"batch": [...]} wrapper, or the first line of
	// NDJSON. Frame the first value to tell.
	sc := &d.sc
	saved := sc.maxDepth
	sc.maxDepth = hardMaxDepth // only its syntax matters here
	end, ok := sc.scan(body, i)
	sc.maxDepth = saved
	if !ok {
		return syntaxError(sc)
	}
	if skipSpace(body, end) < len(body) {
		return d.ndjson(body)
	}
	vs, ve, found, dup := topLevelMember(body[:end], i, "batch")
	if dup {
		return &bodyError{http.StatusBadRequest, `the body has two "batch" members`}
	}
	if found && body[vs] == '[' {
		if err := d.elements(body[:ve], vs); err != nil {
			return err
		}
		return d.nonEmpty()
	}
	return d.single(body, i)
}

func (d *decoder) nonEmpty() error {
	if len(d.events) == 0 {
		return &bodyError{http.StatusBadRequest, "the batch holds no events"}
	}
	return nil
}

func (d *decoder) tooMany() error {
	return &bodyError{http.StatusRequestEntityTooLarge, fmt.Sprintf("more than %d events in one request (limits.max_events_per_batch): send smaller batches", d.maxEvents)}
}

// single decodes a body that holds one event, starting at body[i].
func (d *decoder) single(body []byte, i int) error {
	end, ok := d.sc.scan(body, i)
	if !ok {
		return syntaxError(&d.sc)
	}
	if j := skipSpace(body, end); j < len(body) {
		return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: data after the event object", j)}
	}
	d.add(body, i, end)
	return nil
}

// elements decodes the elements of the array starting at b[i] == '[' as
// events and sets d.arrayEnd. A syntax error anywhere refuses the body:
// past it, where elements begin and end is unknown.
func (d *decoder) elements(b []byte, i int) error {
	sc := &d.sc
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		d.arrayEnd = i + 1
		return nil
	}
	for {
		if len(d.events) == d.maxEvents {
			return d.tooMany()
		}
		start := skipSpace(b, i)
		end, ok := sc.scan(b, start)
		if !ok {
			return syntaxError(sc)
		}
		d.add(b, start, end)
		i = skipSpace(b, end)
		switch {
		case i >= len(b):
			return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: unexpected end of JSON in the array", i)}
		case b[i] == ',':
			i++
		case b[i] == ']':
			d.arrayEnd = i + 1
			return nil
		default:
			return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: expected ',' or ']' after an array element", i)}
		}
	}
}

// ndjson decodes one event per line. Blank lines are skipped; a line that
// is not well-formed JSON is rejected on its own.
func (d *decoder) ndjson(body []byte) error {
	sc := &d.sc
	for pos := 0; pos < len(body); {
		lineEnd := len(body)
		if nl := bytes.IndexByte(body[pos:], '\n'); nl >= 0 {
			lineEnd = pos + nl
		}
		start, end := pos, lineEnd
		for start < end && isSpace[body[start]] {
			start++
		}
		for end > start && isSpace[body[end-1]] {
			end--
		}
		pos = lineEnd + 1
		if start == end {
			continue
		}
		if len(d.events) == d.maxEvents {
			return d.tooMany()
		}
		line := body[:end]
		vend, ok := sc.scan(line, start)
		switch {
		case !ok:
			d.reject(start, end, probSyntax, fmt.Sprintf("invalid JSON at byte %d: %s", sc.probAt-start, sc.synMsg))
		case vend != end:
			d.reject(start, end, probSyntax, fmt.Sprintf("invalid JSON at byte %d: data after the event object", skipSpace(line, vend)-start))
		default:
			d.add(body, start, end)
		}
	}
	return d.nonEmpty()
}

// add appends the event body[start:end] that the scanner just read.
func (d *decoder) add(body []byte, start, end int) {
	sc := &d.sc
	if n := end - start; n > d.maxEvent {
		d.reject(start, end, probSize, fmt.Sprintf("event of %d bytes is larger than limits.max_event_bytes (%d)", n, d.maxEvent))
		return
	}
	switch sc.prob {
	case probNone:
	case probNotObject:
		d.reject(start, end, probNotObject, "not a JSON object: each event must be an object")
		return
	case probUTF8:
		d.reject(start, end, probUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", sc.probAt-start))
		return
	case probDepth:
		d.reject(start, end, probDepth, fmt.Sprintf("nested deeper than limits.max_depth (%d levels)", sc.maxDepth))
		return
	case probDupKey:
		k := sc.dupKey
		if len(k) > 64 {
			k = k[:64]
		}
		d.reject(start, end, probDupKey, "duplicate key "+strconv.Quote(string(k))+": a key may appear once per object")
		return
	default:
		d.reject(start, end, sc.prob, "invalid event")
		return
	}
	e := event{start: start, end: end, idLen: -1}
	if sc.idRank < len(sc.idFields) && sc.idLen > 0 {
		e.idOff, e.idLen, e.idEsc = sc.idOff, sc.idLen, sc.idEsc
	}
	d.events = append(d.events, e)
	d.accepted++
}

func (d *decoder) reject(start, end int, p problem, reason string) {
	d.events = append(d.events, event{start: start, end: end, prob: p, reason: reason, idLen: -1})
}

func syntaxError(sc *scanner) error {
	return &bodyError{http.StatusBadRequest, fmt.Sprintf("invalid JSON at byte %d: %s", sc.probAt, sc.synMsg)}
}

// topLevelMember finds member key of the well-formed object starting at
// b[i] and returns where its value is. dup reports the key twice. Keys are
// compared after unescaping.
func topLevelMember(b []byte, i int, key string) (start, end int, found, dup bool) {
	i = skipSpace(b, i+1)
	for i < len(b) && b[i] == '"' {
		kEnd := skipString(b, i)
		match := keyIs(b[i+1:kEnd-1], key)
		i = skipSpace(b, kEnd) + 1 // past ':'
		i = skipSpace(b, i)
		vEnd := skipValue(b, i)
		if match {
			if found {
				return start, end, true, true
			}
			start, end, found = i, vEnd, true
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
		}
	}
	return start, end, found, false
}

// keyIs reports whether the raw contents of a well-formed JSON string
// decode to key.
func keyIs(raw []byte, key string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == key
	}
	if len(raw) > 6*len(key) {
		return false // even all escapes would decode to something longer
	}
	var buf [64]byte
	return string(appendUnescaped(buf[:0], raw)) == key
}

// skipString returns the index past the well-formed string at b[i].
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// skipValue returns the index past the well-formed value at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		default:
			i++
			if depth == 0 {
				for i < len(b) && !isSpace[b[i]] && b[i] != ',' && b[i] != '}' && b[i] != ']' {
					i++
				}
				return i
			}
		}
		if depth == 0 {
			return i
		}
	}
	return i
}
