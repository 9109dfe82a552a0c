package config

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Resolved YAML tags.
const (
	nullTag  = "!!null"
	boolTag  = "!!bool"
	intTag   = "!!int"
	floatTag = "!!float"
	strTag   = "!!str"
	mapTag   = "!!map"
	seqTag   = "!!seq"
	mergeTag = "!!merge"
)

const (
	// maxAliasExpansions bounds the work an aliased document can cause
	// (a "billion laughs" file).
	maxAliasExpansions = 10000
	// maxDepth bounds the nesting the decoder follows.
	maxDepth = 100

	durationExpected = "a duration such as 500ms, 10s or 1h30m"
	durationHint     = "units are ns, us, ms, s, m and h; combine them as in 1h30m"
)

// Decode decodes the YAML node n into dst, a non-nil pointer, and returns
// every problem found. field is the dotted path of n for error messages (""
// for a whole file). n is left untouched; environment references in scalar
// values are substituted as they are decoded. Decode is safe for concurrent
// use.
//
// Without the file's text, positions inside multi-line and double-quoted
// scalars are approximate; Parse and Node.Decode have the text.
func Decode(file string, n *yaml.Node, field string, dst any) Errors {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		panic(fmt.Sprintf("config: Decode needs a non-nil pointer, not %T", dst))
	}
	checkType(v.Elem().Type(), map[reflect.Type]bool{})
	d := newDecoder(file, nil)
	d.value(n, field, v.Elem(), nil)
	return d.result()
}

// decoder decodes YAML nodes into Go values, collecting errors. One decoder
// serves one call and is not shared between goroutines.
type decoder struct {
	file   string
	src    *source                     // nil when the text is not at hand
	lookup func(string) (string, bool) // environment
	errs   Errors                      // problems found so far
	active map[*yaml.Node]bool         // alias targets being decoded
	merges map[*yaml.Node]bool         // mappings being merged with <<
	top    *topOpts                    // options for the outermost struct, used once
	depth  int                         // current nesting
	nalias int                         // alias expansions so far
}

// topOpts changes how the outermost struct of a decode treats its keys: a
// node's mapping holds both the common node fields and the component's.
type topOpts struct {
	skip          map[string]bool // keys that belong to the other decode
	extra         []string        // more valid keys, for suggestions
	ignoreUnknown bool            // leave unknown keys to the other decode
	quietDup      bool            // the other decode reports duplicate keys
}

func newDecoder(file string, src *source) *decoder {
	return &decoder{
		file:   file,
		src:    src,
		lookup: os.LookupEnv,
		active: map[*yaml.Node]bool{},
		merges: map[*yaml.Node]bool{},
	}
}

func (d *decoder) result() Errors {
	if len(d.errs) == 0 {
		return nil
	}
	return d.errs.sorted()
}

func (d *decoder) add(n *yaml.Node, field, msg, expected, hint string) {
	pos := Pos{File: d.file, Line: 1, Col: 1}
	if n != nil && n.Line > 0 {
		pos = nodePos(d.file, n)
	}
	d.errs.Add(&Error{Pos: pos, Field: field, Msg: msg, Expected: expected, Hint: hint})
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// join appends a mapping key to a dotted path; keys that are not plain names
// are written as ["key"].
func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// alias calls f with the target of alias n, guarding against cycles and
// against documents that expand without bound.
func (d *decoder) alias(n *yaml.Node, path string, f func(*yaml.Node)) {
	t := n.Alias
	switch {
	case t == nil:
		d.add(n, path, fmt.Sprintf("alias *%s has no anchor", n.Value), "an anchor &"+n.Value+" defined earlier", "define the anchor before using it")
		return
	case d.active[t]:
		d.add(n, path, fmt.Sprintf("alias *%s refers to a value that contains it", n.Value), "an alias to a value defined elsewhere", "move the anchor so that the alias is not inside the anchored value")
		return
	case !d.spendAlias(n, path):
		return
	}
	d.active[t] = true
	defer delete(d.active, t)
	f(t)
}

// spendAlias counts one alias expansion and reports whether the budget
// allows it; the first expansion over budget is reported.
func (d *decoder) spendAlias(n *yaml.Node, path string) bool {
	d.nalias++
	if d.nalias <= maxAliasExpansions {
		return true
	}
	if d.nalias == maxAliasExpansions+1 {
		d.add(n, path, "aliases expand to too many values", fmt.Sprintf("at most %d alias expansions", maxAliasExpansions),
			"write the values out instead of nesting aliases")
	}
	return false
}

// deref follows aliases (without cycle tracking: use it only to look at a
// node, not to decode inside it).
func (d *decoder) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 10; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	return n
}

