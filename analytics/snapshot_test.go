package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// snapshotFixture commits three full batches, one of them with a norm of a
// plant that has shifts (its industry comes from them) and one of a plant
// that has none.
func snapshotFixture(t *testing.T, s *Store) {
	t.Helper()
	for i, b := range []*ingest.Batch{fullBatch(0, 0, 0), fullBatch(100, 1, 0), fullBatch(1000, 2, 0)} {
		b.Norms = append(b.Norms, processors.NormRow{Group: shift.GroupKey{PlantID: "plant-1", Role: "hewer", Unit: "t"},
			Day: shift.DayOf(baseStart) + shift.Day(40*i), Norm: processors.Norm{Count: 3, Median: 2}})
		mustCommit(t, s, b)
	}
}

func tableCounts(t *testing.T, db *sql.DB, prefix string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, table := range ExportTables {
		var n int64
		if err := db.QueryRow("SELECT count(*) FROM " + prefix + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[table] = n
	}
	return out
}

// parquetCounts reads an export in a fresh in-memory database, with the
// partition columns from the paths.
func parquetCounts(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	mem, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	out := map[string]int64{}
	for _, table := range ExportTables {
		var n int64
		q := fmt.Sprintf(`SELECT count(*) FROM read_parquet(%s, hive_partitioning = true)`,
			quoteString(filepath.Join(dir, table, "**", "*.parquet")))
		if err := mem.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

func TestSnapshot(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	snapshotFixture(t, s)
	want := tableCounts(t, s.DB(), "")
	dir := filepath.Join(t.TempDir(), "snap")

	res, err := s.Snapshot(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(res.Tables, want) || want["shifts"] != 150 || want["norms"] != 6 {
		t.Fatalf("snapshot counts %v, tables %v", res.Tables, want)
	}
	if res.Path != filepath.Join(dir, SnapshotFile) || res.ParquetDir != filepath.Join(dir, SnapshotParquet) {
		t.Fatalf("paths %s, %s", res.Path, res.ParquetDir)
	}
	if _, err := os.Stat(res.Path + ".wal"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the snapshot has a WAL: %v", err)
	}

	t.Run("DuckDB file in a fresh connection", func(t *testing.T) {
		o := DefaultOptions(res.Path)
		o.ReadOnly = true
		snap, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		defer snap.Close()
		if got := tableCounts(t, snap.DB(), ""); !maps.Equal(got, want) {
			t.Errorf("snapshot file holds %v, want %v", got, want)
		}
		// the views and the macro come along, and read the copy
		q := `SELECT (SELECT count(*) FROM duckdb_views() WHERE NOT internal),
			(SELECT count(*) FROM duckdb_functions() WHERE function_type = 'table_macro' AND NOT internal)`
		var views, macros, liveViews, liveMacros int
		if err := snap.DB().QueryRow(q).Scan(&views, &macros); err != nil {
			t.Fatal(err)
		}
		if err := s.DB().QueryRow(q).Scan(&liveViews, &liveMacros); err != nil {
			t.Fatal(err)
		}
		if views != liveViews || macros != liveMacros || views == 0 {
			t.Errorf("snapshot has %d views and %d macros, the file %d and %d", views, macros, liveViews, liveMacros)
		}
		var records int
		if err := snap.DB().QueryRow(`SELECT count(*) FROM records`).Scan(&records); err != nil || records != 3 {
			t.Errorf("records view in the snapshot: %d rows, %v", records, err)
		}
		// every table and its rows, not only the exported ones
		for _, table := range []string{"shifts", "alerts", "norms", "rejects", "ingest_offsets", "schema_version"} {
			if got, want := fingerprint(t, snap.DB(), table), fingerprint(t, s.DB(), table); got != want {
				t.Errorf("%s: snapshot %s, live %s", table, got, want)
			}
		}
	})
	t.Run("Parquet partitions", func(t *testing.T) {
		if got := parquetCounts(t, res.ParquetDir); !maps.Equal(got, want) {
			t.Errorf("Parquet holds %v, want %v", got, want)
		}
		// shifts by month, alerts and norms by year, rejects in the
		// table's directory. The fixture's alerts are of days 0, 100 and
		// 1000 after 2024-03-04; plant p's norms of days 0, 100 and 1000
		// after 1970-01-01; plant-1's of 2024.
		for _, p := range []string{
			"shifts/month=2024-03", "shifts/month=2024-04", "alerts/year=2024", "alerts/year=2026",
			"norms/year=1970", "norms/year=1972", "norms/year=2024", "rejects",
		} {
			if _, err := os.Stat(filepath.Join(res.ParquetDir, p, "data_0.parquet")); err != nil {
				t.Error(err)
			}
		}
		if !maps.Equal(res.Files, map[string]int{"shifts": 2, "alerts": 2, "norms": 3, "rejects": 1}) {
			t.Errorf("files %v", res.Files)
		}
		for table, b := range res.Bytes {
			if _, size := parquetFiles(filepath.Join(res.ParquetDir, table)); size != b || b == 0 {
				t.Errorf("%s: %d bytes reported, %d on disk", table, b, size)
			}
		}
		mem, _ := sql.Open("duckdb", "")
		defer mem.Close()
		// month is in the paths; industry and plant_id in the files
		var industries, plants, months int
		q := fmt.Sprintf(`SELECT count(DISTINCT industry), count(DISTINCT plant_id), count(DISTINCT month) FROM read_parquet(%s, hive_partitioning = true)`,
			quoteString(filepath.Join(res.ParquetDir, "shifts", "**", "*.parquet")))
		if err := mem.QueryRow(q).Scan(&industries, &plants, &months); err != nil || industries != 1 || plants != 3 || months != 2 {
			t.Errorf("industries %d plants %d months %d (%v)", industries, plants, months, err)
		}
		// a norm takes its plant's industry; plant p has no shift
		var coal, none int
		q = fmt.Sprintf(`SELECT count(*) FILTER (WHERE industry = 'coal' AND plant_id = 'plant-1'),
			count(*) FILTER (WHERE industry IS NULL AND plant_id = 'p') FROM read_parquet(%s, hive_partitioning = true)`,
			quoteString(filepath.Join(res.ParquetDir, "norms", "**", "*.parquet")))
		if err := mem.QueryRow(q).Scan(&coal, &none); err != nil || coal != 3 || none != 3 {
			t.Errorf("norms of plant-1 with coal %d, of p with no industry %d (%v)", coal, none, err)
		}
		checkSorted(t, mem, res.ParquetDir)
	})
	t.Run("next snapshots replace, keeping the previous export", func(t *testing.T) {
		first, _ := os.Readlink(res.ParquetDir)
		mustCommit(t, s, fullBatch(2000, 3, 0))
		res2, err := s.Snapshot(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if res2.Tables["shifts"] != 200 || parquetCounts(t, res2.ParquetDir)["shifts"] != 200 {
			t.Errorf("second snapshot: %v", res2.Tables)
		}
		second, _ := os.Readlink(res.ParquetDir)
		if second == first {
			t.Fatal("the link still names the first export")
		}
		if _, err := os.Stat(filepath.Join(dir, first)); err != nil {
			t.Errorf("the previous export is gone: %v", err)
		}
		if _, err := s.Snapshot(ctx, dir); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, first)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the export before the previous is still there: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 4 { // the file, the link, two exports
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Errorf("snapshot directory holds %v", names)
		}
	})
}

// TestSnapshotConsistent: snapshots taken while batches commit show whole
// batches only, the same ones in every table and in both forms.
func TestSnapshotConsistent(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	dir := t.TempDir()
	const batches = 40
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range batches {
			// 50 shifts, 2 alerts, 1 norm, 1 reject, offsets to 51(i+1)
			if _, err := s.Commit(ctx, fullBatch(100*i, 0, int64(51*i))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	defer wg.Wait()
	check := func(counts map[string]int64, offset int64) {
		t.Helper()
		n := offset / 51
		want := map[string]int64{"shifts": 50 * n, "alerts": 2 * n, "norms": n, "rejects": n}
		if !maps.Equal(counts, want) {
			t.Errorf("offset %d: %v, want %v", offset, counts, want)
		}
	}
	for range 4 {
		res, err := s.Snapshot(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		o := DefaultOptions(res.Path)
		o.ReadOnly = true
		snap, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var offset int64
		if err := snap.DB().QueryRow(`SELECT coalesce(max(next_offset), 0) FROM ingest_offsets`).Scan(&offset); err != nil {
			t.Fatal(err)
		}
		check(tableCounts(t, snap.DB(), ""), offset)
		check(parquetCounts(t, res.ParquetDir), offset)
		check(res.Tables, offset)
		snap.Close()
		t.Logf("snapshot at offset %d", offset)
	}
}

// fingerprint is a table's row count and an order-free hash of its rows.
func fingerprint(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	var n int64
	var h string
	if err := db.QueryRow(fmt.Sprintf(`SELECT count(*), coalesce(sum(hash(t)::HUGEINT), 0)::VARCHAR FROM %s t`, table)).Scan(&n, &h); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d rows, hash %s", n, h)
}

func TestExportParquet(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	snapshotFixture(t, s)
	// rows without a day go to Hive's partition for NULL
	for _, q := range []string{
		`INSERT INTO shifts (event_id, plant_id, industry) VALUES ('no-day', 'plant-9', 'coal')`,
		`INSERT INTO alerts (alert_id, type, plant_id) VALUES ('no-day', 'record_shift', 'plant-9')`,
	} {
		if _, err := s.DB().Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	want := tableCounts(t, s.DB(), "")
	s.Close()
	// any handle: here a read-only one on a file no process holds
	o := DefaultOptions(path)
	o.ReadOnly = true
	ro, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	out := filepath.Join(t.TempDir(), "nested", "export")
	res, err := ExportParquet(ctx, ro.DB(), out, DefaultExportOptions())
	if err != nil {
		t.Fatal(err)
	}
	if res.ParquetDir != out || !maps.Equal(res.Tables, want) {
		t.Fatalf("%+v, want %v", res, want)
	}
	if got := parquetCounts(t, out); !maps.Equal(got, want) {
		t.Errorf("Parquet holds %v, want %v", got, want)
	}
	if m, _ := filepath.Glob(filepath.Join(out, "shifts", "month=*", "*.parquet")); len(m) != 3 {
		t.Errorf("shifts partitions: %v", m)
	}
	mem, _ := sql.Open("duckdb", "")
	defer mem.Close()
	for table, q := range map[string]string{
		"shifts": `SELECT event_id FROM read_parquet(?, hive_partitioning = true) WHERE month IS NULL`,
		"alerts": `SELECT alert_id FROM read_parquet(?, hive_partitioning = true) WHERE year IS NULL`,
	} {
		var id string
		if err := mem.QueryRow(q, filepath.Join(out, table, "*=__HIVE_DEFAULT_PARTITION__", "data_0.parquet")).Scan(&id); err != nil || id != "no-day" {
			t.Errorf("%s without a day: %q, %v", table, id, err)
		}
	}
	if _, err := ExportParquet(ctx, ro.DB(), out, DefaultExportOptions()); !errors.Is(err, ErrExportTarget) {
		t.Errorf("export over a full directory: %v", err)
	}
	empty := t.TempDir()
	if _, err := ExportParquet(ctx, ro.DB(), empty, DefaultExportOptions()); err != nil {
		t.Errorf("export into an empty directory: %v", err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary directories left: %v", leftovers)
	}
}

// sortKeys are the orders each table's files are written in.
var sortKeys = map[string]string{
	"shifts":  "plant_id, shift_start, worker_id, event_id",
	"alerts":  "plant_id, day, alert_id",
	"norms":   "plant_id, role, unit, day",
	"rejects": "topic, kafka_partition, kafka_offset",
}

// checkSorted: in every file of an export, rows lie in their table's
// order (rows in file order, each no less than the one before).
func checkSorted(t *testing.T, db *sql.DB, dir string) {
	t.Helper()
	for table, keys := range sortKeys {
		q := fmt.Sprintf(`SELECT count(*) FROM (
			SELECT filename, file_row_number, (%[1]s) AS k,
				lag((%[1]s)) OVER (PARTITION BY filename ORDER BY file_row_number) AS prev
			FROM read_parquet(%[2]s, filename = true, file_row_number = true))
			WHERE prev IS NOT NULL AND k < prev`,
			structOf(keys), quoteString(filepath.Join(dir, table, "**", "*.parquet")))
		var disorder int
		if err := db.QueryRow(q).Scan(&disorder); err != nil || disorder != 0 {
			t.Errorf("%s: %d rows before a smaller one (%v)", table, disorder, err)
		}
	}
}

// structOf makes keys "a, b" a struct {'a': a, 'b': b}, which DuckDB
// compares field by field, NULL after every value as ORDER BY puts it.
func structOf(keys string) string {
	var fields []string
	for _, k := range strings.Split(keys, ", ") {
		fields = append(fields, fmt.Sprintf("'%s': %s", k, k))
	}
	return "{" + strings.Join(fields, ", ") + "}"
}

// TestExportEmpty: a table with no rows is one file of no rows with the
// table's columns, so that every table's glob matches.
func TestExportEmpty(t *testing.T) {
	s, _ := openTemp(t)
	out := filepath.Join(t.TempDir(), "export")
	res, err := ExportParquet(context.Background(), s.DB(), out, DefaultExportOptions())
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := sql.Open("duckdb", "")
	defer mem.Close()
	for _, table := range ExportTables {
		var rows, cols, want int
		f := filepath.Join(out, table, "data_0.parquet")
		if err := mem.QueryRow(`SELECT (SELECT count(*) FROM read_parquet($1)), (SELECT count(*) FROM parquet_schema($1)) - 1`, f).Scan(&rows, &cols); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		if err := s.DB().QueryRow(`SELECT count(*) FROM duckdb_columns() WHERE table_name = ?`, table).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if table == "norms" {
			want++ // industry
		}
		if rows != 0 || cols != want || res.Tables[table] != 0 || res.Files[table] != 1 {
			t.Errorf("%s: %d rows, %d columns (want %d), result %d rows in %d files", table, rows, cols, want, res.Tables[table], res.Files[table])
		}
	}
}
