package expr

import (
	"strings"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// Type is the static type of an expression's result.
type Type uint8

// The static types. TypeAny means the type depends on the data. TypeNumber
// means Int or Float. A typed expression can still produce Missing or Null
// when its inputs are absent: lower(name) has TypeString and yields Missing
// when name is absent.
const (
	TypeAny Type = iota
	TypeNull
	TypeBool
	TypeInt
	TypeFloat
	TypeNumber
	TypeString
	TypeArray
	TypeObject
)

var typeNames = [...]string{"any", "null", "bool", "int", "float", "number", "string", "array", "object"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// kset is the set of kinds an expression may produce, one bit per
// jsondoc.Kind. The checker works on sets; Type is what callers see.
type kset uint16

const (
	kMissing kset = 1 << jsondoc.Missing
	kNull    kset = 1 << jsondoc.Null
	kBool    kset = 1 << jsondoc.Bool
	kInt     kset = 1 << jsondoc.Int
	kFloat   kset = 1 << jsondoc.Float
	kString  kset = 1 << jsondoc.String
	kObject  kset = 1 << jsondoc.Object
	kArray   kset = 1 << jsondoc.Array

	kAbsent kset = kMissing | kNull
	kNum    kset = kInt | kFloat
	kAll    kset = kMissing | kNull | kBool | kInt | kFloat | kString | kObject | kArray
)

func kindSet(k jsondoc.Kind) kset { return 1 << k }

func (s kset) has(k jsondoc.Kind) bool { return s&kindSet(k) != 0 }

// typ collapses s to a Type, ignoring Missing and Null unless nothing else is
// possible.
func (s kset) typ() Type {
	switch s &^ kAbsent {
	case 0:
		return TypeNull
	case kBool:
		return TypeBool
	case kInt:
		return TypeInt
	case kFloat:
		return TypeFloat
	case kNum:
		return TypeNumber
	case kString:
		return TypeString
	case kArray:
		return TypeArray
	case kObject:
		return TypeObject
	}
	return TypeAny
}

// String names the kinds in s for error messages: "int or float".
func (s kset) String() string {
	if s == kAll {
		return "any value"
	}
	var names []string
	for k := jsondoc.Missing; k <= jsondoc.Array; k++ {
		if s.has(k) {
			names = append(names, k.String())
		}
	}
	switch len(names) {
	case 0:
		return "nothing"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
