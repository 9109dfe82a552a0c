package dedup

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/expr"
)

// Config is the spec of the dedup processor.
type Config struct {
	Key         config.Expr              `yaml:"key" default:"meta(\"event_id\")" doc:"The event's id. Ids are per tenant: two tenants may use the same id. An event whose key is missing, null or empty is passed on and counted."`
	Tenant      config.Expr              `yaml:"tenant" default:"meta(\"tenant\")" doc:"The event's tenant: picks the ttl and labels the duplicates metric. Missing means the tenant \"\"."`
	TTL         time.Duration            `yaml:"ttl" default:"1h" doc:"How long an id is remembered, from its first sighting, for tenants not in ttl_by_tenant."`
	TTLByTenant map[string]time.Duration `yaml:"ttl_by_tenant" doc:"The ttl of particular tenants, such as {bigco: 36h}."`
	MaxIDs      int                      `yaml:"max_ids" default:"20000000" doc:"The most ids one instance holds. When it is reached the ids closest to expiry are forgotten early, a bucket at a time, counted and logged."`
}

// Limits of the settings.
const (
	maxTTL    = 366 * 24 * time.Hour
	maxMaxIDs = 1 << 31
	// bucketsPerTTL is how many buckets the shortest ttl spans: expiry is
	// exact to 1/bucketsPerTTL of it.
	bucketsPerTTL = 64
)

// DefaultConfig returns the defaults, to decode the YAML over.
func DefaultConfig() Config {
	return Config{
		Key:    config.Expr{Src: `meta("event_id")`},
		Tenant: config.Expr{Src: `meta("tenant")`},
		TTL:    time.Hour,
		MaxIDs: 20_000_000,
	}
}

// Validate reports every problem with the ttls and max_ids as
// *config.FieldError values joined with errors.Join, or nil. Expressions
// are checked by Compile.
func (c Config) Validate() error {
	var errs []error
	checkTTL := func(field string, d time.Duration) {
		if d <= 0 || d > maxTTL {
			errs = append(errs, &config.FieldError{Field: field, Msg: fmt.Sprintf("ttl %v is out of range", d),
				Expected: "a duration above 0 and at most 8784h (366 days)", Hint: "ids are remembered this long after their first sighting"})
		}
	}
	checkTTL("ttl", c.TTL)
	for _, t := range slices.Sorted(maps.Keys(c.TTLByTenant)) {
		checkTTL("ttl_by_tenant."+t, c.TTLByTenant[t])
	}
	if c.MaxIDs < 1 || c.MaxIDs > maxMaxIDs {
		errs = append(errs, &config.FieldError{Field: "max_ids", Msg: "max_ids " + strconv.Itoa(c.MaxIDs) + " is out of range",
			Expected: "a number from 1 to " + strconv.Itoa(maxMaxIDs), Hint: "each held id takes 15 to 31 bytes"})
	}
	return errors.Join(errs...)
}

// Dedup is a compiled dedup processor: its expressions, ttls and bucket
// width. It is shared by the node's instances; New makes one.
type Dedup struct {
	key, tenant *expr.Program
	ttl         int64            // nanoseconds, for tenants not in byTenant
	byTenant    map[string]int64 // nanoseconds
	gran        int64            // bucket width, nanoseconds
	maxIDs      int
	labels      *tenantLabels
}

// Compile checks cfg and compiles its expressions. field is the dotted
// config path of the node and pos the position of one of its fields, for
// errors. Validate's problems are reported too: the decoder reports them
// already, but a config built in Go has not been decoded.
func Compile(cfg Config, field string, pos func(field string) config.Pos) (*Dedup, config.Errors) {
	var errs config.Errors
	key := compileID(&cfg.Key, field+".key", "key", &errs)
	tenant := compileID(&cfg.Tenant, field+".tenant", "tenant", &errs)
	var fe *config.FieldError
	for _, err := range unjoin(cfg.Validate()) {
		if errors.As(err, &fe) {
			errs.Add(&config.Error{Pos: pos(fe.Field), Field: field + "." + fe.Field, Msg: fe.Msg, Expected: fe.Expected, Hint: fe.Hint})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	d := &Dedup{key: key, tenant: tenant, ttl: int64(cfg.TTL), byTenant: map[string]int64{}, maxIDs: cfg.MaxIDs}
	shortest, longest := d.ttl, d.ttl
	for t, ttl := range cfg.TTLByTenant {
		d.byTenant[t] = int64(ttl)
		shortest, longest = min(shortest, int64(ttl)), max(longest, int64(ttl))
	}
	d.gran = bucketWidth(shortest, longest)
	d.labels = newTenantLabels(slices.Sorted(maps.Keys(cfg.TTLByTenant)))
	return d, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	if err != nil {
		return []error{err}
	}
	return nil
}

// bucketWidth is 1/64 of the shortest ttl, or more when the longest ttl
// would span more than maxSpan-2 buckets (the label arithmetic's bound).
func bucketWidth(shortest, longest int64) int64 {
	const span = maxSpan - 2
	return max(1, shortest/bucketsPerTTL, (longest+span-1)/span)
}

// compileID compiles an id or tenant expression and rejects results that
// cannot be an id.
func compileID(x *config.Expr, field, what string, errs *config.Errors) *expr.Program {
	prog, err := expr.Compile(x.Src)
	if err != nil {
		errs.Add(x.ErrorAt(field, err))
		return nil
	}
	switch t := prog.Type(); t {
	case expr.TypeBool, expr.TypeNull, expr.TypeArray, expr.TypeObject:
		errs.Add(&config.Error{Pos: x.PosAt(0), Field: field, Msg: fmt.Sprintf("the %s expression yields %s", what, t),
			Expected: "an expression that yields a string or a number", Hint: `such as meta("event_id") or event.id`})
		return nil
	}
	return prog
}
