package expr

import (
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// builtin describes a function: its arity and argument kinds (checked at
// compile time), its result kinds, and how to compile a call.
type builtin struct {
	name  string
	usage string
	// min and max bound the argument count; max < 0 means no limit.
	min, max int
	// args are the kinds each argument accepts; the last entry applies to
	// the remaining arguments.
	args   []kset
	result kset
	// absent means Missing and Null arguments are accepted and passed
	// through as the result: lower(missing) is missing.
	absent bool
	// impure means the result depends on the event or the clock, so a call
	// is never folded.
	impure   bool
	resultFn func(args []*node) kset
	check    func(n *node) *Error
	gen      func(n *node, args []operand) evalFn
}

func (b *builtin) arity() string {
	switch {
	case b.min == b.max && b.min == 1:
		return "1 argument"
	case b.min == b.max:
		return fmt.Sprintf("%d arguments", b.min)
	case b.max < 0:
		return fmt.Sprintf("at least %d arguments", b.min)
	}
	return fmt.Sprintf("%d to %d arguments", b.min, b.max)
}

var builtins map[string]*builtin

func init() {
	list := []*builtin{
		{name: "len", usage: "len(x) with x a string, array or object", min: 1, max: 1, args: []kset{kString | kArray | kObject}, result: kInt, absent: true, gen: genLen},
		{name: "lower", usage: "lower(s)", min: 1, max: 1, args: []kset{kString}, result: kString, absent: true, gen: genCase(false)},
		{name: "upper", usage: "upper(s)", min: 1, max: 1, args: []kset{kString}, result: kString, absent: true, gen: genCase(true)},
		{name: "trim", usage: "trim(s)", min: 1, max: 1, args: []kset{kString}, result: kString, absent: true, gen: genTrim},
		{name: "contains", usage: "contains(s, sub)", min: 2, max: 2, args: []kset{kString}, result: kBool, absent: true, gen: genStrTest(bytes.Contains)},
		{name: "starts_with", usage: "starts_with(s, prefix)", min: 2, max: 2, args: []kset{kString}, result: kBool, absent: true, gen: genStrTest(bytes.HasPrefix)},
		{name: "ends_with", usage: "ends_with(s, suffix)", min: 2, max: 2, args: []kset{kString}, result: kBool, absent: true, gen: genStrTest(bytes.HasSuffix)},
		{name: "concat", usage: "concat(a, b, ...)", min: 1, max: -1, args: []kset{kAll}, result: kString, gen: genConcat},
		{name: "substr", usage: "substr(s, start, length) or substr(s, start)", min: 2, max: 3, args: []kset{kString, kInt}, result: kString, absent: true, gen: genSubstr},
		{name: "string", usage: "string(x)", min: 1, max: 1, args: []kset{kAll}, resultFn: func(a []*node) kset { return kString | a[0].set&kMissing }, gen: genString},
		{name: "int", usage: "int(x) with x a number or a numeric string", min: 1, max: 1, args: []kset{kNum | kString}, result: kInt, absent: true, gen: genInt},
		{name: "float", usage: "float(x) with x a number or a numeric string", min: 1, max: 1, args: []kset{kNum | kString}, result: kFloat, absent: true, gen: genFloat},
		{name: "bool", usage: "bool(x) with x a bool, a number or a string", min: 1, max: 1, args: []kset{kBool | kNum | kString}, result: kBool, absent: true, gen: genBool},
		{name: "abs", usage: "abs(n)", min: 1, max: 1, args: []kset{kNum}, resultFn: numArg, absent: true, gen: genNum1(absInt, math.Abs)},
		{name: "floor", usage: "floor(n)", min: 1, max: 1, args: []kset{kNum}, resultFn: numArg, absent: true, gen: genNum1(nil, math.Floor)},
		{name: "ceil", usage: "ceil(n)", min: 1, max: 1, args: []kset{kNum}, resultFn: numArg, absent: true, gen: genNum1(nil, math.Ceil)},
		{name: "round", usage: "round(n)", min: 1, max: 1, args: []kset{kNum}, resultFn: numArg, absent: true, gen: genNum1(nil, math.Round)},
		{name: "min", usage: "min(a, b, ...)", min: 2, max: -1, args: []kset{kNum | kString}, resultFn: orderedArgs, absent: true, gen: genMinMax(-1)},
		{name: "max", usage: "max(a, b, ...)", min: 2, max: -1, args: []kset{kNum | kString}, resultFn: orderedArgs, absent: true, gen: genMinMax(1)},
		{name: "exists", usage: "exists(path), e.g. exists(user.email)", min: 1, max: 1, args: []kset{kAll}, result: kBool, impure: true, check: checkExists, gen: genExists},
		{name: "type_of", usage: "type_of(x)", min: 1, max: 1, args: []kset{kAll}, result: kString, gen: genTypeOf},
		{name: "key", usage: "key()", min: 0, max: 0, result: kString, impure: true, gen: genKey},
		{name: "meta", usage: `meta("header-name")`, min: 1, max: 1, args: []kset{kString}, result: kString | kMissing, impure: true, check: checkMeta, gen: genMeta},
		{name: "time", usage: "time()", min: 0, max: 0, result: kInt | kMissing, impure: true, gen: genTime},
		{name: "now", usage: "now()", min: 0, max: 0, result: kInt, impure: true, gen: genNow},
		{name: "parse_time", usage: `parse_time("2024-05-01T12:00:00Z")`, min: 1, max: 1, args: []kset{kString}, result: kInt, absent: true, gen: genParseTime},
		{name: "format_time", usage: "format_time(ns)", min: 1, max: 1, args: []kset{kNum}, result: kString, absent: true, gen: genFormatTime},
		{name: "hash", usage: "hash(x)", min: 1, max: 1, args: []kset{kAll}, result: kInt, absent: true, gen: genHash},
		{name: "coalesce", usage: "coalesce(a, b, ...)", min: 1, max: -1, args: []kset{kAll}, resultFn: coalesceResult, gen: genCoalesce},
	}
	builtins = make(map[string]*builtin, len(list))
	for _, b := range list {
		builtins[b.name] = b
	}
}

func lookupBuiltin(name string) *builtin { return builtins[name] }

// suggestFunc builds the hint for an unknown function name.
func suggestFunc(name string) string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	lower := strings.ToLower(name)
	// Suggest the closest name within a third of the length in edits, or a
	// name that one is a prefix of the other (starts -> starts_with,
	// lenght -> len).
	best, bestD := "", max(1, len(lower)/3)+1
	for _, n := range names {
		if d := editDistance(lower, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" && len(lower) >= 3 {
		for _, n := range names {
			if strings.HasPrefix(lower, n) || strings.HasPrefix(n, lower) {
				best = n
				break
			}
		}
	}
	if best != "" {
		return "did you mean " + best + "?"
	}
	return "functions are " + strings.Join(names, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func numArg(a []*node) kset { return a[0].set & kNum }

func orderedArgs(a []*node) kset {
	var s kset
	for _, k := range a {
		s |= k.set
	}
	return s & (kNum | kString)
}

func coalesceResult(a []*node) kset {
	var s kset
	for _, k := range a {
		s |= k.set &^ kAbsent
	}
	return s | a[len(a)-1].set&kAbsent
}

func checkExists(n *node) *Error {
	switch n.kids[0].kind {
	case nPath, nMember, nIndex:
		return nil
	}
	return &Error{Pos: n.kids[0].pos, Msg: "exists wants a field path", Hint: "usage: exists(user.email); to test any value use x != null"}
}

func checkMeta(n *node) *Error {
	if a := n.kids[0]; a.kind != nConst {
		return &Error{Pos: a.pos, Msg: "meta wants a string literal naming the header", Hint: `usage: meta("content-type")`}
	}
	return nil
}

func argError(pos int, name string, want string, got jsondoc.Kind) error {
	return evalErrorf(pos, "%s wants %s, got %s", name, want, got)
}

func genLen(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		switch v.Kind {
		case jsondoc.Missing, jsondoc.Null:
			return v, nil
		case jsondoc.String:
			return jsondoc.IntValue(int64(len(v.S))), nil
		case jsondoc.Array, jsondoc.Object:
			c, err := jsondoc.Len(v)
			if err != nil {
				return jsondoc.Value{}, malformed(pos)
			}
			return jsondoc.IntValue(int64(c)), nil
		}
		return jsondoc.Value{}, argError(pos, "len", "a string, an array or an object", v.Kind)
	}
}

// genCase compiles lower (upper false) and upper. A string that is already
// in the wanted case is returned as is, without copying.
func genCase(upper bool) func(n *node, args []operand) evalFn {
	name := "lower"
	lo, hi := byte('A'), byte('Z')
	if upper {
		name = "upper"
		lo, hi = 'a', 'z'
	}
	return func(n *node, args []operand) evalFn {
		a, pos := args[0], n.opPos
		return func(env Env) (jsondoc.Value, error) {
			v, err := a.val, error(nil)
			switch a.kind {
			case opPath:
				v, err = env.Field(a.path)
			case opFn:
				v, err = a.fn(env)
			}
			if err != nil || absent(v) {
				return v, err
			}
			if v.Kind != jsondoc.String {
				return jsondoc.Value{}, argError(pos, name, "a string", v.Kind)
			}
			i := 0
			for ; i < len(v.S); i++ {
				if c := v.S[i]; c >= lo && c <= hi || c >= utf8.RuneSelf {
					break
				}
			}
			if i == len(v.S) {
				return v, nil
			}
			buf := scratchOf(env)
			start := len(*buf)
			*buf = appendCase(*buf, v.S, upper)
			return jsondoc.StringValue(tail(buf, start)), nil
		}
	}
}

func appendCase(dst, s []byte, upper bool) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case upper && c >= 'a' && c <= 'z':
				c -= 'a' - 'A'
			case !upper && c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, c) // keep invalid bytes as they are
		} else if upper {
			dst = utf8.AppendRune(dst, unicode.ToUpper(r))
		} else {
			dst = utf8.AppendRune(dst, unicode.ToLower(r))
		}
		i += size
	}
	return dst
}

