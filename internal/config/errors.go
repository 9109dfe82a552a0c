package config

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Pos is a position in a configuration file. Line and Col are 1-based; Col
// counts characters (not bytes), as YAML does. A zero Line means the position
// is unknown.
type Pos struct {
	File      string
	Line, Col int
}

// String formats p as "file:line:col", leaving out the parts that are
// unknown.
func (p Pos) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(p.Line))
		if p.Col > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Col))
		}
	}
	return b.String()
}

// IsValid reports whether the position names a line.
func (p Pos) IsValid() bool { return p.Line > 0 }

func comparePos(a, b Pos) int {
	return cmp.Or(strings.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Col, b.Col))
}

// Error is one problem in a configuration file. Every error the package
// reports names where (Pos), which setting (Field, a dotted path such as
// "processors.enrich.expr" or "outputs.s3.tags[2]"), what is wrong (Msg),
// what was expected and what to do about it (Hint). Field is empty for
// problems that concern the whole file, such as YAML syntax errors.
type Error struct {
	Pos      Pos
	Field    string
	Msg      string
	Expected string
	Hint     string
}

// Error formats e as
//
//	file:line:col: field: msg (expected ...)
//	  hint: ...
//
// leaving out the parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Expected != "" {
		b.WriteString(" (expected ")
		b.WriteString(e.Expected)
		b.WriteByte(')')
	}
	if e.Hint != "" {
		b.WriteString("\n  hint: ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Errors is a list of configuration problems. The package returns every
// problem it finds rather than stopping at the first; lists it returns are
// sorted by position.
type Errors []*Error

// Add appends err to e; a nil err is ignored.
func (e *Errors) Add(err *Error) {
	if err != nil {
		*e = append(*e, err)
	}
}

// Err returns e, sorted by position, as an error, or nil when e is empty.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e.sorted()
}

// Error returns the errors, sorted by position, one per line (hints on the
// line after their error).
func (e Errors) Error() string {
	s := e.sorted()
	lines := make([]string, len(s))
	for i, err := range s {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the errors, so that errors.As finds each *Error.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, err := range e {
		out[i] = err
	}
	return out
}

// sorted returns a copy of e sorted by position (stable, so that errors at
// one position keep the order they were found in) with exact duplicates,
// which aliases can produce, removed.
func (e Errors) sorted() Errors {
	s := slices.Clone(e)
	slices.SortStableFunc(s, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) })
	return slices.CompactFunc(s, func(a, b *Error) bool { return *a == *b })
}

// Closest returns the candidate that s most likely misspells: the nearest by
// edit distance (at most 2, and less than the length of s) ignoring case, or
// else one that s is a prefix of, or that is a prefix of s (at least three
// characters). It returns false when none is close.
func Closest(s string, candidates []string) (string, bool) {
	ls := strings.ToLower(s)
	best, bestDist := "", 3
	for _, c := range candidates {
		d := levenshtein(ls, strings.ToLower(c))
		if d < bestDist && d < utf8.RuneCountInString(s) {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best, true
	}
	if len(ls) >= 3 {
		for _, c := range candidates {
			lc := strings.ToLower(c)
			if strings.HasPrefix(lc, ls) || (len(lc) >= 3 && strings.HasPrefix(ls, lc)) {
				return c, true
			}
		}
	}
	return "", false
}

// levenshtein returns the edit distance between a and b, in runes.
func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// oneOf formats a list of choices for Expected: "one of a, b, c".
func oneOf(choices []string) string {
	if len(choices) == 1 {
		return choices[0]
	}
	return "one of " + strings.Join(choices, ", ")
}

// didYouMean returns a hint suggesting the closest candidate to s, or
// fallback when none is close.
func didYouMean(s string, candidates []string, fallback string) string {
	if c, ok := Closest(s, candidates); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return fallback
}