// value decodes n into v; fi is the field being decoded (nil for list
// elements, map values and the outermost value).
func (d *decoder) value(n *yaml.Node, path string, v reflect.Value, fi *fieldInfo) {
	if n == nil {
		return
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, path, func(t *yaml.Node) { d.value(t, path, v, fi) })
		return
	}
	if d.depth >= maxDepth {
		d.add(n, path, "values nested too deeply", fmt.Sprintf("at most %d levels", maxDepth), "flatten the structure")
		return
	}
	d.depth++
	defer func() { d.depth-- }()
	if !knownTag(n) {
		d.add(n, path, fmt.Sprintf("got a value tagged %s", n.Tag), expectedFor(v.Type()),
			"weir does not use YAML tags; quote a value that starts with !, e.g. '!x'")
		return
	}
	if v.Type() == yamlNodeType {
		v.Set(reflect.ValueOf(*n))
		return
	}
	if v.Type() == reflect.PointerTo(yamlNodeType) {
		v.Set(reflect.ValueOf(n))
		return
	}
	var sv *scalarValue
	if n.Kind == yaml.ScalarNode {
		var ok bool
		if sv, ok = d.scalar(n, path); !ok {
			return
		}
		if sv.tag == nullTag {
			if fi != nil && fi.required {
				d.add(n, path, "required field is empty", expectedFor(fi.typ), fmt.Sprintf("give %s a value", fi.name))
			}
			return
		}
	}
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		v = v.Elem()
	}
	t := v.Type()
	switch {
	case t == exprType:
		if sv == nil {
			d.typeErr(n, sv, path, t)
			return
		}
		v.Set(reflect.ValueOf(newExpr(d.file, n, sv, d.src)))
		return
	case t == durationType:
		d.duration(n, sv, path, v)
		return
	case reflect.PointerTo(t).Implements(unmarshalerType):
		d.custom(n, sv, path, v)
		return
	case t.Implements(orderedType):
		d.ordered(n, sv, path, v)
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		top := d.top
		d.top = nil
		d.structure(n, sv, path, v, top)
	case reflect.Slice:
		d.slice(n, sv, path, v, fi)
	case reflect.Map:
		d.mapping(n, sv, path, v)
	case reflect.Interface:
		d.generic(n, sv, path, v)
	default:
		d.scalarKind(n, sv, path, v, fi)
	}
}

// knownTag reports whether n carries only a tag the decoder understands.
func knownTag(n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Style&yaml.TaggedStyle == 0 {
		return true
	}
	switch n.Tag {
	case nullTag, boolTag, intTag, floatTag, strTag, mapTag, seqTag:
		return true
	}
	return false
}

// scalarValue is a scalar after environment substitution.
type scalarValue struct {
	s     string
	tag   string    // resolved from s: quoted and block scalars are strings
	subst bool      // s came from expanding references
	spans []envSpan // where the bytes of s came from, when subst
}

// scalar substitutes environment references in n's value and resolves its
// tag. It reports problems with the references and returns false if any.
func (d *decoder) scalar(n *yaml.Node, path string) (*scalarValue, bool) {
	sv := &scalarValue{s: n.Value}
	if strings.Contains(n.Value, "${") {
		out, spans, probs := expandEnv(n.Value, d.lookup)
		if len(probs) > 0 {
			at := scalarMap(n, d.src)
			for _, p := range probs {
				l := at[p.off]
				d.errs.Add(&Error{Pos: Pos{File: d.file, Line: int(l.line), Col: int(l.col)}, Field: path, Msg: p.msg, Expected: p.expected, Hint: p.hint})
			}
			return nil, false
		}
		sv.s, sv.spans, sv.subst = out, spans, true
	}
	switch {
	case n.Style&yaml.TaggedStyle != 0:
		sv.tag = n.Tag
	case n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		sv.tag = strTag
	default:
		sv.tag = resolvePlain(sv.s)
	}
	return sv, true
}