func genTrim(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		if v.Kind != jsondoc.String {
			return jsondoc.Value{}, argError(pos, "trim", "a string", v.Kind)
		}
		return jsondoc.StringValue(bytes.TrimSpace(v.S)), nil
	}
}

func genStrTest(test func(s, t []byte) bool) func(n *node, args []operand) evalFn {
	return func(n *node, args []operand) evalFn {
		a, b, pos, name := args[0], args[1], n.opPos, n.fn.name
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
			switch {
			case err != nil:
				return jsondoc.Value{}, err
			case absent(x):
				return x, nil
			case absent(y):
				return y, nil
			case x.Kind != jsondoc.String || y.Kind != jsondoc.String:
				return jsondoc.Value{}, evalErrorf(pos, "%s wants two strings, got %s and %s", name, x.Kind, y.Kind)
			}
			return boolValue(test(x.S, y.S)), nil
		}
	}
}

// genConcat compiles concat: every argument in its string form, Missing and
// Null skipped.
func genConcat(n *node, args []operand) evalFn {
	return func(env Env) (jsondoc.Value, error) {
		// Evaluate all arguments first: evaluating one may append to
		// scratch, which must not interleave with building the result.
		var arr [8]jsondoc.Value
		vals := arr[:0]
		for i := range args {
			v, err := args[i].eval(env)
			if err != nil {
				return jsondoc.Value{}, err
			}
			if !absent(v) {
				vals = append(vals, v)
			}
		}
		switch len(vals) {
		case 0:
			return jsondoc.StringValue(nil), nil
		case 1:
			if vals[0].Kind == jsondoc.String {
				return vals[0], nil
			}
		}
		buf := scratchOf(env)
		start := len(*buf)
		b := *buf
		for _, v := range vals {
			b = appendText(b, v)
		}
		*buf = b
		return jsondoc.StringValue(tail(buf, start)), nil
	}
}

