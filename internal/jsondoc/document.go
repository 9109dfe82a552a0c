package jsondoc

// Doc is one parsed JSON document. The zero value is an empty Doc ready for
// Parse; a Doc is meant to be reused for document after document, keeping
// its buffers. A Doc is not safe for concurrent use, not even by readers:
// Lookup writes to internal scratch space.
type Doc struct {
	raw    []byte
	rs, re int  // the root value is raw[rs:re]
	kind   Kind // of the root; Missing until a Parse succeeds

	// members indexes the top-level members when the root is an object, in
	// document order, including deleted ones and duplicates.
	members  []member
	modified bool
	// unindexed: ParseUnchecked set raw without indexing its members.
	// Lookup reads raw directly; every other use indexes first.
	unindexed bool

	// buf holds the encodings of values and keys written by edits. It only
	// grows until the next Parse, so member spans into it and Values
	// aliasing it stay valid.
	buf []byte
	// scratch holds strings unescaped for Lookup results; append-only until
	// the next Parse for the same reason.
	scratch []byte
	// tmp is reusable space for work that does not outlive a call.
	tmp []byte
	// deep is the container stack for documents nested more than 64 levels,
	// allocated the first time one is seen.
	deep *[stackWords]uint64
}

// member is one top-level member. Key and value are spans of raw, or of buf
// when the matching flag is set. The key span is the content between the
// quotes, as written (still escaped); the value span is trimmed JSON text.
type member struct {
	ks, ke int
	vs, ve int
	flags  uint8
}

const (
	keyEscaped  uint8 = 1 << iota // the key content contains escapes
	keyInBuf                      // the key span is in buf
	valInBuf                      // the value span is in buf
	deleted                       // the member was deleted or shadowed
	plainString                   // the value is a string in raw without escapes
)

// setValue points m at a new value.
func (m *member) setValue(vs, ve int, inBuf bool) {
	m.vs, m.ve = vs, ve
	m.flags &^= valInBuf | plainString
	if inBuf {
		m.flags |= valInBuf
	}
}

// maxRetained bounds the buffers a Doc keeps across Parse calls, so one huge
// document does not pin memory for the life of a pipeline.
const maxRetained = 1 << 20

// Parse makes d represent raw, forgetting what d held before. It validates
// the whole document with the same rules as Validate and, when the root is
// an object, indexes its top-level members. d keeps referencing raw, which
// must not change while d is in use. On error, which is a *SyntaxError, d is
// empty: Root is Missing and AppendJSON appends nothing.
func (d *Doc) Parse(raw []byte) error {
	if err := d.parse(raw); err != nil {
		d.kind = Missing
		d.rs, d.re = 0, 0
		d.members = d.members[:0]
		return err
	}
	return nil
}

// ParseUnchecked makes d represent raw, which the caller guarantees is a
// JSON object that Parse accepts and in which no top-level key appears
// twice (an input that validated it with rules at least as strict, such as
// the event collector's, knows this). Nothing is checked: Lookup reads raw
// as it goes, stopping at the member it wants, which for a flat event with
// the wanted field near the front is several times cheaper than Parse.
// Anything else (an edit, AppendJSON of an edited document) indexes raw
// first, as Parse would; if raw breaks the guarantee, d then becomes
// empty as after a failed Parse.
func (d *Doc) ParseUnchecked(raw []byte) {
	d.reset(raw)
	d.rs = skipSpace(raw, 0)
	d.re = len(raw)
	for d.re > d.rs && isSpace[raw[d.re-1]] {
		d.re--
	}
	if d.rs >= d.re || raw[d.rs] != '{' {
		return // not an object: Missing, as a failed Parse leaves it
	}
	d.kind = Object
	d.unindexed = true
}

// index indexes the members of a document ParseUnchecked set.
func (d *Doc) index() {
	if !d.unindexed {
		return
	}
	_ = d.Parse(d.raw) // on error d is empty, as documented
}

