package config

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testOptions is a small registry of every value type.
type testOptions struct {
	Brokers  []string
	Group    string
	Password string
	Threads  int
	Ratio    float64
	TLS      bool
	Window   time.Duration
}

func newTestRegistry() (*Registry, *testOptions) {
	o := &testOptions{Brokers: []string{"localhost:9092"}, Group: "stakhanov", Threads: 1, Ratio: 2, Window: 28 * 24 * time.Hour}
	r := &Registry{}
	r.Var(List(&o.Brokers), "kafka.brokers", "brokers", "bootstrap brokers")
	r.Var(String(&o.Group), "kafka.group", "group", "consumer group")
	r.Add(&Option{Key: "kafka.sasl.password", Usage: "SASL password", Secret: true, Value: String(&o.Password)})
	r.Var(Bool(&o.TLS), "kafka.tls.enabled", "tls", "use TLS")
	r.Var(Int(&o.Threads), "duckdb.threads", "duckdb-threads", "DuckDB threads")
	r.Var(Float(&o.Ratio), "rules.record_ratio", "record-ratio", "record ratio")
	r.Var(Duration(&o.Window), "rules.window", "window", "window")
	return r, o
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stakhanov.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestResolvePrecedence(t *testing.T) {
	file := `
kafka:
  brokers: [file-1:9092, file-2:9092]
  group: from-file
  sasl:
    password: from-file
duckdb:
  threads: 4
rules:
  record_ratio: 3.5
  window: 336h
`
	tests := []struct {
		name  string
		file  string
		env   []string
		flags []string
		want  testOptions
		from  map[string]Source
	}{
		{
			name: "defaults",
			want: testOptions{Brokers: []string{"localhost:9092"}, Group: "stakhanov", Threads: 1, Ratio: 2, Window: 672 * time.Hour},
			from: map[string]Source{"kafka.group": FromDefault},
		},
		{
			name: "file over defaults",
			file: file,
			want: testOptions{Brokers: []string{"file-1:9092", "file-2:9092"}, Group: "from-file", Password: "from-file", Threads: 4, Ratio: 3.5, Window: 336 * time.Hour},
			from: map[string]Source{"kafka.group": FromFile, "kafka.tls.enabled": FromDefault},
		},
		{
			name: "environment over file",
			file: file,
			env:  []string{"STAKHANOV_KAFKA_GROUP", "from-env", "STAKHANOV_KAFKA_SASL_PASSWORD", "s3cret", "STAKHANOV_KAFKA_BROKERS", "env-1:9092,env-2:9092"},
			want: testOptions{Brokers: []string{"env-1:9092", "env-2:9092"}, Group: "from-env", Password: "s3cret", Threads: 4, Ratio: 3.5, Window: 336 * time.Hour},
			from: map[string]Source{"kafka.group": FromEnv, "duckdb.threads": FromFile},
		},
		{
			name:  "flags over environment",
			file:  file,
			env:   []string{"STAKHANOV_KAFKA_GROUP", "from-env", "STAKHANOV_DUCKDB_THREADS", "8"},
			flags: []string{"-group", "from-flag", "-tls", "-window", "1h"},
			want:  testOptions{Brokers: []string{"file-1:9092", "file-2:9092"}, Group: "from-flag", Password: "from-file", Threads: 8, Ratio: 3.5, TLS: true, Window: time.Hour},
			from:  map[string]Source{"kafka.group": FromFlag, "duckdb.threads": FromEnv, "kafka.tls.enabled": FromFlag},
		},
		{
			// a flag given as its default still wins over the file
			name:  "a flag equal to the default",
			file:  file,
			flags: []string{"-duckdb-threads", "1"},
			want:  testOptions{Brokers: []string{"file-1:9092", "file-2:9092"}, Group: "from-file", Password: "from-file", Threads: 1, Ratio: 3.5, Window: 336 * time.Hour},
			from:  map[string]Source{"duckdb.threads": FromFlag},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, o := newTestRegistry()
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			r.Bind(fs)
			if err := fs.Parse(tt.flags); err != nil {
				t.Fatal(err)
			}
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			if err := r.Resolve(path, env(tt.env...)); err != nil {
				t.Fatal(err)
			}
			if got, want := *o, tt.want; strings.Join(got.Brokers, ",") != strings.Join(want.Brokers, ",") ||
				got.Group != want.Group || got.Password != want.Password || got.Threads != want.Threads ||
				got.Ratio != want.Ratio || got.TLS != want.TLS || got.Window != want.Window {
				t.Errorf("resolved %+v, want %+v", got, want)
			}
			for key, want := range tt.from {
				if got, _ := r.Lookup(key).Source(); got != want {
					t.Errorf("%s from %v, want %v", key, got, want)
				}
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		env    []string
		target error
		says   []string // in the message
	}{
		{"unknown key", "kafka:\n  brokrs: [a]\n", nil, ErrUnknownKey, []string{":2:", "kafka.brokrs", "kafka.brokers"}},
		{"unknown section", "kafak:\n  brokers: [a]\n", nil, ErrUnknownKey, []string{":1:", "kafak"}},
		{"key below a value", "kafka:\n  group:\n    name: x\n", nil, ErrBadValue, []string{":2:", "kafka.group", "mapping"}},
		{"a list for one value", "kafka:\n  group: [a, b]\n", nil, ErrBadValue, []string{"kafka.group", "list"}},
		{"not a number", "duckdb:\n  threads: many\n", nil, ErrBadValue, []string{":2:", "duckdb.threads", "many"}},
		{"not a duration", "rules:\n  window: 28 days\n", nil, ErrBadValue, []string{"rules.window", "duration"}},
		{"given twice", "kafka:\n  group: a\n  group: b\n", nil, ErrBadValue, []string{":3:", "twice"}},
		{"not a mapping", "- a\n- b\n", nil, ErrBadValue, []string{"mapping"}},
		{"bad environment", "", []string{"STAKHANOV_DUCKDB_THREADS", "x"}, ErrBadValue, []string{"STAKHANOV_DUCKDB_THREADS"}},
		{"bad YAML", "kafka: [\n", nil, nil, []string{"stakhanov.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := newTestRegistry()
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			err := r.Resolve(path, env(tt.env...))
			if err == nil {
				t.Fatal("no error")
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("%v is not %v", err, tt.target)
			}
			for _, s := range tt.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%q does not say %q", err, s)
				}
			}
		})
	}
}

func TestResolveEmptyFile(t *testing.T) {
	for _, text := range []string{"", "# only a comment\n", "---\n"} {
		r, o := newTestRegistry()
		if err := r.Resolve(writeFile(t, text), env()); err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if o.Group != "stakhanov" {
			t.Errorf("%q changed the group to %q", text, o.Group)
		}
	}
}

// TestWriteYAMLReadsBack: the printed configuration is a file that gives
// the same values, with the secret redacted and sources named.
func TestWriteYAMLReadsBack(t *testing.T) {
	r, o := newTestRegistry()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	r.Bind(fs)
	if err := fs.Parse([]string{"-group", `odd "name": with, commas`, "-brokers", "a:1,b:2"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Resolve("", env("STAKHANOV_KAFKA_SASL_PASSWORD", "s3cret", "STAKHANOV_RULES_WINDOW", "90m")); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	if strings.Contains(text, "s3cret") || !strings.Contains(text, Redacted) {
		t.Fatalf("secret not redacted:\n%s", text)
	}
	for _, s := range []string{"from flag -group", "from environment STAKHANOV_RULES_WINDOW", "# DuckDB threads\n  threads: 1"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}
	back, o2 := newTestRegistry()
	if err := back.Resolve(writeFile(t, text), env()); err != nil {
		t.Fatalf("reading the output back: %v\n%s", err, text)
	}
	o2.Password = o.Password // redacted
	if strings.Join(o2.Brokers, ",") != strings.Join(o.Brokers, ",") || o2.Group != o.Group || o2.Window != o.Window ||
		o2.Threads != o.Threads || o2.Ratio != o.Ratio || o2.TLS != o.TLS {
		t.Errorf("read back %+v, want %+v", *o2, *o)
	}
}

func TestUnknownEnv(t *testing.T) {
	r, _ := newTestRegistry()
	got := r.UnknownEnv([]string{"STAKHANOV_KAFKA_GROUP=x", "STAKHANOV_KAFKA_GRUOP=y", "HOME=/root", "STAKHANOV_PYTHON=/usr/bin/python3"}, "STAKHANOV_PYTHON")
	if strings.Join(got, ",") != "STAKHANOV_KAFKA_GRUOP" {
		t.Errorf("unknown variables %v", got)
	}
}

func TestAddRejectsBadKeys(t *testing.T) {
	for _, key := range []string{"", "Kafka.group", "kafka..group", ".kafka", "kafka.", "kafka", "kafka.group.x"} {
		t.Run(key, func(t *testing.T) {
			r, _ := newTestRegistry()
			defer func() {
				if recover() == nil {
					t.Errorf("key %q accepted", key)
				}
			}()
			var s string
			r.Add(&Option{Key: key, Value: String(&s)})
		})
	}
}