// appendText appends the string form of v: a string's content, the JSON
// text of anything else.
func appendText(dst []byte, v jsondoc.Value) []byte {
	if v.Kind == jsondoc.String {
		return append(dst, v.S...)
	}
	return jsondoc.AppendValue(dst, v)
}

func genSubstr(n *node, args []operand) evalFn {
	pos := n.opPos
	s, start := args[0], args[1]
	var length *operand
	if len(args) == 3 {
		length = &args[2]
	}
	return func(env Env) (jsondoc.Value, error) {
		v, err := s.eval(env)
		if err != nil {
			return jsondoc.Value{}, err
		}
		st, err := start.eval(env)
		switch {
		case err != nil:
			return jsondoc.Value{}, err
		case absent(v):
			return v, nil
		case absent(st):
			return st, nil
		case v.Kind != jsondoc.String || st.Kind != jsondoc.Int:
			return jsondoc.Value{}, evalErrorf(pos, "substr wants a string and an int, got %s and %s", v.Kind, st.Kind)
		}
		size := int64(len(v.S))
		from := st.I
		if from < 0 {
			from = max(size+from, 0)
		}
		from = min(from, size)
		to := size
		if length != nil {
			l, err := length.eval(env)
			if err != nil || absent(l) {
				return l, err
			}
			if l.Kind != jsondoc.Int {
				return jsondoc.Value{}, argError(pos, "substr", "an int length", l.Kind)
			}
			to = from + min(max(l.I, 0), size-from)
		}
		return jsondoc.StringValue(v.S[from:to:to]), nil
	}
}

