// Package processor holds weir's stateless, per-event processors: filter and
// map. Each has a Config (the YAML spec), a Compile step that checks the
// config and compiles its expressions once at load time, and a compiled form
// that is safe to share: New returns a runtime.Processor for one goroutine.
//
// Processors read and change the event through runtime.Record, so a chain of
// them parses the event's JSON once and serializes it once.
package processor
