package expr

import (
	"errors"
	"fmt"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// maxCheckDepth bounds the depth of the syntax tree. Chains such as
// a+a+a+... are parsed by loops, not recursion, so the parser's limit alone
// does not bound it.
const maxCheckDepth = 1000

// checker infers the kinds each node may produce, rejects operations that
// can never succeed, merges constant-step member and index chains into
// static paths, and folds constant subexpressions.
type checker struct {
	// buf backs the strings and arrays of folded constants. It is only
	// appended to, so earlier constants stay valid.
	buf   *[]byte
	depth int
}

func (c *checker) check(n *node) (*node, *Error) {
	c.depth++
	defer func() { c.depth-- }()
	if c.depth > maxCheckDepth {
		return nil, &Error{Pos: n.pos, Msg: "expression is too complex", Hint: fmt.Sprintf("the limit is %d nested operations", maxCheckDepth)}
	}
	for i, k := range n.kids {
		k, err := c.check(k)
		if err != nil {
			return nil, err
		}
		n.kids[i] = k
	}
	switch n.kind {
	case nConst:
		if n.bigInt {
			return nil, &Error{Pos: n.pos, Msg: "integer 9223372036854775808 is out of range", Hint: "integers are 64-bit; write a float such as 9.3e18"}
		}
		n.set = kindSet(n.val.Kind)
		return n, nil
	case nPath:
		n.set = kAll
		return n, nil
	case nMember:
		if t := n.kids[0]; t.kind == nPath {
			return extendPath(t, jsondoc.Key(n.name)), nil
		}
		n.set = kAll
	case nIndex:
		return c.checkIndex(n)
	case nArray:
		n.set = kArray
	case nUnary:
		return c.checkUnary(n)
	case nBinary:
		return c.checkBinary(n)
	case nIn:
		return c.checkIn(n)
	case nTernary:
		return c.checkTernary(n)
	case nCall:
		return c.checkCall(n)
	}
	return c.foldIfConst(n)
}

// present is the kinds s may produce when its inputs are present: Missing
// and Null are left out unless nothing else is possible. Static checks use
// it, so that len(x), which yields an int when x is there, is rejected by !
// even though it also passes Missing through.
func present(s kset) kset {
	if p := s &^ kAbsent; p != 0 {
		return p
	}
	return s
}

func extendPath(t *node, s jsondoc.Seg) *node {
	path := make([]jsondoc.Seg, len(t.path), len(t.path)+1)
	copy(path, t.path)
	return &node{kind: nPath, pos: t.pos, opPos: t.opPos, path: append(path, s), set: kAll}
}

func (c *checker) checkIndex(n *node) (*node, *Error) {
	t, ix := n.kids[0], n.kids[1]
	if present(ix.set)&(kInt|kString|kAbsent) == 0 {
		return nil, &Error{Pos: ix.pos, Msg: fmt.Sprintf("an index must be an int or a string, this is %s", ix.set)}
	}
	if ix.kind == nConst {
		switch v := ix.val; v.Kind {
		case jsondoc.Int:
			if v.I < 0 {
				return nil, &Error{Pos: ix.pos, Msg: fmt.Sprintf("negative index %d", v.I), Hint: "indexes count from 0"}
			}
			if t.kind == nPath {
				return extendPath(t, jsondoc.Index(int(v.I))), nil
			}
		case jsondoc.String:
			if t.kind == nPath {
				return extendPath(t, jsondoc.Key(string(v.S))), nil
			}
		}
	}
	n.set = kAll
	return c.foldIfConst(n)
}

func (c *checker) checkUnary(n *node) (*node, *Error) {
	x := n.kids[0]
	if n.op == tBang {
		if present(x.set)&(kBool|kAbsent) == 0 {
			return nil, &Error{Pos: x.pos, Msg: fmt.Sprintf("! wants a bool, this is %s", present(x.set))}
		}
		n.set = kBool
	} else {
		if present(x.set)&kNum == 0 {
			return nil, &Error{Pos: x.pos, Msg: fmt.Sprintf("- wants a number, this is %s", present(x.set))}
		}
		n.set = x.set & kNum
	}
	return c.foldIfConst(n)
}

func (c *checker) checkBinary(n *node) (*node, *Error) {
	a, b := n.kids[0], n.kids[1]
	switch n.op {
	case tAnd, tOr:
		for _, x := range n.kids {
			if present(x.set)&(kBool|kAbsent) == 0 {
				return nil, &Error{Pos: x.pos, Msg: fmt.Sprintf("%s wants bools, this is %s", n.op, present(x.set))}
			}
		}
		n.set = kBool
		// A constant left side that decides the result folds away the
		// right side: false && x, true || x.
		if a.kind == nConst {
			if t, _ := truth(a.val); t == (n.op == tOr) {
				return constNode(n, jsondoc.BoolValue(t)), nil
			}
		}
	case tCoalesce:
		n.set = a.set&^kAbsent | b.set
		if a.kind == nConst || a.set&kAbsent == 0 {
			if a.set&kAbsent == 0 {
				return a, nil
			}
			return b, nil
		}
	case tEq, tNe:
		n.set = kBool
	case tLt, tLe, tGt, tGe:
		pa, pb := present(a.set), present(b.set)
		ok := pa&kNum != 0 && pb&kNum != 0 ||
			pa&kString != 0 && pb&kString != 0 ||
			pa&^kAbsent == 0 || pb&^kAbsent == 0
		if !ok {
			return nil, operandError(n, kNum|kString, "compares two numbers or two strings")
		}
		n.set = kBool
	case tPlus:
		pa, pb := present(a.set), present(b.set)
		num := pa&kNum != 0 && pb&kNum != 0
		str := pa&kString != 0 && pb&kString != 0
		if !num && !str {
			return nil, operandError(n, kNum|kString, "wants two numbers or two strings")
		}
		if num {
			n.set |= numResult(a.set, b.set)
		}
		if str {
			n.set |= kString
		}
	default: // - * / %
		if present(a.set)&kNum == 0 || present(b.set)&kNum == 0 {
			return nil, operandError(n, kNum, "wants numbers")
		}
		n.set = numResult(a.set, b.set)
	}
	return c.foldIfConst(n)
}

// operandError reports a binary operator whose operands can never be of
// the kinds it wants. An operand that is wrong by itself is named alone:
// in price * "x" the fault is "x", not the kinds price might have. Only a
// mismatched pair, as in 1 + "a", names both.
func operandError(n *node, want kset, what string) *Error {
	a, b := n.kids[0], n.kids[1]
	pa, pb := present(a.set), present(b.set)
	switch {
	case pa&want == 0:
		return &Error{Pos: a.pos, Msg: fmt.Sprintf("%s %s, got %s", n.op, what, pa)}
	case pb&want == 0:
		return &Error{Pos: b.pos, Msg: fmt.Sprintf("%s %s, got %s", n.op, what, pb)}
	}
	return &Error{Pos: b.pos, Msg: fmt.Sprintf("%s %s, got %s and %s", n.op, what, pa, pb)}
}

// numResult is the kinds arithmetic on numbers of kinds a and b may yield.
func numResult(a, b kset) kset {
	var r kset
	if a&kInt != 0 && b&kInt != 0 {
		r |= kInt
	}
	if a&kFloat != 0 && b&kNum != 0 || b&kFloat != 0 && a&kNum != 0 {
		r |= kFloat
	}
	return r
}

func (c *checker) checkIn(n *node) (*node, *Error) {
	a, b := n.kids[0], n.kids[1]
	if present(b.set)&(kArray|kObject|kString|kAbsent) == 0 {
		return nil, &Error{Pos: b.pos, Msg: fmt.Sprintf("in wants an array, an object or a string on the right, this is %s", present(b.set))}
	}
	if present(b.set) == kString && present(a.set)&(kString|kAbsent) == 0 {
		return nil, &Error{Pos: a.pos, Msg: fmt.Sprintf("in on a string wants a string on the left, this is %s", present(a.set))}
	}
	n.set = kBool
	return c.foldIfConst(n)
}

func (c *checker) checkTernary(n *node) (*node, *Error) {
	cond, yes, no := n.kids[0], n.kids[1], n.kids[2]
	if present(cond.set)&(kBool|kAbsent) == 0 {
		return nil, &Error{Pos: cond.pos, Msg: fmt.Sprintf("the condition of ?: must be a bool, this is %s", present(cond.set))}
	}
	if cond.kind == nConst {
		if t, _ := truth(cond.val); t {
			return yes, nil
		}
		return no, nil
	}
	n.set = yes.set | no.set
	return n, nil
}

func (c *checker) checkCall(n *node) (*node, *Error) {
	b := lookupBuiltin(n.name)
	if b == nil {
		return nil, &Error{Pos: n.pos, Msg: fmt.Sprintf("unknown function %q", n.name), Hint: suggestFunc(n.name)}
	}
	n.fn = b
	if len(n.kids) < b.min || b.max >= 0 && len(n.kids) > b.max {
		return nil, &Error{Pos: n.pos, Msg: fmt.Sprintf("%s takes %s, got %d", b.name, b.arity(), len(n.kids)), Hint: "usage: " + b.usage}
	}
	var union kset
	for i, k := range n.kids {
		want := b.args[min(i, len(b.args)-1)]
		if b.absent {
			want |= kAbsent
		}
		if present(k.set)&want == 0 {
			return nil, &Error{Pos: k.pos, Msg: fmt.Sprintf("%s wants %s%s, this is %s", b.name, want&^kAbsent, argOrdinal(b, i), present(k.set)), Hint: "usage: " + b.usage}
		}
		union |= k.set
	}
	if b.check != nil {
		if err := b.check(n); err != nil {
			return nil, err
		}
	}
	n.set = b.result
	if b.resultFn != nil {
		n.set = b.resultFn(n.kids)
	}
	if b.absent {
		n.set |= union & kAbsent
	}
	if b.impure {
		return n, nil
	}
	return c.foldIfConst(n)
}

func argOrdinal(b *builtin, i int) string {
	if b.max == 1 {
		return ""
	}
	return fmt.Sprintf(" as argument %d", i+1)
}

// foldIfConst evaluates n at compile time when all its operands are
// constants. Runtime errors become compile errors.
func (c *checker) foldIfConst(n *node) (*node, *Error) {
	for _, k := range n.kids {
		if k.kind != nConst {
			return n, nil
		}
	}
	v, err := gen(n)(constEnv{buf: c.buf})
	if err != nil {
		if ee := (*EvalError)(nil); errors.As(err, &ee) {
			return nil, &Error{Pos: ee.Pos, Msg: ee.Msg}
		}
		return nil, &Error{Pos: n.pos, Msg: err.Error()}
	}
	if v.Kind >= jsondoc.String {
		v.S = v.S[:len(v.S):len(v.S)]
	}
	return constNode(n, v), nil
}

func constNode(n *node, v jsondoc.Value) *node {
	return &node{kind: nConst, pos: n.pos, opPos: n.opPos, val: v, set: kindSet(v.Kind)}
}

// constEnv is the Env of constant folding: there is no event.
type constEnv struct{ buf *[]byte }

var errNoEvent = errors.New("no event at compile time")

func (constEnv) Field([]jsondoc.Seg) (jsondoc.Value, error) { return jsondoc.Value{}, errNoEvent }
func (constEnv) Key() []byte                                { return nil }
func (constEnv) Meta(string) ([]byte, bool)                 { return nil, false }
func (constEnv) Time() int64                                { return 0 }
func (e constEnv) Scratch() *[]byte                         { return e.buf }
