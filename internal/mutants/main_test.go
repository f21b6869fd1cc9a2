package main

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestSplitRow(t *testing.T) {
	got := splitRow("| `a.go` | `X` | `if a \\|\\| b {` | why: a | b |")
	want := []string{"`a.go`", "`X`", "`if a || b {`", "why: a", "b"}
	if !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
}

// TestRun: survivors are matched by file, mutator and line text; a new
// survivor, a stale row and a low kill rate each fail; a mutant that timed
// out neither fails nor makes its row stale.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.MkdirAll("pkg", 0o755); err != nil {
		t.Fatal(err)
	}
	src := "package pkg\n\nfunc f(a, b int) bool {\n\treturn a < b || a > 2*b\n}\n"
	if err := os.WriteFile(filepath.Join("pkg", "f.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	report := func(statuses ...string) string {
		var ms []string
		for _, s := range statuses {
			ms = append(ms, `{"type":"CONDITIONALS_BOUNDARY","status":"`+s+`","line":4,"column":11}`)
		}
		killed := strings.Count(strings.Join(statuses, " "), "KILLED")
		eff := 100 * float64(killed) / float64(len(statuses))
		p := filepath.Join(dir, strings.Join(statuses, "-")+".json")
		body := `{"files":[{"file_name":"f.go","mutations":[` + strings.Join(ms, ",") + `]}],"test_efficacy":` +
			strconv.FormatFloat(eff, 'f', -1, 64) + `}`
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	docs := 0
	doc := func(rows ...string) string {
		docs++
		p := filepath.Join(dir, strconv.Itoa(docs)+".md")
		body := "# Testing\n\n## Equivalent mutants\n\n| file | mutator | line | why |\n|---|---|---|---|\n" + strings.Join(rows, "\n") + "\n\n## Next\n\n| `x` | `y` | `z` | not this table |\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	row := "| `pkg/f.go` | `CONDITIONALS_BOUNDARY` | `return a < b \\|\\| a > 2*b` | because |"
	tests := []struct {
		name   string
		report string
		doc    string
		min    float64
		fails  string
	}{
		{"explained", report("KILLED", "LIVED"), doc(row), 50, ""},
		{"not explained", report("KILLED", "LIVED"), doc("| `pkg/g.go` | `CONDITIONALS_BOUNDARY` | `x` | other |"), 0, "not listed"},
		{"stale row", report("KILLED", "KILLED"), doc(row), 0, "no such mutant lived"},
		{"timed out, listed", report("KILLED", "TIMED OUT"), doc(row), 0, ""},
		{"timed out, not listed", report("KILLED", "TIMED OUT"), doc("| `pkg/g.go` | `CONDITIONALS_BOUNDARY` | `x` | other |"), 0, "no such mutant lived"},
		{"kill rate", report("KILLED", "LIVED"), doc(row), 90, "below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(io.Discard, tt.report, "pkg", tt.doc, tt.min)
			switch {
			case tt.fails == "" && err != nil:
				t.Fatal(err)
			case tt.fails != "" && (err == nil || !strings.Contains(err.Error(), tt.fails)):
				t.Fatalf("err %v, want one saying %q", err, tt.fails)
			}
		})
	}
}
