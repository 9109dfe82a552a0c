// Package event defines the unit of data that flows through weir: the Event,
// the Batch that carries events between goroutines, and the Ack that tells an
// input when everything derived from what it read is finished.
//
// Invariants:
//   - An Event's Key and Value bytes are immutable once the event has been
//     emitted: a processor that changes a value writes new bytes and points
//     the event at them, so batches can be shared (broadcast) without copies.
//   - A Batch has exactly one owner at a time. Whoever holds it may change it;
//     handing it to a queue hands over ownership. The last owner releases it.
//   - Every event holds a reference on its Ack. The reference is given back
//     exactly once on every path: written by an output, dropped on purpose,
//     dead-lettered, or replaced by derived events (Ack.Add before Done).
package event
