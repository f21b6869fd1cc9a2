package processors

import (
	"errors"
	"math"
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

// TestValidate: each option's domain, with a value on either side of every
// bound.
func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(o *Options)
		ok   bool
	}{
		{"defaults", func(o *Options) {}, true},
		{"window 1h", func(o *Options) { o.Window = time.Hour }, true},
		{"window under 1h", func(o *Options) { o.Window = time.Hour - time.Second }, false},
		{"window not whole seconds", func(o *Options) { o.Window = 2*time.Hour + time.Millisecond }, false},
		{"lateness 0", func(o *Options) { o.AllowedLateness = 0 }, true},
		{"lateness negative", func(o *Options) { o.AllowedLateness = -time.Second }, false},
		{"lateness not whole seconds", func(o *Options) { o.AllowedLateness = time.Hour + time.Millisecond }, false},
		{"record min shifts 1", func(o *Options) { o.RecordMinShifts = 1 }, true},
		{"record min shifts 0", func(o *Options) { o.RecordMinShifts = 0 }, false},
		{"record ratio just above 1", func(o *Options) { o.RecordRatio = 1.0001 }, true},
		{"record ratio 1", func(o *Options) { o.RecordRatio = 1 }, false},
		{"record ratio NaN", func(o *Options) { o.RecordRatio = math.NaN() }, false},
		{"suspect scrap share 0", func(o *Options) { o.SuspectScrapShare = 0 }, true},
		{"suspect scrap share negative", func(o *Options) { o.SuspectScrapShare = -0.01 }, false},
		{"suspect scrap share just under 1", func(o *Options) { o.SuspectScrapShare = 0.999 }, true},
		{"suspect scrap share 1", func(o *Options) { o.SuspectScrapShare = 1 }, false},
		{"pace min workers 2", func(o *Options) { o.PaceMinWorkers = 2 }, true},
		{"pace min workers 1", func(o *Options) { o.PaceMinWorkers = 1 }, false},
		{"pace-setter ratio just above 1", func(o *Options) { o.PaceSetterRatio = 1.0001 }, true},
		{"pace-setter ratio 1", func(o *Options) { o.PaceSetterRatio = 1 }, false},
		{"tolerance just above 0", func(o *Options) { o.CommonPaceTolerance = 0.0001 }, true},
		{"tolerance 0", func(o *Options) { o.CommonPaceTolerance = 0 }, false},
		{"tolerance just under 1", func(o *Options) { o.CommonPaceTolerance = 0.9999 }, true},
		{"tolerance 1", func(o *Options) { o.CommonPaceTolerance = 1 }, false},
		{"common share just above 0", func(o *Options) { o.CommonPaceShare = 0.0001 }, true},
		{"common share 0", func(o *Options) { o.CommonPaceShare = 0 }, false},
		{"common share 1", func(o *Options) { o.CommonPaceShare = 1 }, true},
		{"common share above 1", func(o *Options) { o.CommonPaceShare = 1.0001 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.edit(&o)
			err := o.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok %v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("%v does not wrap ErrInvalidOptions", err)
			}
			if _, perr := NewPartition(o, 0); (perr == nil) != tt.ok {
				t.Fatalf("NewPartition accepts %v, Validate %v", perr, err)
			}
		})
	}
}
