package analytics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

func wantShiftRow(sh processors.Shift, topic string) map[string]any {
	day := shift.DayOf(sh.ShiftStart).Start()
	var section any = sh.Section
	if sh.Section == "" {
		section = nil
	}
	m := map[string]any{
		"event_id":        sh.EventID,
		"plant_id":        sh.PlantID,
		"industry":        sh.Industry,
		"section":         section,
		"role":            sh.Role,
		"worker_id":       sh.WorkerID,
		"crew_size":       int32(sh.CrewSize),
		"shift_start":     sh.ShiftStart,
		"shift_hours":     orNull(sh.ShiftHours),
		"output":          orNull(sh.Output),
		"unit":            sh.Unit,
		"scrap":           orNull(sh.Scrap),
		"rate":            orNull(sh.Rate),
		"norm_rate":       orNull(sh.Norm.Median),
		"ratio":           orNull(sh.Ratio),
		"late":            sh.Late,
		"kafka_partition": sh.Partition,
		"kafka_offset":    sh.Offset,
		"kafka_topic":     topic,
		"day":             day,
		"scrap_share":     orNull(sh.ScrapShare),
		"norm_count":      int32(sh.Norm.Count),
		"norm_mean":       orNull(sh.Norm.Mean),
		"norm_p90":        orNull(sh.Norm.P90),
		"norm_mad":        orNull(sh.Norm.MAD),
		"norm_bulk":       orNull(sh.Norm.Bulk),
		"crew_rate":       orNull(sh.CrewRate),
		"crew_norm_rate":  orNull(sh.CrewNorm),
		"crew_ratio":      orNull(sh.CrewRatio),
	}
	if sh.Norm.Count == 0 {
		for _, k := range []string{"norm_rate", "norm_count", "norm_mean", "norm_p90", "norm_mad", "norm_bulk"} {
			m[k] = nil
		}
	}
	return m
}

