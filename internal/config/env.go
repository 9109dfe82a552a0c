package config

import (
	"fmt"
	"strings"
)

// Environment variable substitution in scalar values:
//
//	${NAME}            the variable's value; an error if it is not set
//	${NAME:-default}   the default when the variable is unset or empty
//	$${                a literal "${"
//
// The default is taken literally up to the first "}"; references do not
// nest. A "$" not followed by "{" is left alone.

// envSpan says where bytes [out, out+n) of an expanded string came from: a
// literal run starting at byte in of the original, or (subst) a substituted
// value written at byte in (the "$" of its reference).
type envSpan struct {
	out, n, in int
	subst      bool
}

// envProblem is a malformed or unresolvable reference at byte off of the
// original string.
type envProblem struct {
	off                 int
	msg, expected, hint string
}

const envExpected = "${NAME} or ${NAME:-default}, NAME made of letters, digits and _"

// expandEnv substitutes environment references in s using lookup. It returns
// the expanded string, where its bytes came from, and every problem found.
func expandEnv(s string, lookup func(string) (string, bool)) (string, []envSpan, []envProblem) {
	var (
		b     strings.Builder
		spans []envSpan
		probs []envProblem
	)
	literal := func(in, n int) {
		if n == 0 {
			return
		}
		if k := len(spans) - 1; k >= 0 && !spans[k].subst && spans[k].in+spans[k].n == in && spans[k].out+spans[k].n == b.Len() {
			spans[k].n += n
		} else {
			spans = append(spans, envSpan{out: b.Len(), n: n, in: in})
		}
		b.WriteString(s[in : in+n])
	}
	i, start := 0, 0
	for i < len(s) {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			break
		}
		i += j
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			literal(start, i-start)
			literal(i+1, 2)
			i += 3
			start = i
		case strings.HasPrefix(s[i:], "${"):
			literal(start, i-start)
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				probs = append(probs, envProblem{off: i,
					msg:      `unterminated "${" (no closing "}")`,
					expected: envExpected,
					hint:     `close it with "}", or write "$${" for a literal "${"`})
				literal(i, len(s)-i)
				return b.String(), spans, probs
			}
			ref := s[i : i+2+end+1]
			val, p := resolveEnvRef(ref, lookup)
			if p != nil {
				p.off = i
				probs = append(probs, *p)
			} else if val != "" {
				spans = append(spans, envSpan{out: b.Len(), n: len(val), in: i, subst: true})
				b.WriteString(val)
			}
			i += len(ref)
			start = i
		default:
			i++
		}
	}
	literal(start, len(s)-start)
	return b.String(), spans, probs
}

// resolveEnvRef resolves one reference "${...}".
func resolveEnvRef(ref string, lookup func(string) (string, bool)) (string, *envProblem) {
	inner := ref[2 : len(ref)-1]
	name, def, hasDef := strings.Cut(inner, ":-")
	if !validEnvName(name) {
		hint := `write "$${" for a literal "${"`
		if strings.ContainsAny(name, ":-=?") {
			hint = "for a default write ${NAME:-default}"
		}
		return "", &envProblem{
			msg:      fmt.Sprintf("invalid environment variable reference %q", ref),
			expected: envExpected,
			hint:     hint,
		}
	}
	if hasDef && strings.Contains(def, "${") {
		return "", &envProblem{
			msg:      fmt.Sprintf("nested reference in the default of ${%s}", name),
			expected: "a literal default",
			hint:     fmt.Sprintf("defaults are taken literally; set %s instead, or write $${ for a literal ${", name),
		}
	}
	val, ok := lookup(name)
	if hasDef {
		if !ok || val == "" {
			return def, nil
		}
		return val, nil
	}
	if !ok {
		return "", &envProblem{
			msg:      fmt.Sprintf("environment variable %s is not set", name),
			expected: "a variable set in weir's environment",
			hint:     fmt.Sprintf("set it or write ${%s:-default}", name),
		}
	}
	return val, nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// mapSpans maps the positions of the original string's bytes (raw, one per
// byte plus one past the end) to positions of the expanded string's bytes.
func mapSpans(raw []lc, spans []envSpan, outLen int) []lc {
	at := make([]lc, outLen+1)
	for _, sp := range spans {
		for k := 0; k < sp.n; k++ {
			src := sp.in
			if !sp.subst {
				src += k
			}
			at[sp.out+k] = raw[min(src, len(raw)-1)]
		}
	}
	at[outLen] = raw[len(raw)-1]
	return at
}
