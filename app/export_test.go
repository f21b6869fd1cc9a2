package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/internal/testenv"
)

// Sizes of the file exportFixture writes.
const (
	fixturePlants = 2000
	fixtureDays   = 91 // 2024-01-01 to 2024-03-31: three months
	fixtureShifts = 1_092_000
	fixtureAlerts = 60_000
	fixtureNorms  = fixturePlants * fixtureDays
	fixtureBlobs  = 4_000
)

// exportFixture writes a DuckDB file of the pipeline's schema with
// 1 092 000 shifts of 2 000 plants over three months, inserted in time
// order with the plants interleaved, as the sink stores them: 600 shifts
// a day, 546 a plant. In DuckDB's memory they take several times 128 MB,
// so an export under that limit must spill.
func exportFixture(t *testing.T, path string) {
	t.Helper()
	ctx := context.Background()
	s, err := analytics.Open(ctx, analytics.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	industries := `['coal', 'steel', 'textile', 'rail', 'chemicals', 'oil', 'machine building']`
	for _, stmt := range []string{
		// shift i: plant i % 2000, day i / 12 000, a worker of its plant
		fmt.Sprintf(`INSERT INTO shifts BY NAME SELECT
			md5('event' || i) AS event_id,
			'plant-' || lpad((i %% %[2]d)::VARCHAR, 4, '0') AS plant_id,
			%[1]s[(i %% %[2]d) %% 7 + 1] AS industry,
			'section-' || (i %% 5) AS section,
			['hewer', 'loader', 'timberman'][i %% 3 + 1] AS role,
			'worker-' || (i %% 50000) AS worker_id,
			1 + i %% 4 AS crew_size,
			TIMESTAMPTZ '2024-01-01 06:00:00+00' + to_days((i // 12000)::INTEGER) + to_minutes((i %% 600)::BIGINT) AS shift_start,
			6.0 AS shift_hours,
			(hash(i) %% 10000) / 100.0 AS output,
			't' AS unit,
			(hash(i + 1) %% 100) / 100.0 AS scrap,
			(hash(i) %% 10000) / 600.0 AS rate,
			7.5 AS norm_rate,
			(hash(i) %% 10000) / 4500.0 AS ratio,
			i %% 97 = 0 AS late,
			(i %% 8)::INTEGER AS kafka_partition,
			i // 8 AS kafka_offset,
			'shift-events' AS kafka_topic,
			DATE '2024-01-01' + (i // 12000)::INTEGER AS day,
			(hash(i + 1) %% 100) / 10000.0 AS scrap_share,
			20 AS norm_count, 7.0 AS norm_mean, 9.0 AS norm_p90, 1.0 AS norm_mad, 0.5 AS norm_bulk,
			1.0 AS crew_rate, 1.0 AS crew_norm_rate, 1.0 AS crew_ratio
			FROM range(%[3]d) r(i) ORDER BY i`, industries, fixturePlants, fixtureShifts),
		fmt.Sprintf(`INSERT INTO alerts BY NAME SELECT
			md5('alert' || i) AS alert_id,
			['record_shift', 'common_pace', 'pace_setter'][i %% 3 + 1] AS type,
			'plant-' || lpad((i %% %[2]d)::VARCHAR, 4, '0') AS plant_id,
			%[1]s[(i %% %[2]d) %% 7 + 1] AS industry,
			'hewer' AS role, 't' AS unit, 'worker-' || i AS worker_id, md5('event' || i) AS event_id,
			DATE '2024-01-01' + (i * %[4]d // %[3]d)::INTEGER AS day,
			1.0 AS rate, 1.0 AS norm_rate, 3.5 AS ratio, 0.0 AS scrap_share, 12 AS group_size, 0.5 AS bulk_share,
			TIMESTAMPTZ '2024-01-02 00:00:00+00' AS detected_at
			FROM range(%[3]d) r(i)`, industries, fixturePlants, fixtureAlerts, fixtureDays),
		fmt.Sprintf(`INSERT INTO norms BY NAME SELECT
			'plant-' || lpad(p::VARCHAR, 4, '0') AS plant_id, 'hewer' AS role, 't' AS unit,
			DATE '2024-01-01' + d::INTEGER AS day,
			20 AS shifts, 7.5 AS median_rate, 7.6 AS mean_rate, 9.0 AS p90_rate, 1.0 AS mad_rate, 0.5 AS bulk_share
			FROM range(%d) a(d), range(%d) b(p) ORDER BY d, p`, fixtureDays, fixturePlants),
		fmt.Sprintf(`INSERT INTO rejects SELECT 'shift-events', (i %% 8)::INTEGER, i, 'bad_json', NULL,
			encode(repeat(md5('reject' || i), 8)), 'unexpected end of JSON input' FROM range(%d) r(i)`, fixtureBlobs),
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
	}
}

// TestExportUnderSmallMemory: `stakhanov export` and `stakhanov snapshot`
// of a file whose sorts do not fit in DuckDB's memory limit of 128 MB
// succeed under it, spilling; every file keeps to the size bound (within
// its last row group) and all but a partition's last reach it; a plant's
// rows lie in as few row groups as they fill; pyarrow and Polars, in
// another process, read as many rows as the tables hold.
func TestExportUnderSmallMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and exports a 1 M-row file")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "big.duckdb")
	start := time.Now()
	exportFixture(t, path)
	t.Logf("fixture written in %v", time.Since(start).Round(time.Millisecond))
	want := map[string]int64{"shifts": fixtureShifts, "alerts": fixtureAlerts, "norms": fixtureNorms, "rejects": fixtureBlobs}

	const fileSize = 8 << 20
	const rowGroup = 16_384
	var mu sync.Mutex
	var spilled int64
	var reports []analytics.ExportProgress
	local := func(out string) ExportLocal {
		l := ExportLocal{MemoryLimit: "128MB"}
		l.Parquet = analytics.DefaultExportOptions()
		l.Parquet.FileSizeBytes, l.Parquet.RowGroupRows = fileSize, rowGroup
		l.Parquet.ProgressEvery = 20 * time.Millisecond
		l.Parquet.Progress = func(p analytics.ExportProgress) {
			// the spill directory lies beside the output
			spill, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".spill-*"))
			var n int64
			for _, d := range spill {
				_ = filepath.Walk(d, func(_ string, fi os.FileInfo, err error) error {
					if err == nil && !fi.IsDir() {
						n += fi.Size()
					}
					return nil
				})
			}
			mu.Lock()
			defer mu.Unlock()
			spilled = max(spilled, n)
			reports = append(reports, p)
		}
		return l
	}

	ctx := context.Background()
	out := filepath.Join(dir, "export")
	start = time.Now()
	exported, _, err := Export(ctx, ExportOptions{DuckDB: path, Out: out, Local: local(out)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exported in %v: %v files, %v bytes; up to %d bytes spilled", time.Since(start).Round(time.Millisecond),
		exported.Files, exported.Bytes, spilled)
	if !maps.Equal(exported.Tables, want) {
		t.Errorf("exported %v, want %v", exported.Tables, want)
	}
	if spilled == 0 {
		t.Error("nothing was spilled: the fixture fits in 128 MB and proves nothing")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*")); len(m) != 0 {
		t.Errorf("left beside the export: %v", m)
	}
	checkProgress(t, reports, want)

	// too small a limit fails, saying so, and leaves nothing behind
	small := local(filepath.Join(dir, "small"))
	small.MemoryLimit = "32MB"
	_, _, err = Export(ctx, ExportOptions{DuckDB: path, Out: filepath.Join(dir, "small"), Local: small})
	if !errors.Is(err, analytics.ErrExportMemory) || !strings.Contains(err.Error(), "memory_limit 30.5 MiB") ||
		!strings.Contains(err.Error(), "raise --memory-limit (now 32MB)") {
		t.Errorf("export under 32MB: %v", err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*small*")); len(m) != 0 {
		t.Errorf("a failed export left %v", m)
	}

	snapDir := filepath.Join(dir, "snap")
	snap, err := Snapshot(ctx, SnapshotOptions{DuckDB: path, Dir: snapDir, Local: local(snapDir)})
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(snap.Tables, want) || !maps.Equal(snap.Files, exported.Files) {
		t.Errorf("snapshot %v in %v files, export %v files", snap.Tables, snap.Files, exported.Files)
	}

	mem, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	// shifts: three months of about 20 MB each, so at least three files a
	// month; the rest one partition each.
	checkFileSizes(t, mem, out, fileSize, map[string]int{"shifts": 9, "alerts": 1, "norms": 1, "rejects": 1})
	checkPlantRowGroups(t, mem, out, rowGroup)

	py := os.Getenv("STAKHANOV_PYTHON")
	if py == "" {
		testenv.Missing(t, "STAKHANOV_PYTHON is not set: it names a Python with duckdb, pyarrow and Polars, which read the export in a second process",
			"make test sets up notebooks/requirements.txt's virtualenv under ~/.cache/stakhanov and sets it; by hand: python3 -m venv DIR && DIR/bin/pip install -r notebooks/requirements.txt, then STAKHANOV_PYTHON=DIR/bin/python")
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(pctx, py, filepath.Join("testdata", "read_snapshot.py"), snap.Path, snap.ParquetDir, out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", py, err, stderr.String())
	}
	var got struct {
		Versions        map[string]string
		Snapshot        map[string]int64
		SnapshotParquet map[string]map[string]int64 `json:"snapshot_parquet"`
		Export          map[string]map[string]int64
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	t.Logf("read by %v", got.Versions)
	if !maps.Equal(got.Snapshot, want) {
		t.Errorf("snapshot file read by duckdb: %v, want %v", got.Snapshot, want)
	}
	for name, byLib := range map[string]map[string]map[string]int64{"snapshot Parquet": got.SnapshotParquet, "export": got.Export} {
		for _, lib := range []string{"duckdb", "pyarrow", "polars"} {
			if counts, ok := byLib[lib]; !ok || !maps.Equal(counts, want) {
				t.Errorf("%s read by %s: %v, want %v", name, lib, counts, want)
			}
		}
	}
}

// checkProgress: each table was reported done once, last, with all its
// rows; reports before never went past them.
func checkProgress(t *testing.T, reports []analytics.ExportProgress, want map[string]int64) {
	t.Helper()
	done := map[string]int{}
	for i, p := range reports {
		if p.Rows > p.TotalRows || p.TotalRows != want[p.Table] {
			t.Errorf("report %d: %+v", i, p)
		}
		if p.Done {
			done[p.Table]++
			if p.Rows != p.TotalRows || p.Files == 0 || p.Bytes == 0 {
				t.Errorf("done: %+v", p)
			}
		}
	}
	for table := range want {
		if done[table] != 1 {
			t.Errorf("%s reported done %d times", table, done[table])
		}
	}
}

// checkFileSizes: each file under dir began its last row group below
// limit (DuckDB starts a new file once one reaches it), and every file
// but the last of its partition reached it: bounded, and not small.
// minFiles are the fewest files a table may have.
func checkFileSizes(t *testing.T, db *sql.DB, dir string, limit int64, minFiles map[string]int) {
	t.Helper()
	for table, least := range minFiles {
		rows, err := db.Query(fmt.Sprintf(`SELECT file_name, max(row_group_id) + 1,
				min(coalesce(dictionary_page_offset, data_page_offset)) FILTER (WHERE row_group_id = last_group)
			FROM (SELECT *, max(row_group_id) OVER (PARTITION BY file_name) AS last_group
				FROM parquet_metadata('%s'))
			GROUP BY file_name ORDER BY file_name`, filepath.Join(dir, table, "**", "*.parquet")))
		if err != nil {
			t.Fatal(err)
		}
		byDir := map[string][]string{}
		files := 0
		for rows.Next() {
			var name string
			var groups, lastStart int64
			if err := rows.Scan(&name, &groups, &lastStart); err != nil {
				t.Fatal(err)
			}
			files++
			if lastStart >= limit {
				t.Errorf("%s: its last row group (of %d) begins at byte %d, past the bound %d", name, groups, lastStart, limit)
			}
			byDir[filepath.Dir(name)] = append(byDir[filepath.Dir(name)], name)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if files < least {
			t.Errorf("%s: %d files, want at least %d", table, files, least)
		}
		for d, names := range byDir {
			for i := range len(names) - 1 {
				// DuckDB numbers them data_0, data_1, … in the order written
				name := filepath.Join(d, fmt.Sprintf("data_%d.parquet", i))
				fi, err := os.Stat(name)
				if err != nil {
					t.Fatal(err)
				}
				if fi.Size() < limit {
					t.Errorf("%s: %d bytes, below the bound %d, yet not its partition's last file", name, fi.Size(), limit)
				}
			}
		}
	}
}

// checkPlantRowGroups: by the Parquet statistics of plant_id, a plant's
// shifts of a month lie in no more row groups than they fill, plus one
// (where they begin inside a group): a reader of one plant skips the
// rest. A plant has 174 to 186 shifts a month.
func checkPlantRowGroups(t *testing.T, db *sql.DB, dir string, rowGroup int) {
	t.Helper()
	var plants, worst int
	err := db.QueryRow(fmt.Sprintf(`
		WITH groups AS (
			SELECT file_name, row_group_id, stats_min_value AS lo, stats_max_value AS hi
			FROM parquet_metadata('%[1]s') WHERE path_in_schema = 'plant_id'),
		plants AS (SELECT DISTINCT plant_id, month FROM read_parquet('%[1]s', hive_partitioning = true))
		SELECT count(*), max(n) FROM (
			SELECT p.plant_id, p.month, count(*) AS n FROM plants p JOIN groups g
			ON g.file_name LIKE '%%month=' || p.month || '%%' AND p.plant_id BETWEEN g.lo AND g.hi
			GROUP BY ALL)`, filepath.Join(dir, "shifts", "**", "*.parquet"))).Scan(&plants, &worst)
	if err != nil {
		t.Fatal(err)
	}
	const perMonth = 186
	if limit := perMonth/rowGroup + 2; plants != fixturePlants*3 || worst > limit {
		t.Errorf("%d plant-months; a plant's month in up to %d row groups by their statistics, want at most %d", plants, worst, limit)
	}
}
