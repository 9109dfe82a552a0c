package config

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Unmarshaler is implemented by types that decode themselves from YAML, such
// as ByteSize. The decoder handles aliases, nulls (an Unmarshaler never sees
// one) and environment substitution: n is a copy of the written node with
// every scalar value substituted and its tag resolved again ("!!int",
// "!!str", ...). The returned error needs Msg, Expected and Hint; a zero Pos
// is filled with n's position, and Field, if set, is taken as relative to
// the field being decoded.
type Unmarshaler interface {
	UnmarshalYAMLNode(file string, n *yaml.Node) *Error
}

// DocTyper is implemented by types that give Describe a user-facing type
// name, such as "bytes".
type DocTyper interface {
	DocType() string
}

// Validator is implemented by config structs that check rules across
// fields. The decoder calls Validate after decoding the struct, and reports
// what it returns at once: nil, a *FieldError or an *Error, or several of
// them joined (errors.Join, or Errors). Each names its field relative to
// the struct ("max_size", "tls.ca_file"); the decoder places it at that
// field's value (at the struct when the field is absent) and prefixes the
// dotted path. Other errors are placed at the struct. Problems with a field
// that could not be decoded are dropped: such a field holds its default.
type Validator interface {
	Validate() error
}

// FieldDoc documents one field of a config struct. Nested struct fields
// follow their parent with dotted names ("tls.ca_file"); fields of list or
// map elements use "[]" and "*" ("targets[].url", "headers.*.value").
type FieldDoc struct {
	Name     string
	Type     string   // user-facing: "string", "int", "duration", "bytes", "list of string", ...
	Default  string   // from the default tag; documentation only
	Doc      string   // from the doc tag
	Required bool     // from required:"true"
	Enum     []string // from enum:"a|b|c"
}

// Struct tags read by the decoder and by Describe:
//
//	yaml:"name[,inline][,scalar_or_list]"  key name ("-" skips the field; empty
//	                                       means the Go name in snake_case)
//	required:"true"   an error when the key is missing or null
//	enum:"a|b|c"      allowed values of a string or list-of-string field
//	default:"20ms"    the default, for documentation: defaults are set by
//	                  filling the struct before decoding
//	doc:"..."         one-line description
//	doctype:"..."     overrides the user-facing type name in docs
//
// inline merges the fields of an embedded struct into the parent mapping.
// scalar_or_list lets a list field be written as a single value.

type fieldInfo struct {
	name         string
	index        []int
	typ          reflect.Type
	required     bool
	scalarOrList bool
	enum         []string
	def, doc     string
	docType      string
}

type structInfo struct {
	fields []*fieldInfo
	byName map[string]*fieldInfo
	names  []string // keys in declaration order
}

var (
	structInfos sync.Map // reflect.Type -> *structInfo

	durationType    = reflect.TypeFor[time.Duration]()
	exprType        = reflect.TypeFor[Expr]()
	yamlNodeType    = reflect.TypeFor[yaml.Node]()
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
	docTyperType    = reflect.TypeFor[DocTyper]()
)

// structInfoOf returns the fields of struct type t. It panics if t declares
// a field the decoder cannot handle: that is a programming error, caught by
// any test that decodes into the type.
func structInfoOf(t reflect.Type) *structInfo {
	if si, ok := structInfos.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{byName: map[string]*fieldInfo{}}
	addFields(si, t, nil)
	for _, f := range si.fields {
		checkType(f.typ, map[reflect.Type]bool{t: true})
	}
	actual, _ := structInfos.LoadOrStore(t, si)
	return actual.(*structInfo)
}

func addFields(si *structInfo, t reflect.Type, index []int) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !sf.IsExported() && !(sf.Anonymous && strings.Contains(","+opts+",", ",inline,")) {
			continue
		}
		f := &fieldInfo{
			name:     name,
			index:    append(append([]int(nil), index...), i),
			typ:      sf.Type,
			def:      sf.Tag.Get("default"),
			doc:      sf.Tag.Get("doc"),
			docType:  sf.Tag.Get("doctype"),
			required: sf.Tag.Get("required") == "true",
		}
		if r := sf.Tag.Get("required"); r != "" && r != "true" && r != "false" {
			panic(fmt.Sprintf("config: %s.%s: required tag must be true or false, not %q", t, sf.Name, r))
		}
		inline := false
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "inline":
				inline = true
			case "scalar_or_list":
				f.scalarOrList = true
			case "omitempty", "flow":
			default:
				panic(fmt.Sprintf("config: %s.%s: unknown yaml tag option %q", t, sf.Name, o))
			}
		}
		if inline {
			if sf.Type.Kind() != reflect.Struct {
				panic(fmt.Sprintf("config: %s.%s: inline needs a struct field", t, sf.Name))
			}
			addFields(si, sf.Type, f.index)
			continue
		}
		if f.name == "" {
			f.name = snakeCase(sf.Name)
		}
		if e := sf.Tag.Get("enum"); e != "" {
			et := sf.Type
			if et.Kind() == reflect.Slice {
				et = et.Elem()
			}
			if et.Kind() != reflect.String {
				panic(fmt.Sprintf("config: %s.%s: enum needs a string or list of string field", t, sf.Name))
			}
			f.enum = strings.Split(e, "|")
		}
		if f.scalarOrList && sf.Type.Kind() != reflect.Slice {
			panic(fmt.Sprintf("config: %s.%s: scalar_or_list needs a slice field", t, sf.Name))
		}
		if _, dup := si.byName[f.name]; dup {
			panic(fmt.Sprintf("config: %s: two fields named %q", t, f.name))
		}
		si.byName[f.name] = f
		si.fields = append(si.fields, f)
		si.names = append(si.names, f.name)
	}
}