var floatRe = regexp.MustCompile(`^[-+]?(\.[0-9][0-9_]*|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?$`)

// resolvePlain returns the tag of a plain scalar, as YAML 1.2 reads it.
func resolvePlain(s string) string {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return nullTag
	case "true", "True", "TRUE", "false", "False", "FALSE":
		return boolTag
	case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN":
		return floatTag
	}
	if _, ok := parseBigInt(s); ok {
		return intTag
	}
	if floatRe.MatchString(s) {
		return floatTag
	}
	return strTag
}

// parseBigInt parses a YAML integer: an optional sign, an optional 0x, 0o or
// 0b prefix, digits and underscores.
func parseBigInt(s string) (*big.Int, bool) {
	t := strings.ReplaceAll(s, "_", "")
	neg := false
	if t != "" && (t[0] == '+' || t[0] == '-') {
		neg, t = t[0] == '-', t[1:]
	}
	base := 10
	if len(t) > 2 && t[0] == '0' {
		switch t[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			t = t[2:]
		}
	}
	if t == "" {
		return nil, false
	}
	for _, c := range t {
		if v := digitVal(c); v < 0 || v >= base {
			return nil, false
		}
	}
	i, ok := new(big.Int).SetString(t, base)
	if !ok {
		return nil, false
	}
	if neg {
		i.Neg(i)
	}
	return i, true
}

func digitVal(c rune) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func parseFloat(s string) (float64, error) {
	switch strings.ToLower(strings.TrimPrefix(s, "+")) {
	case ".inf":
		return math.Inf(1), nil
	case "-.inf":
		return math.Inf(-1), nil
	case ".nan":
		return math.NaN(), nil
	}
	if i, ok := parseBigInt(s); ok {
		f, _ := new(big.Float).SetInt(i).Float64()
		return f, nil
	}
	return strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
}

// gotText describes what was written, for "got ..." messages.
func gotText(n *yaml.Node, sv *scalarValue) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	s, tag := n.Value, n.Tag
	if sv != nil {
		s, tag = sv.s, sv.tag
	}
	var out string
	switch tag {
	case nullTag:
		out = "an empty value"
	case boolTag:
		out = "boolean " + s
	case intTag:
		out = "integer " + s
	case floatTag:
		out = "number " + s
	case strTag:
		out = "string " + quoteShort(s)
	default:
		out = "a value tagged " + tag
	}
	if sv != nil && sv.subst {
		out += " (from " + quoteShort(n.Value) + ")"
	}
	return out
}

// quoteShort quotes s, shortened to about 40 characters.
func quoteShort(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		r := []rune(s)
		return strconv.Quote(string(r[:37])) + "..."
	}
	return strconv.Quote(s)
}

// typeError is the error for a node of the wrong kind, for Unmarshalers.
func typeError(file string, n *yaml.Node, expected, hint string) *Error {
	return &Error{Pos: nodePos(file, n), Msg: "got " + gotText(n, nil), Expected: expected, Hint: hint}
}

func (d *decoder) typeErr(n *yaml.Node, sv *scalarValue, path string, t reflect.Type) {
	d.add(n, path, "got "+gotText(n, sv), expectedFor(t), typeHint(n, sv, t))
}

