package collector

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/weir-dev/weir/internal/config"
)

func decodeYAML(t *testing.T, src string) (Config, error) {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(src), &n); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	errs := config.Decode("collector.yaml", n.Content[0], "", &cfg)
	return cfg, errs.Err()
}

func TestConfigFromYAML(t *testing.T) {
	t.Setenv("SHOP_KEY", "from-the-environment")
	cfg, err := decodeYAML(t, `
address: 127.0.0.1:9000
tenants:
  shop: ["${SHOP_KEY}", other-key]
event_id_fields: [id]
client_ip: x_forwarded_for
trusted_proxies: 2
user_agent: true
cors:
  allowed_origins: [https://shop.example.com]
  max_age: 1m
rate_limit:
  events_per_second: 100
  tenants:
    shop: {events_per_second: 5, burst: 2000}
limits:
  max_body_bytes: 2MiB
  max_depth: 10
http:
  read_header_timeout: 2s
  listen_backlog: 1024
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tenants["shop"][0] != "from-the-environment" || cfg.Limits.MaxBodyBytes != 2*config.MiB || cfg.Limits.MaxDepth != 10 ||
		cfg.HTTP.ReadHeaderTimeout != 2*time.Second || cfg.CORS.MaxAge != time.Minute || cfg.RateLimit.Tenants["shop"].Burst != 2000 ||
		cfg.Limits.MaxDecompressedBytes != 4*config.MiB || cfg.HTTP.ListenBacklog != 1024 || cfg.EventIDFields[0] != "id" {
		t.Errorf("decoded %+v", cfg)
	}
	if r := cfg.rateFor("shop"); r.EventsPerSecond != 5 || r.Burst != 2000 {
		t.Errorf("shop rate %+v", r)
	}
	if _, err := New(cfg, &memAppender{}, Options{}); err != nil {
		t.Errorf("New: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := testConfig().Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	if err := DefaultConfig().Validate(); err == nil || !strings.Contains(err.Error(), "tenants: no tenants") {
		t.Errorf("default config without tenants: %v", err)
	}
	for _, tt := range []struct {
		change func(*Config)
		field  string
	}{
		{func(c *Config) { c.Address = "8080" }, "address"},
		{func(c *Config) { c.Tenants["shop"] = []string{""} }, "tenants.shop"},
		{func(c *Config) { c.Tenants["shop"] = nil }, "tenants.shop"},
		{func(c *Config) { c.Tenants["shop"] = []string{"a key"} }, "tenants.shop"},
		{func(c *Config) { c.Tenants["blog"] = []string{keyShop} }, "tenants.shop"},
		{func(c *Config) { c.QueryKeyParam = "write key" }, "query_key_param"},
		{func(c *Config) { c.EventIDFields = []string{""} }, "event_id_fields"},
		{func(c *Config) { c.ClientIP = "header" }, "client_ip"},
		{func(c *Config) { c.TrustedProxies = 0 }, "trusted_proxies"},
		{func(c *Config) { c.UserAgentCacheSize = -1 }, "user_agent_cache_size"},
		{func(c *Config) { c.AppendTimeout = 0 }, "append_timeout"},
		{func(c *Config) { c.RetryAfter = 100 * time.Millisecond }, "retry_after"},
		{func(c *Config) { c.CORS.AllowedOrigins = []string{"https://shop.example.com/"} }, "cors.allowed_origins"},
		{func(c *Config) { c.CORS.AllowedOrigins = []string{"shop.example.com"} }, "cors.allowed_origins"},
		{func(c *Config) { c.CORS.MaxAge = -1 }, "cors.max_age"},
		{func(c *Config) { c.RateLimit.EventsPerSecond = -1 }, "rate_limit.events_per_second"},
		{func(c *Config) { c.RateLimit = RateLimitConfig{EventsPerSecond: 10, Burst: 10} }, "rate_limit.burst"},
		{func(c *Config) { c.RateLimit.Tenants = map[string]TenantRate{"nobody": {}} }, "rate_limit.tenants.nobody"},
		{func(c *Config) { c.RateLimit.Tenants = map[string]TenantRate{"shop": {Burst: -1}} }, "rate_limit.tenants.shop.burst"},
		{func(c *Config) { c.Limits.MaxBodyBytes = 0 }, "limits.max_body_bytes"},
		{func(c *Config) { c.Limits.MaxDecompressedBytes = 2 * config.GiB }, "limits.max_decompressed_bytes"},
		{func(c *Config) { c.Limits.MaxEventBytes = 8 * config.MiB }, "limits.max_event_bytes"},
		{func(c *Config) { c.Limits.MaxEventsPerBatch = 0 }, "limits.max_events_per_batch"},
		{func(c *Config) { c.Limits.MaxDepth = 2000 }, "limits.max_depth"},
		{func(c *Config) { c.Limits.MaxInFlight = 0 }, "limits.max_in_flight"},
		{func(c *Config) { c.HTTP.ReadHeaderTimeout = 0 }, "http.read_header_timeout"},
		{func(c *Config) { c.HTTP.WriteTimeout = 0 }, "http.write_timeout"},
		{func(c *Config) { c.HTTP.MaxHeaderBytes = 10 }, "http.max_header_bytes"},
		{func(c *Config) { c.HTTP.ListenBacklog = -1 }, "http.listen_backlog"},
		{func(c *Config) { c.HTTP.ShutdownTimeout = 0 }, "http.shutdown_timeout"},
	} {
		cfg := testConfig()
		tt.change(&cfg)
		err := cfg.Validate()
		var fe *config.FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Expected == "" {
			t.Errorf("want a FieldError on %s, got %v", tt.field, err)
		}
	}
	// Every problem at once.
	cfg := testConfig()
	cfg.Limits.MaxDepth, cfg.HTTP.IdleTimeout, cfg.ClientIP = 0, 0, "x"
	if n := len(err2slice(cfg.Validate())); n != 3 {
		t.Errorf("%d errors for 3 problems: %v", n, cfg.Validate())
	}
}

func err2slice(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return nil
}

// TestDocsListEveryField keeps docs/collector.md in step with Config.
func TestDocsListEveryField(t *testing.T) {
	doc, err := os.ReadFile("../../docs/collector.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range config.Describe(Config{}) {
		if !strings.Contains(string(doc), "`"+f.Name+"`") {
			t.Errorf("docs/collector.md does not document %s", f.Name)
		}
		if f.Doc == "" && !strings.HasSuffix(f.Name, "*") {
			t.Errorf("%s has no doc tag", f.Name)
		}
	}
	for _, h := range []string{HeaderTenant, HeaderReceivedAt, HeaderEventID, HeaderClientIP, HeaderUABrowser, HeaderUAOS, HeaderUADevice} {
		if !strings.Contains(string(doc), "`"+h+"`") {
			t.Errorf("docs/collector.md does not document header %s", h)
		}
	}
	for _, name := range []string{"weir_collector_requests_total", "weir_collector_events_accepted_total", "weir_collector_events_rejected_total",
		"weir_collector_request_duration_seconds", "weir_collector_append_duration_seconds", "weir_collector_received_bytes_total",
		"weir_collector_decoded_bytes_total", "weir_collector_in_flight_requests"} {
		if !strings.Contains(string(doc), name) {
			t.Errorf("docs/collector.md does not document metric %s", name)
		}
	}
}
