package collector

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// decoded is a decode outcome in comparable form.
type decoded struct {
	err    string   // body error: "<status> <message prefix>"
	events []string // accepted events as "value", rejected as "!<reason label>"
	ids    []string // ids of accepted events, "-" for none
}

func decodeForTest(t *testing.T, body string, form bodyForm, l LimitsConfig) decoded {
	t.Helper()
	d := newDecoder(l, []string{"event_id", "messageId"})
	var out decoded
	if err := d.decode([]byte(body), form); err != nil {
		be := err.(*bodyError)
		out.err = fmt.Sprintf("%d %s", be.status, be.msg)
		return out
	}
	accepted := 0
	for _, e := range d.events {
		if e.prob != probNone {
			out.events = append(out.events, "!"+reasonLabel[e.prob])
			if e.reason == "" {
				t.Errorf("rejected event without a reason")
			}
			continue
		}
		accepted++
		out.events = append(out.events, body[e.start:e.end])
		if e.idLen < 0 {
			out.ids = append(out.ids, "-")
		} else {
			id := body[e.idOff : e.idOff+e.idLen]
			if e.idEsc {
				id = string(appendUnescaped(nil, []byte(id)))
			}
			out.ids = append(out.ids, id)
		}
	}
	if accepted != d.accepted {
		t.Errorf("accepted = %d, counted %d", d.accepted, accepted)
	}
	return out
}

