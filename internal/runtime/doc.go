// Package runtime executes a dataflow graph: it instantiates every node's
// components, wires bounded queues between stages, runs one goroutine per
// stage instance, routes batches over edges (forward, round-robin,
// key-hash, broadcast), applies error policies, and stops gracefully.
//
// Invariants:
//   - Batches, not single events, cross goroutines. Every queue is bounded in
//     events and bytes; a full queue blocks its producers (backpressure) and
//     never grows.
//   - Every event holds one reference on its input's Ack. The runtime gives it
//     back exactly once on every path: after an output's Flush covered it,
//     when a processor filtered it out, when the error policy dropped it,
//     or by handing it to the dead-letter output. Broadcast and fan-out take
//     one more reference per copy.
//   - A fused chain parses an event's JSON at most once (Record.Doc) and
//     serializes it at most once, at the end of the chain.
//
// Threading: a Pipeline is built once (New) and run once (Run). Each stage
// instance is owned by one goroutine; Processor and Output values are used by
// that goroutine only. NodeStats and StageStats are atomics, safe to read
// from any goroutine while the pipeline runs.
package runtime
