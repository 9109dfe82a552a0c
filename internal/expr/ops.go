package expr

import (
	"bytes"
	"fmt"
	"math"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// maxJSONDepth bounds recursion when comparing nested values.
const maxJSONDepth = 1000

// truth is the condition semantics of &&, ||, ! and ?:: a Bool is itself,
// Missing and Null are false, and anything else is an error (ok false).
func truth(v jsondoc.Value) (b, ok bool) {
	switch v.Kind {
	case jsondoc.Bool:
		return v.B, true
	case jsondoc.Missing, jsondoc.Null:
		return false, true
	}
	return false, false
}

func absent(v jsondoc.Value) bool { return v.Kind <= jsondoc.Null }

// equal compares by value: numbers across Int and Float, strings bytewise,
// arrays and objects structurally, Missing and Null equal to each other;
// different kinds are unequal. ok is false if a raw value is malformed.
func equal(a, b jsondoc.Value, buf *[]byte) (eq, ok bool) {
	return equalDepth(a, b, buf, 0)
}

// equalIn is equal for evaluation: the scratch space it needs only to
// compare arrays and objects is fetched only then.
func equalIn(env Env, a, b jsondoc.Value) (eq, ok bool) {
	if a.Kind == b.Kind && a.Kind >= jsondoc.Object {
		return equal(a, b, scratchOf(env))
	}
	return equal(a, b, nil)
}

func equalDepth(a, b jsondoc.Value, buf *[]byte, depth int) (eq, ok bool) {
	if a.Kind != b.Kind {
		switch {
		case absent(a) && absent(b):
			return true, true
		case a.Kind == jsondoc.Int && b.Kind == jsondoc.Float:
			return cmpIntFloat(a.I, b.F) == 0, true
		case a.Kind == jsondoc.Float && b.Kind == jsondoc.Int:
			return cmpIntFloat(b.I, a.F) == 0, true
		}
		return false, true
	}
	switch a.Kind {
	case jsondoc.Bool:
		return a.B == b.B, true
	case jsondoc.Int:
		return a.I == b.I, true
	case jsondoc.Float:
		return a.F == b.F, true
	case jsondoc.String:
		return bytes.Equal(a.S, b.S), true
	case jsondoc.Array:
		if bytes.Equal(a.S, b.S) {
			return true, true
		}
		if depth >= maxJSONDepth {
			return false, false
		}
		ia, ib := jsondoc.NewIter(a), jsondoc.NewIter(b)
		for {
			_, va, oka := ia.Next(buf)
			_, vb, okb := ib.Next(buf)
			if !oka || !okb {
				if ia.Err() != nil || ib.Err() != nil {
					return false, false
				}
				return oka == okb, true
			}
			if eq, ok := equalDepth(va, vb, buf, depth+1); !ok || !eq {
				return false, ok
			}
		}
	case jsondoc.Object:
		if bytes.Equal(a.S, b.S) {
			return true, true
		}
		if depth >= maxJSONDepth {
			return false, false
		}
		na, err1 := jsondoc.Len(a)
		nb, err2 := jsondoc.Len(b)
		if err1 != nil || err2 != nil {
			return false, false
		}
		if na != nb {
			return false, true
		}
		ia := jsondoc.NewIter(a)
		for {
			key, va, more := ia.Next(buf)
			if !more {
				return true, ia.Err() == nil
			}
			vb, err := jsondoc.Member(b, key, buf)
			if err != nil {
				return false, false
			}
			if vb.Kind == jsondoc.Missing {
				return false, true
			}
			if eq, ok := equalDepth(va, vb, buf, depth+1); !ok || !eq {
				return false, ok
			}
		}
	}
	return true, true // Missing, Null
}

// cmpIntFloat compares an int with a finite float exactly.
func cmpIntFloat(i int64, f float64) int {
	const two63 = 9223372036854775808.0
	if f >= two63 {
		return -1
	}
	if f < -two63 {
		return 1
	}
	t := math.Trunc(f)
	ti := int64(t)
	switch {
	case i < ti:
		return -1
	case i > ti:
		return 1
	case f > t:
		return -1
	case f < t:
		return 1
	}
	return 0
}

type cmpStatus uint8

const (
	cmpOK       cmpStatus = iota
	cmpAbsent             // a side is Missing or Null: the comparison is false
	cmpMismatch           // not two numbers or two strings: an error
)

// compare orders two numbers or two strings.
func compare(a, b jsondoc.Value) (int, cmpStatus) {
	if absent(a) || absent(b) {
		return 0, cmpAbsent
	}
	switch a.Kind {
	case jsondoc.Int:
		switch b.Kind {
		case jsondoc.Int:
			return cmpInt(a.I, b.I), cmpOK
		case jsondoc.Float:
			return cmpIntFloat(a.I, b.F), cmpOK
		}
	case jsondoc.Float:
		switch b.Kind {
		case jsondoc.Int:
			return -cmpIntFloat(b.I, a.F), cmpOK
		case jsondoc.Float:
			switch {
			case a.F < b.F:
				return -1, cmpOK
			case a.F > b.F:
				return 1, cmpOK
			}
			return 0, cmpOK
		}
	case jsondoc.String:
		if b.Kind == jsondoc.String {
			return bytes.Compare(a.S, b.S), cmpOK
		}
	}
	return 0, cmpMismatch
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// orderHolds applies an ordering operator to the result of compare.
func orderHolds(op tokKind, c int) bool {
	switch op {
	case tLt:
		return c < 0
	case tLe:
		return c <= 0
	case tGt:
		return c > 0
	}
	return c >= 0
}

type arithStatus uint8

const (
	arithOK arithStatus = iota
	arithBadOperand
	arithDivZero
	arithNotFinite
)

// arith applies + - * / % to two numbers, setting out's Kind and I or F.
// Int op Int is Int (wrapping on overflow, / truncating toward zero);
// otherwise the result is Float. It writes through out, field by field,
// because returning a Value costs a copy through memory.
func arith(op tokKind, a, b jsondoc.Value, out *jsondoc.Value) arithStatus {
	if a.Kind == jsondoc.Int && b.Kind == jsondoc.Int {
		x, y := a.I, b.I
		out.Kind = jsondoc.Int
		switch op {
		case tPlus:
			out.I = x + y
		case tMinus:
			out.I = x - y
		case tStar:
			out.I = x * y
		default:
			if y == 0 {
				return arithDivZero
			}
			if op == tSlash {
				out.I = x / y
			} else {
				out.I = x % y
			}
		}
		return arithOK
	}
	x, ok1 := toFloat(a)
	y, ok2 := toFloat(b)
	if !ok1 || !ok2 {
		return arithBadOperand
	}
	var r float64
	switch op {
	case tPlus:
		r = x + y
	case tMinus:
		r = x - y
	case tStar:
		r = x * y
	case tSlash:
		if y == 0 {
			return arithDivZero
		}
		r = x / y
	default:
		if y == 0 {
			return arithDivZero
		}
		r = math.Mod(x, y)
	}
	if !finite(r) {
		return arithNotFinite
	}
	out.Kind, out.F = jsondoc.Float, r
	return arithOK
}

func toFloat(v jsondoc.Value) (float64, bool) {
	switch v.Kind {
	case jsondoc.Int:
		return float64(v.I), true
	case jsondoc.Float:
		return v.F, true
	}
	return 0, false
}

func finite(f float64) bool { return !math.IsInf(f, 0) && !math.IsNaN(f) }

// Runtime errors. They allocate, which is fine: they are off the success
// path.

func evalErrorf(pos int, format string, args ...any) error {
	return &EvalError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

func malformed(pos int) error {
	return &EvalError{Pos: pos, Msg: "malformed JSON value"}
}

func arithError(pos int, op tokKind, st arithStatus, a, b jsondoc.Value) error {
	switch st {
	case arithDivZero:
		if op == tPercent {
			return evalErrorf(pos, "modulo by zero")
		}
		return evalErrorf(pos, "division by zero")
	case arithNotFinite:
		return evalErrorf(pos, "result of %s is not a finite number", op)
	}
	if op == tPlus {
		return evalErrorf(pos, "+ wants two numbers or two strings, got %s and %s", a.Kind, b.Kind)
	}
	return evalErrorf(pos, "%s wants numbers, got %s and %s", op, a.Kind, b.Kind)
}