func TestDecode(t *testing.T) {
	limits := DefaultConfig().Limits
	limits.MaxDepth = 3
	limits.MaxEventBytes = 64
	limits.MaxEventsPerBatch = 5
	deep := func(n int) string { return strings.Repeat(`{"a":`, n-1) + `{}` + strings.Repeat(`}`, n-1) }
	tests := []struct {
		name   string
		form   bodyForm
		body   string
		events []string
		ids    []string
		err    string // prefix of "<status> <message>"
	}{
		{name: "single", form: formSingle, body: ` {"event_id":"e1","a":1} `, events: []string{`{"event_id":"e1","a":1}`}, ids: []string{"e1"}},
		{name: "single keeps bytes as sent", form: formSingle, body: `{ "a" : [ 1 , 2.5e-3 , true , null , "x\u00e9" ] }`, events: []string{`{ "a" : [ 1 , 2.5e-3 , true , null , "x\u00e9" ] }`}, ids: []string{"-"}},
		{name: "single array", form: formSingle, body: `[{}]`, err: "400 the body is a JSON array"},
		{name: "single not object", form: formSingle, body: `42`, err: "400 the body is not a JSON object"},
		{name: "single trailing data", form: formSingle, body: `{} {}`, err: "400 invalid JSON at byte 3: data after"},
		{name: "single syntax error", form: formSingle, body: `{"a":}`, err: "400 invalid JSON at byte 5"},
		{name: "single duplicate key", form: formSingle, body: `{"a":1,"a":2}`, events: []string{"!duplicate_key"}},
		{name: "empty", form: formBatch, body: " \n ", err: "400 empty body"},
		{name: "array", form: formBatch, body: `[{"messageId":"m1"}, {"event_id":"e2","messageId":"m2"},{}]`,
			events: []string{`{"messageId":"m1"}`, `{"event_id":"e2","messageId":"m2"}`, `{}`}, ids: []string{"m1", "e2", "-"}},
		{name: "array id preference", form: formBatch, body: `[{"messageId":"m","event_id":"e"}]`, events: []string{`{"messageId":"m","event_id":"e"}`}, ids: []string{"e"}},
		{name: "array id not a string", form: formBatch, body: `[{"event_id":5,"messageId":"m"}]`, events: []string{`{"event_id":5,"messageId":"m"}`}, ids: []string{"m"}},
		{name: "array id empty", form: formBatch, body: `[{"event_id":""}]`, events: []string{`{"event_id":""}`}, ids: []string{"-"}},
		{name: "array nested id ignored", form: formBatch, body: `[{"x":{"event_id":"no"}}]`, events: []string{`{"x":{"event_id":"no"}}`}, ids: []string{"-"}},
		{name: "array escaped id", form: formBatch, body: `[{"event_id":"a\"b\u00e9"}]`, events: []string{`{"event_id":"a\"b\u00e9"}`}, ids: []string{`a"bé`}},
		{name: "array escaped key names the id", form: formBatch, body: `[{"event\u005fid":"e"}]`, events: []string{`{"event\u005fid":"e"}`}, ids: []string{"e"}},
		{name: "array too many", form: formBatch, body: `[{"a":1},5,"s",{"a":1,"a":2},` + deep(4) + `,{"x":"` + strings.Repeat("y", 60) + `"},{"ok":true}]`,
			err: "413 more than 5 events"},
		{name: "array rejections", form: formBatch, body: `[5,{"a":1,"a":2},` + deep(4) + `,{"ok":true}]`,
			events: []string{"!not_object", "!duplicate_key", "!too_deep", `{"ok":true}`}, ids: []string{"-"}},
		{name: "depth at limit", form: formBatch, body: `[` + deep(3) + `]`, events: []string{deep(3)}, ids: []string{"-"}},
		{name: "depth in arrays", form: formBatch, body: `[{"a":[[1]]},{"a":[[[1]]]}]`, events: []string{`{"a":[[1]]}`, "!too_deep"}, ids: []string{"-"}},
		{name: "too large", form: formBatch, body: `[{"x":"` + strings.Repeat("y", 60) + `"}]`, events: []string{"!too_large"}},
		{name: "invalid utf8", form: formBatch, body: "[{\"a\":\"\xff\"},{\"b\":\"\xed\xa0\x80\"},{\"c\":\"é\"}]", events: []string{"!invalid_utf8", "!invalid_utf8", "{\"c\":\"é\"}"}, ids: []string{"-"}},
		{name: "invalid utf8 in key", form: formBatch, body: "[{\"\xc3\":1}]", events: []string{"!invalid_utf8"}},
		{name: "duplicate after unescaping", form: formBatch, body: `[{"a":1,"\u0061":2},{"\ud83d\ude00":1,"😀":2},{"\ud800":1,"\ufffd":2}]`, events: []string{"!duplicate_key", "!duplicate_key", "!duplicate_key"}},
		{name: "same key in different objects", form: formBatch, body: `[{"a":{"a":1},"b":{"a":2}}]`, events: []string{`{"a":{"a":1},"b":{"a":2}}`}, ids: []string{"-"}},
		{name: "nested duplicate", form: formBatch, body: `[{"a":[{"k":1,"k":1}]}]`, events: []string{"!duplicate_key"}},
		{name: "array syntax error", form: formBatch, body: `[{"a":1},{"a":]`, err: "400 invalid JSON at byte 14"},
		{name: "array missing comma", form: formBatch, body: `[{} {}]`, err: "400 invalid JSON at byte 4: expected ',' or ']'"},
		{name: "array trailing data", form: formBatch, body: `[{}] x`, err: "400 invalid JSON at byte 5: data after the array"},
		{name: "array unterminated", form: formBatch, body: `[{}`, err: "400 invalid JSON at byte 3"},
		{name: "array empty", form: formBatch, body: `[ ]`, err: "400 the batch holds no events"},
		{name: "array trailing comma", form: formBatch, body: `[{},]`, err: "400 invalid JSON at byte 4"},
		{name: "hard depth", form: formBatch, body: `[` + strings.Repeat(`[`, 1100) + strings.Repeat(`]`, 1100) + `]`, err: "400 invalid JSON at byte 1025: nested deeper than 1024 levels"},
		{name: "wrapper", form: formBatch, body: `{"sentAt":"x","batch":[{"messageId":"m1"},{"messageId":"m2"}],"context":{"a":[1]}}`,
			events: []string{`{"messageId":"m1"}`, `{"messageId":"m2"}`}, ids: []string{"m1", "m2"}},
		{name: "wrapper empty", form: formBatch, body: `{"batch":[]}`, err: "400 the batch holds no events"},
		{name: "wrapper twice", form: formBatch, body: `{"batch":[{}],"batch":[{}]}`, err: `400 the body has two "batch" members`},
		{name: "batch member not an array is an event", form: formBatch, body: `{"batch":{"a":1}}`, events: []string{`{"batch":{"a":1}}`}, ids: []string{"-"}},
		{name: "one object on the batch path", form: formBatch, body: `{"event_id":"x"}`, events: []string{`{"event_id":"x"}`}, ids: []string{"x"}},
		{name: "one object with problems", form: formBatch, body: `{"a":1,"a":1}`, events: []string{"!duplicate_key"}},
		{name: "ndjson detected", form: formBatch, body: ndjsonOf(`{"event_id":"a"}`, ``, ` {"event_id":"b"} `, `{"x":`, `[1]`, `{"c":1} {"d":2}`),
			events: []string{`{"event_id":"a"}`, `{"event_id":"b"}`, "!invalid_json", "!not_object", "!invalid_json"}, ids: []string{"a", "b"}},
		{name: "ndjson crlf", form: formBatch, body: "{\"a\":1}\r\n{\"b\":2}\r\n", events: []string{`{"a":1}`, `{"b":2}`}, ids: []string{"-", "-"}},
		{name: "ndjson too many", form: formNDJSON, body: ndjsonOf(`{}`, `{}`, `{}`, `{}`, `{}`, `{}`), err: "413 more than 5 events"},
		{name: "ndjson by type, bad first line", form: formNDJSON, body: ndjsonOf(`{"a"`, `{"b":1}`), events: []string{"!invalid_json", `{"b":1}`}, ids: []string{"-"}},
		{name: "ndjson by type, no newline", form: formNDJSON, body: `{"a":1}`, events: []string{`{"a":1}`}, ids: []string{"-"}},
		{name: "ndjson blank", form: formNDJSON, body: "\n\n", err: "400 empty body"},
		{name: "ndjson only bad", form: formNDJSON, body: "x\n", events: []string{"!invalid_json"}},
		{name: "bad first object is not ndjson", form: formBatch, body: ndjsonOf(`{"a"`, `{"b":1}`), err: "400 invalid JSON at byte 5: expected ':'"},
		{name: "scalar body", form: formBatch, body: `"x"`, err: "400 invalid JSON at byte 0: expected an array"},
		{name: "numbers", form: formBatch, body: `[{"a":[0,-0,1.5,-2e10,3E+2,4e-2,123456789012345678901234567890]}]`, events: []string{`{"a":[0,-0,1.5,-2e10,3E+2,4e-2,123456789012345678901234567890]}`}, ids: []string{"-"}},
		{name: "bad number leading zero", form: formBatch, body: `[{"a":01}]`, err: "400 invalid JSON"},
		{name: "bad number dot", form: formBatch, body: `[{"a":1.}]`, err: "400 invalid JSON"},
		{name: "bad number exp", form: formBatch, body: `[{"a":1e}]`, err: "400 invalid JSON"},
		{name: "bad literal", form: formBatch, body: `[{"a":tru}]`, err: "400 invalid JSON"},
		{name: "bad escape", form: formBatch, body: `[{"a":"\x"}]`, err: "400 invalid JSON at byte 7: invalid escape"},
		{name: "bad unicode escape", form: formBatch, body: `[{"a":"\u12"}]`, err: "400 invalid JSON"},
		{name: "control character", form: formBatch, body: "[{\"a\":\"\t\"}]", err: "400 invalid JSON at byte 7: control character"},
		{name: "non-string key", form: formBatch, body: `[{1:2}]`, err: "400 invalid JSON at byte 2: expected a string key"},
		{name: "missing colon", form: formBatch, body: `[{"a" 2}]`, err: "400 invalid JSON at byte 6: expected ':'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decodeForTest(t, tt.body, tt.form, limits)
			if tt.err != "" {
				if !strings.HasPrefix(got.err, tt.err) {
					t.Fatalf("error %q, want prefix %q (events %q)", got.err, tt.err, got.events)
				}
				return
			}
			if got.err != "" {
				t.Fatalf("unexpected body error %q", got.err)
			}
			if fmt.Sprint(got.events) != fmt.Sprint(tt.events) {
				t.Errorf("events\n got %q\nwant %q", got.events, tt.events)
			}
			if fmt.Sprint(got.ids) != fmt.Sprint(tt.ids) {
				t.Errorf("ids %q, want %q", got.ids, tt.ids)
			}
		})
	}
}

