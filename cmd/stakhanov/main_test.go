package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/stakhanov/stakhanov/access"
)

// capture runs f with os.Stdout redirected and returns what it printed.
func capture(t *testing.T, f func() error) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b := new(strings.Builder)
		buf := make([]byte, 1<<16)
		for {
			n, err := r.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		done <- b.String()
	}()
	ferr := f()
	w.Close()
	os.Stdout = old
	return <-done, ferr
}

func TestDemoThenQuery(t *testing.T) {
	db := filepath.Join(t.TempDir(), "out.duckdb")
	ctx := context.Background()
	out, err := capture(t, func() error { return demo(ctx, []string{"--duckdb", db, "--plants", "8", "--days", "40"}) })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"record_shift alerts", "suspect_record alerts", "pace_setter alerts", "common_pace alerts", "Top records", "stakhanov query --duckdb " + db} {
		if !strings.Contains(out, want) {
			t.Errorf("demo summary lacks %q:\n%s", want, out)
		}
	}
	for _, c := range []struct{ format, want string }{
		{"table", "(1 row)"},
		{"csv", "n\n"},
		{"json", `"n":`},
	} {
		out, err := capture(t, func() error {
			return query(ctx, []string{"--duckdb", db, "--format", c.format, "SELECT count(*) AS n FROM shifts"})
		})
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("query --format %s: %v\n%s", c.format, err, out)
		}
	}
	if _, err := capture(t, func() error { return query(ctx, []string{"--duckdb", db}) }); err == nil {
		t.Error("query without SQL accepted")
	}

	// the file is free: arrow, snapshot and export read it directly
	out, err = capture(t, func() error {
		return query(ctx, []string{"--duckdb", db, "--format", "arrow", "SELECT plant_id, count(*) AS n FROM shifts GROUP BY ALL"})
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReader(strings.NewReader(out))
	if err != nil {
		t.Fatalf("--format arrow: %v", err)
	}
	var rows int64
	for r.Next() {
		rows += r.RecordBatch().NumRows()
	}
	if r.Err() != nil || r.Schema().NumFields() != 2 || rows != 8 {
		t.Errorf("--format arrow: %d rows, schema %s, %v", rows, r.Schema(), r.Err())
	}
	r.Release()
	snapDir := filepath.Join(t.TempDir(), "snap")
	out, err = capture(t, func() error { return snapshot(ctx, []string{"--duckdb", db, "--dir", snapDir}) })
	if err != nil || !strings.Contains(out, "snapshot: "+filepath.Join(snapDir, "stakhanov-snapshot.duckdb")) ||
		!strings.Contains(out, "rows: shifts ") {
		t.Errorf("snapshot: %v\n%s", err, out)
	}
	exportDir := filepath.Join(t.TempDir(), "export")
	out, err = capture(t, func() error { return export(ctx, []string{"--duckdb", db, "--out", exportDir}) })
	if err != nil || !strings.Contains(out, "exported shifts ") {
		t.Errorf("export: %v\n%s", err, out)
	}
	if m, _ := filepath.Glob(filepath.Join(exportDir, "shifts", "month=*", "data_0.parquet")); len(m) == 0 {
		t.Error("export wrote no shifts partition")
	}
	if _, err := capture(t, func() error { return export(ctx, []string{"--duckdb", db, "--out", exportDir}) }); err == nil {
		t.Error("export over a full directory accepted")
	}
	if _, err := capture(t, func() error { return export(ctx, []string{"--duckdb", db}) }); err == nil {
		t.Error("export without --out accepted")
	}
	for _, bad := range [][]string{{"--file-size-mb", "0"}, {"--memory-limit", "lots"}} {
		args := append([]string{"--duckdb", db, "--out", filepath.Join(t.TempDir(), "x")}, bad...)
		if _, err := capture(t, func() error { return export(ctx, args) }); err == nil {
			t.Errorf("export %v accepted", bad)
		}
	}
}

// captureStderr runs f with os.Stderr redirected, for help texts.
func captureStderr(t *testing.T, f func() error) (string, error) {
	t.Helper()
	old := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldErr := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	ferr := f()
	w.Close()
	os.Stderr, os.Stdout = oldErr, old
	return <-done, ferr
}

func TestLiveReadingFlags(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--brokers", "127.0.0.1:1", "--query-addr", "bogus"}, "query address"},
		{[]string{"--brokers", "127.0.0.1:1", "--query-timeout", "0s"}, "query timeout"},
		{[]string{"--brokers", "127.0.0.1:1", "--query-max-concurrent", "0"}, "max concurrent"},
		{[]string{"--brokers", "127.0.0.1:1", "--snapshot-interval", "-1m"}, "snapshot interval"},
	} {
		if err := run(ctx, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("run %v: %v, want %q", c.args, err, c.want)
		}
	}
	for cmd, wants := range map[string][]string{
		"run": {"-query-addr", "127.0.0.1:0", "-query-timeout", "1m0s", "-query-max-concurrent", "-snapshot-dir", "-snapshot-interval", "15m0s", "docs/live-reading.md",
			"-query-token-file", "STAKHANOV_ENDPOINTS_QUERY_TOKEN", "-query-tls-cert-file", "-query-tls-key-file", "-query-tls-client-ca-file", "stakhanov token",
			"-flight-addr", "FILE.flight", "the same for both"},
		"query": {"-endpoint", "arrow", "FILE.endpoint", "-query-token-file", "$STAKHANOV_ENDPOINTS_QUERY_TOKEN", "-query-tls-ca-file", "-query-tls-server-name", "-query-tls-cert-file",
			"-flight", "grpc+tls://", "FILE.flight"},
		"snapshot": {"-endpoint", "-dir", "-json", "--snapshot-dir", "-query-token-file", "-query-tls-ca-file", "-memory-limit", "-file-size-mb"},
		"export":   {"-out", "-endpoint", "-memory-limit", "-file-size-mb", "month=YYYY-MM", "year=YYYY", "-query-token-file", "-query-tls-ca-file"},
		"demo":     {"-query-addr", "loopback"},
		"token":    {"-out", "0600", "--query-token-file"},
	} {
		f := map[string]func(context.Context, []string) error{"run": run, "query": query, "snapshot": snapshot, "export": export, "demo": demo, "token": token}[cmd]
		help, err := captureStderr(t, func() error { return f(ctx, []string{"-h"}) })
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s -h: %v", cmd, err)
		}
		for _, w := range wants {
			if !strings.Contains(help, w) {
				t.Errorf("%s -h lacks %q:\n%s", cmd, w, help)
			}
		}
	}
	if !strings.Contains(usage, "stakhanov snapshot") || !strings.Contains(usage, "stakhanov export") {
		t.Errorf("usage lacks snapshot or export:\n%s", usage)
	}
	if help, _ := captureStderr(t, func() error { return query(ctx, []string{"-h"}) }); strings.Contains(help, "-flight-token-file") || strings.Contains(help, "-flight-ca-file") {
		t.Errorf("query has client flags of its own for Flight SQL:\n%s", help)
	}
	// --flight takes the token from the endpoint's client flags
	missing := filepath.Join(t.TempDir(), "no-token")
	if _, err := capture(t, func() error {
		return query(ctx, []string{"--flight", "grpc://127.0.0.1:1", "--query-token-file", missing, "SELECT 1"})
	}); err == nil || !strings.Contains(err.Error(), "query token: token file") || !strings.Contains(err.Error(), missing) {
		t.Errorf("query --flight with a missing --query-token-file: %v", err)
	}
	// Flight SQL beyond loopback without credentials: refused, naming the
	// endpoint's options
	if err := run(ctx, []string{"--brokers", "127.0.0.1:1", "--flight-addr", "0.0.0.0:0"}); err == nil ||
		!strings.Contains(err.Error(), "--flight-addr") || !strings.Contains(err.Error(), "--query-token-file") {
		t.Errorf("run --flight-addr 0.0.0.0:0 without a token: %v", err)
	}
	// an endpoint that does not answer is an error, not a silent fallback
	if _, err := capture(t, func() error {
		return query(ctx, []string{"--endpoint", "http://127.0.0.1:1", "SELECT 1"})
	}); err == nil {
		t.Error("a dead --endpoint answered")
	}
}