// lookupUnindexed is Lookup of a non-empty path in a document that
// ParseUnchecked set: the first top-level member named path[0] (there is
// only one), then the children as Lookup finds them.
func (d *Doc) lookupUnindexed(path []Seg) Value {
	if path[0].IsIndex() {
		return Value{}
	}
	b := d.raw[d.rs:d.re]
	key := path[0].Key
	for i := 1; ; {
		ks, ke, vs, ve, esc, more := nextMember(b, i)
		if !more {
			return Value{}
		}
		if d.keyEquals(b[ks:ke], esc, key) {
			b = b[vs:ve]
			break
		}
		i = ve
	}
	for _, seg := range path[1:] {
		var ok bool
		if b, ok = d.child(b, seg); !ok {
			return Value{}
		}
	}
	k, t, n, f, s := decode(b, &d.scratch)
	return Value{Kind: k, B: t, I: n, F: f, S: s}
}

func (d *Doc) reset(raw []byte) {
	d.raw = raw
	d.kind = Missing
	d.modified = false
	d.unindexed = false
	d.members = d.members[:0]
	d.buf = resetBuf(d.buf)
	d.scratch = resetBuf(d.scratch)
	d.tmp = resetBuf(d.tmp)
	if cap(d.members) > maxRetained/64 {
		d.members = nil
	}
}

func resetBuf(b []byte) []byte {
	if cap(b) > maxRetained {
		return nil
	}
	return b[:0]
}

func (d *Doc) parse(raw []byte) *SyntaxError {
	d.reset(raw)
	var small [1]uint64
	stk := small[:]
	if d.deep != nil {
		stk = d.deep[:]
	}
	err := d.scan(raw, stk)
	if err == errStackFull {
		d.deep = new([stackWords]uint64)
		d.members = d.members[:0]
		err = d.scan(raw, d.deep[:])
	}
	return err
}

// scan validates raw and indexes its top-level members.
func (d *Doc) scan(b []byte, stk []uint64) *SyntaxError {
	i := skipSpace(b, 0)
	if i >= len(b) {
		return errEnd(i)
	}
	d.rs = i
	if b[i] != '{' {
		end, err := scanValue(b, i, stk, maxDepth)
		if err != nil {
			return err
		}
		if err := checkTrailing(b, end); err != nil {
			return err
		}
		d.re = end
		d.kind = kindOf(b[i])
		return nil
	}
	i++
	if i < len(b) && isSpace[b[i]] {
		i = skipSpace(b, i)
	}
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			if i >= len(b) {
				return errEnd(i)
			}
			if b[i] != '"' {
				return errChar(b, i, "; want a string as object key")
			}
			var m member
			m.ks = i + 1
			i = skipPlain(b, m.ks)
			if i < len(b) && b[i] == '"' {
				i++
			} else {
				end, esc, err := scanString(b, i)
				if err != nil {
					return err
				}
				if esc {
					m.flags = keyEscaped
				}
				i = end
			}
			m.ke = i - 1
			if i < len(b) && isSpace[b[i]] {
				i = skipSpace(b, i)
			}
			if i >= len(b) {
				return errEnd(i)
			}
			if b[i] != ':' {
				return errChar(b, i, " after object key; want ':'")
			}
			i++
			if i < len(b) && isSpace[b[i]] {
				i = skipSpace(b, i)
			}
			m.vs = i
			if i < len(b) && b[i] == '"' {
				// Strings are the most common member values: scan them
				// here and remember when they need no unescaping.
				i = skipPlain(b, i+1)
				if i < len(b) && b[i] == '"' {
					i++
					m.flags |= plainString
				} else {
					end, esc, err := scanString(b, i)
					if err != nil {
						return err
					}
					if !esc {
						m.flags |= plainString
					}
					i = end
				}
			} else {
				var err *SyntaxError
				if i, err = scanValue(b, i, stk, maxDepth-1); err != nil {
					return err
				}
			}
			m.ve = i
			d.members = append(d.members, m)
			if i < len(b) && isSpace[b[i]] {
				i = skipSpace(b, i)
			}
			if i >= len(b) {
				return errEnd(i)
			}
			if b[i] == ',' {
				i++
				if i < len(b) && isSpace[b[i]] {
					i = skipSpace(b, i)
				}
				continue
			}
			if b[i] == '}' {
				i++
				break
			}
			return errChar(b, i, " after object member; want ',' or '}'")
		}
	}
	if err := checkTrailing(b, i); err != nil {
		return err
	}
	d.re = i
	d.kind = Object
	return nil
}

