package config

import (
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// lc is a line and column, both 1-based; columns count characters.
type lc struct{ line, col int32 }

// source is the text of a configuration file, kept to map bytes of scalar
// values back to where they are written.
type source struct {
	lines []string // without line terminators
}

func newSource(data []byte) *source {
	s := strings.TrimPrefix(string(data), "\ufeff")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return &source{lines: lines}
}

func nodePos(file string, n *yaml.Node) Pos {
	return Pos{File: file, Line: n.Line, Col: n.Column}
}

// cursor walks a source a character at a time; the end of a line reads as
// '\n'.
type cursor struct {
	src  *source
	line int // 0-based
	off  int // byte offset in the line
	col  int // 1-based column of off
}

func (c *cursor) eof() bool { return c.line >= len(c.src.lines) }

func (c *cursor) peek() (rune, int) {
	l := c.src.lines[c.line]
	if c.off >= len(l) {
		return '\n', 0
	}
	return utf8.DecodeRuneInString(l[c.off:])
}

func (c *cursor) advance() {
	if _, size := c.peek(); size > 0 {
		c.off += size
		c.col++
		return
	}
	c.line++
	c.off, c.col = 0, 1
}

func (c *cursor) pos() lc { return lc{int32(c.line + 1), int32(c.col)} }

// seek moves c to line and column (1-based) if the source has them.
func (c *cursor) seek(line, col int) bool {
	if line < 1 || line > len(c.src.lines) {
		return false
	}
	c.line, c.off, c.col = line-1, 0, 1
	for c.col < col {
		if _, size := c.peek(); size == 0 {
			return false
		}
		c.advance()
	}
	return true
}

// scalarMap returns the position of each byte of n.Value, plus one for the
// position just past the end. With the source at hand it follows the text as
// written, through quotes, escapes, folded lines and indentation, so it is
// exact for single-line scalars and close for multi-line ones; without the
// source it assumes the value is written as it reads.
func scalarMap(n *yaml.Node, src *source) []lc {
	quoted := n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	block := n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0
	if src != nil {
		c := &cursor{src: src}
		ok := c.seek(n.Line, n.Column)
		if ok && block {
			ok = c.seek(n.Line+1, 1)
		} else if ok && quoted {
			c.advance()
		}
		if ok {
			indent := 0
			if block {
				indent = blockIndent(src, n.Line)
			}
			return alignScalar(n.Value, c, n.Style, indent)
		}
	}
	return synthMap(n.Value, n.Line, n.Column, n.Style)
}

// synthMap guesses positions for a value written at line:col in the given
// style, assuming escapes only where a double-quoted scalar needs them.
func synthMap(v string, line, col int, style yaml.Style) []lc {
	at := make([]lc, len(v)+1)
	sq := style&yaml.SingleQuotedStyle != 0
	dq := style&yaml.DoubleQuotedStyle != 0
	if sq || dq {
		col++
	}
	if style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		line++
	}
	start := col
	for i, r := range v {
		for k := 0; k < utf8.RuneLen(r) && i+k < len(v); k++ {
			at[i+k] = lc{int32(line), int32(col)}
		}
		switch {
		case r == '\n' && !dq:
			line, col = line+1, start
		case sq && r == '\'', dq && (r == '"' || r == '\\' || r < ' '):
			col += 2
		default:
			col++
		}
	}
	at[len(v)] = lc{int32(line), int32(col)}
	return at
}

// blockIndent returns the content indentation of the block scalar whose
// header is on line (1-based): that of its first non-blank line.
func blockIndent(src *source, line int) int {
	for _, l := range src.lines[min(line, len(src.lines)):] {
		if t := strings.TrimLeft(l, " "); t != "" {
			return len(l) - len(t)
		}
	}
	return 0
}

// alignScalar matches the value v against the source text at c. indent is
// the content indentation of a block scalar, skipped at each line start.
func alignScalar(v string, c *cursor, style yaml.Style, indent int) []lc {
	sq := style&yaml.SingleQuotedStyle != 0
	dq := style&yaml.DoubleQuotedStyle != 0
	at := make([]lc, len(v)+1)
	set := func(i, size int, p lc) {
		for k := 0; k < size; k++ {
			at[i+k] = p
		}
	}
	i := 0
	for i < len(v) && !c.eof() {
		if c.off == 0 && indent > 0 {
			for k := 0; k < indent; k++ {
				if sr, _ := c.peek(); sr != ' ' {
					break
				}
				c.advance()
			}
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size <= 1 {
			size = 1
		}
		p := c.pos()
		sr, _ := c.peek()
		switch {
		case dq && sr == '\\':
			next := *c
			next.advance()
			if e, _ := next.peek(); e == '\n' {
				// An escaped line break: the value goes on at the next
				// line's first non-blank character.
				c.advance()
				c.advance()
				continue
			}
			line := c.src.lines[c.line][c.off:]
			if er, n := decodeEscape(line); n > 0 && er == r {
				set(i, size, p)
				i += size
				for range utf8.RuneCountInString(line[:n]) {
					c.advance()
				}
				continue
			}
			set(i, size, p)
			i += size
			c.advance()
		case sq && sr == '\'' && r == '\'':
			set(i, size, p)
			i += size
			c.advance()
			if q, _ := c.peek(); q == '\'' {
				c.advance()
			}
		case sr == r:
			set(i, size, p)
			i += size
			c.advance()
		case (r == ' ' || r == '\n') && sr == '\n':
			// A line break folded into a space, or kept.
			set(i, size, p)
			i += size
			c.advance()
		case sr == ' ' || sr == '\t' || sr == '\n':
			// Indentation, trailing blanks and blank lines that are not
			// part of the value.
			c.advance()
		default:
			set(i, size, p)
			i += size
			c.advance()
		}
	}
	end := lc{}
	if !c.eof() {
		end = c.pos()
	} else if len(c.src.lines) > 0 {
		last := c.src.lines[len(c.src.lines)-1]
		end = lc{int32(len(c.src.lines)), int32(utf8.RuneCountInString(last) + 1)}
	}
	for ; i <= len(v); i++ {
		at[i] = end
	}
	return at
}

// decodeEscape decodes the YAML double-quoted escape at the start of s (which
// begins with a backslash) and returns the rune and the escape's length in
// bytes, or 0 if s does not start with a valid escape.
func decodeEscape(s string) (rune, int) {
	if len(s) < 2 || s[0] != '\\' {
		return 0, 0
	}
	simple := map[byte]rune{
		'0': 0, 'a': '\a', 'b': '\b', 't': '\t', '\t': '\t', 'n': '\n', 'v': '\v',
		'f': '\f', 'r': '\r', 'e': 0x1b, ' ': ' ', '"': '"', '/': '/', '\\': '\\',
		'N': 0x85, '_': 0xa0, 'L': 0x2028, 'P': 0x2029,
	}
	if r, ok := simple[s[1]]; ok {
		return r, 2
	}
	digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[s[1]]
	if digits == 0 || len(s) < 2+digits {
		return 0, 0
	}
	v, err := strconv.ParseUint(s[2:2+digits], 16, 32)
	if err != nil {
		return 0, 0
	}
	return rune(v), 2 + digits
}