// checkType panics if the decoder cannot decode into t.
func checkType(t reflect.Type, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	if t == durationType || t == exprType || t == yamlNodeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		return
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	case reflect.Pointer, reflect.Slice:
		checkType(t.Elem(), seen)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic(fmt.Sprintf("config: unsupported map key type %s: keys must be strings", t.Key()))
		}
		checkType(t.Elem(), seen)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			panic(fmt.Sprintf("config: unsupported interface type %s: only any", t))
		}
	case reflect.Struct:
		structInfoOf(t)
	default:
		panic(fmt.Sprintf("config: unsupported field type %s", t))
	}
}

// snakeCase turns a Go name into a YAML key: BatchSize -> batch_size,
// CAFile -> ca_file.
func snakeCase(s string) string {
	r := []rune(s)
	var b strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1]) && unicode.IsUpper(r[i-1])) {
				b.WriteByte('_')
			}
			c = unicode.ToLower(c)
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Describe documents the fields of the config struct v (a struct, a pointer
// to one, or a reflect.Type of either), in declaration order, for generated
// docs and `weir` help output. It panics if v is not a struct type the
// decoder supports.
func Describe(v any) []FieldDoc {
	t, ok := v.(reflect.Type)
	if !ok {
		t = reflect.TypeOf(v)
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: Describe needs a struct, not %v", t))
	}
	return describe(t, "", map[reflect.Type]bool{})
}

func describe(t reflect.Type, prefix string, active map[reflect.Type]bool) []FieldDoc {
	if active[t] {
		return nil
	}
	active[t] = true
	defer delete(active, t)
	var out []FieldDoc
	for _, f := range structInfoOf(t).fields {
		name := prefix + f.name
		typ := f.docType
		if typ == "" {
			typ = typeName(f.typ)
			if f.scalarOrList {
				typ = typeName(f.typ.Elem()) + " or " + typ
			}
		}
		out = append(out, FieldDoc{Name: name, Type: typ, Default: f.def, Doc: f.doc, Required: f.required, Enum: f.enum})
		if st, suffix := nestedStruct(f.typ); st != nil {
			out = append(out, describe(st, name+suffix+".", active)...)
		}
	}
	return out
}

// nestedStruct returns the struct type whose fields t's YAML value holds,
// and the path suffix that leads to them.
func nestedStruct(t reflect.Type) (reflect.Type, string) {
	suffix := ""
	for {
		if isLeaf(t) {
			return nil, ""
		}
		switch t.Kind() {
		case reflect.Pointer:
			t = t.Elem()
		case reflect.Slice:
			t, suffix = t.Elem(), suffix+"[]"
		case reflect.Map:
			t, suffix = t.Elem(), suffix+".*"
		case reflect.Struct:
			return t, suffix
		default:
			return nil, ""
		}
	}
}

// isLeaf reports whether t decodes as a unit rather than by its fields.
func isLeaf(t reflect.Type) bool {
	return t == durationType || t == exprType || t == yamlNodeType ||
		reflect.PointerTo(t).Implements(unmarshalerType) || t.Implements(docTyperType)
}

// typeName is the user-facing name of a field type.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		return typeName(t.Elem())
	}
	if t.Implements(docTyperType) {
		return reflect.Zero(t).Interface().(DocTyper).DocType()
	}
	if reflect.PointerTo(t).Implements(docTyperType) {
		return reflect.New(t).Interface().(DocTyper).DocType()
	}
	switch {
	case t == durationType:
		return "duration"
	case t == yamlNodeType:
		return "any"
	case reflect.PointerTo(t).Implements(unmarshalerType):
		return "value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "int"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		return "list of " + typeName(t.Elem())
	case reflect.Map:
		return "map of " + typeName(t.Elem())
	case reflect.Struct:
		return "object"
	case reflect.Interface:
		return "any"
	}
	return t.String()
}

// expectedFor is the Expected text of a type error for t: "an integer",
// "a list of string", ...
func expectedFor(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == durationType:
		return durationExpected
	case t == exprType:
		return "an expression"
	case t.Kind() == reflect.Struct && !isLeaf(t):
		return "a mapping"
	case t.Kind() == reflect.Map:
		return "a mapping of " + typeName(t.Elem())
	case t.Kind() == reflect.Slice:
		return "a list of " + typeName(t.Elem())
	}
	n := typeName(t)
	switch n {
	case "int":
		return "an integer"
	case "bytes":
		return byteSizeExpected
	case "expression", "any":
		return "an " + n
	case "bool":
		return "true or false"
	}
	return "a " + n
}
