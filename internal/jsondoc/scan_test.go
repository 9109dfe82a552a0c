package jsondoc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

var validDocs = []string{
	`{}`, `[]`, `0`, `-0`, `1`, `-1`, `123`, `1.5`, `-1.5e10`, `1E+2`, `1e-2`, `0.0`, `0e0`,
	`true`, `false`, `null`, `""`, `"a"`, ` {"a":1} `, "\t\r\n[1,2]\n",
	`{"a":{"b":[1,{"c":null}],"d":"e"},"f":[]}`,
	`{"a" : 1 , "b" : [ 1 , 2 ] }`,
	`"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`,
	`"é ✓ 😀"`,
	"\"\xff\xfe\"", // invalid UTF-8 is accepted
	`[[[[[[[[[[[[]]]]]]]]]]]]`,
	`{"a":1,"a":2}`,
	`123456789012345678901234567890`,
	`"` + strings.Repeat("abcdefgh", 20) + `"`,
	string(benchEvent),
}

func TestValidateValid(t *testing.T) {
	for _, doc := range validDocs {
		if err := Validate([]byte(doc)); err != nil {
			t.Errorf("Validate(%q) = %v, want nil", doc, err)
		}
		if !json.Valid([]byte(doc)) {
			t.Errorf("encoding/json disagrees: %q is not valid", doc)
		}
		var d Doc
		if err := d.Parse([]byte(doc)); err != nil {
			t.Errorf("Parse(%q) = %v, want nil", doc, err)
		}
	}
}

func TestValidateInvalid(t *testing.T) {
	tests := []struct {
		doc    string
		offset int
		msg    string // substring of the message
	}{
		{``, 0, "unexpected end"},
		{`   `, 3, "unexpected end"},
		{`{`, 1, "unexpected end"},
		{`{"a"`, 4, "unexpected end"},
		{`{"a":`, 5, "unexpected end"},
		{`{"a":1`, 6, "unexpected end"},
		{`{"a":1,`, 7, "unexpected end"},
		{`[`, 1, "unexpected end"},
		{`[1`, 2, "unexpected end"},
		{`"abc`, 4, "unexpected end"},
		{`"abcdefghijklmnop`, 17, "unexpected end"},
		{`{"a":1,}`, 7, "want a string as object key"},
		{`{"a" 1}`, 5, "want ':'"},
		{`{a:1}`, 1, "want a string as object key"},
		{`{"a":1 "b":2}`, 7, "want ',' or '}'"},
		{`[1,]`, 3, "want a value"},
		{`[1 2]`, 3, "want ',' or ']'"},
		{`[1}`, 2, "want ',' or ']'"},
		{`{"a":1]`, 6, "want ',' or '}'"},
		{`x`, 0, "unexpected character 'x'"},
		{`{"a":1}x`, 7, "after top-level value"},
		{`{} {}`, 3, "after top-level value"},
		{`01`, 1, "after top-level value"},
		{`[01]`, 2, "want ',' or ']'"},
		{`-`, 1, "unexpected end"},
		{`-a`, 1, "in number"},
		{`+1`, 0, "unexpected character '+'"},
		{`.5`, 0, "unexpected character '.'"},
		{`1.`, 2, "unexpected end"},
		{`1.e5`, 2, "after '.'"},
		{`1e`, 2, "unexpected end"},
		{`1e+`, 3, "unexpected end"},
		{`1ex`, 2, "exponent"},
		{`NaN`, 0, "unexpected character 'N'"},
		{`Infinity`, 0, "unexpected character 'I'"},
		{`tru`, 3, "unexpected end"},
		{`trux`, 3, "literal true"},
		{`nul`, 3, "unexpected end"},
		{`falsy`, 4, "literal false"},
		{`True`, 0, "unexpected character 'T'"},
		{"\"a\x01\"", 2, "control character byte 0x01"},
		{"\"abcdefghij\nk\"", 11, "control character byte 0x0a"},
		{`"\x"`, 2, "in escape sequence"},
		{`"\u12"`, 5, "hex digit"},
		{`"\u12G4"`, 5, "hex digit"},
		{`"\`, 2, "unexpected end"},
		{`"\u12`, 5, "unexpected end"},
		{`'a'`, 0, "unexpected character '\\''"},
		{"\xef\xbb\xbf{}", 0, "byte 0xef"},
		{`{"a":1}}`, 7, "after top-level value"},
		{"[1,\x00]", 3, "byte 0x00"},
		{`[1]]`, 3, "after top-level value"},
	}
	for _, tt := range tests {
		err := Validate([]byte(tt.doc))
		if json.Valid([]byte(tt.doc)) {
			t.Errorf("encoding/json accepts %q", tt.doc)
		}
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Validate(%q) = %v, want a *SyntaxError", tt.doc, err)
			continue
		}
		if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
			t.Errorf("Validate(%q) = offset %d %q, want offset %d containing %q", tt.doc, se.Offset, se.Msg, tt.offset, tt.msg)
		}
		// Parse reports the same error, and leaves the Doc empty.
		var d Doc
		perr := d.Parse([]byte(tt.doc))
		var pse *SyntaxError
		if !errors.As(perr, &pse) || *pse != *se {
			t.Errorf("Parse(%q) = %v, want %v", tt.doc, perr, se)
		}
		if k := d.Root().Kind; k != Missing {
			t.Errorf("after failed Parse(%q): Root kind %v, want missing", tt.doc, k)
		}
		if out := d.AppendJSON(nil); len(out) != 0 {
			t.Errorf("after failed Parse(%q): AppendJSON = %q, want nothing", tt.doc, out)
		}
	}
}