// typeHint says how to write a value of type t instead of n.
func typeHint(n *yaml.Node, sv *scalarValue, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	flow := n.Style&yaml.FlowStyle != 0
	composite := !isLeaf(t) && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map || t.Kind() == reflect.Slice)
	text := t == exprType || t.Kind() == reflect.String
	switch {
	case n.Kind == yaml.MappingNode && !composite && flow && text:
		return `quote the value: one that starts with "{" is a YAML mapping`
	case n.Kind == yaml.MappingNode && !composite && flow:
		return "write a single value, not a mapping"
	case n.Kind == yaml.MappingNode && !composite:
		return "the lines indented below this key make its value a mapping; fix the indentation, or quote a value that contains \": \""
	case n.Kind == yaml.SequenceNode && !composite && flow && text:
		return `write a single value, not a list; quote a value that starts with "["`
	case n.Kind == yaml.SequenceNode && !composite:
		return "write a single value, not a list"
	case t.Kind() == reflect.Slice && !isLeaf(t):
		return `write a list: [a, b], or one "- item" per line`
	case composite:
		return "write its fields as key: value lines, indented below this key"
	case t == durationType:
		return durationHint
	case t == exprType:
		return "write the expression as a single value; quote it if it contains \": \" or starts with [, {, ! or &"
	}
	quotedNumber := sv != nil && n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0 && resolvePlain(sv.s) != strTag
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if quotedNumber {
			return "remove the quotes: a quoted value is a string"
		}
		if sv != nil && sv.tag == floatTag {
			return "write a whole number"
		}
		return "write a whole number, e.g. 4"
	case reflect.Float32, reflect.Float64:
		if quotedNumber {
			return "remove the quotes: a quoted value is a string"
		}
		return "write a number, e.g. 0.5"
	case reflect.Bool:
		if quotedNumber {
			return "remove the quotes: a quoted value is a string"
		}
		if sv != nil && slices.Contains([]string{"yes", "no", "on", "off", "y", "n"}, strings.ToLower(sv.s)) {
			return fmt.Sprintf("write true or false: YAML 1.2 reads %s as a string", sv.s)
		}
		return "write true or false"
	}
	return "write a single value"
}

func (d *decoder) duration(n *yaml.Node, sv *scalarValue, path string, v reflect.Value) {
	if sv == nil {
		d.typeErr(n, sv, path, durationType)
		return
	}
	switch sv.tag {
	case strTag:
		dur, err := time.ParseDuration(strings.TrimSpace(sv.s))
		if err != nil {
			hint := durationHint
			if strings.ContainsAny(strings.TrimSpace(sv.s), " \t") {
				hint = "write the number and unit together, e.g. 30s or 1m; units are ns, us, ms, s, m and h"
			}
			d.add(n, path, "invalid duration "+quoteShort(sv.s), durationExpected, hint)
			return
		}
		v.SetInt(int64(dur))
	case intTag, floatTag:
		if f, err := parseFloat(sv.s); err == nil && f == 0 {
			v.SetInt(0)
			return
		}
		d.add(n, path, fmt.Sprintf("got %s without a unit", gotText(n, sv)), durationExpected, "write a unit, e.g. 500ms or 10s")
	default:
		d.typeErr(n, sv, path, durationType)
	}
}

// custom decodes into a type that implements Unmarshaler.
func (d *decoder) custom(n *yaml.Node, sv *scalarValue, path string, v reflect.Value) {
	var cp *yaml.Node
	if sv != nil {
		c := *n
		c.Value, c.Tag = sv.s, sv.tag
		cp = &c
	} else {
		before := len(d.errs)
		cp = d.substTree(n, path)
		if len(d.errs) > before {
			return
		}
	}
	e := v.Addr().Interface().(Unmarshaler).UnmarshalYAMLNode(d.file, cp)
	if e == nil {
		return
	}
	c := *e
	if !c.Pos.IsValid() {
		c.Pos = nodePos(d.file, n)
	}
	switch {
	case c.Field == "":
		c.Field = path
	case path != "":
		c.Field = path + "." + c.Field
	}
	d.errs.Add(&c)
}

