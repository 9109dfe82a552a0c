package jsondoc

// Editing. Top-level edits only touch the member index: a new or replaced
// value is encoded into d.buf and the member points at it. An edit below the
// top level rewrites the top-level member's value: its text is copied into
// d.buf with the one change applied, recursively along the path, and the
// member points at the copy. Text that an edit replaces is never overwritten
// before the next Parse, so Values returned earlier stay valid.

type editOp uint8

const (
	opSet editOp = iota
	opDelete
)

// Set stores v at path, replacing what is there. Missing objects along the
// path are created; an existing value along the path that is not an object
// (for a key segment) or an array (for an index segment) is an error, and so
// is an index beyond its array and a document root that is not an object.
// Setting a Missing value deletes. v is encoded at once into d's own buffer,
// so the caller may reuse v.S when Set returns. An Object or Array v must
// hold valid JSON text of that kind; it is copied verbatim (trimmed of
// surrounding whitespace). When an object has duplicate keys, the last one
// is replaced and the others are removed. Errors are *PathError; on error d
// is unchanged.
func (d *Doc) Set(path []Seg, v Value) error {
	d.index()
	if v.Kind == Missing {
		if len(path) == 0 {
			return pathErr(path, 0, ErrEmptyPath)
		}
		d.Delete(path)
		return nil
	}
	if err := d.checkEditable(path); err != nil {
		return err
	}
	start := len(d.buf)
	switch v.Kind {
	case Null, Bool, Int, Float, String:
		d.buf = AppendValue(d.buf, v)
	case Object, Array:
		s := trimSpace(v.S)
		if err := checkRaw(s, v.Kind); err != nil {
			return pathErr(path, len(path)-1, err)
		}
		d.buf = append(d.buf, s...)
	default:
		return pathErr(path, len(path)-1, ErrInvalidValue)
	}
	if err := d.setSpan(path, start, len(d.buf), true); err != nil {
		d.buf = d.buf[:start]
		return err
	}
	return nil
}

func (d *Doc) checkEditable(path []Seg) error {
	if len(path) == 0 {
		return pathErr(path, 0, ErrEmptyPath)
	}
	if d.kind != Object || path[0].IsIndex() {
		return pathErr(path, 0, ErrNotObject)
	}
	return nil
}

// checkRaw reports whether s is the JSON text of one value of kind k.
func checkRaw(s []byte, k Kind) error {
	if len(s) == 0 || k == Object && s[0] != '{' || k == Array && s[0] != '[' {
		return &invalidValueError{cause: &SyntaxError{Offset: 0, Msg: "want JSON text of " + k.String()}}
	}
	if err := validate(s); err != nil {
		return &invalidValueError{cause: err}
	}
	return nil
}

// setSpan stores the value whose text is d.buf[vs:ve] (inBuf) or
// d.raw[vs:ve] at path, which checkEditable accepted. On error d.members is
// unchanged and the caller truncates d.buf.
func (d *Doc) setSpan(path []Seg, vs, ve int, inBuf bool) error {
	key := path[0].Key
	j := d.memberIndex(key)
	if len(path) == 1 {
		if j < 0 {
			d.addMember(key, vs, ve, inBuf)
		} else {
			d.dropShadowed(j, key)
			d.members[j].setValue(vs, ve, inBuf)
		}
		d.modified = true
		return nil
	}
	src := d.raw
	if inBuf {
		src = d.buf
	}
	val := src[vs:ve]
	start := len(d.buf)
	if j < 0 {
		for pos := 1; pos < len(path); pos++ {
			if path[pos].IsIndex() {
				return pathErr(path, pos, ErrNotArray)
			}
		}
		d.buf = appendCreate(d.buf, path[1:], val)
		d.addMember(key, start, len(d.buf), true)
		d.modified = true
		return nil
	}
	var err error
	d.buf, _, err = d.appendEdit(d.buf, d.value(&d.members[j]), path, 1, val, opSet)
	if err != nil {
		return err
	}
	d.dropShadowed(j, key)
	d.members[j].setValue(start, len(d.buf), true)
	d.modified = true
	return nil
}

