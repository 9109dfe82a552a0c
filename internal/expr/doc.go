// Package expr implements weir's expression language: the conditions of
// filter nodes, the computed values of map nodes and the keys of key_by.
// docs/expressions.md is the user-facing reference.
//
// # Lifecycle
//
// Compile turns source text into a *Program once, at config load: it lexes,
// parses (precedence climbing), infers the kinds each subexpression can
// produce, rejects operations that can never succeed, folds constant
// subexpressions and compiles the tree to closures. Every compile error is
// an *Error whose Pos is a byte offset into the source, so the config loader
// can report file:line:column. CheckBool additionally rejects, for filters,
// programs that can never yield a bool.
//
// Program.Eval then runs per event against an Env, which supplies the
// event's fields, key, headers, time and a scratch buffer. Field paths that
// are fixed at compile time (user.name, items[0].price, this["a-b"]) are
// handed to Env.Field whole; computed members and indexes, len, in and ==
// walk the raw JSON text of Object and Array values with jsondoc's walkers
// (Member, Element, Len, Iter), and text they find malformed is an
// evaluation error.
//
// # Semantics in brief
//
//   - Missing (an absent field) and Null are "absent". Conditions (&&, ||,
//     !, ?:, EvalBool) treat them as false; == treats them as equal to each
//     other; ordering comparisons with an absent side are false; ?? and
//     coalesce skip them; most functions pass them through (lower(missing)
//     is missing). Arithmetic on them is an error.
//   - == compares by value across kinds: 3 == 3.0; different kinds are
//     unequal; arrays and objects compare structurally.
//   - Int op Int is Int (wrapping on overflow; / truncates toward zero);
//     mixing in a Float gives a Float. Division or modulo by zero, and a
//     non-finite Float result, are errors.
//   - Runtime errors are *EvalError with the source position of the operator
//     or function at fault; an error from Env.Field is returned unchanged.
//
// # Memory and threading
//
// A Program is immutable once compiled and safe for concurrent use by any
// number of goroutines; each evaluation needs its own Env. Evaluation does
// not allocate, except to build an error, to evaluate a call with more than
// eight arguments or an array literal with more than eight computed
// elements, and to parse a numeric string longer than 32 bytes.
//
// Strings that evaluation builds (lower, concat, +, string, format_time,
// computed array literals, decoded escapes) are appended to the buffer
// Env.Scratch returns. Evaluation only ever appends to it, so every result
// stays valid until the buffer's owner resets it for the next event, even
// when an append moves the buffer. Results are capped (len == cap) so that a
// caller appending to one cannot overwrite another.
//
// A result's S may alias the event's data, the program's constants or the
// scratch buffer: it is read-only, and must be copied to outlive the event.
package expr
