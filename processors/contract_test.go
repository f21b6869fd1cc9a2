package processors

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// contractDefaults reads the table of rule options in docs/contract.md:
// key → (flag, default as written).
func contractDefaults(t *testing.T) map[string][2]string {
	t.Helper()
	raw, err := os.ReadFile("../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][2]string{}
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "| option (`rules.`…) |") {
			in = true
			continue
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 4 {
			t.Fatalf("contract table row %q: want 4 cells", line)
		}
		cell := func(i int) string {
			c := strings.TrimSpace(cells[i])
			if f := strings.Fields(c); len(f) > 0 {
				c = f[0] // "`672h` (28 days)" → "`672h`"
			}
			return strings.Trim(c, "`")
		}
		key := cell(0)
		if _, dup := rows[key]; dup {
			t.Fatalf("contract table lists %s twice", key)
		}
		rows[key] = [2]string{strings.TrimPrefix(cell(1), "--"), cell(2)}
	}
	if len(rows) == 0 {
		t.Fatal("docs/contract.md: no table of rule options")
	}
	return rows
}

// TestDefaultsAreTheContract holds DefaultOptions to the table of defaults
// in docs/contract.md: the same options, flags and values, none missing on
// either side.
func TestDefaultsAreTheContract(t *testing.T) {
	doc := contractDefaults(t)
	o := DefaultOptions()
	params := o.Params()
	if len(params) != len(doc) {
		t.Errorf("%d options in code, %d in docs/contract.md", len(params), len(doc))
	}
	for _, p := range params {
		row, ok := doc[p.Key]
		if !ok {
			t.Errorf("option %s is not in docs/contract.md", p.Key)
			continue
		}
		if row[0] != p.Flag {
			t.Errorf("%s: flag --%s in code, --%s in docs/contract.md", p.Key, p.Flag, row[0])
		}
		same := false
		switch v := p.Value.(type) {
		case *time.Duration:
			d, err := time.ParseDuration(row[1])
			same = err == nil && d == *v
		case *int:
			n, err := strconv.Atoi(row[1])
			same = err == nil && n == *v
		case *float64:
			f, err := strconv.ParseFloat(row[1], 64)
			same = err == nil && f == *v
		default:
			t.Fatalf("%s: unexpected type %T", p.Key, v)
		}
		if !same {
			t.Errorf("%s: default %v in code, %q in docs/contract.md", p.Key, reflectValue(p.Value), row[1])
		}
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
}

func reflectValue(v any) any {
	switch x := v.(type) {
	case *time.Duration:
		return *x
	case *int:
		return *x
	case *float64:
		return *x
	}
	return v
}

// TestParamsCoverOptions: every field of Options is one Param, so that
// nothing can be configured, snapshotted or documented without the others.
func TestParamsCoverOptions(t *testing.T) {
	var o Options
	params := o.Params()
	fields := optionValues(&o)
	if len(params) != len(fields) {
		t.Fatalf("%d params for %d fields of Options", len(params), len(fields))
	}
	seen := map[any]bool{}
	for _, p := range params {
		if seen[p.Value] {
			t.Fatalf("%s points at a field another param points at", p.Key)
		}
		seen[p.Value] = true
	}
}
