package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// simRun is the simulated summer of 1935 run through the rules and stored
// as the pipeline stores it, with everything the processors emitted: the
// views are checked against the simulator's truth and against direct
// computations on that output.
type simRun struct {
	store    *Store
	truth    *simulator.Truth
	end      time.Time // end of the last simulated day
	out      processors.Output
	industry map[string]string // plant → industry
}

// simulate feeds the default simulation to one processor per plant (the
// pipeline keys partitions by plant_id) and commits what they emit in
// batches with their offsets, as the sink does.
func simulate(t *testing.T) *simRun {
	t.Helper()
	cfg := simulator.DefaultConfig()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := openTemp(t)
	run := &simRun{store: s, end: cfg.Start.AddDate(0, 0, cfg.Days), industry: map[string]string{}}
	// as the sink role does when it starts
	opts := processors.DefaultOptions()
	if err := s.RecordRules(context.Background(), opts); err != nil {
		t.Fatal(err)
	}

	type partition struct {
		id   int32
		proc *processors.Partition
		next int64
	}
	parts := map[string]*partition{}
	var out processors.Output
	batch := &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{}}
	flush := func() {
		batch.Shifts, batch.Alerts, batch.Norms = out.Shifts, out.Alerts, out.Norms
		mustCommit(t, s, batch)
		run.out.Shifts = append(run.out.Shifts, out.Shifts...)
		run.out.Alerts = append(run.out.Alerts, out.Alerts...)
		run.out.Norms = append(run.out.Norms, out.Norms...)
		batch.Reset()
		out.Reset()
	}
	for {
		m, ok := sim.Next()
		if !ok {
			break
		}
		p := parts[string(m.Key)]
		if p == nil {
			proc, err := processors.NewPartition(opts, int32(len(parts)))
			if err != nil {
				t.Fatal(err)
			}
			p = &partition{id: int32(len(parts)), proc: proc}
			parts[string(m.Key)] = p
		}
		offset := p.next
		p.next++
		batch.Offsets[p.id] = p.next
		ev, err := shift.Decode(m.Value)
		if err != nil {
			batch.Rejects = append(batch.Rejects, ingest.Reject{Topic: testTopic, Partition: p.id, Offset: offset,
				Reason: shift.Reason(err), Detail: err.Error(), Key: m.Key, Value: m.Value})
			continue
		}
		if err := p.proc.Process(&ev, processors.Input{Offset: offset}, &out); err != nil && !errors.Is(err, processors.ErrDuplicate) {
			t.Fatal(err)
		}
		if len(out.Shifts) >= 10_000 {
			flush()
		}
	}
	flush()
	run.truth = sim.Truth()
	for i := range run.out.Shifts {
		sh := &run.out.Shifts[i]
		run.industry[sh.PlantID] = sh.Industry
	}
	return run
}

// contractLateness is the contract's allowed lateness (docs/contract.md),
// written out rather than read from processors.DefaultOptions: a default
// that drifts from the contract must fail the views' tests.
const contractLateness = 6 * time.Hour

// groupDay keys a group's day.
func groupDay(plant, role, unit string, day shift.Day) string {
	return fmt.Sprintf("%s|%s|%s|%s", plant, role, unit, day)
}

func groupKey(plant, role, unit string) string { return plant + "|" + role + "|" + unit }