// checkShiftRows compares every stored column of each of shifts, read back
// with a plain SELECT, with what it should hold.
func checkShiftRows(t *testing.T, s *Store, shifts []processors.Shift, topic string) {
	t.Helper()
	rows, err := s.DB().Query("SELECT * FROM shifts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]map[string]any{}
	for rows.Next() {
		m := scanMap(t, rows, cols)
		stored[m["event_id"].(string)] = m
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, sh := range shifts {
		got, ok := stored[sh.EventID]
		if !ok {
			t.Errorf("%s not stored", sh.EventID)
			continue
		}
		t.Run(sh.EventID, func(t *testing.T) { diffRow(t, got, wantShiftRow(sh, topic)) })
	}
}

func TestCommitShiftRoundTrip(t *testing.T) {
	for _, cfg := range []loaderConfig{defaultLoaderConfig, {dict: !defaultLoaderConfig.dict}} {
		t.Run(fmt.Sprintf("dict=%v", cfg.dict), func(t *testing.T) {
			s, _ := openTemp(t)
			s.loaders = newLoaders(cfg)
			testShiftRoundTrip(t, s)
		})
	}
}

func testShiftRoundTrip(t *testing.T, s *Store) {
	tests := []struct {
		name   string
		modify func(*processors.Shift)
	}{
		{"all fields", func(*processors.Shift) {}},
		{"NaN ratio is NULL", func(sh *processors.Shift) { sh.Ratio = math.NaN(); sh.CrewRatio = math.NaN() }},
		{"empty section is NULL", func(sh *processors.Shift) { sh.Section = "" }},
		{"NaN event fields are NULL", func(sh *processors.Shift) {
			sh.ShiftHours, sh.Output, sh.Scrap = math.NaN(), math.NaN(), math.NaN()
			sh.Rate, sh.CrewRate, sh.ScrapShare = math.NaN(), math.NaN(), math.NaN()
			sh.Ratio, sh.CrewRatio = math.NaN(), math.NaN()
		}},
		{"not late, large crew, partition and offset zero", func(sh *processors.Shift) {
			sh.Late = false
			sh.CrewSize = 1<<31 - 1
			sh.Partition, sh.Offset = 0, 0
		}},
		{"no history: norm columns NULL", func(sh *processors.Shift) {
			sh.Norm = processors.Norm{}
			sh.CrewNorm, sh.Ratio, sh.CrewRatio = math.NaN(), math.NaN(), math.NaN()
		}},
		{"history with zero median", func(sh *processors.Shift) {
			sh.Norm = processors.Norm{Count: 3, Median: 0, Mean: 0, P90: 0, MAD: 0, Bulk: 1}
			sh.Ratio = math.NaN()
		}},
		{"late, day before epoch, large offset", func(sh *processors.Shift) {
			sh.Late = true
			sh.ShiftStart = time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)
			sh.Offset = math.MaxInt64 - 1
			sh.Partition = 1<<31 - 1
		}},
		{"unicode", func(sh *processors.Shift) {
			sh.WorkerID = "Стаханов А. Г."
			sh.PlantID = "шахта Центральная-Ирмино"
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := testShift(i, 2, int64(100+i))
			tt.modify(&sh)
			res := mustCommit(t, s, &ingest.Batch{Topic: testTopic, Shifts: []processors.Shift{sh}})
			if res.ShiftsInserted != 1 {
				t.Errorf("ShiftsInserted = %d, want 1", res.ShiftsInserted)
			}
			got := row(t, s, "SELECT * FROM shifts WHERE event_id = ?", sh.EventID)
			diffRow(t, got, wantShiftRow(sh, testTopic))
		})
	}

	t.Run("many rows in one batch", func(t *testing.T) {
		b := shiftBatch(1000, 300, 3, 500)
		for i := range b.Shifts {
			sh := &b.Shifts[i]
			if i%7 == 3 {
				sh.Section = ""
			}
			if i%11 == 5 {
				sh.Output, sh.Rate, sh.CrewRate, sh.Ratio, sh.CrewRatio = math.NaN(), math.NaN(), math.NaN(), math.NaN(), math.NaN()
			}
			if i%13 == 6 {
				sh.Scrap, sh.ScrapShare = math.NaN(), math.NaN()
			}
		}
		res := mustCommit(t, s, b)
		if res.ShiftsInserted != len(b.Shifts) {
			t.Errorf("ShiftsInserted = %d, want %d", res.ShiftsInserted, len(b.Shifts))
		}
		checkShiftRows(t, s, b.Shifts, testTopic)
	})

	// A batch's results go to its Topic's offsets, but its shifts keep
	// the input topic they were read from.
	t.Run("source topic", func(t *testing.T) {
		b := shiftBatch(2000, 3, 4, 70)
		b.Topic, b.SourceTopic = "g-results", "shift-events"
		mustCommit(t, s, b)
		checkShiftRows(t, s, b.Shifts, "shift-events")
		for topic, want := range map[string]map[int32]int64{
			"g-results":    {4: 73},
			"shift-events": {},
		} {
			offs, err := s.Offsets(context.Background(), topic)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(offs) != fmt.Sprint(want) {
				t.Errorf("offsets of %s: %v, want %v", topic, offs, want)
			}
		}
	})
}

func TestCommitAlertRoundTrip(t *testing.T) {
	s, _ := openTemp(t)
	for i, typ := range processors.AlertTypes {
		t.Run(string(typ), func(t *testing.T) {
			a := testAlert(i, typ)
			if typ == processors.PaceSetter {
				a.Ratio = math.NaN()
			}
			a.Late = typ == processors.SuspectRecord // a late shift's record
			res := mustCommit(t, s, &ingest.Batch{Topic: testTopic, Alerts: []processors.Alert{a}})
			if res.AlertsInserted != 1 {
				t.Errorf("AlertsInserted = %d, want 1", res.AlertsInserted)
			}
			nullable := func(s string) any {
				if s == "" {
					return nil
				}
				return s
			}
			got := row(t, s, "SELECT * FROM alerts WHERE alert_id = ?", a.ID)
			diffRow(t, got, map[string]any{
				"alert_id":    a.ID,
				"type":        string(a.Type),
				"plant_id":    a.PlantID,
				"industry":    a.Industry,
				"role":        a.Role,
				"unit":        a.Unit,
				"worker_id":   nullable(a.WorkerID),
				"event_id":    nullable(a.EventID),
				"day":         a.Day.Start(),
				"rate":        a.Rate,
				"norm_rate":   a.NormRate,
				"ratio":       orNull(a.Ratio),
				"scrap_share": a.ScrapShare,
				"group_size":  int32(a.GroupSize),
				"bulk_share":  a.BulkShare,
				"detected_at": a.DetectedAt,
				"late":        a.Late,
			})
		})
	}
}

func TestCommitNorms(t *testing.T) {
	s, _ := openTemp(t)
	g := shift.GroupKey{PlantID: "p", Role: "hewer", Unit: "t"}
	day := shift.DayOf(baseStart)
	norm := func(median float64) processors.NormRow {
		return processors.NormRow{Group: g, Day: day,
			Norm: processors.Norm{Count: 40, Median: median, Mean: median + 1, P90: median + 2, MAD: 0.5, Bulk: 0.25}}
	}
	read := func() map[string]any {
		return row(t, s, "SELECT * FROM norms WHERE plant_id = 'p' AND day = ?", day.Start())
	}
	want := func(median float64) map[string]any {
		return map[string]any{"plant_id": "p", "role": "hewer", "unit": "t", "day": day.Start(),
			"shifts": int32(40), "median_rate": median, "mean_rate": median + 1, "p90_rate": median + 2,
			"mad_rate": 0.5, "bulk_share": 0.25}
	}
	mustCommit(t, s, &ingest.Batch{Topic: testTopic, Norms: []processors.NormRow{norm(14)}})
	diffRow(t, read(), want(14))

	t.Run("recomputed row replaces", func(t *testing.T) {
		mustCommit(t, s, &ingest.Batch{Topic: testTopic, Norms: []processors.NormRow{norm(15)}})
		diffRow(t, read(), want(15))
	})
	t.Run("last of a batch wins", func(t *testing.T) {
		mustCommit(t, s, &ingest.Batch{Topic: testTopic, Norms: []processors.NormRow{norm(16), norm(17), norm(18)}})
		diffRow(t, read(), want(18))
		if n := count(t, s, "norms"); n != 1 {
			t.Errorf("%d norm rows, want 1", n)
		}
	})
	t.Run("empty window is NULL", func(t *testing.T) {
		empty := processors.NormRow{Group: g, Day: day + 1}
		mustCommit(t, s, &ingest.Batch{Topic: testTopic, Norms: []processors.NormRow{empty}})
		got := row(t, s, "SELECT * FROM norms WHERE day = ?", (day + 1).Start())
		diffRow(t, got, map[string]any{"plant_id": "p", "role": "hewer", "unit": "t",
			"day": (day + 1).Start(), "shifts": int32(0), "median_rate": nil, "mean_rate": nil,
			"p90_rate": nil, "mad_rate": nil, "bulk_share": nil})
	})
}

func TestCommitRejects(t *testing.T) {
	s, _ := openTemp(t)
	rejects := []ingest.Reject{
		{Topic: testTopic, Partition: 0, Offset: 7, Reason: shift.ReasonInvalidUTF8,
			Detail: "bad byte \xff here", Key: []byte("k\x00"), Value: []byte("{\"event_id\":\"\xff\"}")},
		{Topic: testTopic, Partition: 1, Offset: 8, Reason: "missing_field", Detail: "", Key: nil, Value: []byte{}},
	}
	b := &ingest.Batch{Topic: testTopic, Rejects: rejects, Offsets: map[int32]int64{0: 8, 1: 9}}
	mustCommit(t, s, b)
	got := row(t, s, "SELECT * FROM rejects WHERE kafka_offset = 7")
	diffRow(t, got, map[string]any{"topic": testTopic, "kafka_partition": int32(0), "kafka_offset": int64(7),
		"reason": shift.ReasonInvalidUTF8, "detail": "bad byte \uFFFD here",
		"key": []byte("k\x00"), "value": []byte("{\"event_id\":\"\xff\"}")})
	got = row(t, s, "SELECT * FROM rejects WHERE kafka_offset = 8")
	diffRow(t, got, map[string]any{"topic": testTopic, "kafka_partition": int32(1), "kafka_offset": int64(8),
		"reason": "missing_field", "detail": "", "key": nil, "value": []byte{}})

	t.Run("redelivered reject is ignored", func(t *testing.T) {
		mustCommit(t, s, b)
		if n := count(t, s, "rejects"); n != 2 {
			t.Errorf("%d rejects, want 2", n)
		}
	})
}

func TestCommitDuplicateEvents(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]processors.Shift
		want    []int // ShiftsInserted per batch
		stored  int
	}{
		{
			name:    "repeat in a later batch",
			batches: [][]processors.Shift{{testShift(1, 0, 0), testShift(2, 0, 1)}, {testShift(2, 1, 0), testShift(3, 1, 1)}},
			want:    []int{2, 1},
			stored:  3,
		},
		{
			name:    "repeat inside one batch",
			batches: [][]processors.Shift{{testShift(1, 0, 0), testShift(1, 1, 0), testShift(2, 0, 1), testShift(1, 0, 2)}},
			want:    []int{2},
			stored:  2,
		},
		{
			name: "both",
			batches: [][]processors.Shift{
				{testShift(1, 0, 0)},
				{testShift(1, 1, 5), testShift(4, 1, 6), testShift(4, 0, 1)},
			},
			want:   []int{1, 1},
			stored: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for i, shifts := range tt.batches {
				res := mustCommit(t, s, &ingest.Batch{Topic: testTopic, Shifts: shifts})
				if res.ShiftsInserted != tt.want[i] {
					t.Errorf("batch %d: ShiftsInserted = %d, want %d", i, res.ShiftsInserted, tt.want[i])
				}
			}
			if n := count(t, s, "shifts"); n != tt.stored {
				t.Errorf("%d shifts stored, want %d", n, tt.stored)
			}
			// The first copy in offset order is the one kept.
			first := map[string]processors.Shift{}
			for _, shifts := range tt.batches {
				for _, sh := range shifts {
					if _, ok := first[sh.EventID]; !ok {
						first[sh.EventID] = sh
					}
				}
			}
			for id, sh := range first {
				got := row(t, s, "SELECT kafka_partition, kafka_offset FROM shifts WHERE event_id = ?", id)
				if got["kafka_partition"] != sh.Partition || got["kafka_offset"] != sh.Offset {
					t.Errorf("%s kept from %v/%v, want %d/%d", id, got["kafka_partition"], got["kafka_offset"], sh.Partition, sh.Offset)
				}
			}
		})
	}

	t.Run("repeat alert", func(t *testing.T) {
		s, _ := openTemp(t)
		a, b := testAlert(1, processors.RecordShift), testAlert(2, processors.PaceSetter)
		res := mustCommit(t, s, &ingest.Batch{Topic: testTopic, Alerts: []processors.Alert{a, a, b}})
		if res.AlertsInserted != 2 {
			t.Errorf("AlertsInserted = %d, want 2", res.AlertsInserted)
		}
		res = mustCommit(t, s, &ingest.Batch{Topic: testTopic, Alerts: []processors.Alert{b}})
		if res.AlertsInserted != 0 {
			t.Errorf("AlertsInserted = %d for a stored alert, want 0", res.AlertsInserted)
		}
	})
}

