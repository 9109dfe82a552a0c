package collector

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"slices"
	"unicode/utf16"
	"unicode/utf8"
)

// hardMaxDepth bounds the nesting the scanner follows to find where a value
// ends. Up to Config.Limits.MaxDepth a value is fine; between that and
// hardMaxDepth it is rejected on its own; beyond, the body cannot be framed
// and is refused whole.
const hardMaxDepth = 1024

// problem says why an event is rejected. The zero value means none.
type problem uint8

const (
	probNone      problem = iota
	probSyntax            // not well-formed JSON (only reported per event for NDJSON lines)
	probNotObject         // well-formed, but not an object
	probUTF8              // a string holds bytes that are not UTF-8
	probDepth             // nested deeper than max_depth
	probDupKey            // an object has the same key twice
	probSize              // longer than max_event_bytes
	numProblems
)

// reasonLabel is the metric label of each problem.
var reasonLabel = [numProblems]string{
	probNone:      "none",
	probSyntax:    "invalid_json",
	probNotObject: "not_object",
	probUTF8:      "invalid_utf8",
	probDepth:     "too_deep",
	probDupKey:    "duplicate_key",
	probSize:      "too_large",
}

// SWAR constants: one bit per byte lane.
const (
	lanesLow  = 0x0101010101010101
	lanesHigh = 0x8080808080808080
)

var (
	isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}
	isDigit = [256]bool{'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true, '8': true, '9': true}
	isHex   = func() (t [256]bool) {
		for _, c := range "0123456789abcdefABCDEF" {
			t[c] = true
		}
		return t
	}()
)

// stringStops returns a word with the high bit set in the lane of every
// byte of x that needs a closer look inside a string: '"', '\\', a control
// character or a non-ASCII byte. Lanes above the first such byte may hold
// spurious bits; the lowest set bit is exact.
func stringStops(x uint64) uint64 {
	q := x ^ (lanesLow * '"')
	s := x ^ (lanesLow * '\\')
	return (((q - lanesLow) &^ q) | ((s - lanesLow) &^ s) | (x - lanesLow*0x20) | x) & lanesHigh
}

// plainStops is stringStops without the non-ASCII bytes: '"', '\\' and
// control characters.
func plainStops(x uint64) uint64 {
	q := x ^ (lanesLow * '"')
	s := x ^ (lanesLow * '\\')
	return (((q - lanesLow) &^ q) | ((s - lanesLow) &^ s) | ((x - lanesLow*0x20) &^ x)) & lanesHigh
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	return i
}

// keyRef locates one decoded object key: in the scanned bytes, or in the
// scanner's scratch buffer when the key held escapes.
type keyRef struct {
	off, n  int
	scratch bool
	fp      uint64 // fingerprint: equal keys have equal fingerprints
}

// fingerprint packs a key's length and first 8 bytes: keys of up to 8 bytes
// are equal exactly when their fingerprints are.
func fingerprint(k []byte) uint64 {
	var v uint64
	if len(k) >= 8 {
		v = binary.LittleEndian.Uint64(k)
	} else {
		for i, c := range k {
			v |= uint64(c) << (8 * i)
		}
	}
	return v ^ uint64(len(k))*fpLenMul
}

// fpLenMul spreads a key's length over the fingerprint.
const fpLenMul = 0x9e3779b97f4a7c15

// hashedKey is a key's hash and index, for finding duplicates among many.
type hashedKey struct {
	h   uint64
	idx int
}

// pairwiseKeys is the object size up to which duplicate keys are found by
// comparing every pair; larger objects sort their keys by hash.
const pairwiseKeys = 16

var keySeed = maphash.MakeSeed()

