package expr

import (
	"bytes"
	"fmt"
	"math"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// A program compiles to a tree of closures: each evaluates one node,
// calling its children's closures. Closures capture only data fixed at
// compile time, so a program has no mutable state.
//
// The shape is driven by one cost: jsondoc.Value is too large for the
// compiler to keep in registers, so each function that receives a Value
// from a call and passes it on copies it through memory, which costs
// several nanoseconds (a store-forwarding stall). Hence:
//
//   - Conditions (&&, ||, !, comparisons, in, ?: in a condition) compile to
//     condFn, which returns a bool. EvalBool runs them directly; Eval wraps
//     them once.
//   - A parent reads a path or constant operand itself (the operand switch
//     below) instead of calling a child closure. The switch is written out
//     in each hot closure because a method holding it cannot be inlined.
//   - Program.Eval and EvalBool are single calls, inlined into the caller.
type (
	evalFn func(env Env) (jsondoc.Value, error)
	condFn func(env Env) (bool, error)
)

var (
	valFalse = jsondoc.BoolValue(false)
	valTrue  = jsondoc.BoolValue(true)
)

type operandKind uint8

const (
	opFn    operandKind = iota // fn computes the value
	opPath                     // env.Field(path)
	opConst                    // val
)

// operand is a child node as its parent reads it.
type operand struct {
	kind operandKind
	fn   evalFn
	path []jsondoc.Seg
	val  jsondoc.Value
}

func operandOf(n *node) operand {
	switch n.kind {
	case nPath:
		return operand{kind: opPath, path: n.path}
	case nConst:
		return operand{kind: opConst, val: n.val}
	}
	return operand{fn: gen(n)}
}

func operandsOf(ns []*node) []operand {
	ops := make([]operand, len(ns))
	for i, k := range ns {
		ops[i] = operandOf(k)
	}
	return ops
}

// eval reads the operand, for closures off the hot path.
func (a *operand) eval(env Env) (jsondoc.Value, error) {
	switch a.kind {
	case opPath:
		return env.Field(a.path)
	case opConst:
		return a.val, nil
	}
	return a.fn(env)
}

// scratchOf returns env's scratch buffer, tolerating an Env that breaks its
// contract by returning nil (at the price of an allocation).
func scratchOf(env Env) *[]byte {
	if p := env.Scratch(); p != nil {
		return p
	}
	return new([]byte)
}

// tail returns the bytes of *buf from start on, capped so that appending to
// the result cannot overwrite later scratch data.
func tail(buf *[]byte, start int) []byte {
	b := *buf
	return b[start:len(b):len(b)]
}

// isCond reports whether n always yields a Bool and compiles natively to a
// condFn.
func isCond(n *node) bool {
	switch n.kind {
	case nUnary:
		return n.op == tBang
	case nBinary:
		switch n.op {
		case tAnd, tOr, tEq, tNe, tLt, tLe, tGt, tGe:
			return true
		}
	case nIn:
		return true
	}
	return false
}

func gen(n *node) evalFn {
	if isCond(n) {
		return condValue(genCond(n, nil))
	}
	switch n.kind {
	case nConst:
		v := n.val
		return func(Env) (jsondoc.Value, error) { return v, nil }
	case nPath:
		path := n.path
		return func(env Env) (jsondoc.Value, error) { return env.Field(path) }
	case nMember:
		return genMember(n)
	case nIndex:
		return genIndex(n)
	case nArray:
		return genArray(n)
	case nUnary:
		return genNeg(n)
	case nBinary:
		switch n.op {
		case tCoalesce:
			return genCoalesceOp(n)
		case tPlus:
			return genAdd(n)
		}
		return genArith(n)
	case nTernary:
		return genTernary(n)
	case nCall:
		return n.fn.gen(n, operandsOf(n.kids))
	}
	panic("expr: unknown node kind")
}

// boolValue returns a preallocated Bool value: copying one costs less than
// building one.
func boolValue(b bool) jsondoc.Value {
	if b {
		return valTrue
	}
	return valFalse
}

// condValue turns a condition into a value.
func condValue(c condFn) evalFn {
	return func(env Env) (jsondoc.Value, error) {
		t, err := c(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		if t {
			return valTrue, nil
		}
		return valFalse, nil
	}
}

// notBoolError returns the error maker for a condition operand that is
// neither a Bool nor absent. format has one %s, for the kind.
func notBoolError(pos int, format string) func(jsondoc.Kind) error {
	return func(k jsondoc.Kind) error { return evalErrorf(pos, format, k) }
}

// genCond compiles n as a condition. A Bool is itself; Missing and Null
// are false; for other kinds, notBool makes the error. Nodes for which
// isCond holds never call notBool.
func genCond(n *node, notBool func(jsondoc.Kind) error) condFn {
	switch n.kind {
	case nUnary:
		if n.op == tBang {
			x := genCond(n.kids[0], notBoolError(n.opPos, "! wants a bool, got %s"))
			return func(env Env) (bool, error) {
				t, err := x(env)
				return !t && err == nil, err
			}
		}
	case nBinary:
		switch n.op {
		case tAnd, tOr:
			return condLogic(n)
		case tEq, tNe:
			return condEqual(n)
		case tLt, tLe, tGt, tGe:
			return condOrder(n)
		}
	case nIn:
		return condIn(n)
	case nTernary:
		c := genCond(n.kids[0], notBoolError(n.opPos, "the condition of ?: must be a bool, got %s"))
		yes, no := genCond(n.kids[1], notBool), genCond(n.kids[2], notBool)
		return func(env Env) (bool, error) {
			t, err := c(env)
			if err != nil {
				return false, err
			}
			if t {
				return yes(env)
			}
			return no(env)
		}
	case nConst:
		t, ok := truth(n.val)
		var err error
		if !ok {
			err = notBool(n.val.Kind)
		}
		return func(Env) (bool, error) { return t, err }
	}
	return condOfOperand(operandOf(n), notBool)
}

// condOfOperand reads a as a condition.
func condOfOperand(a operand, notBool func(jsondoc.Kind) error) condFn {
	return func(env Env) (bool, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return false, err
		}
		switch x.Kind {
		case jsondoc.Bool:
			return x.B, nil
		case jsondoc.Missing, jsondoc.Null:
			return false, nil
		}
		return false, notBool(x.Kind)
	}
}

func condLogic(n *node) condFn {
	format := "&& wants bools, %s side is %%s"
	if n.op == tOr {
		format = "|| wants bools, %s side is %%s"
	}
	l := genCond(n.kids[0], notBoolError(n.opPos, fmt.Sprintf(format, "left")))
	r := genCond(n.kids[1], notBoolError(n.opPos, fmt.Sprintf(format, "right")))
	// For &&, a false left side decides; for ||, a true one.
	decide := n.op == tOr
	return func(env Env) (bool, error) {
		t, err := l(env)
		if err != nil || t == decide {
			return t, err
		}
		return r(env)
	}
}

func condEqual(n *node) condFn {
	a, b := operandOf(n.kids[0]), operandOf(n.kids[1])
	if a.kind == opConst && b.kind != opConst {
		a, b = b, a // == is symmetric; put the constant on the right
	}
	neg := n.op == tNe
	pos := n.opPos
	if b.kind == opConst {
		switch c := b.val; c.Kind {
		case jsondoc.String:
			s := c.S
			return func(env Env) (bool, error) {
				x, err := a.val, error(nil)
				switch a.kind {
				case opPath:
					x, err = env.Field(a.path)
				case opFn:
					x, err = a.fn(env)
				}
				if err != nil {
					return false, err
				}
				return (x.Kind == jsondoc.String && bytes.Equal(x.S, s)) != neg, nil
			}
		case jsondoc.Missing, jsondoc.Null:
			return func(env Env) (bool, error) {
				x, err := a.val, error(nil)
				switch a.kind {
				case opPath:
					x, err = env.Field(a.path)
				case opFn:
					x, err = a.fn(env)
				}
				if err != nil {
					return false, err
				}
				return absent(x) != neg, nil
			}
		}
	}
	return func(env Env) (bool, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return false, err
		}
		y := b.val
		switch b.kind {
		case opPath:
			y, err = env.Field(b.path)
		case opFn:
			y, err = b.fn(env)
		}
		if err != nil {
			return false, err
		}
		eq, ok := equalIn(env, x, y)
		if !ok {
			return false, malformed(pos)
		}
		return eq != neg, nil
	}
}

