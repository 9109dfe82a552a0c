package collector

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/weir-dev/weir/internal/config"
)

// Config is the YAML configuration of the HTTP event collector.
type Config struct {
	Address       string              `yaml:"address" default:":8080" doc:"host:port to listen on; port 0 picks a free port."`
	Tenants       map[string][]string `yaml:"tenants" required:"true" doc:"Write keys per tenant: each tenant name maps to a list of keys, any of which authenticates a request as that tenant. Write keys as ${ENV} references rather than literally. A key belongs to one tenant only."`
	QueryKeyParam string              `yaml:"query_key_param" default:"" doc:"Name of a URL query parameter that may carry the write key (for example writeKey), for browsers sending with navigator.sendBeacon, which cannot set headers. Empty disables it. Query strings end up in proxy access logs: prefer headers."`
	EventIDFields []string            `yaml:"event_id_fields" default:"[event_id, messageId]" doc:"Top-level fields holding the event id, in order of preference. The first one present with a non-empty string value becomes the record key and the event_id header; without one the collector generates a random UUID (version 4)."`
	ClientIP      string              `yaml:"client_ip" enum:"off|remote_addr|x_forwarded_for" default:"off" doc:"Whether and how to add a client_ip header: off; remote_addr (the TCP peer); x_forwarded_for (taken from X-Forwarded-For, trusting trusted_proxies proxies in front of the collector)."`
	// TrustedProxies is the number of proxies in front of the collector that
	// append to X-Forwarded-For; the client address is the entry that many
	// places from the right.
	TrustedProxies     int             `yaml:"trusted_proxies" default:"1" doc:"With client_ip x_forwarded_for: how many proxies in front of the collector append to X-Forwarded-For. The client address is the entry that many places from the right (1: the last entry)."`
	UserAgent          bool            `yaml:"user_agent" default:"false" doc:"Parse the User-Agent header into the ua_browser, ua_os and ua_device headers."`
	UserAgentCacheSize int             `yaml:"user_agent_cache_size" default:"10000" doc:"Number of distinct User-Agent strings whose parse result is cached (LRU); 0 parses every request."`
	AppendTimeout      time.Duration   `yaml:"append_timeout" default:"10s" doc:"How long a request waits for its events to become durable before it is answered 503 (to within a tenth: requests starting close together share a timer)."`
	RetryAfter         time.Duration   `yaml:"retry_after" default:"1s" doc:"Retry-After sent with 503 answers (overload, log full or failed, append timeout); rounded up to whole seconds."`
	CORS               CORSConfig      `yaml:"cors" doc:"Cross-origin requests from browsers."`
	RateLimit          RateLimitConfig `yaml:"rate_limit" doc:"Token-bucket rate limit on events, per tenant."`
	Limits             LimitsConfig    `yaml:"limits" doc:"Size and concurrency limits."`
	HTTP               HTTPConfig      `yaml:"http" doc:"HTTP server timeouts and socket settings."`
}

// CORSConfig configures cross-origin resource sharing.
type CORSConfig struct {
	AllowedOrigins []string      `yaml:"allowed_origins" default:"[]" doc:"Origins allowed to send events from a browser, exactly as the browser sends them (https://shop.example.com, with a port if not the default), or \"*\" for any. Requests with an Origin header not listed get 403; requests without one (servers, mobile apps) are not affected."`
	MaxAge         time.Duration `yaml:"max_age" default:"10m" doc:"How long browsers may cache a preflight answer (Access-Control-Max-Age)."`
}

// RateLimitConfig configures per-tenant rate limits.
type RateLimitConfig struct {
	EventsPerSecond float64               `yaml:"events_per_second" default:"0" doc:"Sustained events per second each tenant may send; 0 means no limit."`
	Burst           int                   `yaml:"burst" default:"0" doc:"Events a tenant may send at once above the sustained rate (the bucket size); 0 means max(events_per_second, limits.max_events_per_batch). At least limits.max_events_per_batch, or a full batch could never pass."`
	Tenants         map[string]TenantRate `yaml:"tenants" doc:"Limits for particular tenants, overriding events_per_second and burst."`
}

// TenantRate is the rate limit of one tenant.
type TenantRate struct {
	EventsPerSecond float64 `yaml:"events_per_second" default:"0" doc:"Sustained events per second; 0 means no limit."`
	Burst           int     `yaml:"burst" default:"0" doc:"Bucket size in events; 0 means max(events_per_second, limits.max_events_per_batch)."`
}