// fullBatch has something for every table.
func fullBatch(idFrom int, partition int32, first int64) *ingest.Batch {
	b := shiftBatch(idFrom, 50, partition, first)
	b.Alerts = []processors.Alert{testAlert(idFrom, processors.RecordShift), testAlert(idFrom, processors.CommonPace)}
	b.Norms = []processors.NormRow{{Group: shift.GroupKey{PlantID: "p", Role: "r", Unit: "t"}, Day: shift.Day(idFrom),
		Norm: processors.Norm{Count: 1, Median: 1}}}
	b.Rejects = []ingest.Reject{{Topic: testTopic, Partition: partition, Offset: first + 50, Reason: "bad_json"}}
	b.Offsets[partition] = first + 51
	return b
}

func TestCommitAtomic(t *testing.T) {
	tables := []string{"shifts", "alerts", "norms", "rejects", "ingest_offsets"}
	tests := []struct {
		name  string
		batch func() *ingest.Batch
		// hook fails the commit after a stage; cancel is the commit's
		// context's cancel func.
		hook func(stage commitStage, cancel context.CancelFunc) error
		want error // errors.Is target, when there is a specific one
	}{
		{
			// DuckDB rejects a VARCHAR that is not UTF-8: the alerts
			// statement fails after the shifts are in.
			name: "engine error in a later statement",
			batch: func() *ingest.Batch {
				b := fullBatch(1000, 0, 0)
				b.Alerts[0].WorkerID = "w-\xff"
				return b
			},
		},
		{
			name:  "context cancelled after the shifts",
			batch: func() *ingest.Batch { return fullBatch(1000, 0, 0) },
			hook: func(stage commitStage, cancel context.CancelFunc) error {
				if stage == stageShifts {
					cancel()
				}
				return nil
			},
			want: context.Canceled,
		},
		{
			name:  "failure after the offsets, before COMMIT",
			batch: func() *ingest.Batch { return fullBatch(1000, 0, 0) },
			hook: func(stage commitStage, _ context.CancelFunc) error {
				if stage == stageOffsets {
					return errHook
				}
				return nil
			},
			want: errHook,
		},
		{
			name:  "context cancelled before the commit",
			batch: func() *ingest.Batch { return fullBatch(1000, 0, 0) },
			hook: func(stage commitStage, cancel context.CancelFunc) error {
				return nil
			},
			want: context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			// Something committed before, which must survive the failure.
			mustCommit(t, s, fullBatch(0, 1, 0))
			before := map[string]int{}
			for _, tb := range tables {
				before[tb] = count(t, s, tb)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.name == "context cancelled before the commit" {
				cancel()
			}
			if tt.hook != nil {
				s.loaders.hook = func(st commitStage) error { return tt.hook(st, cancel) }
			}
			_, err := s.Commit(ctx, tt.batch())
			s.loaders.hook = nil
			if err == nil {
				t.Fatal("commit succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
			for _, tb := range tables {
				if n := count(t, s, tb); n != before[tb] {
					t.Errorf("%s: %d rows after the failed commit, want %d", tb, n, before[tb])
				}
			}
			offs, err := s.Offsets(context.Background(), testTopic)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := offs[0]; ok {
				t.Errorf("offset of partition 0 stored: %v", offs)
			}
			// The store still works, and the same batch now goes in whole.
			res := mustCommit(t, s, fullBatch(1000, 0, 0))
			if res.ShiftsInserted != 50 || res.AlertsInserted != 2 {
				t.Errorf("retry: %+v", res)
			}
			if offs, _ := s.Offsets(context.Background(), testTopic); offs[0] != 51 {
				t.Errorf("retry: offsets %v", offs)
			}
			if n := count(t, s, "duckdb_views() WHERE view_name LIKE 'stakhanov_load_%'"); n != 0 {
				t.Errorf("%d views left in the catalog", n)
			}
		})
	}
}

var errHook = errors.New("injected failure")

func TestCommitEmptyAndOffsetsOnly(t *testing.T) {
	s, _ := openTemp(t)
	res, err := s.Commit(context.Background(), &ingest.Batch{})
	if err != nil || res != (ingest.CommitResult{}) {
		t.Fatalf("empty batch: %+v, %v", res, err)
	}
	// A run of only rejects or filtered input still moves the offsets.
	mustCommit(t, s, &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{3: 10, 4: 20}})
	mustCommit(t, s, &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{3: 11}})
	mustCommit(t, s, &ingest.Batch{Topic: "other", Offsets: map[int32]int64{3: 99}})
	offs, err := s.Offsets(context.Background(), testTopic)
	if err != nil {
		t.Fatal(err)
	}
	if len(offs) != 2 || offs[3] != 11 || offs[4] != 20 {
		t.Errorf("offsets %v, want map[3:11 4:20]", offs)
	}
	if _, err := s.Commit(context.Background(), &ingest.Batch{Offsets: map[int32]int64{0: 1}}); err == nil {
		t.Error("offsets without a topic accepted")
	}
}

func TestCommitClosedAndReadOnly(t *testing.T) {
	s, path := openTemp(t)
	mustCommit(t, s, shiftBatch(0, 3, 0, 0))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(context.Background(), shiftBatch(10, 1, 0, 3)); !errors.Is(err, ErrClosed) {
		t.Errorf("commit after close: %v, want ErrClosed", err)
	}
	opts := DefaultOptions(path)
	opts.ReadOnly = true
	ro, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Commit(context.Background(), shiftBatch(10, 1, 0, 3)); !errors.Is(err, ErrReadOnly) {
		t.Errorf("commit on read-only: %v, want ErrReadOnly", err)
	}
	if n := count(t, ro, "shifts"); n != 3 {
		t.Errorf("read-only store sees %d shifts, want 3", n)
	}
}
