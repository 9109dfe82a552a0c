package jsondoc

// Kind is the type of a Value.
type Kind uint8

// The kinds of values. Missing is not a JSON type: it is what a lookup of an
// absent field returns, and it is distinct from an explicit null.
const (
	Missing Kind = iota
	Null
	Bool
	Int
	Float
	String
	Object
	Array
)

var kindNames = [...]string{"missing", "null", "bool", "int", "float", "string", "object", "array"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "invalid"
}

// Value is a JSON value without allocation: numbers and booleans inline,
// strings as their decoded bytes, objects and arrays as raw JSON text.
//
// S aliases memory owned by someone else (the document's input bytes or its
// scratch space, an expression's scratch space): it is valid until that owner
// is reset, and must be copied to be kept.
type Value struct {
	Kind Kind
	B    bool
	I    int64
	F    float64
	// S is the decoded content of a String, or the raw JSON text of an
	// Object or Array.
	S []byte
}

// MissingValue is the value of an absent field.
func MissingValue() Value { return Value{} }

// NullValue is JSON null.
func NullValue() Value { return Value{Kind: Null} }

// BoolValue is a JSON boolean.
func BoolValue(b bool) Value { return Value{Kind: Bool, B: b} }

// IntValue is a JSON number that is an integer.
func IntValue(i int64) Value { return Value{Kind: Int, I: i} }

// FloatValue is a JSON number with a fraction or exponent.
func FloatValue(f float64) Value { return Value{Kind: Float, F: f} }

// StringValue is a JSON string; s holds its decoded bytes.
func StringValue(s []byte) Value { return Value{Kind: String, S: s} }

// RawValue wraps raw JSON text of an object or array.
func RawValue(k Kind, raw []byte) Value { return Value{Kind: k, S: raw} }

// Seg is one step of a path into a document: an object key, or an array
// index when Index >= 0.
type Seg struct {
	Key   string
	Index int
}

// Key returns a path segment selecting an object member.
func Key(k string) Seg { return Seg{Key: k, Index: -1} }

// Index returns a path segment selecting an array element.
func Index(i int) Seg { return Seg{Index: i} }

// IsIndex reports whether s selects an array element.
func (s Seg) IsIndex() bool { return s.Index >= 0 }
