// Package dag turns a parsed pipeline configuration into a validated,
// immutable dataflow graph: nodes (inputs, processors, outputs), the edges
// between them with their distribution (forward, round-robin, key-hash,
// broadcast), dead-letter routes, and the fusion plan that groups chains of
// stateless processors into stages.
//
// The graph is plain data. It is built once at load time, shared read-only by
// the runtime, `weir graph` and (later) the control plane; nothing in it is
// mutated after Build returns, so it is safe for concurrent use.
package dag