func genString(n *node, args []operand) evalFn {
	a := args[0]
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		switch v.Kind {
		case jsondoc.Missing, jsondoc.String:
			return v, nil
		case jsondoc.Object, jsondoc.Array:
			return jsondoc.StringValue(v.S), nil
		}
		buf := scratchOf(env)
		start := len(*buf)
		*buf = jsondoc.AppendValue(*buf, v)
		return jsondoc.StringValue(tail(buf, start)), nil
	}
}

func genInt(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		switch v.Kind {
		case jsondoc.Int:
			return v, nil
		case jsondoc.Float:
			return floatToInt(pos, v.F)
		case jsondoc.String:
			if i, ok := parseInt(v.S); ok {
				return jsondoc.IntValue(i), nil
			}
			if f, ok := parseFloat(v.S); ok {
				return floatToInt(pos, f)
			}
			return jsondoc.Value{}, evalErrorf(pos, "int: %q is not a number", v.S)
		}
		return jsondoc.Value{}, argError(pos, "int", "a number or a numeric string", v.Kind)
	}
}

// parseInt parses optionally signed decimal digits without allocating.
func parseInt(b []byte) (int64, bool) {
	neg := false
	i := 0
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	if i == len(b) {
		return 0, false
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(d)
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to math.MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// parseFloat parses a finite float in any syntax strconv.ParseFloat
// accepts. It does not allocate for inputs of up to 32 bytes.
func parseFloat(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// floatToInt truncates f toward zero.
func floatToInt(pos int, f float64) (jsondoc.Value, error) {
	if f >= 9223372036854775808.0 || f < -9223372036854775808.0 {
		return jsondoc.Value{}, evalErrorf(pos, "int: %v is out of the int64 range", f)
	}
	return jsondoc.IntValue(int64(f)), nil
}

func genFloat(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		switch v.Kind {
		case jsondoc.Int:
			return jsondoc.FloatValue(float64(v.I)), nil
		case jsondoc.Float:
			return v, nil
		case jsondoc.String:
			if f, ok := parseFloat(v.S); ok {
				return jsondoc.FloatValue(f), nil
			}
			return jsondoc.Value{}, evalErrorf(pos, "float: %q is not a finite number", v.S)
		}
		return jsondoc.Value{}, argError(pos, "float", "a number or a numeric string", v.Kind)
	}
}

func genBool(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		switch v.Kind {
		case jsondoc.Bool:
			return v, nil
		case jsondoc.Int:
			return boolValue(v.I != 0), nil
		case jsondoc.Float:
			return boolValue(v.F != 0), nil
		case jsondoc.String:
			switch string(v.S) {
			case "true", "True", "TRUE", "1":
				return valTrue, nil
			case "false", "False", "FALSE", "0":
				return valFalse, nil
			}
			return jsondoc.Value{}, evalErrorf(pos, "bool: %q is not true or false", v.S)
		}
		return jsondoc.Value{}, argError(pos, "bool", "a bool, a number or a string", v.Kind)
	}
}

func absInt(i int64) int64 {
	if i < 0 {
		return -i // math.MinInt64 stays as it is
	}
	return i
}

// genNum1 compiles a function of one number. An Int goes through fi, or is
// returned as is when fi is nil; a Float goes through ff.
func genNum1(fi func(int64) int64, ff func(float64) float64) func(n *node, args []operand) evalFn {
	return func(n *node, args []operand) evalFn {
		a, pos, name := args[0], n.opPos, n.fn.name
		return func(env Env) (jsondoc.Value, error) {
			v, err := a.val, error(nil)
			switch a.kind {
			case opPath:
				v, err = env.Field(a.path)
			case opFn:
				v, err = a.fn(env)
			}
			if err != nil || absent(v) {
				return v, err
			}
			switch v.Kind {
			case jsondoc.Int:
				if fi != nil {
					v.I = fi(v.I)
				}
				return v, nil
			case jsondoc.Float:
				return jsondoc.FloatValue(ff(v.F)), nil
			}
			return jsondoc.Value{}, argError(pos, name, "a number", v.Kind)
		}
	}
}

// genMinMax compiles min (sign -1) and max (sign 1): the winning argument
// is returned as it is, the first one on a tie.
func genMinMax(sign int) func(n *node, args []operand) evalFn {
	return func(n *node, args []operand) evalFn {
		pos, name := n.opPos, n.fn.name
		return func(env Env) (jsondoc.Value, error) {
			var best jsondoc.Value
			for i := range args {
				v, err := args[i].eval(env)
				if err != nil || absent(v) {
					return v, err
				}
				if i == 0 {
					best = v
					continue
				}
				c, st := compare(v, best)
				if st != cmpOK {
					return jsondoc.Value{}, evalErrorf(pos, "%s wants numbers or strings, got %s and %s", name, best.Kind, v.Kind)
				}
				if c*sign > 0 {
					best = v
				}
			}
			return best, nil
		}
	}
}

func genExists(n *node, args []operand) evalFn {
	a := args[0]
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		return boolValue(v.Kind != jsondoc.Missing), nil
	}
}

