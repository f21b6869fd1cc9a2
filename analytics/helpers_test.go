package analytics

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

const testTopic = "shifts.v1"

// openTemp opens a new store in a test directory, closed at cleanup.
func openTemp(t testing.TB) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stakhanov.duckdb")
	return openPath(t, path), path
}

func openPath(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var baseStart = time.Date(2024, 3, 4, 6, 0, 0, 0, time.UTC)

// testShift is a processed shift with every field set to a value that
// differs from its neighbours', so a swapped column shows.
func testShift(i int, partition int32, offset int64) processors.Shift {
	ev := shift.Event{
		EventID:    fmt.Sprintf("ev-%07d", i),
		PlantID:    fmt.Sprintf("plant-%d", i%3),
		Industry:   "coal",
		Section:    fmt.Sprintf("section-%d", i%4),
		Role:       "hewer",
		WorkerID:   fmt.Sprintf("w-%04d", i%97),
		CrewSize:   1 + i%4,
		ShiftStart: baseStart.Add(time.Duration(i)*time.Hour + 123456*time.Microsecond),
		ShiftHours: 6,
		Output:     14 + float64(i%11),
		Unit:       "t",
		Scrap:      0.25 * float64(i%3),
	}
	median := 2.5
	return processors.Shift{
		Event:      ev,
		Partition:  partition,
		Offset:     offset,
		Rate:       ev.Rate(),
		CrewRate:   ev.CrewRate(),
		ScrapShare: ev.ScrapShare(),
		Norm:       processors.Norm{Count: 20 + i%5, Median: median, Mean: 2.6, P90: 3.1, MAD: 0.2, Bulk: 0.7},
		CrewNorm:   0.8,
		Ratio:      ev.Rate() / median,
		CrewRatio:  ev.CrewRate() / 0.8,
		Late:       i%5 == 0,
	}
}

func testAlert(i int, typ processors.AlertType) processors.Alert {
	a := processors.Alert{
		Type:       typ,
		PlantID:    "plant-1",
		Industry:   "coal",
		Role:       "hewer",
		Unit:       "t",
		WorkerID:   fmt.Sprintf("w-%04d", i),
		EventID:    fmt.Sprintf("ev-%07d", i),
		Day:        shift.DayOf(baseStart) + shift.Day(i),
		Rate:       17,
		NormRate:   2.33,
		Ratio:      7.3,
		ScrapShare: 0.01,
		GroupSize:  28,
		BulkShare:  0.75,
		DetectedAt: baseStart.Add(time.Duration(i)*time.Minute + 7*time.Microsecond),
	}
	switch typ {
	case processors.RecordShift, processors.SuspectRecord:
		a.ID = processors.ShiftAlertID(typ, a.EventID)
	default:
		a.EventID = ""
		if typ == processors.CommonPace {
			a.WorkerID = ""
		}
		a.ID = processors.DayAlertID(typ, shift.GroupKey{PlantID: a.PlantID, Role: a.Role, Unit: a.Unit}, a.WorkerID, a.Day)
	}
	return a
}

// shiftBatch is n shifts of one partition from offset first on, with the
// offsets it brings the partition to.
func shiftBatch(idFrom, n int, partition int32, first int64) *ingest.Batch {
	b := &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{}}
	for i := range n {
		b.Shifts = append(b.Shifts, testShift(idFrom+i, partition, first+int64(i)))
	}
	b.Offsets[partition] = first + int64(n)
	return b
}

func mustCommit(t testing.TB, s *Store, b *ingest.Batch) ingest.CommitResult {
	t.Helper()
	res, err := s.Commit(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func count(t testing.TB, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.DB().QueryRow("SELECT count(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// row reads one row as column name → scanned value.
func row(t *testing.T, s *Store, query string, args ...any) map[string]any {
	t.Helper()
	rows, err := s.DB().Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no row for %s %v (err %v)", query, args, rows.Err())
	}
	m := scanMap(t, rows, cols)
	if rows.Next() {
		t.Fatalf("more than one row for %s %v", query, args)
	}
	return m
}

// diffRow compares a stored row with what it should hold, column by
// column, times by instant and floats exactly.
func diffRow(t *testing.T, got, want map[string]any) {
	t.Helper()
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("column %s not checked (holds %v)", k, got[k])
		}
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("column %s missing", k)
			continue
		}
		if wt, ok := w.(time.Time); ok {
			gt, ok := g.(time.Time)
			if !ok || !gt.Equal(wt) {
				t.Errorf("%s = %v, want %v", k, g, w)
			}
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", k, g, w)
		}
	}
}

// null is what a NaN or absent value reads back as.
func orNull(f float64) any {
	if math.IsNaN(f) {
		return nil
	}
	return f
}

// scanMap reads the current row as column name → value.
func scanMap(t testing.TB, rows *sql.Rows, cols []string) map[string]any {
	t.Helper()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	m := make(map[string]any, len(cols))
	for i, c := range cols {
		m[c] = vals[i]
	}
	return m
}