func TestDecodeManyKeys(t *testing.T) {
	limits := DefaultConfig().Limits
	for _, n := range []int{2, pairwiseKeys, pairwiseKeys + 1, 40, 1000} {
		for _, dup := range []int{-1, 0, n / 2, n - 1} {
			body := `[{` + manyKeys(n, "") + `}]`
			want := body[1 : len(body)-1]
			if dup >= 0 {
				body = `[{` + manyKeys(n, fmt.Sprintf("k%d", dup)) + `}]`
				want = "!duplicate_key"
			}
			got := decodeForTest(t, body, formBatch, limits)
			if len(got.events) != 1 || got.events[0] != want {
				t.Errorf("%d keys, duplicate %d: events %.80q, want %.80q", n, dup, got.events, want)
			}
		}
	}
}

func manyKeys(n int, dup string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `"k%d":%d,`, i, i)
	}
	if dup != "" {
		fmt.Fprintf(&b, `"%s":0,`, dup)
	}
	return strings.TrimSuffix(b.String(), ",")
}

func TestDecodeReasons(t *testing.T) {
	limits := DefaultConfig().Limits
	limits.MaxDepth = 2
	limits.MaxEventBytes = 40
	d := newDecoder(limits, nil)
	body := "[{\"a\":1,\"a\\\"\":1,\"a\\\"\":2},{\"x\":\"\xff\"},{\"a\":{\"b\":{}}},{\"s\":\"" + strings.Repeat("y", 40) + "\"},[]]"
	if err := d.decode([]byte(body), formBatch); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`duplicate key "a\"": a key may appear once per object`,
		"invalid UTF-8 at byte 6",
		"nested deeper than limits.max_depth (2 levels)",
		"event of 48 bytes is larger than limits.max_event_bytes (40)",
		"not a JSON object: each event must be an object",
	}
	for i, e := range d.events {
		if e.reason != want[i] {
			t.Errorf("event %d: reason %q, want %q", i, e.reason, want[i])
		}
	}
	if d.accepted != 0 || len(d.events) != len(want) {
		t.Errorf("accepted %d of %d, want 0 of %d", d.accepted, len(d.events), len(want))
	}
}

