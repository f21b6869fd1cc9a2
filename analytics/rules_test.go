package analytics

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

func storedRules(t *testing.T, s *Store) map[string]RuleOption {
	t.Helper()
	out := map[string]RuleOption{}
	for _, r := range rowsOf(t, s, `SELECT * FROM rule_options`) {
		o := RuleOption{Name: r["name"].(string), Value: num(r["value"]), Unit: r["unit"].(string)}
		if d, ok := r["description"].(string); ok {
			o.Description = d
		}
		out[o.Name] = o
	}
	return out
}

// TestRecordRules: rule_options holds every option of the processors, in
// stated units, and each start replaces what the last one wrote.
func TestRecordRules(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if n := count(t, s, "rule_options"); n != 0 {
		t.Fatalf("%d rule options before any sink started", n)
	}
	o := processors.DefaultOptions()
	if err := s.RecordRules(ctx, o); err != nil {
		t.Fatal(err)
	}
	got := storedRules(t, s)
	// every option, one row each, by its configuration key
	if params := o.Params(); len(got) != len(params) {
		t.Errorf("%d rows for %d options", len(got), len(params))
	}
	for _, p := range o.Params() {
		if r, ok := got[p.Key]; !ok || r.Description != p.Usage {
			t.Errorf("%s: %+v", p.Key, r)
		}
	}
	for name, want := range map[string]RuleOption{
		"window":                {Value: 28 * 24 * 3600, Unit: UnitSeconds},
		"lateness":              {Value: 6 * 3600, Unit: UnitSeconds},
		"record_min_shifts":     {Value: 20, Unit: UnitCount},
		"record_ratio":          {Value: 3, Unit: UnitRatio},
		"suspect_scrap_share":   {Value: 0.05, Unit: UnitRatio},
		"pace_min_workers":      {Value: 8, Unit: UnitCount},
		"pace_setter_ratio":     {Value: 1.5, Unit: UnitRatio},
		"common_pace_tolerance": {Value: 0.1, Unit: UnitRatio},
		"common_pace_share":     {Value: 0.7, Unit: UnitRatio},
	} {
		if r := got[name]; r.Value != want.Value || r.Unit != want.Unit {
			t.Errorf("%s = %v %s, want %v %s", name, r.Value, r.Unit, want.Value, want.Unit)
		}
	}

	// the next start, under other options, replaces them
	o.RecordRatio, o.Window, o.PaceMinWorkers = 3.5, 14*24*time.Hour+30*time.Second, 5
	if err := s.RecordRules(ctx, o); err != nil {
		t.Fatal(err)
	}
	got = storedRules(t, s)
	if len(got) != len(o.Params()) || got["record_ratio"].Value != 3.5 || got["window"].Value != 14*24*3600+30 ||
		got["pace_min_workers"].Value != 5 || got["lateness"].Value != 6*3600 {
		t.Errorf("after a start under other options: %+v", got)
	}
	// options the processors would refuse are not recorded
	bad := o
	bad.RecordRatio = 0.5
	if err := s.RecordRules(ctx, bad); !errors.Is(err, processors.ErrInvalidOptions) {
		t.Errorf("invalid options: %v", err)
	}
	if storedRules(t, s)["record_ratio"].Value != 3.5 {
		t.Error("invalid options changed the table")
	}
	s.Close()
	if err := s.RecordRules(ctx, o); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}

	ro := DefaultOptions(path)
	ro.ReadOnly = true
	r, err := Open(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.RecordRules(ctx, o); !errors.Is(err, ErrReadOnly) {
		t.Errorf("read-only: %v", err)
	}
	if got := storedRules(t, r); got["record_ratio"].Value != 3.5 {
		t.Errorf("read back: %+v", got)
	}
}

