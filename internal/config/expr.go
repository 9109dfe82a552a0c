package config

import (
	"errors"

	"go.yaml.in/yaml/v3"

	"github.com/weir-dev/weir/internal/expr"
)

// Expr is an expression written as a YAML scalar, such as the expr of a
// filter or a key_by. The config package does not parse expressions; it
// keeps where each byte came from so that the expression parser can report
// errors at the exact line and column.
//
// Pos is where the scalar starts in the file: its first character, or the
// opening quote of a quoted scalar, or the "|" or ">" of a block scalar.
// Src is the scalar's value after environment substitution. Compare Exprs by
// Src and Pos: an Expr also holds an unexported position table.
type Expr struct {
	Src    string
	Pos    Pos
	Quoted bool // written in single or double quotes

	m *exprMap // nil if unknown
}

// exprMap holds the position of each byte of an Expr's Src, plus one past
// the end. It sits behind a pointer so that Expr stays comparable.
type exprMap struct{ at []lc }

// PosAt returns the position in the file of byte offset of Src; offsets past
// the end give the position just after the expression. It is exact for
// plain and single-line quoted scalars, including ones with escapes or
// environment references (a substituted byte maps to the "$" of its
// reference); for multi-line scalars it follows the text as written.
func (e *Expr) PosAt(offset int) Pos {
	offset = max(0, min(offset, len(e.Src)))
	p := e.Pos
	if e.m != nil && len(e.m.at) == len(e.Src)+1 {
		l := e.m.at[offset]
		p.Line, p.Col = int(l.line), int(l.col)
		return p
	}
	if !e.Pos.IsValid() {
		return p
	}
	col := e.Pos.Col
	if e.Quoted {
		col++
	}
	l := synthMap(e.Src[:offset], e.Pos.Line, col, 0)[offset]
	p.Line, p.Col = int(l.line), int(l.col)
	return p
}

// String returns Src.
func (e *Expr) String() string { return e.Src }

// DocType implements DocTyper.
func (Expr) DocType() string { return "expression" }

func newExpr(file string, n *yaml.Node, sv *scalarValue, src *source) Expr {
	e := Expr{
		Src:    sv.s,
		Pos:    nodePos(file, n),
		Quoted: n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0,
	}
	at := scalarMap(n, src)
	if sv.subst {
		at = mapSpans(at, sv.spans, len(sv.s))
	}
	e.m = &exprMap{at: at}
	return e
}

// Compile compiles the expression. A syntax or type error comes back as a
// config error at its exact position inside the scalar, naming field.
func (e *Expr) Compile(field string) (*expr.Program, *Error) {
	prog, err := expr.Compile(e.Src)
	if err != nil {
		return nil, e.ErrorAt(field, err)
	}
	return prog, nil
}

// ErrorAt turns an error about the expression (from expr.Compile or a
// check of its result type) into a config error naming field, at the exact
// position inside the scalar when the error carries one.
func (e *Expr) ErrorAt(field string, err error) *Error {
	ce := &Error{Pos: e.Pos, Field: field, Msg: err.Error(), Expected: "a valid expression"}
	if ee, ok := errors.AsType[*expr.Error](err); ok {
		ce.Pos, ce.Msg, ce.Hint = e.PosAt(ee.Pos), ee.Msg, ee.Hint
	}
	return ce
}
