package expr

import (
	"fmt"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// Env is what an expression reads while it is evaluated for one event.
// Implementations are owned by the caller and are not shared between
// concurrent evaluations.
type Env interface {
	// Field returns the value at path in the event's JSON value (Kind
	// Missing if absent). An empty path selects the whole value. An error
	// means the event's value could not be parsed; evaluation stops with it
	// and Eval returns it unchanged. The program owns path: Field must not
	// modify or keep it.
	Field(path []jsondoc.Seg) (jsondoc.Value, error)
	// Key returns the event key.
	Key() []byte
	// Meta returns an event header.
	Meta(name string) ([]byte, bool)
	// Time returns the event time in Unix nanoseconds, 0 if unknown.
	Time() int64
	// Scratch returns a per-event buffer, never nil, that the evaluator
	// appends string results to. The evaluator only appends; it never
	// truncates bytes it did not add, so results stay valid until the
	// owner resets the buffer for the next event.
	Scratch() *[]byte
}

// Program is a compiled expression. It is immutable and safe for concurrent
// use by many goroutines.
type Program struct {
	src    string
	eval   evalFn
	cond   condFn
	set    kset
	pos    int
	fields [][]jsondoc.Seg
	path   []jsondoc.Seg
	isPath bool
}

// Compile parses, type-checks and compiles src. A failure is an *Error.
func Compile(src string) (*Program, error) {
	root, perr := parse(src)
	if perr != nil {
		return nil, perr
	}
	c := &checker{buf: new([]byte)}
	root, perr = c.check(root)
	if perr != nil {
		return nil, perr
	}
	p := &Program{src: src, set: root.set, pos: root.pos}
	if isCond(root) {
		p.cond = genCond(root, nil)
		p.eval = condValue(p.cond)
	} else {
		a := operandOf(root)
		p.eval = a.fn
		if a.kind != opFn {
			p.eval = gen(root)
		}
		p.cond = condOfOperand(a, notBoolError(root.pos, "condition yields %s, want bool"))
	}
	if root.kind == nPath {
		p.path, p.isPath = root.path, true
	}
	collectFields(root, &p.fields)
	return p, nil
}

// MustCompile is like Compile but panics on error. It is for expressions
// fixed in code.
func MustCompile(src string) *Program {
	p, err := Compile(src)
	if err != nil {
		panic(fmt.Sprintf("expr: compile %q: %v", src, err))
	}
	return p
}

// Eval evaluates the program for one event. The result may alias the
// event's data, the program's constants or *env.Scratch(): it must be
// treated as read-only and copied to be kept.
func (p *Program) Eval(env Env) (jsondoc.Value, error) {
	return p.eval(env)
}

// EvalBool evaluates the program as a condition. Missing and Null results
// are false; any kind other than Bool is an *EvalError.
func (p *Program) EvalBool(env Env) (bool, error) {
	return p.cond(env)
}

// Type returns the static type of the result: TypeAny when it depends on the
// data. A typed program can still yield Missing or Null when the fields it
// reads are absent.
func (p *Program) Type() Type { return p.set.typ() }

// Source returns the source text the program was compiled from.
func (p *Program) Source() string { return p.src }

// Fields returns the field paths the program reads, each once, in source
// order. An empty path stands for the whole value (this). The caller must
// not modify the result.
func (p *Program) Fields() [][]jsondoc.Seg { return p.fields }

// IsPath reports whether the whole expression is a plain field path, and
// returns it; the path is empty for `this`. The caller must not modify it.
func (p *Program) IsPath() ([]jsondoc.Seg, bool) { return p.path, p.isPath }

// CheckBool reports an *Error if p can never yield a Bool, so a filter
// fails at config load rather than on every event.
func CheckBool(p *Program) error {
	if p.set&kBool != 0 {
		return nil
	}
	got := p.set &^ kAbsent
	if got == 0 {
		got = p.set
	}
	return &Error{
		Pos:  p.pos,
		Msg:  fmt.Sprintf("a condition must be boolean, this expression yields %s", got),
		Hint: `compare the value, e.g. x != null or x == "value"`,
	}
}

func collectFields(n *node, out *[][]jsondoc.Seg) {
	if n.kind == nPath {
		for _, f := range *out {
			if samePath(f, n.path) {
				return
			}
		}
		*out = append(*out, n.path)
		return
	}
	for _, k := range n.kids {
		collectFields(k, out)
	}
}

func samePath(a, b []jsondoc.Seg) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