// scanner validates JSON values in one pass over their bytes: well-formed
// (RFC 8259), strings valid UTF-8, nesting within maxDepth, no duplicate
// keys (compared after unescaping). It also picks up the event id: the
// string value of the most preferred idFields member of the top-level
// object. A scanner is reused from value to value (reset) and allocates
// only while its buffers grow. Not safe for concurrent use.
type scanner struct {
	maxDepth int
	idFields []string

	// Result of the last scan.
	prob   problem
	probAt int    // where the problem is, in the scanned bytes
	dupKey []byte // the duplicate key (aliases scanner buffers until the next scan)
	synMsg string // what is wrong, for probSyntax
	idRank int    // index in idFields of the event id found; len(idFields) if none
	idOff  int    // the id's string contents (between the quotes) in the scanned bytes
	idLen  int
	idEsc  bool // the id contains escapes
	noted  bool // a semantic problem was noted; stop looking for more

	keys    []keyRef                  // keys of the open objects, outermost first
	frames  []int                     // for each open object, where its keys start in keys
	kinds   [hardMaxDepth / 64]uint64 // bit d set: level d+1 is an object
	scratch []byte                    // unescaped keys
	hashed  []hashedKey
}

func (s *scanner) reset() {
	s.prob, s.probAt, s.dupKey, s.synMsg = probNone, 0, nil, ""
	s.idRank, s.idOff, s.idLen, s.idEsc = len(s.idFields), 0, 0, false
	s.noted = false
	s.keys, s.frames, s.scratch = s.keys[:0], s.frames[:0], s.scratch[:0]
}

// note records the first semantic problem of the value.
func (s *scanner) note(p problem, at int) {
	if !s.noted {
		s.prob, s.probAt, s.noted = p, at, true
	}
}

// syntax records a syntax error and returns the values scan returns.
func (s *scanner) syntax(at int, msg string) (int, bool) {
	s.prob, s.probAt, s.synMsg = probSyntax, at, msg
	return at, false
}

// scan validates the JSON value starting at b[i] (leading whitespace
// allowed) and returns the index just past it. ok is false on a syntax
// error: then the value's end is unknown, s.prob is probSyntax and s.probAt
// and s.synMsg say where and what. Otherwise s.prob is the first semantic
// problem found (probNone when there is none) and the id fields are set.
// Nothing after the value is looked at.
//
// The scanner is a loop over three states (a value, a key or what follows
// a value is expected), written with goto: it is the hot path.
func (s *scanner) scan(b []byte, i int) (end int, ok bool) {
	s.reset()
	i = skipSpace(b, i)
	if i < len(b) && b[i] != '{' {
		s.note(probNotObject, i)
	}
	var (
		depth     int
		pendingID = -1 // idFields index of the top-level member whose value comes next
		c         byte
		w         int
		bit       uint64
		start     int
		esc       bool
		k         keyRef
		kb        []byte
	)

value: // a value is expected at b[i]
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		return s.syntax(i, "unexpected end of JSON")
	}
	c = b[i]
	switch c {
	case '"':
		start = i
		// Most strings are short and plain: look for the closing quote in
		// the next 8 bytes before calling str.
		if i+9 <= len(b) {
			if m := stringStops(binary.LittleEndian.Uint64(b[i+1:])); m != 0 {
				if j := i + 1 + bits.TrailingZeros64(m)>>3; b[j] == '"' {
					i, esc = j+1, false
					goto valueString
				}
			}
		}
		if i, esc, ok = s.str(b, i); !ok {
			return i, false
		}
	valueString:
		if pendingID >= 0 && i-start > 2 { // an empty id does not count
			s.idRank, s.idOff, s.idLen, s.idEsc = pendingID, start+1, i-start-2, esc
		}
	case '{', '[':
		if depth == hardMaxDepth {
			return s.syntax(i, "nested deeper than 1024 levels")
		}
		if depth == s.maxDepth {
			s.note(probDepth, i)
		}
		w, bit = depth>>6, uint64(1)<<(depth&63)
		depth++
		pendingID = -1
		i++
		for i < len(b) && isSpace[b[i]] {
			i++
		}
		if c == '{' {
			s.kinds[w] |= bit
			if i < len(b) && b[i] == '}' {
				i++
				depth--
				goto after
			}
			s.frames = append(s.frames, len(s.keys))
			goto key
		}
		s.kinds[w] &^= bit
		if i < len(b) && b[i] == ']' {
			i++
			depth--
			goto after
		}
		goto value
	case 't':
		if !bytes.HasPrefix(b[i:], []byte("true")) {
			return s.syntax(i, "invalid literal")
		}
		i += 4
	case 'f':
		if !bytes.HasPrefix(b[i:], []byte("false")) {
			return s.syntax(i, "invalid literal")
		}
		i += 5
	case 'n':
		if !bytes.HasPrefix(b[i:], []byte("null")) {
			return s.syntax(i, "invalid literal")
		}
		i += 4
	default:
		if c != '-' && !isDigit[c] {
			return s.syntax(i, "unexpected character")
		}
		if i, ok = number(b, i); !ok {
			return s.syntax(i, "invalid number")
		}
	}
	pendingID = -1

