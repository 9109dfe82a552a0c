// Package window is the window operator: keyed tumbling, sliding and session
// windows over event time (or processing time), with aggregates, allowed
// lateness, late events routed aside, and state that checkpoints with the
// pipeline.
//
// A window [start, end) closes when the operator's watermark reaches
// end-1+allowed_lateness: it emits one result per key and window, a JSON
// object with the key, window_start and window_end (Unix milliseconds) and
// one field per aggregate, with event time end-1 (so that results fall in
// the matching windows of a later window operator). An event whose every
// window has closed is late: it is counted and, when the node has a
// dead_letter output, sent there.
//
// Threading: the runtime calls Process and Advance from the operator's
// goroutine and the Stateful methods from the checkpoint coordinator's,
// never at the same time.
package window

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/expr"
)

// Config is the YAML configuration of a window processor.
type Config struct {
	Window          string                      `yaml:"window" enum:"tumbling|sliding|session" required:"true" doc:"window kind: tumbling (size), sliding (size, slide) or session (gap)"`
	Size            time.Duration               `yaml:"size" doc:"length of a tumbling or sliding window"`
	Slide           time.Duration               `yaml:"slide" doc:"how far apart sliding windows start; size must be a multiple of it"`
	Gap             time.Duration               `yaml:"gap" doc:"a session closes after this long without events of its key"`
	Time            string                      `yaml:"time" enum:"event|processing" default:"event" doc:"which clock assigns events to windows and closes them"`
	AllowedLateness time.Duration               `yaml:"allowed_lateness" default:"0s" doc:"how long after the watermark passes its end a window still takes late events (and emits an updated result for each)"`
	EarlyFire       time.Duration               `yaml:"early_fire" default:"0s" doc:"emit updating results of open windows this often (processing time), each with final: false; 0 emits only final results"`
	Aggregates      config.Ordered[config.Expr] `yaml:"aggregates" required:"true" doc:"output field to aggregate: count(), sum(x), min(x), max(x), avg(x), count_distinct(x), approx_count_distinct(x), top_k(x, k), first(x), last(x), max_by(x, y), min_by(x, y), collect(x, limit)"`
	KeyField        string                      `yaml:"key_field" default:"key" doc:"name of the output field holding the key (set by key_by)"`
	CacheBytes      config.ByteSize             `yaml:"cache_bytes" default:"64MiB" doc:"memory for open windows, shared by the node's instances (an estimate of their size); with state.dir, the windows used least recently beyond it wait in the state store and are read back when an event or the watermark reaches them. Session windows always stay in memory"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Time: "event", KeyField: "key", CacheBytes: 64 * config.MiB}
}

// Window is a compiled window configuration; New makes its instances.
type Window struct {
	kind            kind
	size, slide     int64
	gap             int64
	processing      bool
	allowedLateness int64
	earlyFire       int64
	aggs            []aggSpec
	keyField        string
	cacheBytes      int64
}

type kind uint8

const (
	tumbling kind = iota
	sliding
	session
)

// Compile checks cfg and compiles its aggregates. field names the node in
// errors; pos gives the position of one of its keys.
func Compile(cfg Config, field string, pos func(key string) config.Pos) (*Window, config.Errors) {
	var errs config.Errors
	bad := func(key, msg, expected, hint string) {
		errs.Add(&config.Error{Pos: pos(key), Field: field + "." + key, Msg: msg, Expected: expected, Hint: hint})
	}
	w := &Window{size: int64(cfg.Size), slide: int64(cfg.Slide), gap: int64(cfg.Gap), processing: cfg.Time == "processing",
		allowedLateness: int64(cfg.AllowedLateness), earlyFire: int64(cfg.EarlyFire), keyField: cfg.KeyField,
		cacheBytes: int64(cfg.CacheBytes)}
	switch cfg.Window {
	case "tumbling":
		w.kind = tumbling
		if cfg.Size <= 0 {
			bad("size", "a tumbling window needs a size", "a duration greater than zero", "e.g. size: 10s")
		}
		if cfg.Slide != 0 || cfg.Gap != 0 {
			bad("window", "slide and gap do not apply to tumbling windows", "size only", "use window: sliding for slide, session for gap")
		}
		w.slide = w.size
	case "sliding":
		w.kind = sliding
		switch {
		case cfg.Size <= 0 || cfg.Slide <= 0:
			bad("slide", "a sliding window needs a size and a slide", "durations greater than zero", "e.g. size: 10s and slide: 2s")
		case cfg.Size%cfg.Slide != 0:
			bad("slide", fmt.Sprintf("size %s is not a multiple of slide %s", cfg.Size, cfg.Slide), "a slide that divides size", "")
		}
	case "session":
		w.kind = session
		if cfg.Gap <= 0 {
			bad("gap", "a session window needs a gap", "a duration greater than zero", "e.g. gap: 30m")
		}
		if cfg.Size != 0 || cfg.Slide != 0 {
			bad("window", "size and slide do not apply to session windows", "gap only", "")
		}
	}
	if cfg.AllowedLateness < 0 {
		bad("allowed_lateness", "allowed_lateness is negative", "a duration of 0s or more", "")
	}
	if cfg.EarlyFire < 0 {
		bad("early_fire", "early_fire is negative", "a duration of 0s or more", "")
	}
	if cfg.CacheBytes < 0 {
		bad("cache_bytes", "cache_bytes is negative", "a byte size, e.g. 64MiB", "")
	}
	if cfg.KeyField == "" {
		bad("key_field", "key_field is empty", "an output field name", "")
	}
	if len(cfg.Aggregates) == 0 {
		bad("aggregates", "no aggregates", "at least one, e.g. n: count()", "")
	}
	for _, a := range cfg.Aggregates {
		spec, err := parseAgg(a.Key, a.Value)
		if err != nil {
			err.Field = field + ".aggregates." + a.Key
			errs.Add(err)
			continue
		}
		if a.Key == cfg.KeyField || a.Key == "window_start" || a.Key == "window_end" || a.Key == "final" {
			errs.Add(&config.Error{Pos: a.KeyPos, Field: field + ".aggregates." + a.Key, Msg: fmt.Sprintf("%q is a field of every result", a.Key), Expected: "another output field name"})
			continue
		}
		w.aggs = append(w.aggs, spec)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return w, nil
}

// aggFunc is an aggregate function.
type aggFunc uint8

const (
	aggCount aggFunc = iota
	aggSum
	aggMin
	aggMax
	aggAvg
	aggCountDistinct
	aggApproxDistinct
	aggTopK
	aggFirst
	aggLast
	aggCollect
	aggMaxBy
	aggMinBy
)

var aggNames = map[string]aggFunc{
	"count": aggCount, "sum": aggSum, "min": aggMin, "max": aggMax, "avg": aggAvg,
	"count_distinct": aggCountDistinct, "approx_count_distinct": aggApproxDistinct,
	"top_k": aggTopK, "first": aggFirst, "last": aggLast, "collect": aggCollect,
	"max_by": aggMaxBy, "min_by": aggMinBy,
}

type aggSpec struct {
	name string
	fn   aggFunc
	arg  *expr.Program // nil for count()
	by   *expr.Program // the ordering of max_by and min_by
	n    int           // k of top_k, limit of collect
}

// splitTop splits s at its last comma outside parentheses, brackets and
// quotes; ok is false when there is none.
func splitTop(s string) (head, tail string, ok bool) {
	depth, quote, at := 0, byte(0), -1
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == '\\':
			i++
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		case c == ',' && depth == 0:
			at = i
		}
	}
	if at < 0 {
		return s, "", false
	}
	return strings.TrimSpace(s[:at]), strings.TrimSpace(s[at+1:]), true
}

// parseAgg parses "fn(arg)" or "fn(arg, n)".
func parseAgg(name string, x config.Expr) (aggSpec, *config.Error) {
	src := strings.TrimSpace(x.Src)
	open := strings.IndexByte(src, '(')
	if open < 0 || !strings.HasSuffix(src, ")") {
		return aggSpec{}, &config.Error{Pos: x.Pos, Msg: fmt.Sprintf("%q is not an aggregate call", src), Expected: "fn(expression), e.g. sum(price)", Hint: "aggregates: count, sum, min, max, avg, count_distinct, approx_count_distinct, top_k, first, last, collect"}
	}
	fname := strings.TrimSpace(src[:open])
	fn, ok := aggNames[fname]
	if !ok {
		return aggSpec{}, &config.Error{Pos: x.Pos, Msg: fmt.Sprintf("unknown aggregate %q", fname), Expected: "count, sum, min, max, avg, count_distinct, approx_count_distinct, top_k, first, last or collect"}
	}
	inner := strings.TrimSpace(src[open+1 : len(src)-1])
	spec := aggSpec{name: name, fn: fn}
	if fn == aggTopK || fn == aggCollect {
		spec.n = 10
		if fn == aggCollect {
			spec.n = 100
		}
		if i := strings.LastIndexByte(inner, ','); i >= 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(inner[i+1:])); err == nil {
				if n < 1 {
					return aggSpec{}, &config.Error{Pos: x.Pos, Msg: fmt.Sprintf("%s limit %d", fname, n), Expected: "a limit of at least 1"}
				}
				spec.n, inner = n, strings.TrimSpace(inner[:i])
			}
		}
	}
	if fn == aggCount {
		if inner != "" {
			return aggSpec{}, &config.Error{Pos: x.Pos, Msg: "count takes no argument", Expected: "count()", Hint: "count_distinct(x) counts distinct values"}
		}
		return spec, nil
	}
	if inner == "" {
		return aggSpec{}, &config.Error{Pos: x.Pos, Msg: fname + " needs an argument", Expected: fname + "(expression)"}
	}
	if fn == aggMaxBy || fn == aggMinBy {
		val, by, ok := splitTop(inner)
		if !ok || val == "" || by == "" {
			return aggSpec{}, &config.Error{Pos: x.Pos, Msg: fname + " needs two arguments", Expected: fname + "(value, ordering), e.g. max_by(bidder, price)"}
		}
		byProg, err := expr.Compile(by)
		if err != nil {
			return aggSpec{}, &config.Error{Pos: x.Pos, Msg: err.Error(), Expected: "a valid expression"}
		}
		spec.by, inner = byProg, val
	}
	prog, err := expr.Compile(inner)
	if err != nil {
		ce := &config.Error{Pos: x.Pos, Msg: err.Error(), Expected: "a valid expression"}
		if ee, ok := errors.AsType[*expr.Error](err); ok {
			ce.Pos = x.PosAt(ee.Pos + open + 1 + (len(src[open+1:]) - len(strings.TrimLeft(src[open+1:], " "))))
			ce.Msg, ce.Hint = ee.Msg, ee.Hint
		}
		return aggSpec{}, ce
	}
	spec.arg = prog
	return spec, nil
}