// LimitsConfig bounds what one request may hold and how many are processed
// at once.
type LimitsConfig struct {
	MaxBodyBytes         config.ByteSize `yaml:"max_body_bytes" default:"1MiB" doc:"Largest request body as sent (compressed, if it is); larger bodies get 413."`
	MaxDecompressedBytes config.ByteSize `yaml:"max_decompressed_bytes" default:"4MiB" doc:"Largest body after decompression, enforced while decompressing; larger bodies get 413. Also bounds uncompressed bodies."`
	MaxEventBytes        config.ByteSize `yaml:"max_event_bytes" default:"64KiB" doc:"Largest single event (its JSON text); larger events are rejected one by one."`
	MaxEventsPerBatch    int             `yaml:"max_events_per_batch" default:"1000" doc:"Most events in one request; more gets 413."`
	MaxDepth             int             `yaml:"max_depth" default:"32" doc:"Deepest nesting of objects and arrays in an event (the event object itself is level 1); deeper events are rejected."`
	MaxInFlight          int             `yaml:"max_in_flight" default:"128" doc:"Requests read, validated and appended at once. When all are busy, a new request gets 503 at once rather than queueing. Memory for bodies is bounded by max_in_flight × max_decompressed_bytes."`
}

// HTTPConfig configures the HTTP server and its socket.
type HTTPConfig struct {
	ReadHeaderTimeout time.Duration   `yaml:"read_header_timeout" default:"5s" doc:"Time a client has to send the request headers; slower connections are closed."`
	ReadTimeout       time.Duration   `yaml:"read_timeout" default:"30s" doc:"Time a client has to send the request body, from the end of its headers."`
	WriteTimeout      time.Duration   `yaml:"write_timeout" default:"45s" doc:"Time a client has to take the answer; a client that does not read it is disconnected. (append_timeout bounds the wait for durability.)"`
	IdleTimeout       time.Duration   `yaml:"idle_timeout" default:"2m" doc:"How long an idle keep-alive connection stays open."`
	MaxHeaderBytes    config.ByteSize `yaml:"max_header_bytes" default:"16KiB" doc:"Largest request line plus headers; larger requests get 431. Each open connection holds a read buffer of this size."`
	ListenBacklog     int             `yaml:"listen_backlog" default:"0" doc:"Length of the queue of connections not yet accepted (listen(2) backlog), capped by the kernel (net.core.somaxconn on Linux); 0 uses the system default. Applied on Linux only."`
	ShutdownTimeout   time.Duration   `yaml:"shutdown_timeout" default:"30s" doc:"On shutdown, how long in-flight requests may take to finish before their connections are closed."`
}

// DefaultConfig returns the defaults, to decode the YAML over. Tenants is
// empty: at least one must be configured.
func DefaultConfig() Config {
	return Config{
		Address:            ":8080",
		EventIDFields:      []string{"event_id", "messageId"},
		ClientIP:           ClientIPOff,
		TrustedProxies:     1,
		UserAgentCacheSize: 10000,
		AppendTimeout:      10 * time.Second,
		RetryAfter:         time.Second,
		CORS:               CORSConfig{MaxAge: 10 * time.Minute},
		Limits: LimitsConfig{
			MaxBodyBytes:         1 * config.MiB,
			MaxDecompressedBytes: 4 * config.MiB,
			MaxEventBytes:        64 * config.KiB,
			MaxEventsPerBatch:    1000,
			MaxDepth:             32,
			MaxInFlight:          128,
		},
		HTTP: HTTPConfig{
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      45 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    16 * config.KiB,
			ShutdownTimeout:   30 * time.Second,
		},
	}
}

// Values of Config.ClientIP.
const (
	ClientIPOff           = "off"
	ClientIPRemoteAddr    = "remote_addr"
	ClientIPXForwardedFor = "x_forwarded_for"
)

// Hard bounds of the limits, beyond which a setting is certainly a mistake.
const (
	maxBytesCap     = 1 * config.GiB
	maxDepthCap     = 1000 // below hardMaxDepth, the scanner's framing limit
	maxEventsCap    = 1_000_000
	minHeaderBytes  = 1 * config.KiB
	maxUACacheSize  = 10_000_000
	maxTrustedProxy = 100
)