after: // a value ended at b[i]
	if depth == 0 {
		return i, true
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		return s.syntax(i, "unexpected end of JSON")
	}
	w = depth - 1
	if s.kinds[w>>6]&(1<<(w&63)) != 0 { // in an object
		switch b[i] {
		case ',':
			i++
			goto key
		case '}':
			i++
			s.closeObject(b)
			depth--
			goto after
		}
		return s.syntax(i, "expected ',' or '}' after an object member")
	}
	switch b[i] {
	case ',':
		i++
		goto value
	case ']':
		i++
		depth--
		goto after
	}
	return s.syntax(i, "expected ',' or ']' after an array element")

key: // a key is expected at b[i]
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) {
		return s.syntax(i, "unexpected end of JSON")
	}
	if b[i] != '"' {
		return s.syntax(i, "expected a string key")
	}
	start = i
	// As for values; the 8 bytes loaded also make the key's fingerprint.
	if i+9 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i+1:])
		if m := stringStops(x); m != 0 {
			n := bits.TrailingZeros64(m) >> 3
			if b[i+1+n] == '"' {
				i += n + 2
				k = keyRef{off: start + 1, n: n, fp: x&(1<<(8*n)-1) ^ uint64(n)*fpLenMul}
				goto keyRead
			}
		}
	}
	if i, esc, ok = s.str(b, i); !ok {
		return i, false
	}
	k = keyRef{off: start + 1, n: i - start - 2}
	if esc {
		from := len(s.scratch)
		s.scratch = appendUnescaped(s.scratch, b[k.off:k.off+k.n])
		k = keyRef{off: from, n: len(s.scratch) - from, scratch: true}
	}
	k.fp = fingerprint(s.keyBytes(b, k))
keyRead:
	if !s.noted {
		s.keys = append(s.keys, k)
	}
	if depth == 1 && s.idRank > 0 {
		kb = s.keyBytes(b, k)
		for r, f := range s.idFields[:s.idRank] {
			if len(f) == len(kb) && f == string(kb) {
				pendingID = r
				break
			}
		}
	}
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	if i >= len(b) || b[i] != ':' {
		return s.syntax(i, "expected ':' after an object key")
	}
	i++
	goto value
}

func (s *scanner) keyBytes(b []byte, k keyRef) []byte {
	if k.scratch {
		return s.scratch[k.off : k.off+k.n]
	}
	return b[k.off : k.off+k.n]
}

// closeObject pops the innermost object and checks its keys for
// duplicates.
func (s *scanner) closeObject(b []byte) {
	f := s.frames[len(s.frames)-1]
	s.frames = s.frames[:len(s.frames)-1]
	if s.noted {
		return // keys are no longer collected
	}
	keys := s.keys[f:]
	if len(keys) > 1 {
		if dup, ok := s.findDup(b, keys); ok {
			s.note(probDupKey, dup.off)
			s.dupKey = s.keyBytes(b, dup)
		}
	}
	s.keys = s.keys[:f]
}