func condOrder(n *node) condFn {
	a, b := operandOf(n.kids[0]), operandOf(n.kids[1])
	op, pos := n.op, n.opPos
	return func(env Env) (bool, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return false, err
		}
		y := b.val
		switch b.kind {
		case opPath:
			y, err = env.Field(b.path)
		case opFn:
			y, err = b.fn(env)
		}
		if err != nil {
			return false, err
		}
		c, st := compare(x, y)
		switch st {
		case cmpAbsent:
			return false, nil
		case cmpMismatch:
			return false, evalErrorf(pos, "%s compares two numbers or two strings, got %s and %s", op, x.Kind, y.Kind)
		}
		return orderHolds(op, c), nil
	}
}

func condIn(n *node) condFn {
	a := operandOf(n.kids[0])
	right := n.kids[1]
	neg := n.neg
	pos := n.opPos
	if right.kind == nConst && right.val.Kind == jsondoc.Array {
		set := newConstSet(right.val)
		return func(env Env) (bool, error) {
			x, err := a.val, error(nil)
			switch a.kind {
			case opPath:
				x, err = env.Field(a.path)
			case opFn:
				x, err = a.fn(env)
			}
			if err != nil {
				return false, err
			}
			found, ok := set.has(x, env)
			if !ok {
				return false, malformed(pos)
			}
			return found != neg, nil
		}
	}
	if right.kind == nArray {
		// A literal with computed elements: compare one by one, stopping at
		// the first match.
		elems := operandsOf(right.kids)
		return func(env Env) (bool, error) {
			x, err := a.eval(env)
			if err != nil {
				return false, err
			}
			for i := range elems {
				y, err := elems[i].eval(env)
				if err != nil {
					return false, err
				}
				eq, ok := equalIn(env, x, y)
				if !ok {
					return false, malformed(pos)
				}
				if eq {
					return !neg, nil
				}
			}
			return neg, nil
		}
	}
	b := operandOf(right)
	return func(env Env) (bool, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return false, err
		}
		y := b.val
		switch b.kind {
		case opPath:
			y, err = env.Field(b.path)
		case opFn:
			y, err = b.fn(env)
		}
		if err != nil {
			return false, err
		}
		found, err := contains(pos, x, y, env)
		if err != nil {
			return false, err
		}
		return found != neg, nil
	}
}

