// Package lines turns a byte stream of newline-delimited records (NDJSON,
// log lines) into event batches, and tracks which of them downstream has
// finished with. The file and stdin inputs are built on it.
//
// Framing rules: a record ends at '\n'; one trailing '\r' is removed; empty
// lines are skipped but still counted, so an event's Offset is always the
// 1-based line number in its source. A line longer than the configured limit
// is rejected with its first limit bytes as the event value, and the rest of
// it is skipped without being buffered. With the json codec every line must
// be one JSON document; others are rejected with their line number.
//
// Memory: a Reader owns one read buffer (256 KiB, grown only to hold a line
// of up to the limit). Each line is copied once, from the read buffer into
// the arena of the batch it belongs to; an arena is never written again once
// its batch has been emitted. Event values are capped slices, so appending to
// one never writes into its neighbour.
//
// Acknowledgement: all events of a batch, and the events rejected while that
// batch was being filled, hold references on one Ack. When it completes the
// batch's Position is marked done in the optional Progress, which commits
// positions in order.
//
// Threading: a Reader is used by one goroutine (the input's Run). Progress and
// the Reader's counters may be read from any goroutine; Ack callbacks run on
// whichever goroutine gives back the last reference.
package lines
