package expr

import (
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tIdent
	tInt
	tFloat
	tString
	// Keywords.
	tTrue
	tFalse
	tNull
	tIn
	tNot
	tThis
	// Punctuation.
	tLParen
	tRParen
	tLBrack
	tRBrack
	tComma
	tDot
	tQuest
	tColon
	tCoalesce
	tOr
	tAnd
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
	tPlus
	tMinus
	tStar
	tSlash
	tPercent
	tBang
)

var tokNames = [...]string{
	tEOF: "end of expression", tIdent: "identifier", tInt: "number", tFloat: "number",
	tString: "string", tTrue: "true", tFalse: "false", tNull: "null", tIn: "in",
	tNot: "not", tThis: "this", tLParen: "(", tRParen: ")", tLBrack: "[",
	tRBrack: "]", tComma: ",", tDot: ".", tQuest: "?", tColon: ":",
	tCoalesce: "??", tOr: "||", tAnd: "&&", tEq: "==", tNe: "!=", tLt: "<",
	tLe: "<=", tGt: ">", tGe: ">=", tPlus: "+", tMinus: "-", tStar: "*",
	tSlash: "/", tPercent: "%", tBang: "!",
}

func (k tokKind) String() string { return tokNames[k] }

var keywords = map[string]tokKind{
	"true": tTrue, "false": tFalse, "null": tNull, "in": tIn, "not": tNot, "this": tThis,
}

type token struct {
	kind tokKind
	pos  int
	// text is an identifier's or keyword's name, or a string literal's
	// decoded value.
	text string
	// ival is an integer literal's value. It may be 1<<63, which is valid
	// only right after a unary minus.
	ival uint64
	fval float64
}

// lexer produces tokens on demand, so that errors come out in source order.
type lexer struct {
	src string
	pos int
}

