package config

import (
	"strings"
	"testing"
)

func TestParseByteSize(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"0":        0,
		"512":      512,
		"512B":     512,
		"1KB":      1000,
		"10KB":     10000,
		"64KiB":    64 << 10,
		"16MiB":    16 << 20,
		"16 MiB":   16 << 20,
		"16mib":    16 << 20,
		"1GiB":     1 << 30,
		"1GB":      1e9,
		"2TiB":     2 << 40,
		"1PB":      1e15,
		"1.5KiB":   1536,
		"0.5KB":    500,
		"1_000":    1000,
		" 7B ":     7,
		"8EiB":     -1, // error below: no such unit
		"9000PiB":  -1, // too large
		"-1":       -1,
		"-5MiB":    -1,
		"1.5B":     -1,
		"":         -1,
		"MiB":      -1,
		"16MB/s":   -1,
		"1..5KB":   -1,
		"1e3":      -1,
		"12 parts": -1,
	} {
		got, err := ParseByteSize(in)
		if want < 0 {
			if err == nil {
				t.Errorf("ParseByteSize(%q) = %d, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for b, want := range map[ByteSize]string{
		0:                  "0B",
		1:                  "1B",
		1000:               "1KB",
		1024:               "1KiB",
		1234:               "1234B",
		16 * MiB:           "16MiB",
		1536:               "1536B",
		2048000:            "2000KiB",
		5 * GB:             "5GB",
		3 * PiB:            "3PiB",
		-2 * KiB:           "-2KiB",
		1<<63 - 1:          "9223372036854775807B",
		-(1<<63 - 1):       "-9223372036854775807B",
		ByteSize(-1 << 63): "-9223372036854775808B",
	} {
		if got := b.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(b), got, want)
		}
		if b >= 0 {
			if back, err := ParseByteSize(b.String()); err != nil || back != b {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", b.String(), back, err, int64(b))
			}
		}
	}
}

func TestByteSizeYAML(t *testing.T) {
	type cfg struct {
		Size ByteSize `yaml:"size"`
	}
	for doc, want := range map[string]string{
		"size: 1024":                 "1KiB",
		"size: '2MiB'":               "2MiB",
		"size: \"1000\"":             "1KB",
		"size: 0x400":                "1KiB",
		"size: -1":                   "f:1:7: size: byte size -1 is negative",
		"size: 1.5":                  "f:1:7: size: got number 1.5",
		"size: [1]":                  "f:1:7: size: got a list",
		"size: 5 parsecs":            `f:1:7: size: invalid byte size "5 parsecs": unknown unit "parsecs"`,
		"size: 99999999999999999999": "f:1:7: size: byte size 99999999999999999999 is too large",
	} {
		root, serr := parseYAML("f", []byte(doc))
		if serr != nil {
			t.Fatal(serr)
		}
		var c cfg
		errs := Decode("f", root, "", &c)
		got := c.Size.String()
		if errs != nil {
			got = errs.Error()
		}
		if !strings.HasPrefix(got, want) {
			t.Errorf("%s: got %q, want prefix %q", doc, got, want)
		}
	}
}