// substTree copies n with aliases resolved and environment references in
// scalar values (not keys) substituted.
func (d *decoder) substTree(n *yaml.Node, path string) *yaml.Node {
	var out *yaml.Node
	if n.Kind == yaml.AliasNode {
		d.alias(n, path, func(t *yaml.Node) { out = d.substTree(t, path) })
		if out == nil {
			out = &yaml.Node{Kind: yaml.ScalarNode, Tag: nullTag, Line: n.Line, Column: n.Column}
		}
		return out
	}
	c := *n
	if d.depth >= maxDepth {
		d.add(n, path, "values nested too deeply", fmt.Sprintf("at most %d levels", maxDepth), "flatten the structure")
		c.Content = nil
		return &c
	}
	d.depth++
	defer func() { d.depth-- }()
	switch n.Kind {
	case yaml.ScalarNode:
		if sv, ok := d.scalar(n, path); ok {
			c.Value, c.Tag = sv.s, sv.tag
		}
	case yaml.SequenceNode, yaml.MappingNode, yaml.DocumentNode:
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			p := path
			switch {
			case n.Kind == yaml.SequenceNode:
				p = fmt.Sprintf("%s[%d]", path, i)
			case n.Kind == yaml.MappingNode && i%2 == 0:
				c.Content[i] = ch
				continue
			case n.Kind == yaml.MappingNode:
				p = join(path, n.Content[i-1].Value)
			}
			c.Content[i] = d.substTree(ch, p)
		}
	}
	return &c
}

// scalarKind decodes strings, bools and numbers.
func (d *decoder) scalarKind(n *yaml.Node, sv *scalarValue, path string, v reflect.Value, fi *fieldInfo) {
	if sv == nil {
		d.typeErr(n, sv, path, v.Type())
		return
	}
	switch v.Kind() {
	case reflect.String:
		if fi != nil && fi.required && sv.s == "" {
			d.add(n, path, "required field is empty", expectedFor(fi.typ), fmt.Sprintf("give %s a value", fi.name))
			return
		}
		if fi != nil && fi.enum != nil && !slices.Contains(fi.enum, sv.s) {
			d.add(n, path, "invalid value "+quoteShort(sv.s), oneOf(fi.enum), didYouMean(sv.s, fi.enum, "use one of the listed values"))
			return
		}
		v.SetString(sv.s)
	case reflect.Bool:
		if sv.tag != boolTag {
			d.typeErr(n, sv, path, v.Type())
			return
		}
		v.SetBool(strings.EqualFold(sv.s, "true"))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		i, ok := parseBigInt(sv.s)
		if sv.tag != intTag || !ok {
			d.typeErr(n, sv, path, v.Type())
			return
		}
		d.setInt(n, sv, path, v, i)
	case reflect.Float32, reflect.Float64:
		f, err := parseFloat(sv.s)
		if (sv.tag != intTag && sv.tag != floatTag) || err != nil {
			d.typeErr(n, sv, path, v.Type())
			return
		}
		if v.OverflowFloat(f) {
			d.add(n, path, sv.s+" is out of range", "a number that fits in 32 bits", "write a smaller number")
			return
		}
		v.SetFloat(f)
	default:
		panic(fmt.Sprintf("config: unsupported type %s", v.Type()))
	}
}

func (d *decoder) setInt(n *yaml.Node, sv *scalarValue, path string, v reflect.Value, i *big.Int) {
	bits := v.Type().Bits()
	var lo, hi *big.Int
	if v.CanInt() {
		lo = new(big.Int).Lsh(big.NewInt(-1), uint(bits-1))
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), big.NewInt(1))
	} else {
		lo = big.NewInt(0)
		hi = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits)), big.NewInt(1))
	}
	if i.Cmp(lo) < 0 || i.Cmp(hi) > 0 {
		d.add(n, path, sv.s+" is out of range", fmt.Sprintf("an integer from %s to %s", lo, hi), "write a value in that range")
		return
	}
	if v.CanInt() {
		v.SetInt(i.Int64())
	} else {
		v.SetUint(i.Uint64())
	}
}

func (d *decoder) slice(n *yaml.Node, sv *scalarValue, path string, v reflect.Value, fi *fieldInfo) {
	var efi *fieldInfo
	if fi != nil && fi.enum != nil {
		efi = &fieldInfo{name: fi.name, typ: v.Type().Elem(), enum: fi.enum}
	}
	switch {
	case n.Kind == yaml.SequenceNode:
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, fmt.Sprintf("%s[%d]", path, i), s.Index(i), efi)
		}
		v.Set(s)
	case sv != nil && fi != nil && fi.scalarOrList:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		d.value(n, path, s.Index(0), efi)
		v.Set(s)
	default:
		d.typeErr(n, sv, path, v.Type())
	}
}

