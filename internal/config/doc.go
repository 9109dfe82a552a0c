// Package config loads pipeline files: YAML in, a checked Pipeline out, and
// when the file is wrong, every problem at once, each naming where it is
// (file:line:col), which setting (a dotted path such as
// "processors.enrich.expr"), what was expected, and a hint on what to do.
//
// # Pipeline files
//
// The top level holds name, control, logging, status, runtime, inputs,
// processors and outputs. Each of inputs, processors and outputs maps node
// names to nodes; a node mixes the common fields (type, from, parallelism,
// edge, key_by, on_error, dead_letter) with its component's own fields at
// the same level. Parse decodes and checks the common fields; the
// component's fields are decoded by the component, or the app on its
// behalf, with Node.Decode.
//
// Scalar values (never keys) may refer to the environment: ${NAME},
// ${NAME:-default} (used when NAME is unset or empty), and $${ for a literal
// "${". Substitution happens as each value is decoded, on the value as
// parsed, so positions point into the file as written; a plain scalar is
// then typed again ("parallelism: ${P:-2}" is an integer), a quoted one
// stays a string.
//
// # Component configs
//
// A component's config is a plain struct, declared once; its tags drive
// decoding, the error messages and the generated docs (Describe):
//
//	type FileConfig struct {
//		Path    string          `yaml:"path" required:"true" doc:"file to append to"`
//		MaxSize config.ByteSize `yaml:"max_size" default:"64MiB" doc:"rotate at this size"`
//		Flush   time.Duration   `yaml:"flush" default:"1s" doc:"flush interval"`
//		Format  string          `yaml:"format" enum:"json|text" default:"json"`
//		Filter  *config.Expr    `yaml:"filter" doc:"write only events for which this is true"`
//	}
//
//	cfg := FileConfig{MaxSize: 64 * config.MiB, Flush: time.Second, Format: "json"} // the defaults
//	errs := node.Decode(&cfg)
//
// Defaults are set by filling the struct before decoding (in one function
// per component); the default tag only documents them. Absent and null keys
// leave a field alone. A struct with a Validate() error method (Validator)
// has it called after decoding, for rules across fields; the *FieldErrors it
// returns name fields relative to the struct and the decoder places them. See the tag list by
// Unmarshaler for the supported tags and Decode for the supported types.
//
// # Invariants
//
//   - Every Error from Parse, Decode or Node.Decode has a position in the
//     file and a Msg, and all but those a Validator returns as plain errors
//     have an Expected and a Hint; errors about a setting name its dotted
//     path in Field.
//   - Errors returned by this package are sorted by position.
//   - Parse returns the Pipeline along with Errors when the file is valid
//     YAML, so callers can add the component errors to one report; only a
//     nil error means the Pipeline may run. A YAML syntax error is a single
//     *Error and no Pipeline.
//   - Decoding never changes the yaml.Node trees it reads.
//   - Declaring a config field of a type the decoder cannot handle is a
//     programming error and panics on the first decode into that type.
//
// # Threading
//
// Load, Parse, Decode, Node.Decode and Describe are safe for concurrent use;
// the only shared state is a cache of struct layouts guarded by a sync.Map.
// A Pipeline and its Nodes are plain data: do not change them while other
// goroutines read them.
package config