func TestDecodeStatus(t *testing.T) {
	d := newDecoder(DefaultConfig().Limits, nil)
	err := d.decode([]byte(`[`), formBatch)
	if be, ok := err.(*bodyError); !ok || be.status != http.StatusBadRequest {
		t.Fatalf("decode = %v, want a 400 bodyError", err)
	}
}

func TestAppendUnescaped(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:                   "plain",
		`a\"b\\c\/d\b\f\n\r\t`:    "a\"b\\c/d\b\f\n\r\t",
		`\u00e9\u20ac`:            "é€",
		`\ud83d\ude00`:            "😀",
		`\ud83d`:                  "\uFFFD",
		`\ud83dx`:                 "\uFFFDx",
		`\ude00\ud83d`:            "\uFFFD\uFFFD",
		`\ud83d\u0041`:            "\uFFFDA",
		`\uD83D\uDE00 and \u0000`: "😀 and \x00",
	} {
		if got := string(appendUnescaped(nil, []byte(in))); got != want {
			t.Errorf("appendUnescaped(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodeAllocations(t *testing.T) {
	body := []byte(`[` + strings.Repeat(`{"event_id":"4f1c1b5e-9d6a-4a8e-8b1e-2f3c4d5e6f70","type":"view","user_id":"u_123","page":"/products/42","ts":1714550400000,"props":{"price":19.99,"tags":["a","b"]}},`, 99) +
		`{"event_id":"x","type":"click"}]`)
	d := newDecoder(DefaultConfig().Limits, []string{"event_id", "messageId"})
	if err := d.decode(body, formBatch); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := d.decode(body, formBatch); err != nil || d.accepted != 100 {
			t.Fatalf("decode: %v, %d accepted", err, d.accepted)
		}
	})
	if allocs != 0 {
		t.Errorf("decode of 100 events allocates %v times, want 0", allocs)
	}
}