// kindOf returns the kind of the valid value starting with c. Numbers are
// reported as Float; decodeValue tells Int from Float.
func kindOf(c byte) Kind {
	switch c {
	case '{':
		return Object
	case '[':
		return Array
	case '"':
		return String
	case 't', 'f':
		return Bool
	case 'n':
		return Null
	default:
		return Float
	}
}

// Raw returns the bytes given to the last Parse.
func (d *Doc) Raw() []byte { return d.raw }

// Modified reports whether an edit has changed d since the last Parse: a
// successful Set, or a Delete or Rename that reported a change. Setting a
// value equal to the current one counts as a change.
func (d *Doc) Modified() bool { return d.modified }

// Root returns the whole document as a Value: Missing when no Parse has
// succeeded. An Object or Array root is returned as raw text; when d has
// been modified that text is the serialized current state, written into d's
// scratch space.
func (d *Doc) Root() Value {
	if d.kind == Missing {
		return Value{}
	}
	if d.modified {
		start := len(d.scratch)
		d.scratch = d.AppendJSON(d.scratch)
		end := len(d.scratch)
		return Value{Kind: Object, S: d.scratch[start:end:end]}
	}
	return decodeValue(d.raw[d.rs:d.re], &d.scratch)
}

// Lookup returns the value at path, or a Missing value when there is none:
// a key absent from its object, an index beyond its array, or a step into a
// value that is not an object (for a key) or array (for an index). An empty
// path selects the root. When an object has duplicate keys the last one
// wins. Strings without escapes and the text of objects and arrays alias
// the document; strings with escapes are unescaped into d's scratch space.
// Either way Value.S stays valid until the next Parse.
func (d *Doc) Lookup(path []Seg) Value {
	if len(path) == 0 {
		return d.Root()
	}
	if d.unindexed {
		return d.lookupUnindexed(path)
	}
	if len(path) == 1 && d.kind == Object && !path[0].IsIndex() {
		// The common case, by hand.
		j := d.memberIndex(path[0].Key)
		if j < 0 {
			return Value{}
		}
		m := &d.members[j]
		if m.flags&plainString != 0 {
			return Value{Kind: String, S: d.raw[m.vs+1 : m.ve-1 : m.ve-1]}
		}
		k, t, n, f, s := decode(d.value(m), &d.scratch)
		return Value{Kind: k, B: t, I: n, F: f, S: s}
	}
	b, _, ok := d.find(path)
	if !ok {
		return Value{}
	}
	k, t, n, f, s := decode(b, &d.scratch)
	return Value{Kind: k, B: t, I: n, F: f, S: s}
}

// find returns the text of the value at a non-empty path, and whether that
// text lies in d.buf (rather than d.raw).
func (d *Doc) find(path []Seg) (b []byte, inBuf, ok bool) {
	switch d.kind {
	case Object:
		if path[0].IsIndex() {
			return nil, false, false
		}
		j := d.memberIndex(path[0].Key)
		if j < 0 {
			return nil, false, false
		}
		m := &d.members[j]
		b, inBuf = d.value(m), m.flags&valInBuf != 0
		path = path[1:]
	case Array:
		b = d.raw[d.rs:d.re]
	default:
		return nil, false, false
	}
	for _, seg := range path {
		if b, ok = d.child(b, seg); !ok {
			return nil, false, false
		}
	}
	return b, inBuf, true
}

// child returns the member or element seg selects in the valid, trimmed
// value b.
func (d *Doc) child(b []byte, seg Seg) ([]byte, bool) {
	if seg.IsIndex() {
		if b[0] != '[' {
			return nil, false
		}
		for i, n := 1, 0; ; n++ {
			vs, ve, ok := nextElem(b, i)
			if !ok {
				return nil, false
			}
			if n == seg.Index {
				return b[vs:ve], true
			}
			i = ve
		}
	}
	if b[0] != '{' {
		return nil, false
	}
	var found []byte
	ok := false
	for i := 1; ; {
		ks, ke, vs, ve, esc, more := nextMember(b, i)
		if !more {
			return found, ok
		}
		if d.keyEquals(b[ks:ke], esc, seg.Key) {
			found, ok = b[vs:ve], true
		}
		i = ve
	}
}