// Validate reports every problem with c as *config.FieldError values joined
// with errors.Join, or nil.
func (c Config) Validate() error {
	var errs []error
	add := func(field, msg, expected, hint string) {
		errs = append(errs, &config.FieldError{Field: field, Msg: msg, Expected: expected, Hint: hint})
	}

	if _, _, err := net.SplitHostPort(c.Address); err != nil {
		add("address", fmt.Sprintf("invalid address %q", c.Address), "host:port, such as :8080 or 127.0.0.1:8080", "")
	}

	if len(c.Tenants) == 0 {
		add("tenants", "no tenants", "at least one tenant with a list of write keys", "tenants: {shop: [${SHOP_WRITE_KEY}]}")
	}
	owner := map[string]string{}
	for _, name := range sortedKeys(c.Tenants) {
		keys := c.Tenants[name]
		field := "tenants." + name
		if name == "" {
			add("tenants", "empty tenant name", "a non-empty name", "")
		}
		if len(keys) == 0 {
			add(field, "no write keys", "a list of one or more write keys", "")
		}
		for _, k := range keys {
			switch {
			case k == "":
				add(field, "empty write key", "a non-empty key", "if the key is an ${ENV} reference, is the variable set?")
			case strings.ContainsAny(k, " \t\r\n"):
				add(field, "write key contains whitespace", "a key without spaces", "")
			case owner[k] != "" && owner[k] != name:
				add(field, fmt.Sprintf("a write key is also a key of tenant %q", owner[k]), "each key to belong to one tenant", "")
			default:
				owner[k] = name
			}
		}
	}

	if c.QueryKeyParam != "" && !validParamName(c.QueryKeyParam) {
		add("query_key_param", fmt.Sprintf("invalid parameter name %q", c.QueryKeyParam), "letters, digits, '_' or '-', such as writeKey", "")
	}
	for i, f := range c.EventIDFields {
		if f == "" {
			add("event_id_fields", fmt.Sprintf("entry %d is empty", i), "top-level field names such as event_id", "")
		}
	}
	switch c.ClientIP {
	case ClientIPOff, ClientIPRemoteAddr, ClientIPXForwardedFor:
	default:
		add("client_ip", fmt.Sprintf("unknown value %q", c.ClientIP), "off, remote_addr or x_forwarded_for", "")
	}
	if c.TrustedProxies < 1 || c.TrustedProxies > maxTrustedProxy {
		add("trusted_proxies", fmt.Sprintf("trusted_proxies is %d", c.TrustedProxies), fmt.Sprintf("1 to %d", maxTrustedProxy), "")
	}
	if c.UserAgentCacheSize < 0 || c.UserAgentCacheSize > maxUACacheSize {
		add("user_agent_cache_size", fmt.Sprintf("user_agent_cache_size is %d", c.UserAgentCacheSize), fmt.Sprintf("0 to %d entries", maxUACacheSize), "")
	}
	if c.AppendTimeout <= 0 {
		add("append_timeout", fmt.Sprintf("append_timeout is %v", c.AppendTimeout), "a positive duration such as 10s", "")
	}
	if c.RetryAfter < time.Second || c.RetryAfter > time.Hour {
		add("retry_after", fmt.Sprintf("retry_after is %v", c.RetryAfter), "1s to 1h (Retry-After is whole seconds)", "")
	}

	for i, o := range c.CORS.AllowedOrigins {
		if o != "*" && !validOrigin(o) {
			add("cors.allowed_origins", fmt.Sprintf("entry %d: invalid origin %q", i, o), "\"*\" or scheme://host[:port] with no path, such as https://shop.example.com", "browsers send the origin without a trailing slash")
		}
	}
	if c.CORS.MaxAge < 0 {
		add("cors.max_age", fmt.Sprintf("max_age is %v", c.CORS.MaxAge), "a duration >= 0", "")
	}

	l := c.Limits
	checkBytes := func(field string, v config.ByteSize, lo config.ByteSize) {
		if v < lo || v > maxBytesCap {
			add(field, fmt.Sprintf("%s is %d bytes", field[strings.LastIndexByte(field, '.')+1:], v), fmt.Sprintf("%d bytes to 1GiB", lo), "")
		}
	}
	checkBytes("limits.max_body_bytes", l.MaxBodyBytes, 1)
	checkBytes("limits.max_decompressed_bytes", l.MaxDecompressedBytes, 1)
	checkBytes("limits.max_event_bytes", l.MaxEventBytes, 2)
	if l.MaxEventBytes > l.MaxDecompressedBytes && l.MaxDecompressedBytes > 0 {
		add("limits.max_event_bytes", "max_event_bytes is above max_decompressed_bytes", "at most max_decompressed_bytes", "")
	}
	if l.MaxEventsPerBatch < 1 || l.MaxEventsPerBatch > maxEventsCap {
		add("limits.max_events_per_batch", fmt.Sprintf("max_events_per_batch is %d", l.MaxEventsPerBatch), fmt.Sprintf("1 to %d", maxEventsCap), "")
	}
	if l.MaxDepth < 1 || l.MaxDepth > maxDepthCap {
		add("limits.max_depth", fmt.Sprintf("max_depth is %d", l.MaxDepth), fmt.Sprintf("1 to %d", maxDepthCap), "")
	}
	if l.MaxInFlight < 1 {
		add("limits.max_in_flight", fmt.Sprintf("max_in_flight is %d", l.MaxInFlight), "at least 1", "")
	}

	checkRate := func(field string, r TenantRate) {
		if r.EventsPerSecond < 0 || math.IsNaN(r.EventsPerSecond) || math.IsInf(r.EventsPerSecond, 0) {
			add(field+".events_per_second", fmt.Sprintf("invalid rate %v", r.EventsPerSecond), "a number of events per second >= 0 (0 = no limit)", "")
		}
		if r.Burst < 0 {
			add(field+".burst", fmt.Sprintf("burst is %d", r.Burst), "a number of events >= 0", "")
		} else if r.EventsPerSecond > 0 && r.Burst > 0 && r.Burst < l.MaxEventsPerBatch {
			add(field+".burst", fmt.Sprintf("burst %d is below limits.max_events_per_batch (%d)", r.Burst, l.MaxEventsPerBatch), "at least max_events_per_batch", "a full batch takes that many tokens at once; 0 picks a suitable burst")
		}
	}
	checkRate("rate_limit", TenantRate{EventsPerSecond: c.RateLimit.EventsPerSecond, Burst: c.RateLimit.Burst})
	for _, name := range sortedKeys(c.RateLimit.Tenants) {
		if _, ok := c.Tenants[name]; !ok {
			add("rate_limit.tenants."+name, fmt.Sprintf("unknown tenant %q", name), "a tenant listed under tenants", "")
			continue
		}
		checkRate("rate_limit.tenants."+name, c.RateLimit.Tenants[name])
	}

	h := c.HTTP
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"http.read_header_timeout", h.ReadHeaderTimeout},
		{"http.read_timeout", h.ReadTimeout},
		{"http.write_timeout", h.WriteTimeout},
		{"http.idle_timeout", h.IdleTimeout},
		{"http.shutdown_timeout", h.ShutdownTimeout},
	} {
		if d.v <= 0 {
			add(d.field, fmt.Sprintf("%s is %v", d.field[len("http."):], d.v), "a positive duration", "")
		}
	}
	if h.MaxHeaderBytes < minHeaderBytes || h.MaxHeaderBytes > 16*config.MiB {
		add("http.max_header_bytes", fmt.Sprintf("max_header_bytes is %d", h.MaxHeaderBytes), "1KiB to 16MiB", "")
	}
	if h.ListenBacklog < 0 || h.ListenBacklog > math.MaxInt32 {
		add("http.listen_backlog", fmt.Sprintf("listen_backlog is %d", h.ListenBacklog), "0 (system default) or a positive number of connections", "")
	}
	return errors.Join(errs...)
}

// rateFor returns the rate limit of tenant name.
func (c Config) rateFor(name string) TenantRate {
	r := TenantRate{EventsPerSecond: c.RateLimit.EventsPerSecond, Burst: c.RateLimit.Burst}
	if o, ok := c.RateLimit.Tenants[name]; ok {
		r = o
	}
	if r.EventsPerSecond > 0 && r.Burst == 0 {
		r.Burst = max(int(math.Ceil(r.EventsPerSecond)), c.Limits.MaxEventsPerBatch)
	}
	return r
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && o == u.Scheme+"://"+u.Host
}

func validParamName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
