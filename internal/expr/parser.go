package expr

import (
	"fmt"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// maxDepth bounds the nesting of the source so that compiling hostile input
// cannot exhaust the stack.
const maxDepth = 200

type nodeKind uint8

const (
	nConst   nodeKind = iota // val
	nPath                    // path, a static path from the root
	nMember                  // kids[0].name on a computed value
	nIndex                   // kids[0][kids[1]]
	nArray                   // [kids...]
	nUnary                   // op kids[0]
	nBinary                  // kids[0] op kids[1]
	nIn                      // kids[0] in kids[1]; negated by neg
	nTernary                 // kids[0] ? kids[1] : kids[2]
	nCall                    // name(kids...)
)

type node struct {
	kind nodeKind
	op   tokKind
	// pos is where the expression starts; opPos is its operator, bracket
	// or function name, where runtime errors point.
	pos   int
	opPos int
	neg   bool
	// bigInt marks the literal 9223372036854775808, valid only negated.
	bigInt bool
	name   string
	val    jsondoc.Value
	path   []jsondoc.Seg
	kids   []*node
	fn     *builtin
	set    kset
}

type parser struct {
	lx    lexer
	tok   token
	depth int
}

func parse(src string) (*node, *Error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	if p.tok.kind == tEOF {
		return nil, &Error{Pos: 0, Msg: "empty expression"}
	}
	n, err := p.expr(precTernary)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tEOF {
		return nil, p.unexpected()
	}
	return n, nil
}

func (p *parser) advance() *Error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) expect(k tokKind, what string) *Error {
	if p.tok.kind != k {
		err := p.unexpected()
		err.Msg += ", expected " + what
		return err
	}
	return p.advance()
}

// unexpected reports the current token as out of place, with a hint for
// common mistakes.
func (p *parser) unexpected() *Error {
	t := p.tok
	err := &Error{Pos: t.pos}
	switch t.kind {
	case tEOF:
		err.Msg = "unexpected end of expression"
	case tIdent:
		err.Msg = fmt.Sprintf("unexpected identifier %q", t.text)
		switch t.text {
		case "and", "AND":
			err.Hint = "use && for logical and"
		case "or", "OR":
			err.Hint = "use || for logical or"
		default:
			err.Hint = "an operator is missing"
		}
	case tInt, tFloat, tString:
		err.Msg = "unexpected " + t.kind.String()
		err.Hint = "an operator is missing"
	case tNot:
		err.Msg = "unexpected 'not'"
		err.Hint = "use ! to negate, or 'not in' for non-membership"
	default:
		err.Msg = "unexpected '" + t.kind.String() + "'"
	}
	return err
}

// Binding powers, low to high.
const (
	precTernary = 1 + iota
	precCoalesce
	precOr
	precAnd
	precEquality
	precOrder
	precIn
	precAdd
	precMul
)

func binPrec(k tokKind) int {
	switch k {
	case tQuest:
		return precTernary
	case tCoalesce:
		return precCoalesce
	case tOr:
		return precOr
	case tAnd:
		return precAnd
	case tEq, tNe:
		return precEquality
	case tLt, tLe, tGt, tGe:
		return precOrder
	case tIn, tNot:
		return precIn
	case tPlus, tMinus:
		return precAdd
	case tStar, tSlash, tPercent:
		return precMul
	}
	return 0
}

func (p *parser) enter() *Error {
	p.depth++
	if p.depth > maxDepth {
		return &Error{Pos: p.tok.pos, Msg: "expression is nested too deeply", Hint: fmt.Sprintf("the limit is %d levels", maxDepth)}
	}
	return nil
}

// expr parses operators binding at least as tightly as min.
func (p *parser) expr(min int) (*node, *Error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		prec := binPrec(p.tok.kind)
		if prec == 0 || prec < min {
			return left, nil
		}
		op := p.tok
		if err := p.advance(); err != nil {
			return nil, err
		}
		switch op.kind {
		case tQuest:
			mid, err := p.expr(precTernary)
			if err != nil {
				return nil, err
			}
			if err := p.expect(tColon, "':' of the conditional"); err != nil {
				return nil, err
			}
			right, err := p.expr(precTernary) // right-associative
			if err != nil {
				return nil, err
			}
			left = &node{kind: nTernary, pos: left.pos, opPos: op.pos, kids: []*node{left, mid, right}}
		case tNot, tIn:
			neg := op.kind == tNot
			if neg {
				if p.tok.kind != tIn {
					return nil, &Error{Pos: op.pos, Msg: "unexpected 'not'", Hint: "use ! to negate, or 'not in' for non-membership"}
				}
				if err := p.advance(); err != nil {
					return nil, err
				}
			}
			right, err := p.expr(prec + 1)
			if err != nil {
				return nil, err
			}
			left = &node{kind: nIn, neg: neg, pos: left.pos, opPos: op.pos, kids: []*node{left, right}}
		default:
			right, err := p.expr(prec + 1)
			if err != nil {
				return nil, err
			}
			left = &node{kind: nBinary, op: op.kind, pos: left.pos, opPos: op.pos, kids: []*node{left, right}}
		}
	}
}

