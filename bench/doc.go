// Package bench holds weir's end-to-end benchmarks: whole pipelines loaded
// from YAML, run by the real runtime with the real connectors. Run them with
// `make bench`; the side-by-side comparison with a peer lives in
// bench/peers/.
package bench