// findDup returns a key that occurs twice in keys.
func (s *scanner) findDup(b []byte, keys []keyRef) (keyRef, bool) {
	if len(keys) <= pairwiseKeys {
		for i := 1; i < len(keys); i++ {
			fp := keys[i].fp
			for j := range i {
				if keys[j].fp == fp && (keys[i].n <= 8 || bytes.Equal(s.keyBytes(b, keys[j]), s.keyBytes(b, keys[i]))) {
					return keys[i], true
				}
			}
		}
		return keyRef{}, false
	}
	h := s.hashed[:0]
	for i, k := range keys {
		h = append(h, hashedKey{maphash.Bytes(keySeed, s.keyBytes(b, k)), i})
	}
	s.hashed = h
	slices.SortFunc(h, func(x, y hashedKey) int {
		if x.h != y.h {
			if x.h < y.h {
				return -1
			}
			return 1
		}
		return bytes.Compare(s.keyBytes(b, keys[x.idx]), s.keyBytes(b, keys[y.idx]))
	})
	for i := 1; i < len(h); i++ {
		if h[i].h == h[i-1].h && bytes.Equal(s.keyBytes(b, keys[h[i].idx]), s.keyBytes(b, keys[h[i-1].idx])) {
			return keys[max(h[i].idx, h[i-1].idx)], true
		}
	}
	return keyRef{}, false
}

// str scans the string starting at b[i] == '"' and returns the index past
// its closing quote and whether it holds escapes. Bytes that are not UTF-8
// are noted as probUTF8; the scan goes on.
func (s *scanner) str(b []byte, i int) (end int, esc, ok bool) {
	i++
	for {
		for i+8 <= len(b) {
			m := stringStops(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			end, _ = s.syntax(i, "unexpected end of JSON in a string")
			return end, esc, false
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, esc, true
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				end, _ = s.syntax(i+1, "unexpected end of JSON in a string")
				return end, esc, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex[b[i+2]] || !isHex[b[i+3]] || !isHex[b[i+4]] || !isHex[b[i+5]] {
					end, _ = s.syntax(i, `invalid \u escape`)
					return end, esc, false
				}
				i += 6
			default:
				end, _ = s.syntax(i, "invalid escape")
				return end, esc, false
			}
		case c < 0x20:
			end, _ = s.syntax(i, "control character in a string")
			return end, esc, false
		case c >= utf8.RuneSelf:
			// Check the whole run up to the next quote, backslash or
			// control character at once: text in most languages is long
			// runs of non-ASCII.
			j := i + 1
			for j+8 <= len(b) {
				if m := plainStops(binary.LittleEndian.Uint64(b[j:])); m != 0 {
					j += bits.TrailingZeros64(m) >> 3
					goto runEnd
				}
				j += 8
			}
			for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
				j++
			}
		runEnd:
			if !utf8.Valid(b[i:j]) {
				for k := i; k < j; {
					r, size := utf8.DecodeRune(b[k:j])
					if r == utf8.RuneError && size <= 1 {
						s.note(probUTF8, k)
						break
					}
					k += size
				}
			}
			i = j
		default:
			i++
		}
	}
}

// number scans the number starting at b[i] and returns the index past it.
func number(b []byte, i int) (int, bool) {
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit[b[i]]:
		for i < len(b) && isDigit[b[i]] {
			i++
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit[b[i]] {
			return i, false
		}
		for i < len(b) && isDigit[b[i]] {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit[b[i]] {
			return i, false
		}
		for i < len(b) && isDigit[b[i]] {
			i++
		}
	}
	return i, true
}

// appendUnescaped appends the contents of a well-formed JSON string (the
// bytes between the quotes) with escapes decoded. Like encoding/json, an
// unpaired surrogate becomes U+FFFD.
func appendUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		j := bytes.IndexByte(src[i:], '\\')
		if j < 0 {
			return append(dst, src[i:]...)
		}
		dst = append(dst, src[i:i+j]...)
		i += j
		c := src[i+1]
		switch c {
		case 'u':
			r := rune(hex4(src[i+2 : i+6]))
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					r2 = rune(hex4(src[i+2 : i+6]))
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		}
		dst = append(dst, c)
		i += 2
	}
	return dst
}

func hex4(b []byte) uint16 {
	var v uint16
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		v = v<<4 | uint16(c)
	}
	return v
}