var kindNameValues = func() [jsondoc.Array + 1]jsondoc.Value {
	var vs [jsondoc.Array + 1]jsondoc.Value
	for k := range vs {
		name := jsondoc.Kind(k).String()
		vs[k] = jsondoc.StringValue([]byte(name)[:len(name):len(name)])
	}
	return vs
}()

func genTypeOf(n *node, args []operand) evalFn {
	a := args[0]
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil {
			return jsondoc.Value{}, err
		}
		return kindNameValues[v.Kind], nil
	}
}

func genKey(*node, []operand) evalFn {
	return func(env Env) (jsondoc.Value, error) {
		return jsondoc.StringValue(env.Key()), nil
	}
}

func genMeta(n *node, _ []operand) evalFn {
	name := string(n.kids[0].val.S)
	return func(env Env) (jsondoc.Value, error) {
		b, ok := env.Meta(name)
		if !ok {
			return jsondoc.Value{}, nil
		}
		return jsondoc.StringValue(b), nil
	}
}

func genTime(*node, []operand) evalFn {
	return func(env Env) (jsondoc.Value, error) {
		t := env.Time()
		if t == 0 {
			return jsondoc.Value{}, nil
		}
		return jsondoc.IntValue(t), nil
	}
}

func genNow(*node, []operand) evalFn {
	return func(Env) (jsondoc.Value, error) {
		return jsondoc.IntValue(time.Now().UnixNano()), nil
	}
}

func genParseTime(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		if v.Kind != jsondoc.String {
			return jsondoc.Value{}, argError(pos, "parse_time", "a string", v.Kind)
		}
		ns, ok := parseRFC3339(v.S)
		if !ok {
			return jsondoc.Value{}, evalErrorf(pos, "parse_time: %q is not an RFC 3339 time such as 2024-05-01T12:00:00Z", v.S)
		}
		return jsondoc.IntValue(ns), nil
	}
}

func genFormatTime(n *node, args []operand) evalFn {
	a, pos := args[0], n.opPos
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		var ns int64
		switch v.Kind {
		case jsondoc.Int:
			ns = v.I
		case jsondoc.Float:
			iv, err := floatToInt(pos, v.F)
			if err != nil {
				return jsondoc.Value{}, err
			}
			ns = iv.I
		default:
			return jsondoc.Value{}, argError(pos, "format_time", "Unix nanoseconds", v.Kind)
		}
		buf := scratchOf(env)
		start := len(*buf)
		*buf = time.Unix(0, ns).UTC().AppendFormat(*buf, time.RFC3339Nano)
		return jsondoc.StringValue(tail(buf, start)), nil
	}
}

// FNV-1a, 64 bit.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

func genHash(n *node, args []operand) evalFn {
	a := args[0]
	return func(env Env) (jsondoc.Value, error) {
		v, err := a.val, error(nil)
		switch a.kind {
		case opPath:
			v, err = env.Field(a.path)
		case opFn:
			v, err = a.fn(env)
		}
		if err != nil || absent(v) {
			return v, err
		}
		var h uint64
		switch v.Kind {
		case jsondoc.String, jsondoc.Object, jsondoc.Array:
			h = fnv1a(fnvOffset, v.S)
		default:
			var tmp [32]byte
			h = fnv1a(fnvOffset, jsondoc.AppendValue(tmp[:0], v))
		}
		return jsondoc.IntValue(int64(h)), nil
	}
}

func genCoalesce(n *node, args []operand) evalFn {
	return func(env Env) (jsondoc.Value, error) {
		var v jsondoc.Value
		for i := range args {
			var err error
			if v, err = args[i].eval(env); err != nil || !absent(v) {
				return v, err
			}
		}
		return v, nil
	}
}
