package processors

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stakhanov/stakhanov/shift"
)

var update = flag.Bool("update", false, "rewrite the output.golden files")

type expectedAlert struct {
	Type      string  `json:"type"`
	WorkerID  string  `json:"worker_id"`
	EventID   string  `json:"event_id"`
	Day       string  `json:"day"`
	Ratio     float64 `json:"ratio"`
	GroupSize int     `json:"group_size"`
}

type expected struct {
	Shifts     int             `json:"shifts"`
	Duplicates int             `json:"duplicates"`
	Late       []string        `json:"late"`
	Alerts     []expectedAlert `json:"alerts"`
	NormCounts map[string]int  `json:"norm_counts"`
	Checks     []struct {
		EventID   string   `json:"event_id"`
		NormCount int      `json:"norm_count"`
		NormRate  *float64 `json:"norm_rate"`
		Ratio     *float64 `json:"ratio"`
		CrewRatio *float64 `json:"crew_ratio"`
	} `json:"checks"`
}

func runScenario(t *testing.T, dir string) *Output {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, "input.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := NewPartition(DefaultOptions(), 0)
	if err != nil {
		t.Fatal(err)
	}
	out := &Output{}
	sc := bufio.NewScanner(f)
	for off := int64(0); sc.Scan(); off++ {
		ev, err := shift.Decode(sc.Bytes())
		if err != nil {
			t.Fatalf("line %d: %v", off+1, err)
		}
		if err := p.Process(&ev, Input{Offset: off}, out); err != nil && !errors.Is(err, ErrDuplicate) {
			t.Fatal(err)
		}
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

// TestScenarios runs each testdata scenario and checks it against the
// hand-reasoned expectations in expected.json, then against the full
// recorded output (output.golden.json, rewritten by -update) so that any
// change of behaviour shows up in review.
func TestScenarios(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/input.jsonl")
	if len(dirs) < 2 {
		t.Fatal("scenarios missing")
	}
	for _, in := range dirs {
		dir := filepath.Dir(in)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out := runScenario(t, dir)
			raw, err := os.ReadFile(filepath.Join(dir, "expected.json"))
			if err != nil {
				t.Fatal(err)
			}
			var want expected
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if len(out.Shifts) != want.Shifts || out.Duplicates != want.Duplicates {
				t.Errorf("shifts %d duplicates %d, want %d and %d", len(out.Shifts), out.Duplicates, want.Shifts, want.Duplicates)
			}
			var late []string
			byID := map[string]Shift{}
			for _, s := range out.Shifts {
				byID[s.EventID] = s
				if s.Late {
					late = append(late, s.EventID)
				}
			}
			if !slices.Equal(late, want.Late) && !(len(late) == 0 && len(want.Late) == 0) {
				t.Errorf("late %v, want %v", late, want.Late)
			}
			var got []expectedAlert
			for _, a := range out.Alerts {
				got = append(got, expectedAlert{string(a.Type), a.WorkerID, a.EventID, a.Day.String(), a.Ratio, a.GroupSize})
				if a.ID == "" || a.DetectedAt.IsZero() {
					t.Errorf("alert without id or detection time: %+v", a)
				}
			}
			key := func(a expectedAlert) string { return a.Type + "|" + a.WorkerID + "|" + a.EventID + "|" + a.Day }
			slices.SortFunc(got, func(a, b expectedAlert) int { return compareStr(key(a), key(b)) })
			slices.SortFunc(want.Alerts, func(a, b expectedAlert) int { return compareStr(key(a), key(b)) })
			if len(got) != len(want.Alerts) {
				t.Fatalf("alerts:\n got %v\nwant %v", got, want.Alerts)
			}
			for i := range got {
				g, w := got[i], want.Alerts[i]
				if key(g) != key(w) || !near(g.Ratio, w.Ratio) || g.GroupSize != w.GroupSize {
					t.Errorf("alert %d: got %+v, want %+v", i, g, w)
				}
			}
			counts := map[string]int{}
			for _, n := range out.Norms {
				counts[n.Day.String()] = n.Norm.Count
			}
			if fmt.Sprint(counts) != fmt.Sprint(want.NormCounts) {
				t.Errorf("norm counts %v, want %v", counts, want.NormCounts)
			}
			for _, c := range want.Checks {
				s, ok := byID[c.EventID]
				if !ok {
					t.Errorf("%s not in output", c.EventID)
					continue
				}
				if s.Norm.Count != c.NormCount {
					t.Errorf("%s norm count %d, want %d", c.EventID, s.Norm.Count, c.NormCount)
				}
				for _, f := range []struct {
					name string
					got  float64
					want *float64
				}{{"norm_rate", s.Norm.Median, c.NormRate}, {"ratio", s.Ratio, c.Ratio}, {"crew_ratio", s.CrewRatio, c.CrewRatio}} {
					if f.want != nil && !near(f.got, *f.want) {
						t.Errorf("%s %s %v, want %v", c.EventID, f.name, f.got, *f.want)
					}
				}
			}
			checkGolden(t, filepath.Join(dir, "output.golden.json"), out)
		})
	}
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkGolden compares the whole output, field by field, with the recorded
// file; NaN is written as null.
func checkGolden(t *testing.T, path string, out *Output) {
	t.Helper()
	type row map[string]any
	clean := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return math.Round(f*1e9) / 1e9
	}
	var doc struct {
		Shifts []row `json:"shifts"`
		Alerts []row `json:"alerts"`
		Norms  []row `json:"norms"`
	}
	for _, s := range out.Shifts {
		doc.Shifts = append(doc.Shifts, row{"event_id": s.EventID, "offset": s.Offset, "rate": clean(s.Rate),
			"norm_count": s.Norm.Count, "norm_rate": clean(s.Norm.Median), "norm_mean": clean(s.Norm.Mean),
			"norm_p90": clean(s.Norm.P90), "norm_mad": clean(s.Norm.MAD), "norm_bulk": clean(s.Norm.Bulk),
			"ratio": clean(s.Ratio), "crew_norm_rate": clean(s.CrewNorm), "crew_ratio": clean(s.CrewRatio),
			"scrap_share": clean(s.ScrapShare), "late": s.Late})
	}
	for _, a := range out.Alerts {
		doc.Alerts = append(doc.Alerts, row{"alert_id": a.ID, "type": a.Type, "plant_id": a.PlantID, "industry": a.Industry,
			"role": a.Role, "unit": a.Unit, "worker_id": a.WorkerID, "event_id": a.EventID, "day": a.Day.String(),
			"rate": clean(a.Rate), "norm_rate": clean(a.NormRate), "ratio": clean(a.Ratio), "scrap_share": clean(a.ScrapShare),
			"group_size": a.GroupSize, "bulk_share": clean(a.BulkShare), "detected_at": a.DetectedAt})
	}
	for _, n := range out.Norms {
		doc.Norms = append(doc.Norms, row{"plant_id": n.Group.PlantID, "role": n.Group.Role, "unit": n.Group.Unit,
			"day": n.Day.String(), "shifts": n.Norm.Count, "median": clean(n.Norm.Median), "mean": clean(n.Norm.Mean),
			"p90": clean(n.Norm.P90), "mad": clean(n.Norm.MAD), "bulk": clean(n.Norm.Bulk)})
	}
	got, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./processors -run TestScenarios -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s; review with -update and git diff", path)
	}
}
