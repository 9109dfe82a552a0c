// Package app is where weir is wired together: it knows every component
// (inputs, processors, outputs) by its YAML type name, turns a parsed
// pipeline into a validated graph with compiled components, and hands the
// runtime a Factory. It is the only package that imports concrete
// connectors; the runtime, the graph model and the expression language see
// interfaces only (enforced by imports_test.go).
package app