func isIdentStart(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isIdentByte(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (l *lexer) next() (token, *Error) {
	src := l.src
	for l.pos < len(src) {
		if c := src[l.pos]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		l.pos++
	}
	start := l.pos
	if start >= len(src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := src[start]
	switch {
	case isIdentStart(c):
		i := start + 1
		for i < len(src) && isIdentByte(src[i]) {
			i++
		}
		l.pos = i
		word := src[start:i]
		if k, ok := keywords[word]; ok {
			return token{kind: k, pos: start, text: word}, nil
		}
		return token{kind: tIdent, pos: start, text: word}, nil
	case isDigit(c):
		return l.number()
	case c == '"' || c == '\'':
		return l.str()
	}
	tok := token{pos: start}
	two := func(second byte, k2, k1 tokKind) tokKind {
		if start+1 < len(src) && src[start+1] == second {
			l.pos++
			return k2
		}
		return k1
	}
	l.pos++
	switch c {
	case '(':
		tok.kind = tLParen
	case ')':
		tok.kind = tRParen
	case '[':
		tok.kind = tLBrack
	case ']':
		tok.kind = tRBrack
	case ',':
		tok.kind = tComma
	case '.':
		tok.kind = tDot
	case ':':
		tok.kind = tColon
	case '+':
		tok.kind = tPlus
	case '-':
		tok.kind = tMinus
	case '*':
		tok.kind = tStar
	case '/':
		tok.kind = tSlash
	case '%':
		tok.kind = tPercent
	case '?':
		tok.kind = two('?', tCoalesce, tQuest)
	case '!':
		tok.kind = two('=', tNe, tBang)
	case '<':
		tok.kind = two('=', tLe, tLt)
	case '>':
		tok.kind = two('=', tGe, tGt)
	case '=':
		if tok.kind = two('=', tEq, tEOF); tok.kind == tEOF {
			return token{}, &Error{Pos: start, Msg: "unexpected '='", Hint: "use == to compare"}
		}
	case '&':
		if tok.kind = two('&', tAnd, tEOF); tok.kind == tEOF {
			return token{}, &Error{Pos: start, Msg: "unexpected '&'", Hint: "use && for logical and"}
		}
	case '|':
		if tok.kind = two('|', tOr, tEOF); tok.kind == tEOF {
			return token{}, &Error{Pos: start, Msg: "unexpected '|'", Hint: "use || for logical or"}
		}
	case '#':
		return token{}, &Error{Pos: start, Msg: "unexpected '#'", Hint: "comments are not supported"}
	default:
		r, _ := utf8.DecodeRuneInString(src[start:])
		return token{}, &Error{Pos: start, Msg: fmt.Sprintf("unexpected character %q", r)}
	}
	return tok, nil
}

func (l *lexer) number() (token, *Error) {
	src := l.src
	start := l.pos
	i := start
	for i < len(src) && isDigit(src[i]) {
		i++
	}
	isFloat := false
	if i+1 < len(src) && src[i] == '.' && isDigit(src[i+1]) {
		isFloat = true
		i++
		for i < len(src) && isDigit(src[i]) {
			i++
		}
	}
	if i < len(src) && (src[i] == 'e' || src[i] == 'E') {
		j := i + 1
		if j < len(src) && (src[j] == '+' || src[j] == '-') {
			j++
		}
		if j < len(src) && isDigit(src[j]) {
			isFloat = true
			i = j
			for i < len(src) && isDigit(src[i]) {
				i++
			}
		}
	}
	if i < len(src) && isIdentByte(src[i]) {
		return token{}, &Error{Pos: start, Msg: fmt.Sprintf("invalid number %q", src[start:i+1])}
	}
	l.pos = i
	text := src[start:i]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) {
			return token{}, &Error{Pos: start, Msg: "number " + text + " is out of range"}
		}
		return token{kind: tFloat, pos: start, fval: f}, nil
	}
	u, err := strconv.ParseUint(text, 10, 64)
	if err != nil || u > 1<<63 {
		return token{}, &Error{Pos: start, Msg: "integer " + text + " is out of range", Hint: "integers are 64-bit; write a float such as 1e19"}
	}
	return token{kind: tInt, pos: start, ival: u}, nil
}

// str lexes a string literal quoted with " or '.
func (l *lexer) str() (token, *Error) {
	src := l.src
	start := l.pos
	quote := src[start]
	var out []byte
	i := start + 1
	for {
		if i >= len(src) {
			return token{}, &Error{Pos: start, Msg: "unterminated string", Hint: "close it with " + string(quote)}
		}
		c := src[i]
		if c == quote {
			break
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(src) {
			return token{}, &Error{Pos: start, Msg: "unterminated string", Hint: "close it with " + string(quote)}
		}
		switch e := src[i+1]; e {
		case '"', '\'', '\\', '/':
			out = append(out, e)
		case 'n':
			out = append(out, '\n')
		case 't':
			out = append(out, '\t')
		case 'r':
			out = append(out, '\r')
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'u':
			r, n := unicodeEscape(src[i:])
			if n == 0 {
				return token{}, &Error{Pos: i, Msg: `invalid \u escape`, Hint: `write \u followed by four hex digits`}
			}
			if r < 0 {
				return token{}, &Error{Pos: i, Msg: `invalid \u escape: unpaired surrogate`}
			}
			out = utf8.AppendRune(out, r)
			i += n
			continue
		default:
			return token{}, &Error{Pos: i, Msg: fmt.Sprintf(`unknown escape \%c`, e), Hint: `escapes are \" \' \\ \n \t \r \uXXXX`}
		}
		i += 2
	}
	l.pos = i + 1
	return token{kind: tString, pos: start, text: string(out)}, nil
}

// unicodeEscape decodes the \uXXXX escape at the start of s, or the
// surrogate pair written as two of them. It returns the rune and the number
// of bytes used: n is 0 when the hex digits are malformed, and r is -1 (with
// n 6) for a surrogate that is not part of a pair.
func unicodeEscape(s string) (r rune, n int) {
	r, ok := hex4(s)
	switch {
	case !ok:
		return 0, 0
	case !utf16.IsSurrogate(r):
		return r, 6
	}
	if lo, ok := hex4(s[6:]); ok {
		if p := utf16.DecodeRune(r, lo); p != utf8.RuneError {
			return p, 12
		}
	}
	return -1, 6
}

// hex4 decodes the four hex digits of a \uXXXX escape at the start of s.
func hex4(s string) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	u, err := strconv.ParseUint(s[2:6], 16, 16)
	return rune(u), err == nil
}
