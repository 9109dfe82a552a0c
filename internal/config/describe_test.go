package config

import (
	"reflect"
	"testing"
	"time"
)

type describeTLS struct {
	CAFile string `yaml:"ca_file" doc:"CA bundle"`
}

type describeCommon struct {
	Timeout time.Duration `yaml:"timeout" default:"5s" doc:"request timeout"`
}

type describeTarget struct {
	URL string `required:"true"`
}

type describeConfig struct {
	describeCommon `yaml:",inline"`
	Mode           string                    `yaml:"mode" enum:"fast|safe" default:"safe" doc:"how to write"`
	Size           ByteSize                  `yaml:"size" default:"1MiB"`
	Key            *Expr                     `yaml:"key" required:"true" doc:"partition key"`
	Hosts          []string                  `yaml:"hosts,scalar_or_list"`
	Ports          []int                     `yaml:"ports"`
	TLS            *describeTLS              `yaml:"tls"`
	Targets        []describeTarget          `yaml:"targets"`
	Headers        map[string]string         `yaml:"headers"`
	ByName         map[string]describeTarget `yaml:"by_name"`
	Ratio          float64                   `yaml:"ratio"`
	Debug          bool                      `yaml:"debug"`
	Extra          any                       `yaml:"extra"`
	Raw            *yamlNodeAlias            `yaml:"raw" doctype:"YAML"`
	Ignored        string                    `yaml:"-"`
	unexported     string
}

type yamlNodeAlias = struct{ A int }

func TestDescribe(t *testing.T) {
	got := Describe(&describeConfig{})
	want := []FieldDoc{
		{Name: "timeout", Type: "duration", Default: "5s", Doc: "request timeout"},
		{Name: "mode", Type: "string", Default: "safe", Doc: "how to write", Enum: []string{"fast", "safe"}},
		{Name: "size", Type: "bytes", Default: "1MiB"},
		{Name: "key", Type: "expression", Doc: "partition key", Required: true},
		{Name: "hosts", Type: "string or list of string"},
		{Name: "ports", Type: "list of int"},
		{Name: "tls", Type: "object"},
		{Name: "tls.ca_file", Type: "string", Doc: "CA bundle"},
		{Name: "targets", Type: "list of object"},
		{Name: "targets[].url", Type: "string", Required: true},
		{Name: "headers", Type: "map of string"},
		{Name: "by_name", Type: "map of object"},
		{Name: "by_name.*.url", Type: "string", Required: true},
		{Name: "ratio", Type: "number"},
		{Name: "debug", Type: "bool"},
		{Name: "extra", Type: "any"},
		{Name: "raw", Type: "YAML"},
		{Name: "raw.a", Type: "int"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Describe:")
		for i := range max(len(got), len(want)) {
			var g, w FieldDoc
			if i < len(got) {
				g = got[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if !reflect.DeepEqual(g, w) {
				t.Errorf("  %d: got %+v, want %+v", i, g, w)
			}
		}
	}
	if d := Describe(reflect.TypeFor[describeTLS]()); len(d) != 1 || d[0].Name != "ca_file" {
		t.Errorf("Describe(reflect.Type) = %+v", d)
	}
}

func TestPipelineFields(t *testing.T) {
	var names []string
	for _, f := range PipelineFields() {
		names = append(names, f.Name)
	}
	want := []string{"name", "control", "control.address", "logging", "logging.level", "logging.format", "status",
		"runtime", "runtime.batch_size", "runtime.linger", "runtime.queue_events", "runtime.queue_bytes", "runtime.shutdown_timeout", "runtime.gc_percent", "runtime.extra_procs", "runtime.memory_limit",
		"state", "state.dir", "state.checkpoint_interval", "state.block_cache", "inputs", "processors", "outputs"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("PipelineFields = %v\nwant %v", names, want)
	}
	nf := NodeFields()
	if nf[1].Name != "from" || nf[1].Type != "string or list of string" || nf[0].Name != "type" || !nf[0].Required {
		t.Errorf("NodeFields = %+v", nf)
	}
}

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{"BatchSize": "batch_size", "CAFile": "ca_file", "URL": "url", "A": "a", "HTTPServer2": "http_server2", "simple": "simple"} {
		if got := snakeCase(in); got != want {
			t.Errorf("snakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}
