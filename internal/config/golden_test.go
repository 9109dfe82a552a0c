package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// Component configs standing in for the real connectors and processors.

type generateConfig struct {
	Rate     int           `yaml:"rate" default:"1000" doc:"events per second"`
	Count    int           `yaml:"count" doc:"stop after this many events; 0 never stops"`
	Interval time.Duration `yaml:"interval" default:"1s" doc:"how often to report progress"`
}

type filterConfig struct {
	Expr *Expr `yaml:"expr" required:"true" doc:"events for which this is true are kept"`
}

type stdoutConfig struct {
	Format string `yaml:"format" enum:"json|text" default:"json" doc:"line format"`
}

type fileConfig struct {
	Path       string            `yaml:"path" required:"true" doc:"file to append to"`
	MaxSize    ByteSize          `yaml:"max_size" default:"64MiB" doc:"rotate the file at this size"`
	FlushEvery time.Duration     `yaml:"flush_every" default:"1s" doc:"flush interval"`
	Fields     []string          `yaml:"fields" doc:"fields to write; all when empty"`
	Tags       map[string]string `yaml:"tags" doc:"static fields added to every event"`
}

func (c fileConfig) Validate() error {
	var errs []error
	if c.MaxSize != 0 && c.MaxSize < KiB {
		errs = append(errs, &FieldError{Field: "max_size", Msg: "max_size is " + c.MaxSize.String(), Expected: "at least 1KiB", Hint: "leave it out for 64MiB"})
	}
	if strings.HasPrefix(c.Path, "/proc/") {
		errs = append(errs, &FieldError{Field: "path", Msg: "path is under /proc", Expected: "a regular file", Hint: "write to a file you own"})
	}
	return errors.Join(errs...)
}

var testComponents = map[string]func() any{
	"generate": func() any { return &generateConfig{Rate: 1000, Interval: time.Second} },
	"filter":   func() any { return &filterConfig{} },
	"stdout":   func() any { return &stdoutConfig{Format: "json"} },
	"file":     func() any { return &fileConfig{MaxSize: 64 * MiB, FlushEvery: time.Second} },
}

// loadAll does what the app does: Load, then decode every node's component
// fields, and report all problems together.
func loadAll(path string) (*Pipeline, error) {
	p, err := Load(path)
	var errs Errors
	if err != nil && !errors.As(err, &errs) {
		return nil, err
	}
	if p == nil {
		return nil, err
	}
	for _, n := range p.Nodes {
		if mk := testComponents[n.Type]; mk != nil {
			errs = append(errs, n.Decode(mk())...)
		}
	}
	return p, errs.Err()
}

func TestGoldenErrors(t *testing.T) {
	t.Setenv("WEIR_TEST_UNSET", "")
	os.Unsetenv("WEIR_TEST_UNSET")
	t.Setenv("WEIR_TEST_EMPTY", "")
	t.Setenv("WEIR_TEST_ADDR", "0.0.0.0:9000")

	files, err := filepath.Glob("testdata/errors/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 15 {
		t.Fatalf("found %d cases, want at least 15", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			_, err := loadAll(file)
			if err == nil {
				t.Fatalf("no error")
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s (run go test -update to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}