func (p *parser) unary() (*node, *Error) {
	op := p.tok
	if op.kind != tBang && op.kind != tMinus {
		n, err := p.primary()
		if err != nil {
			return nil, err
		}
		return p.postfix(n)
	}
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	if err := p.advance(); err != nil {
		return nil, err
	}
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	if op.kind == tMinus && x.bigInt {
		// -9223372036854775808: the literal already holds math.MinInt64.
		x.bigInt = false
		x.pos = op.pos
		return x, nil
	}
	return &node{kind: nUnary, op: op.kind, pos: op.pos, opPos: op.pos, kids: []*node{x}}, nil
}

func (p *parser) primary() (*node, *Error) {
	t := p.tok
	n := &node{kind: nConst, pos: t.pos, opPos: t.pos}
	switch t.kind {
	case tInt:
		n.val = jsondoc.IntValue(int64(t.ival))
		n.bigInt = t.ival == 1<<63
	case tFloat:
		n.val = jsondoc.FloatValue(t.fval)
	case tString:
		b := []byte(t.text)
		n.val = jsondoc.StringValue(b[:len(b):len(b)])
	case tTrue, tFalse:
		n.val = jsondoc.BoolValue(t.kind == tTrue)
	case tNull:
		n.val = jsondoc.NullValue()
	case tThis:
		n.kind = nPath
		n.path = []jsondoc.Seg{}
	case tIdent:
		if err := p.advance(); err != nil {
			return nil, err
		}
		if p.tok.kind == tLParen {
			return p.call(t)
		}
		n.kind = nPath
		n.path = []jsondoc.Seg{jsondoc.Key(t.text)}
		return n, nil
	case tLParen:
		if err := p.advance(); err != nil {
			return nil, err
		}
		x, err := p.expr(precTernary)
		if err != nil {
			return nil, err
		}
		if err := p.expect(tRParen, "')'"); err != nil {
			return nil, err
		}
		return x, nil
	case tLBrack:
		if err := p.advance(); err != nil {
			return nil, err
		}
		kids, err := p.list(tRBrack, "']'")
		if err != nil {
			return nil, err
		}
		return &node{kind: nArray, pos: t.pos, opPos: t.pos, kids: kids}, nil
	default:
		return nil, p.unexpected()
	}
	if err := p.advance(); err != nil {
		return nil, err
	}
	return n, nil
}

// list parses comma-separated expressions up to and including the closing
// token; a trailing comma is allowed.
func (p *parser) list(close tokKind, what string) ([]*node, *Error) {
	var kids []*node
	for p.tok.kind != close {
		x, err := p.expr(precTernary)
		if err != nil {
			return nil, err
		}
		kids = append(kids, x)
		if p.tok.kind != tComma {
			break
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
	}
	if err := p.expect(close, "',' or "+what); err != nil {
		return nil, err
	}
	return kids, nil
}

// call parses the argument list of a call to name; the current token is '('.
func (p *parser) call(name token) (*node, *Error) {
	if err := p.advance(); err != nil {
		return nil, err
	}
	kids, err := p.list(tRParen, "')'")
	if err != nil {
		return nil, err
	}
	return &node{kind: nCall, pos: name.pos, opPos: name.pos, name: name.text, kids: kids}, nil
}

func (p *parser) postfix(n *node) (*node, *Error) {
	for {
		t := p.tok
		switch t.kind {
		case tDot:
			if err := p.advance(); err != nil {
				return nil, err
			}
			name := p.tok
			switch name.kind {
			case tIdent, tTrue, tFalse, tNull, tIn, tNot, tThis:
			case tInt:
				return nil, &Error{Pos: name.pos, Msg: "expected a field name after '.'", Hint: fmt.Sprintf("use [%d] to index an array", name.ival)}
			default:
				return nil, &Error{Pos: name.pos, Msg: "expected a field name after '.'", Hint: `use this["name"] for names that are not identifiers`}
			}
			if err := p.advance(); err != nil {
				return nil, err
			}
			n = &node{kind: nMember, pos: n.pos, opPos: t.pos, name: name.text, kids: []*node{n}}
		case tLBrack:
			if err := p.advance(); err != nil {
				return nil, err
			}
			idx, err := p.expr(precTernary)
			if err != nil {
				return nil, err
			}
			if err := p.expect(tRBrack, "']'"); err != nil {
				return nil, err
			}
			n = &node{kind: nIndex, pos: n.pos, opPos: t.pos, kids: []*node{n, idx}}
		case tLParen:
			err := &Error{Pos: t.pos, Msg: "only built-in functions can be called"}
			if n.kind == nMember && lookupBuiltin(n.name) != nil {
				err.Hint = fmt.Sprintf("write %s(x) instead of x.%s()", n.name, n.name)
			}
			return nil, err
		default:
			return n, nil
		}
	}
}
