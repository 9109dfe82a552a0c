// Package nexmark holds the queries of the Nexmark benchmark as weir
// pipelines (q0.yaml … q12.yaml) and the checks that they compute what the
// queries define.
//
// Each check runs one query through the real app and runtime (the YAML as
// it is, with the generate input's nexmark schema, checkpoints on and a file
// output) on 1,000,000 events, and compares the output with a reference
// computed independently in the test: the same events from
// internal/nexmark's generator, folded with plain maps and sorts, no weir
// code. The inputs generate with parallelism 1, so events reach the
// operators in event-time order and none may be late; the checks assert
// that too.
//
// The checks take about a minute and a large heap, so they skip under the
// race detector (make unit); make nexmark-check runs them, and make test
// runs that. run.sh (make bench-nexmark) measures the queries; see
// README.md.
package nexmark
