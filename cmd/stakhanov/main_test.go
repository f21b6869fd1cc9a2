package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
}
