package jsondoc

import "bytes"

// Walking Object and Array values. A Value's S can come from anywhere (a
// Doc, AppendValue, RawValue over bytes nobody checked), so unlike the
// Doc's internal walkers these functions do not trust it: they check the
// level they walk (brackets, commas, colons, keys, and scalar members and
// elements in full) and report a *SyntaxError, with an offset into S,
// rather than panic or invent a value. A nested object or array is only
// delimited, by matching its brackets and checking the strings inside; it
// is returned as raw text and checked when it is walked in turn, so that
// walking every level finds any problem Validate finds (nesting deeper
// than 10000 levels aside) while a lookup in text a Doc already validated
// stays about as cheap as a skip. Only what is read is checked: Element
// stops at the element it wants, and an Iter at the last Next call.

// Iter walks the elements of an Array value or the members of an Object
// value, in order, including duplicate keys. The zero Iter, and the Iter of
// a value of any other kind, has nothing to walk.
//
//	it := jsondoc.NewIter(v)
//	for key, val, ok := it.Next(&scratch); ok; key, val, ok = it.Next(&scratch) {
//		...
//	}
//	if err := it.Err(); err != nil {
//		// v.S is not the JSON text of an object (or array)
//	}
type Iter struct {
	b     []byte
	i     int  // where the next member or element is looked for
	obj   bool // walking an object
	more  bool // not finished: neither the end nor a problem was met
	first bool // nothing read yet
	err   *SyntaxError
}

// NewIter returns an Iter over the elements of v when it is an Array, over
// its members when it is an Object.
func NewIter(v Value) Iter {
	if v.Kind != Object && v.Kind != Array {
		return Iter{}
	}
	return Iter{b: v.S, obj: v.Kind == Object, more: true, first: true}
}

// Next returns the next element, or the next member's key and value, and
// false at the end or at malformed text (see Err). Keys and values are
// decoded like ParseValue decodes: strings without escapes and the text of
// objects and arrays alias v.S; keys and strings with escapes are unescaped
// by appending to *scratch (a new slice is allocated when scratch is nil).
// key is nil for array elements.
func (it *Iter) Next(scratch *[]byte) (key []byte, val Value, ok bool) {
	if !it.more {
		return nil, Value{}, false
	}
	b, i := it.b, it.i
	var err *SyntaxError
	if it.first {
		if i, err = openAt(b, it.obj); err != nil {
			it.more, it.err = false, err
			return nil, Value{}, false
		}
	}
	ks, ke, vs, ve, esc, vesc, err := nextAt(b, i, it.obj, it.first)
	if err != nil || ve == 0 {
		it.more, it.err = false, err
		return nil, Value{}, false
	}
	it.i, it.first = ve, false
	if scratch == nil {
		scratch = new([]byte)
	}
	if it.obj {
		key = unquote(b[ks:ke], esc, scratch)
	}
	if b[vs] == '"' {
		return key, Value{Kind: String, S: unquote(b[vs+1:ve-1], vesc, scratch)}, true
	}
	k, t, n, f, s := decode(b[vs:ve], scratch)
	return key, Value{Kind: k, B: t, I: n, F: f, S: s}, true
}

// Err returns the *SyntaxError that stopped the walk, with its offset into
// the value's S, or nil.
func (it *Iter) Err() error {
	if it.err == nil {
		return nil
	}
	return it.err
}

// The walk itself is done by functions whose state travels in registers:
// the container text b, whether it is an object, the offset i where the
// next member or element is looked for, and whether one was read already.