// TestRecordsInWindowFollowsTheWindow: norm_history counts the records of
// the window the pipeline ran with, not of a fixed 28 days, and counts
// none while that window is unknown.
func TestRecordsInWindowFollowsTheWindow(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	day := shift.DayOf(baseStart) + 40
	b := &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{0: 6}}
	// records at 06:00 of these days before the norm's day; the window of
	// the norm row of day is [day end − window, day end)
	for i, back := range []int{28, 27, 10, 2, -1} {
		sh := testShift(i, 0, int64(i))
		sh.PlantID, sh.Late = "plant-1", false
		sh.ShiftStart = (day - shift.Day(back)).Start().Add(6 * time.Hour)
		b.Shifts = append(b.Shifts, sh)
		a := testAlert(i, processors.RecordShift)
		a.EventID, a.Day = sh.EventID, shift.DayOf(sh.ShiftStart)
		a.ID = processors.ShiftAlertID(a.Type, a.EventID)
		b.Alerts = append(b.Alerts, a)
	}
	b.Norms = []processors.NormRow{{Group: shift.GroupKey{PlantID: "plant-1", Role: "hewer", Unit: "t"}, Day: day,
		Norm: processors.Norm{Count: 30, Median: 2.5}}}
	mustCommit(t, s, b)

	inWindow := func() any {
		return row(t, s, `SELECT records_in_window FROM norm_history WHERE plant_id = 'plant-1' AND day = ?::DATE`,
			day.String())["records_in_window"]
	}
	if n := inWindow(); n != nil {
		t.Errorf("records_in_window %v before any sink recorded its window, want NULL", n)
	}
	for _, c := range []struct {
		window time.Duration
		want   int64
	}{
		{28 * 24 * time.Hour, 3},                         // from 27 days back on
		{27*24*time.Hour + 12*time.Hour, 2},              // from 26 days back, 12:00
		{3 * 24 * time.Hour, 1},                          // 2 days back only
		{29*24*time.Hour - 6*time.Hour - time.Second, 3}, // from 28 days back at 06:00:01
		{29*24*time.Hour - 6*time.Hour, 4},               // at 06:00: the window's first instant
		{40 * 24 * time.Hour, 4},                         // the record after the day never
		{2*24*time.Hour + 18*time.Hour - time.Second, 0}, // from 2 days back at 06:00:01
		{2*24*time.Hour + 18*time.Hour + time.Minute, 1}, // from 2 days back at 05:59
	} {
		o := processors.DefaultOptions()
		o.Window = c.window
		if err := s.RecordRules(ctx, o); err != nil {
			t.Fatal(err)
		}
		if n := inWindow(); n != c.want {
			t.Errorf("window %v: records_in_window %v, want %d", c.window, n, c.want)
		}
	}
}

// TestOpenUpgradesToRuleOptions: a file of schema version 3 gains an empty
// rule_options on its first read-write open (nothing says which options
// its rows were computed under) and alerts.late, false for its alerts
// (every alert before it was on time), its rows and views intact; a
// read-only open leaves it as it was.
func TestOpenUpgradesToRuleOptions(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	mustCommit(t, s, fullBatch(0, 0, 0))
	for _, q := range []string{`DROP TABLE rule_options`, `ALTER TABLE alerts DROP COLUMN late`, `UPDATE schema_version SET version = 3`} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	s.Close()

	ro := DefaultOptions(path)
	ro.ReadOnly = true
	r, err := Open(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := r.DB().QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rule_options'`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("a read-only open: %d rule_options tables (%v)", tables, err)
	}
	r.Close()

	for range 2 { // the second open finds the current version and changes nothing
		s = openPath(t, path)
		var version int
		if err := s.DB().QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != SchemaVersion {
			t.Errorf("schema version %d (%v), want %d", version, err, SchemaVersion)
		}
		if n := count(t, s, "rule_options"); n != 0 {
			t.Errorf("%d rule options after the upgrade, want none", n)
		}
		if n := count(t, s, "shifts"); n != 50 {
			t.Errorf("%d shifts after the upgrade", n)
		}
		if n, all := count(t, s, "alerts WHERE late = false"), count(t, s, "alerts"); n != all || n == 0 {
			t.Errorf("%d of %d alerts have late = false after the upgrade", n, all)
		}
		if n := count(t, s, "norm_history WHERE records_in_window IS NOT NULL"); n != 0 {
			t.Errorf("%d norm_history rows count records in a window nothing recorded", n)
		}
		s.Close()
	}
	s = openPath(t, path)
	if err := s.RecordRules(ctx, processors.DefaultOptions()); err != nil {
		t.Fatal(err)
	}
	if n, all := count(t, s, "norm_history WHERE records_in_window IS NOT NULL"), count(t, s, "norm_history"); n != all || n == 0 {
		t.Errorf("%d of %d norm_history rows count records once a sink recorded its options", n, all)
	}
}
