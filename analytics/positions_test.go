package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stakhanov/stakhanov/ingest"
)

const testStream = "shifts.v1-repartition"

// run is shifts of ids [from, from+n) at positions [at, at+n) of one
// partition of testStream.
type run struct {
	from, n   int
	partition int32
	at        int64
	unchecked bool
}

func positioned(runs ...run) *ingest.Batch {
	b := &ingest.Batch{Topic: testTopic, Stream: testStream, Offsets: map[int32]int64{}}
	for _, r := range runs {
		for i := range r.n {
			sh := testShift(r.from+i, r.partition, 1000+r.at+int64(i))
			sh.Unchecked = r.unchecked
			b.Shifts = append(b.Shifts, sh)
			b.Positions = append(b.Positions, ingest.Position{Partition: r.partition, Offset: r.at + int64(i)})
		}
	}
	return b
}

func TestCommitPositions(t *testing.T) {
	tests := []struct {
		name    string
		batches []*ingest.Batch
		want    []int // ShiftsInserted per batch
		ids     int   // distinct event ids stored, each once
		next    map[int32]int64
	}{
		{
			name:    "a replay cut differently is skipped",
			batches: []*ingest.Batch{positioned(run{0, 10, 0, 0, false}), positioned(run{5, 10, 0, 5, false})},
			want:    []int{10, 5},
			ids:     15,
			next:    map[int32]int64{0: 15},
		},
		{
			name:    "a replay inside one batch",
			batches: []*ingest.Batch{positioned(run{0, 6, 0, 0, false}, run{3, 6, 0, 3, false})},
			want:    []int{9},
			ids:     9,
			next:    map[int32]int64{0: 9},
		},
		{
			name: "partitions are independent",
			batches: []*ingest.Batch{
				positioned(run{0, 10, 0, 100, false}),
				positioned(run{10, 5, 1, 0, false}, run{0, 3, 0, 100, false}),
			},
			want: []int{10, 5},
			ids:  15,
			next: map[int32]int64{0: 110, 1: 5},
		},
		{
			// stored before positions were (an upgraded file, or a batch
			// without a stream): checked by event id
			name: "a partition with no position stored",
			batches: []*ingest.Batch{
				shiftBatch(0, 5, 0, 0),
				positioned(run{3, 5, 0, 0, false}),
			},
			want: []int{5, 3},
			ids:  8,
			next: map[int32]int64{0: 5},
		},
		{
			name: "an unchecked shift is checked by event id",
			batches: []*ingest.Batch{
				positioned(run{0, 5, 0, 0, false}),
				positioned(run{2, 1, 0, 5, true}, run{50, 1, 0, 6, true}),
			},
			want: []int{5, 1},
			ids:  6,
			next: map[int32]int64{0: 7},
		},
		{
			name: "positions unknown: checked by event id",
			batches: []*ingest.Batch{
				positioned(run{0, 5, 0, 0, false}),
				func() *ingest.Batch {
					b := positioned(run{3, 4, 0, 0, false})
					for i := range b.Positions {
						b.Positions[i].Offset = -1
					}
					return b
				}(),
			},
			want: []int{5, 2},
			ids:  7,
			next: map[int32]int64{0: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			for i, b := range tt.batches {
				if res := mustCommit(t, s, b); res.ShiftsInserted != tt.want[i] {
					t.Errorf("batch %d: ShiftsInserted = %d, want %d", i, res.ShiftsInserted, tt.want[i])
				}
			}
			var rows, ids int
			if err := s.DB().QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM shifts`).Scan(&rows, &ids); err != nil {
				t.Fatal(err)
			}
			if rows != tt.ids || ids != tt.ids {
				t.Errorf("%d rows of %d event ids, want %d of %d", rows, ids, tt.ids, tt.ids)
			}
			next, err := s.Offsets(context.Background(), testStream)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(next) != fmt.Sprint(tt.next) {
				t.Errorf("stored positions %v, want %v", next, tt.next)
			}
		})
	}
}

// TestCommitPositionsRollBack: a failed commit stores no position, so its
// shifts go in when the batch comes again.
func TestCommitPositionsRollBack(t *testing.T) {
	s, _ := openTemp(t)
	mustCommit(t, s, positioned(run{0, 5, 0, 0, false}))
	s.loaders.hook = func(stage commitStage) error {
		if stage == stageOffsets {
			return errHook
		}
		return nil
	}
	if _, err := s.Commit(context.Background(), positioned(run{5, 5, 0, 5, false})); !errors.Is(err, errHook) {
		t.Fatalf("commit: %v, want the hook's error", err)
	}
	s.loaders.hook = nil
	if res := mustCommit(t, s, positioned(run{5, 5, 0, 5, false})); res.ShiftsInserted != 5 {
		t.Errorf("ShiftsInserted = %d after the failed commit, want 5", res.ShiftsInserted)
	}
	if n := count(t, s, "shifts"); n != 10 {
		t.Errorf("%d shifts, want 10", n)
	}
}

// TestOpenUpgradesKeyedShifts: a file of schema version 2, whose shifts
// have a primary key, opens as version 3 without it, its rows and views
// intact.
func TestOpenUpgradesKeyedShifts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.duckdb")
	s := openPath(t, path)
	mustCommit(t, s, fullBatch(0, 0, 0))
	s.Close()

	// Make it what version 2 wrote: the same columns, event_id the key.
	db, err := sql.Open("duckdb", path)
	if err != nil {
		t.Fatal(err)
	}
	keyed := strings.Replace(shiftsColumns, "event_id        VARCHAR,", "event_id        VARCHAR PRIMARY KEY,", 1)
	for _, q := range []string{
		`CREATE TABLE shifts_v2 (` + keyed + `)`,
		`INSERT INTO shifts_v2 SELECT * FROM shifts`,
		`DROP TABLE shifts`,
		`ALTER TABLE shifts_v2 RENAME TO shifts`,
		`UPDATE schema_version SET version = 2`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	if n := primaryKeys(t, db); n != 1 {
		t.Fatalf("the version-2 file has %d keys on shifts, want 1", n)
	}
	db.Close()

	s = openPath(t, path)
	if n := primaryKeys(t, s.DB()); n != 0 {
		t.Errorf("%d keys on shifts after the upgrade, want 0", n)
	}
	var version int
	if err := s.DB().QueryRow(`SELECT version FROM schema_version`).Scan(&version); err != nil || version != SchemaVersion {
		t.Errorf("schema version %d (%v), want %d", version, err, SchemaVersion)
	}
	if n := count(t, s, "shifts"); n != 50 {
		t.Errorf("%d shifts after the upgrade, want 50", n)
	}
	var viewed int
	if err := s.DB().QueryRow(`SELECT count(*) FROM norm_history`).Scan(&viewed); err != nil {
		t.Errorf("a view after the upgrade: %v", err)
	}
	// and repeats of the stored rows are still recognised
	if res := mustCommit(t, s, positioned(run{0, 60, 0, 0, false})); res.ShiftsInserted != 10 {
		t.Errorf("ShiftsInserted = %d after the upgrade, want 10", res.ShiftsInserted)
	}
}

func primaryKeys(t *testing.T, db *sql.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM duckdb_constraints()
		WHERE table_name = 'shifts' AND constraint_type = 'PRIMARY KEY'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCommitPrepared: a batch prepared ahead (ingest.Preparer) stores what
// the same batch stores unprepared, also when the record cannot be used.
func TestCommitPrepared(t *testing.T) {
	tests := []struct {
		name    string
		batches func() []*ingest.Batch
		// change runs between Prepare and Commit of the last batch
		change func(b *ingest.Batch)
	}{
		{
			name:    "every shift kept",
			batches: func() []*ingest.Batch { return []*ingest.Batch{positioned(run{0, 500, 0, 0, false})} },
		},
		{
			name: "a replay dropped by position",
			batches: func() []*ingest.Batch {
				return []*ingest.Batch{positioned(run{0, 50, 0, 0, false}), positioned(run{40, 50, 0, 40, false})}
			},
		},
		{
			name: "repeats inside the batch",
			batches: func() []*ingest.Batch {
				return []*ingest.Batch{shiftBatch(0, 5, 0, 0), {Topic: testTopic, Shifts: append(shiftBatch(3, 5, 1, 0).Shifts, shiftBatch(0, 2, 1, 9).Shifts...)}}
			},
		},
		{
			name:    "shifts added after Prepare",
			batches: func() []*ingest.Batch { return []*ingest.Batch{positioned(run{0, 50, 0, 0, false})} },
			change: func(b *ingest.Batch) {
				more := positioned(run{50, 10, 0, 50, false})
				b.Shifts, b.Positions = append(b.Shifts, more.Shifts...), append(b.Positions, more.Positions...)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plain, _ := openTemp(t)
			prepared, _ := openTemp(t)
			var wantN, gotN []int
			for _, b := range tt.batches() {
				if tt.change != nil {
					tt.change(b)
				}
				wantN = append(wantN, mustCommit(t, plain, b).ShiftsInserted)
			}
			for _, b := range tt.batches() {
				prepared.Prepare(b)
				if b.Prepared == nil {
					t.Fatal("Prepare left the batch unprepared")
				}
				if tt.change != nil {
					tt.change(b)
				}
				gotN = append(gotN, mustCommit(t, prepared, b).ShiftsInserted)
				b.Reset()
			}
			if fmt.Sprint(gotN) != fmt.Sprint(wantN) {
				t.Errorf("ShiftsInserted %v prepared, %v not", gotN, wantN)
			}
			if got, want := dumpShifts(t, prepared), dumpShifts(t, plain); got != want {
				t.Errorf("prepared batches stored other rows:\n%.600s\nwant\n%.600s", got, want)
			}
		})
	}
}

func dumpShifts(t *testing.T, s *Store) string {
	t.Helper()
	rows, err := s.DB().Query(`SELECT * FROM shifts ORDER BY event_id, kafka_partition, kafka_offset`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out strings.Builder
	for rows.Next() {
		fmt.Fprintln(&out, scanMap(t, rows, cols))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}