// addMember appends a new top-level member. The key is stored encoded in
// d.buf, after the value.
func (d *Doc) addMember(key string, vs, ve int, inBuf bool) {
	ks := len(d.buf) + 1
	d.buf = appendStringText(d.buf, key)
	m := member{ks: ks, ke: len(d.buf) - 1, vs: vs, ve: ve, flags: keyInBuf}
	if m.ke-m.ks != len(key) {
		m.flags |= keyEscaped
	}
	if inBuf {
		m.flags |= valInBuf
	}
	d.members = append(d.members, m)
}

// appendStringText is AppendString for a string, without converting it to
// a byte slice.
func appendStringText(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if escapeStop[s[i]] {
			return AppendString(dst, []byte(s))
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// dropShadowed marks deleted the live members before j named key, which
// is member j's key.
func (d *Doc) dropShadowed(j int, key string) {
	for k := 0; k < j; k++ {
		if o := &d.members[k]; d.isLive(o, key) {
			o.flags |= deleted
		}
	}
}

// Delete removes the value at path (every occurrence of a duplicated key)
// and reports whether there was one. It never fails: a path that does not
// lead to a value, or a document whose root is not an object, deletes
// nothing.
func (d *Doc) Delete(path []Seg) bool {
	d.index()
	if len(path) == 0 || d.kind != Object || path[0].IsIndex() {
		return false
	}
	key := path[0].Key
	if len(path) == 1 {
		found := false
		for j := range d.members {
			m := &d.members[j]
			if m.flags&^plainString == 0 { // isLive, by hand
				if m.ke-m.ks != len(key) || string(d.raw[m.ks:m.ke]) != key {
					continue
				}
			} else if !d.isLive(m, key) {
				continue
			}
			m.flags |= deleted
			found = true
		}
		d.modified = d.modified || found
		return found
	}
	j := d.memberIndex(key)
	if j < 0 {
		return false
	}
	start := len(d.buf)
	buf, changed, err := d.appendEdit(d.buf, d.value(&d.members[j]), path, 1, nil, opDelete)
	if err != nil || !changed {
		d.buf = buf[:start]
		return false
	}
	d.buf = buf
	d.dropShadowed(j, key)
	d.members[j].setValue(start, len(d.buf), true)
	d.modified = true
	return true
}

// Rename moves the value at from to to, replacing what is at to; it is Set
// followed by Delete, except that the value's text is moved without being
// decoded (and without a copy when both paths have one segment). It reports
// false, and does nothing, when there is no value at from. Moving a value to
// its own path changes nothing and reports true; moving it below itself is
// an error (ErrMoveIntoSelf). Set's errors apply to to.
func (d *Doc) Rename(from, to []Seg) (bool, error) {
	d.index()
	if len(from) == 0 {
		return false, pathErr(from, 0, ErrEmptyPath)
	}
	if len(to) == 0 {
		return false, pathErr(to, 0, ErrEmptyPath)
	}
	b, inBuf, ok := d.find(from)
	if !ok {
		return false, nil
	}
	if err := d.checkEditable(to); err != nil {
		return false, err
	}
	switch {
	case hasPrefix(to, from) && len(to) == len(from):
		return true, nil
	case hasPrefix(to, from):
		return false, pathErr(to, len(from), ErrMoveIntoSelf)
	}
	// b is a subslice of d.raw or d.buf (no append happened since find),
	// so its offset follows from the capacities.
	src := d.raw
	if inBuf {
		src = d.buf
	}
	vs := cap(src) - cap(b)
	start := len(d.buf)
	if err := d.setSpan(to, vs, vs+len(b), inBuf); err != nil {
		d.buf = d.buf[:start]
		return false, err
	}
	if !hasPrefix(from, to) {
		// When to is an ancestor of from, replacing it removed from.
		d.Delete(from)
	}
	return true, nil
}

// hasPrefix reports whether p starts with prefix.
func hasPrefix(p, prefix []Seg) bool {
	if len(prefix) > len(p) {
		return false
	}
	for i := range prefix {
		a, b := p[i], prefix[i]
		if a.IsIndex() != b.IsIndex() || a.IsIndex() && a.Index != b.Index || !a.IsIndex() && a.Key != b.Key {
			return false
		}
	}
	return true
}

// appendEdit appends to dst the valid, trimmed container text c with the
// edit op applied at path[pos:] (val is the encoded value for opSet). It
// reports whether anything changed; when nothing did, or on error, what it
// appended is garbage that the caller must cut off.
func (d *Doc) appendEdit(dst, c []byte, path []Seg, pos int, val []byte, op editOp) ([]byte, bool, error) {
	seg := path[pos]
	leaf := pos == len(path)-1
	if seg.IsIndex() {
		if c[0] != '[' {
			if op == opDelete {
				return dst, false, nil
			}
			return dst, false, pathErr(path, pos, ErrNotArray)
		}
		dst = append(dst, '[')
		found, wrote := false, false
		for i, n := 1, 0; ; n++ {
			vs, ve, ok := nextElem(c, i)
			if !ok {
				break
			}
			i = ve
			if n == seg.Index {
				found = true
				if leaf && op == opDelete {
					continue
				}
				if wrote {
					dst = append(dst, ',')
				}
				wrote = true
				if leaf {
					dst = append(dst, val...)
					continue
				}
				var changed bool
				var err error
				if dst, changed, err = d.appendEdit(dst, c[vs:ve], path, pos+1, val, op); err != nil || !changed {
					return dst, changed, err
				}
				continue
			}
			if wrote {
				dst = append(dst, ',')
			}
			wrote = true
			dst = append(dst, c[vs:ve]...)
		}
		if !found {
			if op == opDelete {
				return dst, false, nil
			}
			return dst, false, pathErr(path, pos, ErrIndexRange)
		}
		return append(dst, ']'), true, nil
	}

	if c[0] != '{' {
		if op == opDelete {
			return dst, false, nil
		}
		return dst, false, pathErr(path, pos, ErrNotObject)
	}
	// The last member with the key is the one to edit; earlier ones are
	// shadowed and dropped.
	last := -1
	for i, n := 1, 0; ; n++ {
		ks, ke, _, ve, esc, ok := nextMember(c, i)
		if !ok {
			break
		}
		if d.keyEquals(c[ks:ke], esc, seg.Key) {
			last = n
		}
		i = ve
	}
	if last < 0 {
		if op == opDelete {
			return dst, false, nil
		}
		for p := pos + 1; p < len(path); p++ {
			if path[p].IsIndex() {
				return dst, false, pathErr(path, p, ErrNotArray)
			}
		}
	}
	dst = append(dst, '{')
	wrote := false
	for i, n := 1, 0; ; n++ {
		ks, ke, vs, ve, esc, ok := nextMember(c, i)
		if !ok {
			break
		}
		i = ve
		if n <= last && (n == last || d.keyEquals(c[ks:ke], esc, seg.Key)) {
			if n < last || leaf && op == opDelete {
				continue
			}
			if wrote {
				dst = append(dst, ',')
			}
			wrote = true
			dst = append(dst, c[ks-1:ke+1]...)
			dst = append(dst, ':')
			if leaf {
				dst = append(dst, val...)
				continue
			}
			var changed bool
			var err error
			if dst, changed, err = d.appendEdit(dst, c[vs:ve], path, pos+1, val, op); err != nil || !changed {
				return dst, changed, err
			}
			continue
		}
		if wrote {
			dst = append(dst, ',')
		}
		wrote = true
		dst = append(dst, c[ks-1:ke+1]...)
		dst = append(dst, ':')
		dst = append(dst, c[vs:ve]...)
	}
	if last < 0 {
		if wrote {
			dst = append(dst, ',')
		}
		dst = appendStringText(dst, seg.Key)
		dst = append(dst, ':')
		dst = appendCreate(dst, path[pos+1:], val)
	}
	return append(dst, '}'), true, nil
}

// appendCreate appends val nested in new objects, one per key in path.
func appendCreate(dst []byte, path []Seg, val []byte) []byte {
	for _, seg := range path {
		dst = append(dst, '{')
		dst = appendStringText(dst, seg.Key)
		dst = append(dst, ':')
	}
	dst = append(dst, val...)
	for range path {
		dst = append(dst, '}')
	}
	return dst
}