func genMember(n *node) evalFn {
	t := operandOf(n.kids[0])
	name := []byte(n.name)
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := t.eval(env)
		if err != nil || v.Kind != jsondoc.Object {
			return jsondoc.Value{}, err
		}
		m, err := jsondoc.Member(v, name, scratchOf(env))
		if err != nil {
			return jsondoc.Value{}, malformed(pos)
		}
		return m, nil
	}
}

func genIndex(n *node) evalFn {
	t, ix := operandOf(n.kids[0]), operandOf(n.kids[1])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := t.val, error(nil)
		switch t.kind {
		case opPath:
			v, err = env.Field(t.path)
		case opFn:
			v, err = t.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		i := ix.val
		switch ix.kind {
		case opPath:
			i, err = env.Field(ix.path)
		case opFn:
			i, err = ix.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		var r jsondoc.Value
		switch i.Kind {
		case jsondoc.Missing, jsondoc.Null:
		case jsondoc.Int:
			if v.Kind == jsondoc.Array && i.I >= 0 {
				// An index beyond int still walks the array, to report
				// malformed text.
				r, err = jsondoc.Element(v, int(min(i.I, math.MaxInt)), scratchOf(env))
			}
		case jsondoc.String:
			if v.Kind == jsondoc.Object {
				r, err = jsondoc.Member(v, i.S, scratchOf(env))
			}
		default:
			return jsondoc.Value{}, evalErrorf(pos, "index must be an int or a string, got %s", i.Kind)
		}
		if err != nil {
			return jsondoc.Value{}, malformed(pos)
		}
		return r, nil
	}
}

// genArray compiles an array literal with computed elements to JSON text in
// scratch space.
func genArray(n *node) evalFn {
	elems := operandsOf(n.kids)
	return func(env Env) (jsondoc.Value, error) {
		// Evaluate every element before encoding: evaluating one may append
		// to scratch, which would interleave with the encoding.
		var arr [8]jsondoc.Value
		vals := arr[:0]
		for i := range elems {
			v, err := elems[i].eval(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			vals = append(vals, v)
		}
		buf := scratchOf(env)
		start := len(*buf)
		b := append(*buf, '[')
		for i, v := range vals {
			if i > 0 {
				b = append(b, ',')
			}
			b = jsondoc.AppendValue(b, v)
		}
		*buf = append(b, ']')
		return jsondoc.RawValue(jsondoc.Array, tail(buf, start)), nil
	}
}

// genNeg compiles unary minus.
func genNeg(n *node) evalFn {
	a := operandOf(n.kids[0])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		switch x.Kind {
		case jsondoc.Int:
			return jsondoc.IntValue(-x.I), nil
		case jsondoc.Float:
			return jsondoc.FloatValue(-x.F), nil
		}
		return jsondoc.Value{}, evalErrorf(pos, "- wants a number, got %s", x.Kind)
	}
}

func genCoalesceOp(n *node) evalFn {
	a, b := operandOf(n.kids[0]), operandOf(n.kids[1])
	return func(env Env) (jsondoc.Value, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil || !absent(x) {
			return x, err
		}
		return b.eval(env)
	}
}

// genArith compiles - * / %.
func genArith(n *node) evalFn {
	a, b := operandOf(n.kids[0]), operandOf(n.kids[1])
	op, pos := n.op, n.opPos
	return func(env Env) (jsondoc.Value, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		y := b.val
		switch b.kind {
		case opPath:
			y, err = env.Field(b.path)
		case opFn:
			y, err = b.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		var v jsondoc.Value
		if st := arith(op, x, y, &v); st != arithOK {
			return jsondoc.Value{}, arithError(pos, op, st, x, y)
		}
		return v, nil
	}
}

// genAdd compiles +, which also concatenates strings.
func genAdd(n *node) evalFn {
	a, b := operandOf(n.kids[0]), operandOf(n.kids[1])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		x, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			x, err = env.Field(a.path)
		case opFn:
			x, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		y := b.val
		switch b.kind {
		case opPath:
			y, err = env.Field(b.path)
		case opFn:
			y, err = b.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		if x.Kind == jsondoc.String && y.Kind == jsondoc.String {
			return jsondoc.StringValue(concat2(scratchOf(env), x.S, y.S)), nil
		}
		var v jsondoc.Value
		if st := arith(tPlus, x, y, &v); st != arithOK {
			return jsondoc.Value{}, arithError(pos, tPlus, st, x, y)
		}
		return v, nil
	}
}

// concat2 returns a+b, built in buf unless one side is empty. When a is
// the most recent scratch result (as in a chain a + b + c), b is appended in
// place instead of copying a again.
func concat2(buf *[]byte, a, b []byte) []byte {
	switch {
	case len(b) == 0:
		return a
	case len(a) == 0:
		return b
	}
	s := *buf
	start := len(s)
	if len(s) >= len(a) && &s[len(s)-1] == &a[len(a)-1] {
		start -= len(a)
	} else {
		s = append(s, a...)
	}
	*buf = append(s, b...)
	return tail(buf, start)
}

func genTernary(n *node) evalFn {
	c := genCond(n.kids[0], notBoolError(n.opPos, "the condition of ?: must be a bool, got %s"))
	yes, no := operandOf(n.kids[1]), operandOf(n.kids[2])
	return func(env Env) (jsondoc.Value, error) {
		t, err := c(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		b := &no
		if t {
			b = &yes
		}
		switch b.kind {
		case opPath:
			return env.Field(b.path)
		case opConst:
			return b.val, nil
		}
		return b.fn(env)
	}
}

// contains is the membership test v in c.
func contains(pos int, v, c jsondoc.Value, env Env) (bool, error) {
	switch c.Kind {
	case jsondoc.Missing, jsondoc.Null:
		return false, nil
	case jsondoc.Array:
		buf := scratchOf(env)
		it := jsondoc.NewIter(c)
		for {
			_, x, more := it.Next(buf)
			if !more {
				if it.Err() != nil {
					return false, malformed(pos)
				}
				return false, nil
			}
			eq, ok := equal(v, x, buf)
			if !ok {
				return false, malformed(pos)
			}
			if eq {
				return true, nil
			}
		}
	case jsondoc.Object:
		switch v.Kind {
		case jsondoc.Missing, jsondoc.Null:
			return false, nil
		case jsondoc.String:
			m, err := jsondoc.Member(c, v.S, scratchOf(env))
			if err != nil {
				return false, malformed(pos)
			}
			return m.Kind != jsondoc.Missing, nil
		}
		return false, evalErrorf(pos, "in on an object wants a string key, got %s", v.Kind)
	case jsondoc.String:
		switch v.Kind {
		case jsondoc.Missing, jsondoc.Null:
			return false, nil
		case jsondoc.String:
			return bytes.Contains(c.S, v.S), nil
		}
		return false, evalErrorf(pos, "in on a string wants a string on the left, got %s", v.Kind)
	}
	return false, evalErrorf(pos, "in wants an array, an object or a string on the right, got %s", c.Kind)
}

// constSet is a constant array on the right of in, decoded at compile time.
type constSet struct {
	vals []jsondoc.Value
	// When every element is a string: a linear scan for a few, a map for
	// many.
	allStrings bool
	strs       map[string]struct{}
}

const constSetMapMin = 12

func newConstSet(arr jsondoc.Value) *constSet {
	s := &constSet{allStrings: true}
	buf := new([]byte)
	it := jsondoc.NewIter(arr) // our own encoding: well-formed
	for {
		_, v, more := it.Next(buf)
		if !more {
			break
		}
		s.vals = append(s.vals, v)
		if v.Kind != jsondoc.String {
			s.allStrings = false
		}
	}
	if s.allStrings && len(s.vals) >= constSetMapMin {
		s.strs = make(map[string]struct{}, len(s.vals))
		for _, v := range s.vals {
			s.strs[string(v.S)] = struct{}{}
		}
	}
	return s
}

func (s *constSet) has(v jsondoc.Value, env Env) (found, ok bool) {
	if s.allStrings {
		if v.Kind != jsondoc.String {
			return false, true
		}
		if s.strs != nil {
			_, found = s.strs[string(v.S)]
			return found, true
		}
		for i := range s.vals {
			if bytes.Equal(s.vals[i].S, v.S) {
				return true, true
			}
		}
		return false, true
	}
	for i := range s.vals {
		eq, ok := equalIn(env, v, s.vals[i])
		if !ok || eq {
			return eq, ok
		}
	}
	return false, true
}
