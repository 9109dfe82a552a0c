// Package jsondoc reads and edits JSON documents without decoding them into
// Go values, and without allocating in steady state. It sits on the hot path
// of every pipeline: each event's JSON is parsed at most once per processor
// chain, fields are read for filters and expressions, set, renamed and
// deleted, and the document is written back out.
//
// # Model
//
// Doc.Parse validates a whole document (RFC 8259, as strict as
// encoding/json.Valid, nesting at most 10000 levels) and, when the root is an
// object, indexes its top-level members: spans of the key and of the raw
// value text, in document order. Nothing below the top level is indexed;
// Lookup of a nested path scans the raw text of the containers on the way,
// which is cheap for event-sized documents. Values come back as Value: numbers
// and booleans inline, strings decoded, objects and arrays as raw text.
//
// Values can also be read without a Doc: ParseValue decodes the text of one
// value, and Member, Element, Len and Iter walk the text of an Object or
// Array value. Unlike a Doc's own lookups, which trust the text Parse
// validated, the walkers check the text they read, because a Value may hold
// any bytes (RawValue does not check them), and report a *SyntaxError.
//
// Edits never touch the input bytes. A top-level Set encodes the value into
// the Doc's own buffer and points the member at it; a Delete marks the member
// deleted; a nested edit copies the top-level member's value into the buffer
// with the change applied. AppendJSON then writes the members in order,
// copying untouched values verbatim from the input.
//
// # Invariants
//
//   - A Doc references the bytes given to Parse and never copies or changes
//     them; they must stay unchanged until the next Parse.
//   - Value.S returned by a Doc aliases the input (strings without escapes,
//     objects and arrays), the Doc's scratch space (strings with escapes,
//     Root of a modified Doc) or the Doc's edit buffer (values written by
//     Set). All of it stays valid and unchanged until the next Parse of that
//     Doc, edits included; copy S to keep it longer. Callers must not write
//     to S.
//   - A Doc is modified, until the next Parse, once a Set succeeds (even
//     one storing an equal value), a Delete reports true or a Rename moves
//     a value to another path. An unmodified Doc serializes
//     to exactly its input minus surrounding whitespace; a modified one to a
//     compact object at the levels that were rewritten.
//   - Only documents whose root is an object can be edited. Failed edits
//     change nothing.
//   - Paths are built with Key and Index; a zero Seg is index 0, not the
//     empty key.
//   - Duplicate keys: the last occurrence wins for Lookup and Member; Set
//     replaces it and drops the earlier ones; Delete removes all of them;
//     Iter and Len see every occurrence.
//   - Strings are not checked for valid UTF-8: invalid bytes are accepted by
//     Validate and Parse and returned as they are by Lookup. AppendString,
//     which Set uses for string values and new keys, writes them as \ufffd,
//     like encoding/json (so a key with invalid UTF-8 that Set added cannot
//     be looked up by its original bytes).
//   - Numbers: Int when written as an integer that fits an int64 (so -0 is
//     Int 0), Float otherwise; a literal beyond float64 range is ±Inf, which
//     AppendValue writes as null.
//
// # Concurrency
//
// A Doc is not safe for concurrent use; give each goroutine its own and reuse
// it across events. Package-level functions (Validate, ParseValue,
// AppendValue, AppendString, Member, Element, Len, NewIter) are safe for
// concurrent use as long as each call has its own scratch slice; an Iter
// belongs to one goroutine.
package jsondoc
