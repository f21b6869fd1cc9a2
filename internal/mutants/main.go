// Command mutants holds a mutation run to the list of known equivalent
// mutants: it reads the JSON report of `gremlins unleash -o FILE` for one
// package directory and the table of equivalent mutants in TESTING.md, and
// fails when a mutant lived that the table does not explain, when a row of
// the table explains no mutant any more (it was killed, or its line
// changed), or when the kill rate is below -min-efficacy.
//
// A row names a mutant by its file, its mutator and the text of its source
// line, not by line number, so that edits elsewhere in a file do not
// invalidate the table.
//
//	go run ./internal/mutants -report mutants.json -dir processors -doc TESTING.md -min-efficacy 90
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

type report struct {
	Files []struct {
		Name      string `json:"file_name"`
		Mutations []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
			Line   int    `json:"line"`
			Column int    `json:"column"`
		} `json:"mutations"`
	} `json:"files"`
	Efficacy float64 `json:"test_efficacy"`
	Killed   int     `json:"mutants_killed"`
	Lived    int     `json:"mutants_lived"`
	NotCov   int     `json:"mutants_not_covered"`
}

// row is one equivalent mutant of the table: file relative to the module
// root, mutator, and the trimmed text of the mutated line.
type row struct {
	file, mutator, line, why string
	used                     bool
}

func main() {
	reportPath := flag.String("report", "", "gremlins JSON report (-o of gremlins unleash)")
	dir := flag.String("dir", "", "the package directory the report is of, relative to the module root")
	doc := flag.String("doc", "TESTING.md", "document holding the table of equivalent mutants")
	minEfficacy := flag.Float64("min-efficacy", 0, "least kill rate, in percent, of killed over killed and lived")
	flag.Parse()
	if err := run(os.Stdout, *reportPath, *dir, *doc, *minEfficacy); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, reportPath, dir, doc string, minEfficacy float64) error {
	if reportPath == "" || dir == "" {
		return errors.New("-report and -dir are required")
	}
	raw, err := os.ReadFile(reportPath)
	if err != nil {
		return err
	}
	var rep report
	if err := json.Unmarshal(raw, &rep); err != nil {
		return fmt.Errorf("%s: %w", reportPath, err)
	}
	rows, err := readTable(doc)
	if err != nil {
		return err
	}
	var problems []string
	timedOut := 0
	lines := map[string][]string{}
	for _, f := range rep.Files {
		path := filepath.ToSlash(filepath.Join(dir, f.Name))
		for _, m := range f.Mutations {
			// A mutant that ran out of time (on a loaded machine, a test
			// slowed by the mutant or by its neighbours) proves nothing
			// either way: it neither needs a row nor makes one stale.
			if m.Status != "LIVED" && m.Status != "TIMED OUT" {
				continue
			}
			src, ok := lines[path]
			if !ok {
				b, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				src = strings.Split(string(b), "\n")
				lines[path] = src
			}
			if m.Line < 1 || m.Line > len(src) {
				return fmt.Errorf("%s:%d: no such line", path, m.Line)
			}
			text := strings.TrimSpace(src[m.Line-1])
			i := slices.IndexFunc(rows, func(r row) bool { return r.file == path && r.mutator == m.Type && r.line == text })
			if m.Status == "TIMED OUT" {
				timedOut++
				if i >= 0 {
					rows[i].used = true
				}
				continue
			}
			if i < 0 {
				problems = append(problems, fmt.Sprintf("lived, and not listed as equivalent: %s:%d:%d %s  %s", path, m.Line, m.Column, m.Type, text))
				continue
			}
			rows[i].used = true
		}
	}
	for _, r := range rows {
		if !r.used && strings.HasPrefix(r.file, strings.TrimSuffix(filepath.ToSlash(dir), "/")+"/") {
			problems = append(problems, fmt.Sprintf("listed as equivalent, but no such mutant lived: %s %s  %s", r.file, r.mutator, r.line))
		}
	}
	fmt.Fprintf(w, "%s: killed %d, lived %d (all explained: %v), not covered %d, timed out %d; efficacy %.2f %%\n",
		dir, rep.Killed, rep.Lived, len(problems) == 0, rep.NotCov, timedOut, rep.Efficacy)
	if rep.Efficacy < minEfficacy {
		problems = append(problems, fmt.Sprintf("efficacy %.2f %% is below %.2f %%", rep.Efficacy, minEfficacy))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%d problems:\n  %s\nkill each new survivor with a test, or add it to the table in %s with the reason it is equivalent",
			len(problems), strings.Join(problems, "\n  "), doc)
	}
	return nil
}

// readTable reads the rows of the table under the heading "Equivalent
// mutants": | `file` | `MUTATOR` | `line text` | why |.
func readTable(doc string) ([]row, error) {
	b, err := os.ReadFile(doc)
	if err != nil {
		return nil, err
	}
	var rows []row
	in := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.HasPrefix(l, "#"):
			in = strings.Contains(l, "Equivalent mutants")
		case in && strings.HasPrefix(l, "| `"):
			cells := splitRow(l)
			if len(cells) < 4 {
				return nil, fmt.Errorf("%s: row %q: want | file | mutator | line | why |", doc, l)
			}
			unquote := func(s string) string { return strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "`"), "`") }
			rows = append(rows, row{file: unquote(cells[0]), mutator: unquote(cells[1]), line: unquote(cells[2]), why: cells[3]})
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("%s: no table of equivalent mutants under a heading naming them", doc)
	}
	return rows, nil
}

// splitRow splits a Markdown table row into its cells; `\|` is a pipe
// within a cell, as Markdown needs it even inside code.
func splitRow(l string) []string {
	l = strings.TrimSpace(l)
	l = strings.TrimPrefix(strings.TrimSuffix(l, "|"), "|")
	var cells []string
	var cell strings.Builder
	for i := 0; i < len(l); i++ {
		switch {
		case l[i] == '\\' && i+1 < len(l) && l[i+1] == '|':
			cell.WriteByte('|')
			i++
		case l[i] == '|':
			cells = append(cells, strings.TrimSpace(cell.String()))
			cell.Reset()
		default:
			cell.WriteByte(l[i])
		}
	}
	return append(cells, strings.TrimSpace(cell.String()))
}
