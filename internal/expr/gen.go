package expr

import (
	"bytes"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// A program compiles to a tree of closures: each evaluates one node,
// calling its children's closures. Closures capture only data fixed at
// compile time, so a program has no mutable state.
type evalFn func(env Env) (jsondoc.Value, error)

var (
	valFalse = jsondoc.BoolValue(false)
	valTrue  = jsondoc.BoolValue(true)
)

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

func gen(n *node) evalFn {
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
		return genUnary(n)
	case nBinary:
		return genBinary(n)
	case nIn:
		return genIn(n)
	case nTernary:
		return genTernary(n)
	case nCall:
		return n.fn.gen(n, genAll(n.kids))
	}
	panic("expr: unknown node kind")
}

func genAll(ns []*node) []evalFn {
	fns := make([]evalFn, len(ns))
	for i, k := range ns {
		fns[i] = gen(k)
	}
	return fns
}

func genMember(n *node) evalFn {
	x := gen(n.kids[0])
	name := []byte(n.name)
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := x(env)
		if err != nil || v.Kind != jsondoc.Object {
			return jsondoc.Value{}, err
		}
		m, ok := member(v, name, scratchOf(env))
		if !ok {
			return jsondoc.Value{}, malformed(pos)
		}
		return m, nil
	}
}