func (d *decoder) mapping(n *yaml.Node, sv *scalarValue, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.typeErr(n, sv, path, v.Type())
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, p := range d.pairs(n, path, true) {
		ev := reflect.New(v.Type().Elem()).Elem()
		d.value(p.val, join(path, p.key.Value), ev, nil)
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(v.Type().Key()), ev)
	}
}

// generic decodes into an interface{}: null, bool, int64, float64, string,
// []any or map[string]any.
func (d *decoder) generic(n *yaml.Node, sv *scalarValue, path string, v reflect.Value) {
	var x any
	switch n.Kind {
	case yaml.ScalarNode:
		switch sv.tag {
		case boolTag:
			x = strings.EqualFold(sv.s, "true")
		case intTag:
			if i, ok := parseBigInt(sv.s); ok && i.IsInt64() {
				x = i.Int64()
			} else {
				x = sv.s
			}
		case floatTag:
			if f, err := parseFloat(sv.s); err == nil {
				x = f
			} else {
				x = sv.s
			}
		default:
			x = sv.s
		}
	case yaml.SequenceNode:
		s := make([]any, len(n.Content))
		for i, c := range n.Content {
			d.value(c, fmt.Sprintf("%s[%d]", path, i), reflect.ValueOf(&s[i]).Elem(), nil)
		}
		x = s
	case yaml.MappingNode:
		m := map[string]any{}
		for _, p := range d.pairs(n, path, true) {
			var e any
			d.value(p.val, join(path, p.key.Value), reflect.ValueOf(&e).Elem(), nil)
			m[p.key.Value] = e
		}
		x = m
	}
	if x != nil {
		v.Set(reflect.ValueOf(x))
	}
}

// structure decodes a mapping into a struct.
func (d *decoder) structure(n *yaml.Node, sv *scalarValue, path string, v reflect.Value, top *topOpts) {
	if n.Kind != yaml.MappingNode {
		d.typeErr(n, sv, path, v.Type())
		return
	}
	si := structInfoOf(v.Type())
	seen := map[string]bool{}
	for _, p := range d.pairs(n, path, top == nil || !top.quietDup) {
		key := p.key.Value
		f := si.byName[key]
		if f == nil {
			if top != nil && (top.ignoreUnknown || top.skip[key]) {
				continue
			}
			var valid []string
			if top != nil {
				valid = append(valid, top.extra...)
			}
			valid = append(valid, si.names...)
			d.add(p.key, join(path, key), fmt.Sprintf("unknown field %q", key), oneOf(valid),
				didYouMean(key, valid, "remove it, or fix its spelling"))
			continue
		}
		seen[key] = true
		d.value(p.val, join(path, key), v.FieldByIndex(f.index), f)
	}
	for _, f := range si.fields {
		if f.required && !seen[f.name] {
			d.errs.Add(missingField(d.file, n, path, f.name, expectedFor(f.typ), f.doc))
		}
	}
	d.validate(n, path, v)
}

// missingField is the error for a required key that mapping n lacks.
func missingField(file string, n *yaml.Node, path, name, expected, doc string) *Error {
	where := "at the top level"
	if path != "" {
		where = "under " + path
	}
	hint := fmt.Sprintf("add %q %s", name+": ...", where)
	if doc != "" {
		hint += " (" + doc + ")"
	}
	return &Error{Pos: nodePos(file, n), Field: join(path, name), Msg: "required field is missing", Expected: expected, Hint: hint}
}

// validate runs v's Validate method, if it has one, and places its errors.
// It drops errors about fields that already have one: a field that failed
// to decode holds its default, or its zero value if required.
func (d *decoder) validate(n *yaml.Node, path string, v reflect.Value) {
	if !v.CanAddr() {
		return
	}
	val, ok := v.Addr().Interface().(Validator)
	if !ok {
		return
	}
	for _, err := range flatten(val.Validate()) {
		var (
			c  Error
			ce *Error
			fe *FieldError
		)
		switch {
		case errors.As(err, &ce):
			c = *ce
		case errors.As(err, &fe):
			c = Error{Field: fe.Field, Msg: fe.Msg, Expected: fe.Expected, Hint: fe.Hint}
		default:
			c = Error{Msg: err.Error()}
		}
		if !c.Pos.IsValid() {
			c.Pos = nodePos(d.file, d.lookupField(n, c.Field))
		}
		switch {
		case c.Field == "":
			c.Field = path
		case path != "":
			c.Field = path + "." + c.Field
		}
		if c.Field == path || !d.reported(c.Field) {
			d.errs.Add(&c)
		}
	}
}