func TestSyntaxErrorText(t *testing.T) {
	err := Validate([]byte(`{"a":1,"b":x}`))
	const want = "invalid JSON at byte 11: unexpected character 'x'; want a value"
	if err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func nested(open, close string, n int) string {
	return strings.Repeat(open, n) + strings.Repeat(close, n)
}

func TestDepth(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		ok   bool
	}{
		{"arrays at limit", nested("[", "]", maxDepth), true},
		{"arrays over limit", nested("[", "]", maxDepth+1), false},
		{"objects at limit", strings.Repeat(`{"a":`, maxDepth-1) + "{}" + strings.Repeat("}", maxDepth-1), true},
		{"objects over limit", strings.Repeat(`{"a":`, maxDepth) + "{}" + strings.Repeat("}", maxDepth), false},
		{"mixed beyond 64", strings.Repeat(`[{"k":`, 100) + "1" + strings.Repeat("}]", 100), true},
		{"mixed beyond 64 mismatched", strings.Repeat(`[{"k":`, 100) + "1" + strings.Repeat("]}", 100), false},
		{"object root, deep member", `{"a":` + nested("[", "]", maxDepth-1) + `}`, true},
		{"object root, too deep member", `{"a":` + nested("[", "]", maxDepth) + `}`, false},
	}
	for _, tt := range tests {
		raw := []byte(tt.doc)
		if got := json.Valid(raw); got != tt.ok {
			t.Fatalf("%s: encoding/json.Valid = %v, test expects %v", tt.name, got, tt.ok)
		}
		if err := Validate(raw); (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", tt.name, err, tt.ok)
		}
		var d Doc
		for range 2 { // the second time with the Doc's deep stack in place
			if err := d.Parse(raw); (err == nil) != tt.ok {
				t.Errorf("%s: Parse = %v, want ok=%v", tt.name, err, tt.ok)
			}
		}
		if _, err := ParseValue(raw, nil); (err == nil) != tt.ok {
			t.Errorf("%s: ParseValue = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	err := Validate([]byte(nested("[", "]", maxDepth+1)))
	var se *SyntaxError
	if !errors.As(err, &se) || se.Offset != maxDepth || !strings.Contains(se.Msg, "10000") {
		t.Errorf("too deep: %v, want offset %d mentioning the limit", err, maxDepth)
	}
}

func TestValidateAllocs(t *testing.T) {
	deep := []byte(nested("[", "]", 1000))
	for _, raw := range [][]byte{benchEvent, deep} {
		if n := testing.AllocsPerRun(100, func() { _ = Validate(raw) }); n != 0 {
			t.Errorf("Validate allocates %v times per run, want 0", n)
		}
	}
}