func genIndex(n *node) evalFn {
	x, ix := gen(n.kids[0]), gen(n.kids[1])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := x(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		i, err := ix(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		var r jsondoc.Value
		ok := true
		switch i.Kind {
		case jsondoc.Missing, jsondoc.Null:
		case jsondoc.Int:
			if v.Kind == jsondoc.Array && i.I >= 0 {
				r, ok = element(v, i.I, scratchOf(env))
			}
		case jsondoc.String:
			if v.Kind == jsondoc.Object {
				r, ok = member(v, i.S, scratchOf(env))
			}
		default:
			return jsondoc.Value{}, evalErrorf(pos, "index must be an int or a string, got %s", i.Kind)
		}
		if !ok {
			return jsondoc.Value{}, malformed(pos)
		}
		return r, nil
	}
}

// genArray compiles an array literal with computed elements to JSON text in
// scratch space.
func genArray(n *node) evalFn {
	elems := genAll(n.kids)
	return func(env Env) (jsondoc.Value, error) {
		// Evaluate every element before encoding: evaluating one may append
		// to scratch, which would interleave with the encoding.
		var arr [8]jsondoc.Value
		vals := arr[:0]
		for _, e := range elems {
			v, err := e(env)
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
			b = appendJSON(b, v)
		}
		*buf = append(b, ']')
		return jsondoc.RawValue(jsondoc.Array, tail(buf, start)), nil
	}
}

func genUnary(n *node) evalFn {
	x := gen(n.kids[0])
	pos := n.opPos
	if n.op == tBang {
		return func(env Env) (jsondoc.Value, error) {
			v, err := x(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			b, ok := truth(v)
			if !ok {
				return jsondoc.Value{}, evalErrorf(pos, "! wants a bool, got %s", v.Kind)
			}
			return jsondoc.BoolValue(!b), nil
		}
	}
	return func(env Env) (jsondoc.Value, error) {
		v, err := x(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		switch v.Kind {
		case jsondoc.Int:
			return jsondoc.IntValue(-v.I), nil
		case jsondoc.Float:
			return jsondoc.FloatValue(-v.F), nil
		}
		return jsondoc.Value{}, evalErrorf(pos, "- wants a number, got %s", v.Kind)
	}
}

func genBinary(n *node) evalFn {
	a, b := n.kids[0], n.kids[1]
	switch n.op {
	case tAnd, tOr:
		return genLogic(n)
	case tCoalesce:
		l, r := gen(a), gen(b)
		return func(env Env) (jsondoc.Value, error) {
			v, err := l(env)
			if err != nil || !absent(v) {
				return v, err
			}
			return r(env)
		}
	case tEq, tNe:
		return genEqual(n)
	case tLt, tLe, tGt, tGe:
		return genOrder(n)
	case tPlus:
		return genAdd(n)
	}
	l := gen(a)
	op, pos := n.op, n.opPos
	if b.kind == nConst {
		// The common `price * 1.2`: skip a call for the constant.
		y := b.val
		return func(env Env) (jsondoc.Value, error) {
			x, err := l(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			v, st := arith(op, x, y)
			if st != arithOK {
				return jsondoc.Value{}, arithError(pos, op, st, x, y)
			}
			return v, nil
		}
	}
	r := gen(b)
	return func(env Env) (jsondoc.Value, error) {
		x, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		y, err := r(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		v, st := arith(op, x, y)
		if st != arithOK {
			return jsondoc.Value{}, arithError(pos, op, st, x, y)
		}
		return v, nil
	}
}

func genLogic(n *node) evalFn {
	l, r := gen(n.kids[0]), gen(n.kids[1])
	op, pos := n.op, n.opPos
	// For &&, a false left side decides; for ||, a true one.
	decide := op == tOr
	return func(env Env) (jsondoc.Value, error) {
		v, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		t, ok := truth(v)
		if !ok {
			return jsondoc.Value{}, evalErrorf(pos, "%s wants bools, left side is %s", op, v.Kind)
		}
		if t == decide {
			return jsondoc.BoolValue(t), nil
		}
		if v, err = r(env); err != nil {
			return jsondoc.Value{}, err
		}
		if t, ok = truth(v); !ok {
			return jsondoc.Value{}, evalErrorf(pos, "%s wants bools, right side is %s", op, v.Kind)
		}
		return jsondoc.BoolValue(t), nil
	}
}

func genEqual(n *node) evalFn {
	a, b := n.kids[0], n.kids[1]
	if a.kind == nConst && b.kind != nConst {
		a, b = b, a // == is symmetric; put the constant on the right
	}
	neg := n.op == tNe
	pos := n.opPos
	l := gen(a)
	if b.kind == nConst {
		c := b.val
		switch c.Kind {
		case jsondoc.String:
			s := c.S
			return func(env Env) (jsondoc.Value, error) {
				v, err := l(env)
				if err != nil {
					return jsondoc.Value{}, err
				}
				eq := v.Kind == jsondoc.String && bytes.Equal(v.S, s)
				return jsondoc.BoolValue(eq != neg), nil
			}
		case jsondoc.Missing, jsondoc.Null:
			return func(env Env) (jsondoc.Value, error) {
				v, err := l(env)
				if err != nil {
					return jsondoc.Value{}, err
				}
				return jsondoc.BoolValue(absent(v) != neg), nil
			}
		}
	}
	r := gen(b)
	return func(env Env) (jsondoc.Value, error) {
		x, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		y, err := r(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		eq, ok := equal(x, y, scratchOf(env))
		if !ok {
			return jsondoc.Value{}, malformed(pos)
		}
		return jsondoc.BoolValue(eq != neg), nil
	}
}

func genOrder(n *node) evalFn {
	l := gen(n.kids[0])
	op, pos := n.op, n.opPos
	if b := n.kids[1]; b.kind == nConst {
		// The common `price > 10`: skip a call for the constant.
		y := b.val
		return func(env Env) (jsondoc.Value, error) {
			x, err := l(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			c, st := compare(x, y)
			switch st {
			case cmpAbsent:
				return valFalse, nil
			case cmpMismatch:
				return jsondoc.Value{}, orderError(pos, op, x, y)
			}
			return jsondoc.BoolValue(orderHolds(op, c)), nil
		}
	}
	r := gen(n.kids[1])
	return func(env Env) (jsondoc.Value, error) {
		x, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		y, err := r(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		c, st := compare(x, y)
		switch st {
		case cmpAbsent:
			return valFalse, nil
		case cmpMismatch:
			return jsondoc.Value{}, orderError(pos, op, x, y)
		}
		return jsondoc.BoolValue(orderHolds(op, c)), nil
	}
}

func orderError(pos int, op tokKind, x, y jsondoc.Value) error {
	return evalErrorf(pos, "%s compares two numbers or two strings, got %s and %s", op, x.Kind, y.Kind)
}

func genAdd(n *node) evalFn {
	l, r := gen(n.kids[0]), gen(n.kids[1])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		x, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		y, err := r(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		if x.Kind == jsondoc.String && y.Kind == jsondoc.String {
			return jsondoc.StringValue(concat2(scratchOf(env), x.S, y.S)), nil
		}
		v, st := arith(tPlus, x, y)
		if st != arithOK {
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
	cond, yes, no := gen(n.kids[0]), gen(n.kids[1]), gen(n.kids[2])
	pos := n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := cond(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		t, ok := truth(v)
		if !ok {
			return jsondoc.Value{}, evalErrorf(pos, "the condition of ?: must be a bool, got %s", v.Kind)
		}
		if t {
			return yes(env)
		}
		return no(env)
	}
}

func genIn(n *node) evalFn {
	a, b := n.kids[0], n.kids[1]
	l := gen(a)
	neg := n.neg
	pos := n.opPos
	if b.kind == nConst && b.val.Kind == jsondoc.Array {
		set := newConstSet(b.val)
		return func(env Env) (jsondoc.Value, error) {
			v, err := l(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			found, ok := set.has(v, env)
			if !ok {
				return jsondoc.Value{}, malformed(pos)
			}
			return jsondoc.BoolValue(found != neg), nil
		}
	}
	if b.kind == nArray {
		elems := genAll(b.kids)
		return func(env Env) (jsondoc.Value, error) {
			v, err := l(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			for _, e := range elems {
				x, err := e(env)
				if err != nil {
					return jsondoc.Value{}, err
				}
				eq, ok := equal(v, x, scratchOf(env))
				if !ok {
					return jsondoc.Value{}, malformed(pos)
				}
				if eq {
					return jsondoc.BoolValue(!neg), nil
				}
			}
			return jsondoc.BoolValue(neg), nil
		}
	}
	r := gen(b)
	return func(env Env) (jsondoc.Value, error) {
		v, err := l(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		c, err := r(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		found, err := contains(pos, v, c, env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		return jsondoc.BoolValue(found != neg), nil
	}
}

// contains is the membership test v in c.
func contains(pos int, v, c jsondoc.Value, env Env) (bool, error) {
	switch c.Kind {
	case jsondoc.Missing, jsondoc.Null:
		return false, nil
	case jsondoc.Array:
		buf := scratchOf(env)
		it := newListIter(c)
		for {
			_, raw, more := it.next()
			if !more {
				if it.bad {
					return false, malformed(pos)
				}
				return false, nil
			}
			x, ok := decodeSpan(raw, buf)
			if !ok {
				return false, malformed(pos)
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
			m, ok := member(c, v.S, scratchOf(env))
			if !ok {
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
	it := newListIter(arr)
	for {
		_, raw, more := it.next()
		if !more {
			break
		}
		v, _ := decodeSpan(raw, buf) // our own encoding: well-formed
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
		for _, e := range s.vals {
			if bytes.Equal(e.S, v.S) {
				return true, true
			}
		}
		return false, true
	}
	for _, e := range s.vals {
		eq, ok := equal(v, e, scratchOf(env))
		if !ok || eq {
			return eq, ok
		}
	}
	return false, true
}