// flatten returns the errors joined in err.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// reported reports whether an error about field, or inside it, was found.
func (d *decoder) reported(field string) bool {
	for _, e := range d.errs {
		if e.Field == field || strings.HasPrefix(e.Field, field+".") || strings.HasPrefix(e.Field, field+"[") {
			return true
		}
	}
	return false
}

// lookupField returns the value of the dotted field path rel inside mapping
// n, or the deepest mapping on the way to it.
func (d *decoder) lookupField(n *yaml.Node, rel string) *yaml.Node {
	n = d.deref(n)
	if rel == "" {
		return n
	}
	for key := range strings.SplitSeq(rel, ".") {
		if n == nil || n.Kind != yaml.MappingNode {
			return n
		}
		var next *yaml.Node
		for _, p := range d.pairs(n, "", false) {
			if p.key.Value == key {
				next = d.deref(p.val)
				break
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// pair is one key and value of a mapping.
type pair struct{ key, val *yaml.Node }

// pairs returns the keys and values of mapping n in file order, with merge
// keys (<<) expanded: explicit keys win over merged ones, and earlier merged
// mappings over later ones. With report, it reports duplicate and
// non-scalar keys; either way it drops them.
func (d *decoder) pairs(n *yaml.Node, path string, report bool) []pair {
	var out, merged []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := d.deref(n.Content[i]), n.Content[i+1]
		switch {
		case k == nil || k.Kind != yaml.ScalarNode:
			if report && k != nil {
				d.add(k, path, "got "+gotText(k, nil)+" as a key", "a field name", "keys are plain names; quote a key that starts with [ or {")
			}
			continue
		case k.Tag == mergeTag && k.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) == 0:
			merged = append(merged, d.mergeSource(val, path, report)...)
			continue
		}
		if first := seen[k.Value]; first != nil {
			if report {
				d.add(k, join(path, k.Value), fmt.Sprintf("duplicate key %q", k.Value), "each key at most once in a mapping",
					fmt.Sprintf("it is first set at line %d, column %d; remove one of them", first.Line, first.Column))
			}
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, val})
	}
	for _, p := range merged {
		if seen[p.key.Value] == nil {
			seen[p.key.Value] = p.key
			out = append(out, p)
		}
	}
	return out
}

// mergeSource returns the pairs that "<<: n" merges in.
func (d *decoder) mergeSource(n *yaml.Node, path string, report bool) []pair {
	if n.Kind == yaml.AliasNode && !d.spendAlias(n, path) {
		return nil
	}
	m := d.deref(n)
	if m == nil {
		return nil
	}
	if d.merges[m] {
		if report {
			d.add(n, path, "merge key << includes the mapping it is in", "a mapping defined elsewhere", "merge a mapping anchored outside this one")
		}
		return nil
	}
	d.merges[m] = true
	defer delete(d.merges, m)
	switch m.Kind {
	case yaml.MappingNode:
		return d.pairs(m, path, false)
	case yaml.SequenceNode:
		var out []pair
		for _, c := range m.Content {
			if c := d.deref(c); c == nil || c.Kind != yaml.MappingNode {
				if report && c != nil {
					d.add(c, path, "got "+gotText(c, nil)+" in a merge list", "a mapping such as *defaults", "merge only mappings")
				}
				continue
			}
			out = append(out, d.mergeSource(c, path, report)...)
		}
		return out
	}
	if report {
		d.add(n, path, "got "+gotText(m, nil)+" after <<", "a mapping or a list of mappings, such as *defaults", "merge a mapping anchored with &name")
	}
	return nil
}