// rowsOf reads every row of a query as column name → value.
func rowsOf(t *testing.T, s *Store, query string, args ...any) []map[string]any {
	t.Helper()
	rows, err := s.DB().Query(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var all []map[string]any
	for rows.Next() {
		m := scanMap(t, rows, cols)
		all = append(all, m)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return all
}

func dayOf(v any) shift.Day { return shift.DayOf(v.(time.Time)) }

// num reads a numeric column; NaN for NULL.
func num(v any) float64 {
	switch v := v.(type) {
	case nil:
		return math.NaN()
	case float64:
		return v
	case int64:
		return float64(v)
	case int32:
		return float64(v)
	}
	panic(fmt.Sprintf("not a number: %T %v", v, v))
}

func near(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}

// quantile is DuckDB's quantile_cont: linear interpolation between the
// order statistics.
func quantile(xs []float64, p float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	pos := p * float64(len(s)-1)
	lo := math.Floor(pos)
	if int(lo)+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[int(lo)] + (pos-lo)*(s[int(lo)+1]-s[int(lo)])
}

func TestViews(t *testing.T) {
	run := simulate(t)
	s, tr := run.store, run.truth
	if tr.Stakhanov == "" || len(tr.RecordShifts) < 5 || len(tr.PaceSetters) < 10 {
		t.Fatalf("the simulation planted too little to test: %+v", tr)
	}

	t.Run("records", func(t *testing.T) {
		want := map[string]bool{} // event id → suspect
		for _, e := range tr.RecordShifts {
			want[e] = false
		}
		for _, e := range tr.SuspectRecords {
			want[e] = true
		}
		got := rowsOf(t, s, `SELECT * FROM records`)
		if len(got) != len(want) {
			t.Errorf("%d rows, truth has %d records and suspect records", len(got), len(want))
		}
		for _, r := range got {
			id := r["event_id"].(string)
			suspect, ok := want[id]
			switch {
			case !ok:
				t.Errorf("%s is not a record of the truth", id)
			case r["suspect"] != suspect || (r["type"] == "suspect_record") != suspect:
				t.Errorf("%s: suspect %v, type %v; truth says suspect %v", id, r["suspect"], r["type"], suspect)
			case r["output"] == nil || r["shift_start"] == nil:
				t.Errorf("%s: the shift's columns are empty: %v", id, r)
			case !(num(r["ratio"]) >= 3) || num(r["norm_count"]) < 20:
				t.Errorf("%s: ratio %v over %v shifts", id, r["ratio"], r["norm_count"])
			}
		}
		st := row(t, s, `SELECT * FROM records WHERE event_id = ?`, tr.Stakhanov)
		if st["worker_id"] != "a.stakhanov" || st["suspect"] != false || num(st["output"]) != 102 ||
			!(num(st["ratio"]) >= 3) || !(num(st["crew_size"]) > 1) {
			t.Errorf("Stakhanov's record: %v", st)
		}
	})

	lateness := processors.DefaultOptions().AllowedLateness
	t.Run("pace_setters", func(t *testing.T) {
		type setter struct {
			days        int
			first, last shift.Day
		}
		want := map[string]*setter{}
		for _, ps := range tr.PaceSetters {
			if ps.Day.End().Add(lateness).After(run.end) {
				continue // its day never closed: no alert yet
			}
			k := groupKey(ps.Group.PlantID, ps.Group.Role, ps.Group.Unit) + "|" + ps.WorkerID
			w := want[k]
			if w == nil {
				w = &setter{first: ps.Day, last: ps.Day}
				want[k] = w
			}
			w.days++
			w.first, w.last = min(w.first, ps.Day), max(w.last, ps.Day)
		}
		worked := map[string]map[shift.Day]bool{}
		for _, sh := range run.out.Shifts {
			if sh.Late {
				continue
			}
			k := groupKey(sh.PlantID, sh.Role, sh.Unit) + "|" + sh.WorkerID
			if worked[k] == nil {
				worked[k] = map[shift.Day]bool{}
			}
			worked[k][shift.DayOf(sh.ShiftStart)] = true
		}
		got := rowsOf(t, s, `SELECT * FROM pace_setters`)
		if len(got) != len(want) {
			t.Errorf("%d pace-setters, truth has %d", len(got), len(want))
		}
		for _, r := range got {
			k := groupKey(r["plant_id"].(string), r["role"].(string), r["unit"].(string)) + "|" + r["worker_id"].(string)
			w := want[k]
			if w == nil {
				t.Errorf("%s is no pace-setter of the truth", k)
				continue
			}
			days := len(worked[k])
			if r["pace_days"] != int64(w.days) || r["days_worked"] != int64(days) ||
				!near(num(r["lead_share"]), float64(w.days)/float64(days)) ||
				dayOf(r["first_day"]) != w.first || dayOf(r["last_day"]) != w.last {
				t.Errorf("%s: %v; want %d pace days of %d worked, %s to %s", k, r, w.days, days, w.first, w.last)
			}
			if r["industry"] != run.industry[r["plant_id"].(string)] {
				t.Errorf("%s: industry %v", k, r["industry"])
			}
			if mx, mean := num(r["max_ratio"]), num(r["mean_ratio"]); !(mean >= 1.5 && mean <= mx) {
				t.Errorf("%s: mean ratio %v, max %v", k, mean, mx)
			}
		}
	})

	// The near misses the simulator planted beside each threshold: the
	// stored numbers are the truth's to the last bit, and each raised
	// exactly its alerts. A threshold that drifts from the contract's turns
	// one of them around; a window of another length changes the norms.
	t.Run("near_misses", func(t *testing.T) {
		if len(tr.NearRecords) == 0 || len(tr.NearDays) == 0 {
			t.Fatal("the simulation planted no near misses")
		}
		for _, n := range tr.NearRecords {
			sh := row(t, s, `SELECT rate, norm_rate, norm_count, ratio, scrap_share, late FROM shifts WHERE event_id = ?`, n.EventID)
			if sh["late"] != false || num(sh["rate"]) != n.Rate || num(sh["norm_rate"]) != n.Norm ||
				num(sh["norm_count"]) != float64(n.Count) || num(sh["ratio"]) != n.Ratio || num(sh["scrap_share"]) != n.ScrapShare {
				t.Errorf("%s near miss %s stored as %v; truth %+v", n.Threshold, n.EventID, sh, n)
			}
			recs := rowsOf(t, s, `SELECT type, norm_rate, norm_count, ratio, scrap_share FROM records WHERE event_id = ?`, n.EventID)
			switch {
			case n.Alert == "" && len(recs) == 0:
			case n.Alert == "" || len(recs) != 1 || recs[0]["type"] != n.Alert:
				t.Errorf("%s near miss %s (ratio %v over %d shifts, scrap share %v): records %v, truth %q",
					n.Threshold, n.EventID, n.Ratio, n.Count, n.ScrapShare, recs, n.Alert)
			case num(recs[0]["norm_rate"]) != n.Norm || num(recs[0]["ratio"]) != n.Ratio || num(recs[0]["norm_count"]) != float64(n.Count):
				t.Errorf("%s near miss %s in records: %v; truth %+v", n.Threshold, n.EventID, recs[0], n)
			}
		}
		for _, n := range tr.NearDays {
			if n.Day.End().Add(contractLateness).After(run.end) {
				continue // never closed
			}
			pace, common := false, false
			for _, a := range rowsOf(t, s, `SELECT * FROM alerts WHERE plant_id = ? AND role = ? AND unit = ? AND day = ?::DATE
				AND type IN ('pace_setter', 'common_pace')`, n.Group.PlantID, n.Group.Role, n.Group.Unit, n.Day.String()) {
				if num(a["norm_rate"]) != n.Median || num(a["group_size"]) != float64(n.Workers) || num(a["bulk_share"]) != n.Bulk {
					t.Errorf("%s near miss %v %s: %v; truth %+v", n.Threshold, n.Group, n.Day, a, n)
				}
				switch {
				case a["type"] == "common_pace":
					common = true
				case a["worker_id"] == n.WorkerID:
					pace = true
					if num(a["ratio"]) != n.Ratio {
						t.Errorf("%s near miss %v %s: ratio %v, truth %v", n.Threshold, n.Group, n.Day, a["ratio"], n.Ratio)
					}
				}
			}
			if pace != n.PaceSetter || common != n.Common {
				t.Errorf("%s near miss %v %s (%d workers, %s at %v× the median, %v at the common level): pace_setter %v, common_pace %v; truth %v, %v",
					n.Threshold, n.Group, n.Day, n.Workers, n.WorkerID, n.Ratio, n.Bulk, pace, common, n.PaceSetter, n.Common)
			}
		}
	})

	// Day alerts: the common-pace days are the truth's (but where it says
	// an implementation may differ), and every day alert was detected as
	// its day closed under the contract's allowed lateness.
	t.Run("day_alerts", func(t *testing.T) {
		border := map[string]bool{}
		for _, g := range tr.Borderline {
			border[groupDay(g.Group.PlantID, g.Group.Role, g.Group.Unit, g.Day)] = true
		}
		want := map[string]bool{}
		for _, g := range tr.CommonPaceDays {
			if k := groupDay(g.Group.PlantID, g.Group.Role, g.Group.Unit, g.Day); !border[k] &&
				!g.Day.End().Add(contractLateness).After(run.end) {
				want[k] = true
			}
		}
		got := map[string]bool{}
		for _, a := range rowsOf(t, s, `SELECT * FROM alerts WHERE type IN ('pace_setter', 'common_pace')`) {
			day := a["day"].(time.Time)
			if at := a["detected_at"].(time.Time); !at.Equal(day.Add(24*time.Hour + contractLateness)) {
				t.Errorf("%s of %s detected at %v", a["type"], day.Format(time.DateOnly), at.UTC())
			}
			if k := groupDay(a["plant_id"].(string), a["role"].(string), a["unit"].(string), dayOf(day)); a["type"] == "common_pace" && !border[k] {
				got[k] = true
			}
		}
		for k := range want {
			if !got[k] {
				t.Errorf("common-pace day %s of the truth has no alert", k)
			}
		}
		for k := range got {
			if !want[k] {
				t.Errorf("common_pace for %s, not in the truth", k)
			}
		}
	})

	t.Run("crew_effect", func(t *testing.T) {
		got := rowsOf(t, s, `SELECT * FROM crew_effect`)
		if len(got) != len(tr.RecordShifts)+len(tr.SuspectRecords) {
			t.Errorf("%d rows, want one per record and suspect record", len(got))
		}
		for _, r := range got {
			ratio, crew := num(r["ratio"]), num(r["crew_ratio"])
			if !near(num(r["crew_factor"]), ratio/crew) {
				t.Errorf("%v: crew_factor %v, want ratio / crew_ratio", r["event_id"], r["crew_factor"])
			}
			if share := num(r["from_crew_share"]); !(share >= 0 && share <= 1) {
				t.Errorf("%v: from_crew_share %v", r["event_id"], share)
			}
			// A one-worker record owes nothing to a crew: per crew-hour it
			// stands out at least as much (other shifts may have helpers).
			if r["crew_size"] == int32(1) && num(r["from_crew_share"]) != 0 {
				t.Errorf("%v: alone, yet from_crew_share %v", r["event_id"], r["from_crew_share"])
			}
		}
		st := row(t, s, `SELECT * FROM crew_effect WHERE event_id = ?`, tr.Stakhanov)
		// The window holds one-worker shifts only, so the crew-hour norm
		// is the shift norm and the factor the crew size.
		crew := num(st["crew_size"])
		if f := num(st["crew_factor"]); math.Abs(f-crew) > 0.01*crew {
			t.Errorf("Stakhanov: crew_factor %v, crew of %v", f, crew)
		}
		if share := num(st["from_crew_share"]); !(share > 0.5 && share < 1) {
			t.Errorf("Stakhanov: from_crew_share %v; a crew of 3 should explain most of 7×", share)
		}
	})

	t.Run("quality", func(t *testing.T) {
		type sums struct {
			shifts                  int
			output, scrap           float64
			records, suspectRecords int
		}
		want := map[string]*sums{}
		for _, sh := range run.out.Shifts {
			if sh.Late {
				continue
			}
			k := groupDay(sh.PlantID, sh.Role, sh.Unit, shift.DayOf(sh.ShiftStart))
			if want[k] == nil {
				want[k] = &sums{}
			}
			want[k].shifts++
			want[k].output += sh.Output
			want[k].scrap += sh.Scrap
		}
		var check []string // the group-days of records, and a few plain ones
		for _, a := range run.out.Alerts {
			k := groupDay(a.PlantID, a.Role, a.Unit, a.Day)
			switch a.Type {
			case processors.RecordShift:
				want[k].records++
			case processors.SuspectRecord:
				want[k].suspectRecords++
			default:
				continue
			}
			check = append(check, k)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range want {
				if !yield(k) {
					return
				}
			}
		})
		check = append(check, keys[0], keys[len(keys)/2], keys[len(keys)-1])
		if n := count(t, s, "quality"); n != len(want) {
			t.Errorf("%d rows, want %d group-days", n, len(want))
		}
		for _, k := range check {
			w := want[k]
			r := row(t, s, `SELECT * FROM quality WHERE concat_ws('|', plant_id, role, unit, strftime(day, '%Y-%m-%d')) = ?`, k)
			wantSuspect := math.NaN()
			if n := w.records + w.suspectRecords; n > 0 {
				wantSuspect = float64(w.suspectRecords) / float64(n)
			}
			if r["shifts"] != int64(w.shifts) || !near(num(r["scrap_share"]), w.scrap/w.output) ||
				r["records"] != int64(w.records) || r["suspect_records"] != int64(w.suspectRecords) ||
				!near(num(r["suspect_share"]), wantSuspect) {
				t.Errorf("%s: %v; want %+v, scrap share %v", k, r, *w, w.scrap/w.output)
			}
		}
	})

	t.Run("norm_history", func(t *testing.T) {
		if n, norms := count(t, s, "norm_history"), count(t, s, "norms"); n != norms || n != len(run.out.Norms) {
			t.Fatalf("%d rows, norms has %d, the processors emitted %d", n, norms, len(run.out.Norms))
		}
		records := map[string]int{}
		suspects := map[string]int{}
		for _, a := range run.out.Alerts {
			switch a.Type {
			case processors.RecordShift:
				records[groupDay(a.PlantID, a.Role, a.Unit, a.Day)]++
			case processors.SuspectRecord:
				suspects[groupDay(a.PlantID, a.Role, a.Unit, a.Day)]++
			}
		}
		got := map[string]map[string]any{}
		for _, r := range rowsOf(t, s, `SELECT * FROM norm_history`) {
			got[groupDay(r["plant_id"].(string), r["role"].(string), r["unit"].(string), dayOf(r["day"]))] = r
		}
		norms := slices.Clone(run.out.Norms)
		sort.SliceStable(norms, func(i, j int) bool {
			a, b := norms[i], norms[j]
			if a.Group != b.Group {
				return groupKey(a.Group.PlantID, a.Group.Role, a.Group.Unit) < groupKey(b.Group.PlantID, b.Group.Role, b.Group.Unit)
			}
			return a.Day < b.Day
		})
		withRecords := 0
		for i, n := range norms {
			g := n.Group
			k := groupDay(g.PlantID, g.Role, g.Unit, n.Day)
			r := got[k]
			if r == nil {
				t.Errorf("%s: no row", k)
				continue
			}
			prev, change := math.NaN(), math.NaN()
			if i > 0 && norms[i-1].Group == g {
				prev = norms[i-1].Norm.Median
				change = n.Norm.Median/prev - 1
			}
			inWindow := 0
			for d := n.Day - 27; d <= n.Day; d++ {
				inWindow += records[groupDay(g.PlantID, g.Role, g.Unit, d)]
			}
			if inWindow > 0 {
				withRecords++
			}
			if !near(num(r["median_rate"]), n.Norm.Median) || !near(num(r["prev_median_rate"]), prev) ||
				!near(num(r["median_change"]), change) || r["records"] != int64(records[k]) ||
				r["suspect_records"] != int64(suspects[k]) || r["records_in_window"] != int64(inWindow) ||
				r["industry"] != run.industry[g.PlantID] {
				t.Errorf("%s: %v; want prev %v, change %v, records %d, suspect %d, in window %d",
					k, r, prev, change, records[k], suspects[k], inWindow)
			}
		}
		if withRecords == 0 {
			t.Error("no norm row has records in its window")
		}
	})

	t.Run("industry_norms", func(t *testing.T) {
		type plantNorm struct {
			plant  string
			median float64
		}
		peers := map[string][]plantNorm{}
		for _, n := range run.out.Norms {
			k := fmt.Sprintf("%s|%s|%s|%s", run.industry[n.Group.PlantID], n.Group.Role, n.Group.Unit, n.Day)
			peers[k] = append(peers[k], plantNorm{n.Group.PlantID, n.Norm.Median})
		}
		got := rowsOf(t, s, `SELECT * FROM industry_norms`)
		if len(got) != len(run.out.Norms) {
			t.Errorf("%d rows, want one per norms row (%d)", len(got), len(run.out.Norms))
		}
		compared := 0
		for _, r := range got {
			k := fmt.Sprintf("%s|%s|%s|%s", r["industry"], r["role"], r["unit"], dayOf(r["day"]))
			ps := peers[k]
			var medians []float64
			rank := 1
			for _, p := range ps {
				medians = append(medians, p.median)
				if p.median > num(r["median_rate"]) {
					rank++
				}
			}
			if len(ps) > 1 {
				compared++
			}
			mid := quantile(medians, 0.5)
			if r["plants"] != int64(len(ps)) || !near(num(r["industry_median_rate"]), mid) ||
				!near(num(r["ratio_to_industry"]), num(r["median_rate"])/mid) || r["rank_in_industry"] != int64(rank) {
				t.Errorf("%s %s: %v; want %d plants, median %v, rank %d", k, r["plant_id"], r, len(ps), mid, rank)
			}
		}
		if compared == 0 {
			t.Error("no role is compared across plants")
		}
	})

	t.Run("movement_spread", func(t *testing.T) {
		plants, industries := map[string]bool{}, map[string]bool{}
		var records, paceDays int64
		for _, a := range run.out.Alerts {
			switch a.Type {
			case processors.RecordShift:
				records++
			case processors.PaceSetter:
				paceDays++
			default:
				continue
			}
			plants[a.PlantID], industries[a.Industry] = true, true
		}
		got := rowsOf(t, s, `SELECT * FROM movement_spread ORDER BY month`)
		if len(got) != 3 {
			t.Fatalf("%d months, want June to August", len(got))
		}
		var prevPlants, prevIndustries, sumRecords, sumPace int64
		for i, r := range got {
			if m := r["month"].(time.Time); m.Day() != 1 || m.Month() != time.June+time.Month(i) {
				t.Errorf("month %v", m)
			}
			p, ind := r["plants_in_movement"].(int64), r["industries_in_movement"].(int64)
			if p < prevPlants || ind < prevIndustries || p < r["plants_with_records"].(int64) ||
				p < r["plants_with_pace_setters"].(int64) || ind > r["industries_reporting"].(int64) {
				t.Errorf("month %d: %v after %d plants, %d industries", i, r, prevPlants, prevIndustries)
			}
			prevPlants, prevIndustries = p, ind
			sumRecords += r["records"].(int64)
			sumPace += r["pace_setter_days"].(int64)
		}
		if prevPlants != int64(len(plants)) || prevIndustries != int64(len(industries)) {
			t.Errorf("in the movement at the end: %d plants, %d industries; want %d, %d",
				prevPlants, prevIndustries, len(plants), len(industries))
		}
		if sumRecords != records || sumPace != paceDays {
			t.Errorf("records %d, pace-setter days %d; want %d, %d", sumRecords, sumPace, records, paceDays)
		}
	})

	t.Run("norm_revision", func(t *testing.T) {
		type group struct {
			industry string
			latest   shift.Day
			rates    []float64
			output   map[string]float64 // by worker
			hours    map[string]float64
			norm     float64
			normDay  shift.Day
		}
		groups := map[string]*group{}
		for _, sh := range run.out.Shifts {
			if sh.Late {
				continue
			}
			k := groupKey(sh.PlantID, sh.Role, sh.Unit)
			g := groups[k]
			if g == nil {
				g = &group{industry: sh.Industry, latest: math.MinInt32, normDay: math.MinInt32}
				groups[k] = g
			}
			g.latest = max(g.latest, shift.DayOf(sh.ShiftStart))
		}
		for _, sh := range run.out.Shifts {
			g := groups[groupKey(sh.PlantID, sh.Role, sh.Unit)]
			if sh.Late || shift.DayOf(sh.ShiftStart) <= g.latest-28 {
				continue
			}
			if g.output == nil {
				g.output, g.hours = map[string]float64{}, map[string]float64{}
			}
			g.rates = append(g.rates, sh.Rate)
			g.output[sh.WorkerID] += sh.Output
			g.hours[sh.WorkerID] += sh.ShiftHours
		}
		for _, n := range run.out.Norms {
			if g := groups[groupKey(n.Group.PlantID, n.Group.Role, n.Group.Unit)]; n.Day >= g.normDay {
				g.norm, g.normDay = n.Norm.Median, n.Day
			}
		}
		short := func(g *group, norm float64) int {
			n := 0
			for w, out := range g.output {
				if out/g.hours[w] < norm {
					n++
				}
			}
			return n
		}
		revision := func(query string) map[string]map[string]any {
			rs := map[string]map[string]any{}
			for _, r := range rowsOf(t, s, query) {
				rs[groupKey(r["plant_id"].(string), r["role"].(string), r["unit"].(string))] = r
			}
			if len(rs) != len(groups) {
				t.Errorf("%s: %d groups, want %d", query, len(rs), len(groups))
			}
			return rs
		}
		median := revision(`SELECT * FROM norm_revision(pct := 0.5)`)
		high := revision(`SELECT * FROM norm_revision(pct := 0.9)`)
		byDefault := revision(`SELECT * FROM norm_revision()`)
		week := revision(`SELECT * FROM norm_revision(days := 7)`)
		var shortMedian, shortHigh int64
		for k, g := range groups {
			r := median[k]
			if r == nil {
				continue
			}
			proposed := quantile(g.rates, 0.5)
			ws := short(g, proposed)
			if r["industry"] != g.industry || r["shifts"] != int64(len(g.rates)) || r["workers"] != int64(len(g.output)) ||
				!near(num(r["proposed_norm"]), proposed) || !near(num(r["current_norm"]), g.norm) ||
				!near(num(r["change"]), proposed/g.norm-1) || r["workers_short"] != int64(ws) ||
				!near(num(r["share_short"]), float64(ws)/float64(len(g.output))) {
				t.Errorf("%s at the median: %v; want %d shifts, %d workers, proposed %v, current %v, %d short",
					k, r, len(g.rates), len(g.output), proposed, g.norm, ws)
			}
			h := high[k]
			if !near(num(h["proposed_norm"]), quantile(g.rates, 0.9)) || h["workers_short"].(int64) < r["workers_short"].(int64) {
				t.Errorf("%s at p90: %v; at the median %v", k, h, r)
			}
			if d := byDefault[k]; !near(num(d["proposed_norm"]), quantile(g.rates, 0.8)) {
				t.Errorf("%s by default: %v, want p80 %v", k, d["proposed_norm"], quantile(g.rates, 0.8))
			}
			if w := week[k]; !(w["shifts"].(int64) < r["shifts"].(int64)) {
				t.Errorf("%s: %v shifts in 7 days, %v in 28", k, w["shifts"], r["shifts"])
			}
			shortMedian += r["workers_short"].(int64)
			shortHigh += h["workers_short"].(int64)
		}
		if !(shortHigh > shortMedian) {
			t.Errorf("workers short: %d at p90, %d at the median", shortHigh, shortMedian)
		}
	})
}

// TestViewsUpgradeVersion1: a file written by version 1 (the same tables,
// no views) gains the views on its first read-write open, keeps its rows,
// and is stamped version 2.
func TestViewsUpgradeVersion1(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	mustCommit(t, s, fullBatch(0, 0, 0))
	// Take it back to what version 1 left.
	for _, v := range modelViews {
		if _, err := s.DB().Exec("DROP VIEW " + v); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{`DROP MACRO TABLE norm_revision`, `UPDATE schema_version SET version = 1`} {
		if _, err := s.DB().Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// A read-only open leaves the file as version 1 left it.
	opts := DefaultOptions(path)
	opts.ReadOnly = true
	ro, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	var views int
	if err := ro.DB().QueryRow(`SELECT count(*) FROM duckdb_views() WHERE NOT internal`).Scan(&views); err != nil || views != 0 {
		t.Errorf("read-only open: %d views (%v)", views, err)
	}
	ro.Close()

	for range 2 { // the second open finds version 2 and changes nothing
		s = openPath(t, path)
		var version, rows int
		if err := s.DB().QueryRow(`SELECT max(version), count(*) FROM schema_version`).Scan(&version, &rows); err != nil {
			t.Fatal(err)
		}
		if version != SchemaVersion || rows != 1 {
			t.Errorf("schema_version: %d rows, version %d", rows, version)
		}
		for _, v := range append(slices.Clone(modelViews), "norm_revision()") {
			var n int
			if err := s.DB().QueryRow("SELECT count(*) FROM " + v).Scan(&n); err != nil {
				t.Errorf("%s: %v", v, err)
			}
		}
		if n := count(t, s, "shifts"); n != 50 {
			t.Errorf("%d shifts after the upgrade", n)
		}
		if n := count(t, s, "records"); n != count(t, s, "alerts WHERE type IN ('record_shift', 'suspect_record')") {
			t.Errorf("records: %d rows", n)
		}
		s.Close()
	}
}

// TestViewsReplaced: an open replaces views that are missing or made from
// other definitions, and leaves this release's alone.
func TestViewsReplaced(t *testing.T) {
	tests := []struct {
		name     string
		change   string // done to a current file before reopening it
		replaced bool
	}{
		{"current", ``, false},
		{"view dropped", `DROP VIEW quality`, true},
		{"macro dropped", `DROP MACRO TABLE norm_revision`, true},
		{"older definition", `COMMENT ON VIEW records IS 'stakhanov analytical model 0000000000000000'`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, path := openTemp(t)
			// A stand-in with this release's comment shows whether the
			// open replaced the views.
			for _, stmt := range []string{
				`CREATE OR REPLACE VIEW crew_effect AS SELECT 42 AS stand_in`,
				fmt.Sprintf(`COMMENT ON VIEW crew_effect IS '%s'`, viewComment),
				tt.change,
			} {
				if stmt == "" {
					continue
				}
				if _, err := s.DB().Exec(stmt); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			s = openPath(t, path)
			_, err := s.DB().Exec(`SELECT stand_in FROM crew_effect`)
			if replaced := err != nil; replaced != tt.replaced {
				t.Errorf("views replaced: %v, want %v", replaced, tt.replaced)
			}
			for _, v := range append(slices.Clone(modelViews), "norm_revision()") {
				count(t, s, v) // every one answers
			}
		})
	}
}

// TestViewsOnEmptyFile: every view answers on a new file, with no rows
// (movement_spread, say, must not invent a month).
func TestViewsOnEmptyFile(t *testing.T) {
	s, _ := openTemp(t)
	for _, v := range append(slices.Clone(modelViews), "norm_revision()") {
		if n := count(t, s, v); n != 0 {
			t.Errorf("%s: %d rows on an empty file", v, n)
		}
	}
	var names []string
	rows, err := s.DB().Query(`SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	if want := slices.Sorted(slices.Values(modelViews)); !slices.Equal(names, want) {
		t.Errorf("views %v, want %v", names, want)
	}
}

// TestViewColumns pins the column names, in order: notebooks and
// dashboards select them by name (docs/analytics.md).
func TestViewColumns(t *testing.T) {
	s, _ := openTemp(t)
	tests := []struct {
		view string
		cols string
	}{
		{"records", "alert_id type suspect event_id industry plant_id section role unit worker_id crew_size shift_start " +
			"day shift_hours output scrap scrap_share rate norm_rate ratio norm_count crew_rate crew_norm_rate crew_ratio detected_at"},
		{"pace_setters", "industry plant_id role unit worker_id pace_days days_worked lead_share first_day last_day max_ratio mean_ratio"},
		{"norm_history", "industry plant_id role unit day shifts median_rate mean_rate p90_rate mad_rate bulk_share " +
			"prev_median_rate median_change records suspect_records records_in_window"},
		{"industry_norms", "industry role unit day plant_id median_rate plants industry_median_rate ratio_to_industry rank_in_industry"},
		{"quality", "industry plant_id role unit day shifts output scrap scrap_share records suspect_records suspect_share"},
		{"crew_effect", "alert_id type event_id industry plant_id role unit worker_id day crew_size ratio crew_ratio crew_factor from_crew_share"},
		{"movement_spread", "month plants_reporting industries_reporting records pace_setter_days plants_with_records " +
			"industries_with_records plants_with_pace_setters industries_with_pace_setters plants_in_movement industries_in_movement"},
		{"norm_revision()", "industry plant_id role unit shifts workers current_norm proposed_norm change workers_short share_short"},
	}
	for _, tt := range tests {
		t.Run(tt.view, func(t *testing.T) {
			rows, err := s.DB().Query("SELECT * FROM " + tt.view + " LIMIT 0")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			cols, err := rows.Columns()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(cols, " "); got != tt.cols {
				t.Errorf("columns\n%s\nwant\n%s", got, tt.cols)
			}
		})
	}
}