func TestFlags(t *testing.T) {
	ctx := context.Background()
	if err := run(ctx, []string{"--brokers", ""}); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Errorf("run without brokers: %v", err)
	}
	if err := run(ctx, []string{"--brokers", "127.0.0.1:1", "--record-ratio", "0.5"}); err == nil || !strings.Contains(err.Error(), "record ratio") {
		t.Errorf("run with a bad threshold: %v", err)
	}
	if err := broker(ctx, []string{"--listen", "0.0.0.0:9092"}); err == nil {
		t.Error("embedded broker accepted a non-loopback address")
	}
	if err := demo(ctx, []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("demo -h: %v", err)
	}
	// the demo takes no credentials, so it serves loopback only
	db := filepath.Join(t.TempDir(), "wide.duckdb")
	if err := demo(ctx, []string{"--duckdb", db, "--query-addr", "0.0.0.0:0"}); err == nil || !strings.Contains(err.Error(), "loopback only") {
		t.Errorf("demo beyond loopback: %v", err)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused demo made %s (%v)", db, err)
	}
}

// TestConfigCommand resolves run's options as `stakhanov config` prints
// them: file, then environment, then flags; the secret redacted; a
// misspelled key refused with its line.
func TestConfigCommand(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "stakhanov.yaml")
	if err := os.WriteFile(path, []byte("kafka:\n  brokers: [file:9092]\n  group: from-file\n  sasl:\n    mechanism: scram-sha-512\n    username: stakhanov\nrules:\n  record_ratio: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STAKHANOV_KAFKA_SASL_PASSWORD", "s3cret-pass")
	t.Setenv("STAKHANOV_KAFKA_GROUP", "from-env")
	out, err := capture(t, func() error { return showConfig(ctx, []string{"--config", path, "--record-ratio", "5"}) })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`brokers: ["file:9092"]`, `group: "from-env"`, "record_ratio: 5", `password: "<redacted>"`, "(from flag -record-ratio)"} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3cret-pass") {
		t.Errorf("the password is printed:\n%s", out)
	}

	// the query endpoint's token, from the environment: redacted too, and
	// with it the endpoint may listen beyond loopback
	const token = "c0ffee00c0ffee00c0ffee00c0ffee00"
	t.Setenv("STAKHANOV_ENDPOINTS_QUERY_TOKEN", token)
	out, err = capture(t, func() error { return showConfig(ctx, []string{"--config", path, "--query-addr", "0.0.0.0:8080"}) })
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`query_token: "<redacted>"`, "(from environment STAKHANOV_ENDPOINTS_QUERY_TOKEN)", `query_addr: "0.0.0.0:8080"`,
		"query_tls:\n", `cert_file: ""`, `client_ca_file: ""`} {
		if !strings.Contains(out, want) {
			t.Errorf("config output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, token) {
		t.Errorf("the query token is printed:\n%s", out)
	}
	// without it, beyond loopback: this configuration would not run, and
	// says what to set
	os.Unsetenv("STAKHANOV_ENDPOINTS_QUERY_TOKEN")
	var stderr string
	stderr, err = captureStderr(t, func() error {
		_, err := capture(t, func() error { return showConfig(ctx, []string{"--config", path, "--query-addr", "0.0.0.0:8080"}) })
		return err
	})
	if !errors.Is(err, errSilent) || !strings.Contains(stderr, "would not run") || !strings.Contains(stderr, "--query-token-file") {
		t.Errorf("config beyond loopback without a token: %v\n%s", err, stderr)
	}
	start := time.Now()
	err = run(ctx, []string{"--config", path, "--query-addr", "0.0.0.0:0"})
	if err == nil || !strings.Contains(err.Error(), "--query-token-file") || !strings.Contains(err.Error(), "STAKHANOV_ENDPOINTS_QUERY_TOKEN") {
		t.Errorf("run beyond loopback without a token: %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("run took %v to refuse", time.Since(start))
	}

	// the same through $STAKHANOV_CONFIG, and a misspelled key
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("kafka:\n  brokers: [a:1]\nrules:\n  record_ration: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STAKHANOV_CONFIG", bad)
	err = run(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml:4") || !strings.Contains(err.Error(), "rules.record_ration") {
		t.Errorf("run with a misspelled key: %v", err)
	}
}

// TestTokenCommand: a printed token is one the endpoint accepts; --out
// writes one, mode 0600, and keeps it on the next start.
func TestTokenCommand(t *testing.T) {
	ctx := context.Background()
	out, err := capture(t, func() error { return token(ctx, nil) })
	tok := strings.TrimSpace(out)
	if err != nil || len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
		t.Fatalf("token: %q %v, want 64 hex digits", out, err)
	}
	if err := access.ValidToken(tok); err != nil {
		t.Error(err)
	}
	if out2, _ := capture(t, func() error { return token(ctx, nil) }); strings.TrimSpace(out2) == tok {
		t.Error("two tokens alike")
	}
	file := filepath.Join(t.TempDir(), "query-token")
	out, err = capture(t, func() error { return token(ctx, []string{"--out", file}) })
	if err != nil || !strings.Contains(out, "wrote a new token to "+file) {
		t.Fatalf("token --out: %q %v", out, err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v %v, want mode 0600", fi.Mode(), err)
	}
	first, err := access.ReadTokenFile(file)
	if err != nil || len(first) != 1 || strings.Contains(out, first[0]) {
		t.Fatalf("the file holds %d tokens (%v), or the token was printed: %q", len(first), err, out)
	}
	out, err = capture(t, func() error { return token(ctx, []string{"--out", file}) })
	again, _ := access.ReadTokenFile(file)
	if err != nil || !strings.Contains(out, "holds a token already: kept") || again[0] != first[0] {
		t.Errorf("token --out again: %q %v; the token changed: %v", out, err, again[0] != first[0])
	}
	os.WriteFile(file, []byte("short\n"), 0o600)
	if _, err := capture(t, func() error { return token(ctx, []string{"--out", file}) }); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("token --out over a malformed file: %v", err)
	}
}