// memberIndex returns the index of the live top-level member named key, the
// last one when there are several, or -1.
func (d *Doc) memberIndex(key string) int {
	raw := d.raw
	for j := len(d.members) - 1; j >= 0; j-- {
		// isLive, by hand: this loop is the heart of Lookup.
		m := &d.members[j]
		if m.flags&^plainString == 0 {
			if m.ke-m.ks == len(key) && string(raw[m.ks:m.ke]) == key {
				return j
			}
		} else if m.flags&deleted == 0 && d.memberKeyIs(m, key) {
			return j
		}
	}
	return -1
}

// isLive reports whether m is not deleted and named key.
func (d *Doc) isLive(m *member, key string) bool {
	if m.flags&^plainString == 0 { // the common case: a plain key in raw
		return m.ke-m.ks == len(key) && string(d.raw[m.ks:m.ke]) == key
	}
	return m.flags&deleted == 0 && d.memberKeyIs(m, key)
}

func (d *Doc) memberKeyIs(m *member, key string) bool {
	src := d.raw
	if m.flags&keyInBuf != 0 {
		src = d.buf
	}
	return d.keyEquals(src[m.ks:m.ke], m.flags&keyEscaped != 0, key)
}

// keyEquals reports whether the key written as content (between the quotes,
// escaped when esc) is key.
func (d *Doc) keyEquals(content []byte, esc bool, key string) bool {
	if !esc {
		return string(content) == key
	}
	if len(key) > len(content) {
		return false // unescaping never lengthens
	}
	d.tmp = unescape(d.tmp[:0], content)
	return string(d.tmp) == key
}

// value returns the text of m's value.
func (d *Doc) value(m *member) []byte {
	if m.flags&valInBuf != 0 {
		return d.buf[m.vs:m.ve]
	}
	return d.raw[m.vs:m.ve]
}

// AppendJSON appends the document to dst. An unmodified document is
// appended verbatim, without surrounding whitespace. A modified one is
// written as a compact object: the surviving top-level members in their
// original order (replaced values in place), then new members in the order
// they were added; unchanged keys and values are copied verbatim, so their
// inner formatting is kept. Nothing is appended when no Parse has succeeded.
func (d *Doc) AppendJSON(dst []byte) []byte {
	if !d.modified { // an unindexed document is never modified
		return append(dst, d.raw[d.rs:d.re]...)
	}
	dst = append(dst, '{')
	first := true
	// Members untouched since Parse and written compactly there are copied
	// in runs: raw[rs:re] holds consecutive such members with their commas.
	rs, re := 0, 0
	for j := range d.members {
		m := &d.members[j]
		if m.flags&(deleted|keyInBuf|valInBuf) == 0 && m.vs == m.ke+2 {
			if re > rs && m.ks == re+2 {
				re = m.ve // adjacent: extend the run
				continue
			}
			if re > rs {
				dst = appendRun(dst, d.raw[rs:re], &first)
			}
			rs, re = m.ks-1, m.ve
			continue
		}
		if m.flags&deleted != 0 {
			continue
		}
		if re > rs {
			dst = appendRun(dst, d.raw[rs:re], &first)
			rs, re = 0, 0
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		key := d.raw
		if m.flags&keyInBuf != 0 {
			key = d.buf
		}
		dst = append(dst, key[m.ks-1:m.ke+1]...)
		dst = append(dst, ':')
		dst = append(dst, d.value(m)...)
	}
	if re > rs {
		dst = appendRun(dst, d.raw[rs:re], &first)
	}
	return append(dst, '}')
}

func appendRun(dst, run []byte, first *bool) []byte {
	if !*first {
		dst = append(dst, ',')
	}
	*first = false
	return append(dst, run...)
}