// openAt checks the opening bracket of the container text b and returns the
// offset just past it.
func openAt(b []byte, obj bool) (int, *SyntaxError) {
	open := byte('[')
	if obj {
		open = '{'
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != open {
		return i, errOpen(b, i, obj)
	}
	return i + 1, nil
}

// nextAt checks and reads the member or element of the container text b
// that follows b[i]: first when i is just past the opening bracket, else
// just past the previous value. The key content (objects only), between
// the quotes, is b[ks:ke], escaped when esc; the value's text is b[vs:ve],
// a string with escapes when vesc. At the closing bracket, which only
// whitespace may follow, ve is 0.
func nextAt(b []byte, i int, obj, first bool) (ks, ke, vs, ve int, esc, vesc bool, err *SyntaxError) {
	if i < len(b) && isSpace[b[i]] {
		i = skipSpace(b, i)
	}
	if i >= len(b) {
		return 0, 0, 0, 0, false, false, errEnd(i)
	}
	if c := b[i]; obj && c == '}' || !obj && c == ']' {
		return 0, 0, 0, 0, false, false, checkTrailing(b, i+1)
	}
	if !first {
		if b[i] != ',' {
			return 0, 0, 0, 0, false, false, errAfter(b, i, obj)
		}
		i++
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
	}
	if obj {
		if i >= len(b) || b[i] != '"' {
			return 0, 0, 0, 0, false, false, errChar(b, i, "; want a string as object key")
		}
		ks = i + 1
		if i = skipShort(b, ks); i < len(b) && b[i] == '"' {
			i++
		} else if i, esc, err = scanString(b, i); err != nil {
			return 0, 0, 0, 0, false, false, err
		}
		ke = i - 1
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
		if i >= len(b) || b[i] != ':' {
			return 0, 0, 0, 0, false, false, errChar(b, i, " after object key; want ':'")
		}
		i++
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
	}
	vs = i
	// Strings and numbers, the common values, are scanned here, and
	// containers only delimited; literals (and errors) by scanValue.
	switch {
	case i < len(b) && b[i] == '"':
		if ve = skipShort(b, i+1); ve < len(b) && b[ve] == '"' {
			ve++
		} else {
			ve, vesc, err = scanString(b, ve)
		}
	case i < len(b) && (b[i]-'0' <= 9 || b[i] == '-'):
		ve, err = scanNumber(b, i)
	case i < len(b) && (b[i] == '{' || b[i] == '['):
		ve, err = skipContainer(b, i)
	default:
		ve, err = scanNested(b, i, maxDepth-1)
	}
	if err != nil {
		return 0, 0, 0, 0, false, false, err
	}
	return ks, ke, vs, ve, esc, vesc, nil
}

// unquote returns the string content s, unescaped by appending to *scratch
// when esc.
func unquote(s []byte, esc bool, scratch *[]byte) []byte {
	if !esc {
		return s[:len(s):len(s)]
	}
	start := len(*scratch)
	*scratch = unescape(*scratch, s)
	end := len(*scratch)
	return (*scratch)[start:end:end]
}

func errOpen(b []byte, i int, obj bool) *SyntaxError {
	if obj {
		return errChar(b, i, "; want JSON text of object")
	}
	return errChar(b, i, "; want JSON text of array")
}

func errAfter(b []byte, i int, obj bool) *SyntaxError {
	if obj {
		return errChar(b, i, " after object member; want ',' or '}'")
	}
	return errChar(b, i, " after array element; want ',' or ']'")
}

// Member returns the value of the member named name (its decoded bytes) of
// an Object value, the last one when the key occurs more than once, like
// Lookup. It returns a Missing value when v has no such member or is not an
// Object, and a *SyntaxError when v.S is not the text of an object (at this
// level: see the notes on walking above). The result is decoded like Next
// decodes; *scratch also serves as temporary space to compare escaped keys,
// and only grows by the decoded result.
func Member(v Value, name []byte, scratch *[]byte) (Value, error) {
	if v.Kind != Object {
		return Value{}, nil
	}
	if scratch == nil {
		scratch = new([]byte)
	}
	b := v.S
	i, err := openAt(b, true)
	if err != nil {
		return Value{}, err
	}
	vs, ve, vesc, found := 0, 0, false, false
	for first := true; ; first = false {
		ks, ke, s, e, esc, sesc, err := nextAt(b, i, true, first)
		if err != nil {
			return Value{}, err
		}
		if e == 0 {
			break
		}
		if key := b[ks:ke]; !esc && string(key) == string(name) || esc && keyIs(key, name, scratch) {
			vs, ve, vesc, found = s, e, sesc, true
		}
		i = e
	}
	if !found {
		return Value{}, nil
	}
	if b[vs] == '"' {
		return Value{Kind: String, S: unquote(b[vs+1:ve-1], vesc, scratch)}, nil
	}
	k, t, n, f, s := decode(b[vs:ve], scratch)
	return Value{Kind: k, B: t, I: n, F: f, S: s}, nil
}

// keyIs reports whether the escaped key content (between the quotes) is
// name. It unescapes into *scratch past its length, which it leaves
// unchanged.
func keyIs(content, name []byte, scratch *[]byte) bool {
	// Unescaping never lengthens, and keeps what precedes the first escape.
	k := bytes.IndexByte(content, '\\')
	if len(name) > len(content) || k > len(name) || string(content[:k]) != string(name[:k]) {
		return false
	}
	start := len(*scratch)
	b := unescape(*scratch, content)
	*scratch = b[:start]
	return bytes.Equal(b[start:], name)
}

// Element returns element i of an Array value, or a Missing value when v
// has no element i (i < 0 included) or is not an Array; a *SyntaxError when
// the text up to element i is not that of an array (at this level). The
// result is decoded like Next decodes.
func Element(v Value, i int, scratch *[]byte) (Value, error) {
	if v.Kind != Array || i < 0 {
		return Value{}, nil
	}
	if scratch == nil {
		scratch = new([]byte)
	}
	b := v.S
	at, err := openAt(b, false)
	if err != nil {
		return Value{}, err
	}
	for n := 0; ; n++ {
		_, _, vs, ve, _, vesc, err := nextAt(b, at, false, n == 0)
		if err != nil {
			return Value{}, err
		}
		if ve == 0 {
			return Value{}, nil
		}
		if n == i {
			if b[vs] == '"' {
				return Value{Kind: String, S: unquote(b[vs+1:ve-1], vesc, scratch)}, nil
			}
			k, t, x, f, s := decode(b[vs:ve], scratch)
			return Value{Kind: k, B: t, I: x, F: f, S: s}, nil
		}
		at = ve
	}
}

// Len returns the number of elements of an Array value or members of an
// Object value (duplicate keys included), reading all of its level; a
// *SyntaxError when that is not the text of an array or an object. Values
// of other kinds have length 0.
func Len(v Value) (int, error) {
	if v.Kind != Object && v.Kind != Array {
		return 0, nil
	}
	b, obj := v.S, v.Kind == Object
	i, err := openAt(b, obj)
	if err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		_, _, _, ve, _, _, err := nextAt(b, i, obj, n == 0)
		if err != nil {
			return 0, err
		}
		if ve == 0 {
			return n, nil
		}
		i = ve
	}
}

// skipContainer returns the offset just past the object or array starting
// at b[i]. It matches brackets and checks the strings on the way, so that
// it finds the right end; the rest is checked when the value is walked.
func skipContainer(b []byte, i int) (int, *SyntaxError) {
	depth := 0
	var err *SyntaxError
	for ; i < len(b); i++ {
		switch structural[b[i]] {
		case 0:
		case 1:
			if i = skipShort(b, i+1); i < len(b) && b[i] == '"' {
				break
			}
			if i, _, err = scanString(b, i); err != nil {
				return i, err
			}
			i-- // at the closing quote
		case 2:
			depth++
		default:
			if depth--; depth == 0 {
				return i + 1, nil
			}
		}
	}
	return i, errEnd(i)
}

// skipShort is skipPlain that also finishes short strings, and the ends of
// long ones, byte by byte: b[i0:i] is plain string content, and b[i] (if
// any) is a quote, a backslash or a control character.
func skipShort(b []byte, i int) int {
	i = skipPlain(b, i)
	for i < len(b) && !strStop[b[i]] {
		i++
	}
	return i
}
