package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// The Parquet export. Its layout is chosen for the queries analysts run
// (docs/analytics.md, the views of views.go): most read a table over a span
// of days, for all plants or for one plant or peer group. So:
//
//   - a table is cut into hive partitions by time only — shifts by month,
//     the far smaller alerts and norms by year — so that a span of days
//     reads only its directories, and a partition is big enough that its
//     files are too (cut by plant and month, 1 656 plants made 20 KB files);
//   - within a partition, rows are sorted by plant, then time, so that the
//     Parquet statistics of each row group (min and max per column) hold a
//     narrow range of plant_id and a reader of one plant skips every row
//     group but the one or two that hold it. Sorting by industry first
//     would make each row group that straddles two industries span almost
//     every plant name (names do not sort by industry), and an industry,
//     a seventh of the rows, gains little from skipping;
//   - files are bounded in size (FileSizeBytes) and row groups in rows
//     (RowGroupRows).
//
// What made the old export run out of memory at a few million events was
// one COPY … PARTITION_BY (industry, plant_id, month) per table: DuckDB
// keeps a writer with a row group's buffer open for every partition it is
// filling (up to partitioned_write_max_open_files, then it closes files
// early: the 20 KB ones), and the whole table passed through it in one
// statement. Here each time partition is its own statement that writes one
// file at a time, and its sort is DuckDB's, which spills to the temporary
// directory rather than fail: memory is bounded by the handle's
// memory_limit, whatever the table's size. Every statement sorts, so
// preserve_insertion_order (a setting of the whole database, which the
// pipeline's handle shares) is left alone: it constrains only statements
// without ORDER BY.

// ExportOptions shape a Parquet export: ExportParquet's and the one in
// every snapshot. Start from DefaultExportOptions.
type ExportOptions struct {
	// FileSizeBytes bounds a Parquet file: a file that holds this many
	// bytes is closed and the next row group begins a new one (DuckDB's
	// FILE_SIZE_BYTES, checked after each row group, so a file may pass it
	// by up to one row group). Default 256 MiB: readers pay per file (an
	// open, a footer), not per byte, and a partition of a large export is
	// a few such files.
	FileSizeBytes int64
	// RowGroupRows is the rows of a Parquet row group, the unit a reader
	// skips by its statistics and the writer buffers before writing.
	// Default 122 880, DuckDB's own: the writer's buffer fits a memory
	// limit of 128 MB, and a plant's rows of a month lie in one or two row
	// groups.
	RowGroupRows int
	// Progress, if set, receives each table's progress every ProgressEvery
	// while it is written, and once when it is complete (Done). Calls come
	// one at a time.
	Progress func(ExportProgress)
	// ProgressEvery is how often Progress is called. Default 5 s.
	ProgressEvery time.Duration
}

// Defaults of ExportOptions.
const (
	DefaultFileSizeBytes = 256 << 20
	DefaultRowGroupRows  = 122_880
	DefaultProgressEvery = 5 * time.Second
)

// DefaultExportOptions returns the documented defaults.
func DefaultExportOptions() ExportOptions {
	return ExportOptions{FileSizeBytes: DefaultFileSizeBytes, RowGroupRows: DefaultRowGroupRows,
		ProgressEvery: DefaultProgressEvery}
}

// Validate reports the first option outside its domain.
func (o ExportOptions) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: export: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case o.FileSizeBytes < 1<<20:
		return fail("file size %d below 1 MiB", o.FileSizeBytes)
	case o.RowGroupRows < 2048:
		// DuckDB's vector size: it writes no smaller row group
		return fail("row group of %d rows below 2048", o.RowGroupRows)
	case o.Progress != nil && o.ProgressEvery <= 0:
		return fail("progress interval %v not positive", o.ProgressEvery)
	}
	return nil
}

// ExportProgress is how far the export of one table has come.
type ExportProgress struct {
	// Table is one of ExportTables, or SnapshotFile while a snapshot
	// copies the database.
	Table string `json:"table"`
	// Rows of TotalRows are written. Rows advance a partition at a time
	// (each is one statement); Files and Bytes as DuckDB writes them. A
	// database copy counts no rows: its Bytes are the copy's.
	Rows      int64 `json:"rows"`
	TotalRows int64 `json:"total_rows"`
	Files     int   `json:"files"`
	Bytes     int64 `json:"bytes"`
	// Elapsed is the time since the table began.
	Elapsed time.Duration `json:"elapsed"`
	// Done: the table is complete.
	Done bool `json:"done"`
}

// ErrExportMemory: DuckDB ran out of the memory its handle may use while
// exporting; the message names the limit. A larger limit (or, for a
// snapshot the pipeline takes, fewer queries at once) is the way out.
var ErrExportMemory = errors.New("analytics: the export ran out of DuckDB's memory limit")

// ExportTables are the tables a Parquet export holds, in export order.
var ExportTables = []string{"shifts", "alerts", "norms", "rejects"}

// Time partitions of an export.
const (
	partitionMonth = "month"
	partitionYear  = "year"
	// hiveNull is the directory value of a NULL partition value, Hive's
	// convention, which DuckDB, pyarrow and Polars read back as NULL.
	hiveNull = "__HIVE_DEFAULT_PARTITION__"
)

// tableExport is how one table is exported.
type tableExport struct {
	name string
	// by is the time partition, of the column day: partitionMonth,
	// partitionYear, or "" for one directory of files.
	by string
	// rows selects what the files hold: the table's columns, for norms
	// with its plant's industry.
	rows string
	// order sorts a partition: plant first for the statistics, then
	// time, then what makes the order total, so that an export of the same
	// data is the same files.
	order string
}

var tableExports = map[string]tableExport{
	"shifts": {name: "shifts", by: partitionMonth, rows: `SELECT * FROM shifts`,
		order: "plant_id, shift_start, worker_id, event_id"},
	"alerts": {name: "alerts", by: partitionYear, rows: `SELECT * FROM alerts`,
		order: "plant_id, day, alert_id"},
	// A norm has no industry of its own: it takes its plant's from shifts
	// (NULL for a plant with no shift).
	"norms": {name: "norms", by: partitionYear, rows: `SELECT n.*, p.industry FROM norms n
		LEFT JOIN (SELECT plant_id, min(industry) AS industry FROM shifts GROUP BY plant_id) p
		ON p.plant_id = n.plant_id`,
		order: "plant_id, role, unit, day"},
	"rejects": {name: "rejects", rows: `SELECT * FROM rejects`,
		order: "topic, kafka_partition, kafka_offset"},
}

// partition is one time partition of a table: its directory, the filter
// that selects its rows, and their count.
type partition struct {
	dir   string // "month=1935-06", "year=1935"; "" for the table's own directory
	where string
	rows  int64
}

// partitions lists t's partitions, in time order (NULL last), with their
// rows. Counting reads only the day column.
func (t tableExport) partitions(ctx context.Context, conn *sql.Conn) ([]partition, int64, error) {
	if t.by == "" {
		var n int64
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+t.name).Scan(&n); err != nil {
			return nil, 0, err
		}
		return []partition{{where: "true", rows: n}}, n, nil
	}
	rows, err := conn.QueryContext(ctx, fmt.Sprintf(
		`SELECT date_trunc('%s', day)::DATE AS p, count(*) FROM %s GROUP BY p ORDER BY p NULLS LAST`, t.by, t.name))
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var parts []partition
	var total int64
	for rows.Next() {
		var start sql.NullTime
		var n int64
		if err := rows.Scan(&start, &n); err != nil {
			return nil, 0, err
		}
		total += n
		if !start.Valid {
			parts = append(parts, partition{dir: t.by + "=" + hiveNull, where: "day IS NULL", rows: n})
			continue
		}
		from := start.Time.UTC()
		to, name := from.AddDate(1, 0, 0), from.Format("2006")
		if t.by == partitionMonth {
			to, name = from.AddDate(0, 1, 0), from.Format("2006-01")
		}
		// Constant bounds on day let DuckDB skip the row groups of other
		// times by their zone maps.
		parts = append(parts, partition{dir: t.by + "=" + name, rows: n,
			where: fmt.Sprintf("day >= DATE '%s' AND day < DATE '%s'", from.Format(time.DateOnly), to.Format(time.DateOnly))})
	}
	return parts, total, rows.Err()
}

// ExportParquet writes ExportTables of db, from one read transaction, as
// Parquet under dir:
//
//	shifts/month=YYYY-MM/data_N.parquet   sorted by plant_id, shift_start
//	alerts/year=YYYY/data_N.parquet       sorted by plant_id, day
//	norms/year=YYYY/data_N.parquet        sorted by plant_id, role, unit, day
//	rejects/data_N.parquet                sorted by topic, kafka_partition, kafka_offset
//
// month and year come from day and are in the paths only: read with hive
// partitioning (DuckDB's default for such paths, pyarrow's
// partitioning="hive", Polars' hive_partitioning). Every column of the
// table is in the files; norms gain industry, their plant's in shifts
// (NULL for a plant with no shift). A row with no day is in
// month=__HIVE_DEFAULT_PARTITION__ (year=…), Hive's convention for NULL.
// An empty table is one file, <table>/data_0.parquet, with no rows and the
// same columns, so that every table's glob matches. Files hold at most
// about o.FileSizeBytes; memory stays within the handle's memory_limit,
// spilling to its temp_directory.
//
// dir must be missing or empty: the export is written to a temporary
// sibling and renamed into place, so dir is either absent or complete.
// db may be any DuckDB handle of this process, read-only or not.
func ExportParquet(ctx context.Context, db *sql.DB, dir string, o ExportOptions) (*SnapshotResult, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("analytics: export: %w", err)
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrExportTarget, dir)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, fmt.Errorf("analytics: export: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("analytics: export: %w", err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("analytics: export: %w", err)
	}
	defer conn.Close()
	res := &SnapshotResult{ParquetDir: dir, TakenAt: start.UTC()}
	rep := newReporter(o)
	defer rep.stop()
	defer oneThread()()
	mem := memorySettings(ctx, conn)
	err = inTx(ctx, conn, func() error { return exportTables(ctx, conn, tmp, o, rep, res, mem) })
	if err == nil {
		// os.Rename refuses any directory as the target; an empty one was
		// checked above and may go.
		if rerr := os.Remove(dir); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			err = rerr
		} else {
			err = os.Rename(tmp, dir)
		}
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		if isCorrupt(err, "") && !errors.Is(err, ErrCorrupt) {
			err = &CorruptError{Err: err}
		}
		return nil, fmt.Errorf("analytics: export to %s: %w", dir, err)
	}
	res.TookMS = time.Since(start).Milliseconds()
	return res, nil
}

// exportTables writes ExportTables under dir (which may not exist yet) on
// conn, inside the caller's transaction, and records each table's rows,
// files and bytes in res.
func exportTables(ctx context.Context, conn *sql.Conn, dir string, o ExportOptions, rep *reporter, res *SnapshotResult, mem string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	res.Tables = make(map[string]int64, len(ExportTables))
	res.Files = make(map[string]int, len(ExportTables))
	res.Bytes = make(map[string]int64, len(ExportTables))
	for _, name := range ExportTables {
		t := tableExports[name]
		root := filepath.Join(dir, name)
		n, err := exportTable(ctx, conn, t, root, o, rep)
		if err != nil {
			return fmt.Errorf("export %s: %w", name, exportError(err, mem))
		}
		res.Tables[name] = n
		res.Files[name], res.Bytes[name] = parquetFiles(root)
	}
	return nil
}

func exportTable(ctx context.Context, conn *sql.Conn, t tableExport, root string, o ExportOptions, rep *reporter) (int64, error) {
	parts, total, err := t.partitions(ctx, conn)
	if err != nil {
		return 0, err
	}
	rep.begin(t.name, total, func() (int, int64) { return parquetFiles(root) })
	if err := os.MkdirAll(root, 0o755); err != nil {
		return 0, err
	}
	if total == 0 {
		// A partitioned write of nothing writes no file at all.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY (SELECT * FROM (%s) LIMIT 0) TO %s (FORMAT parquet)",
			t.rows, quoteString(filepath.Join(root, "data_0.parquet")))); err != nil {
			return 0, err
		}
		rep.end()
		return 0, nil
	}
	var written int64
	for _, p := range parts {
		// One statement per partition, writing into its own directory,
		// which DuckDB creates; files are named data_0.parquet, data_1, …
		// in the order of the rows.
		stmt := fmt.Sprintf("COPY (SELECT * FROM (%s) WHERE %s ORDER BY %s) TO %s (FORMAT parquet, FILE_SIZE_BYTES %d, ROW_GROUP_SIZE %d)",
			t.rows, p.where, t.order, quoteString(filepath.Join(root, p.dir)), o.FileSizeBytes, o.RowGroupRows)
		r, err := conn.ExecContext(ctx, stmt)
		if err != nil {
			return written, fmt.Errorf("%s: %w", p.dir, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return written, err
		}
		if n != p.rows {
			return written, fmt.Errorf("%s: %d rows written of %d", p.dir, n, p.rows)
		}
		written += n
		rep.advance(n)
	}
	if written != total {
		return written, fmt.Errorf("%d rows written of %d", written, total)
	}
	rep.end()
	return written, nil
}

// oneThread keeps the calling goroutine, and so the DuckDB statements it
// runs, on one OS thread until the returned func is called. glibc's malloc
// gives each thread an arena of its own and does not hand memory freed in
// one arena to another, so statements that ran on whichever thread Go
// picked each left their peak in another arena: a 10 M-event export under
// memory_limit 1GB peaked at 2.1 GB resident, and at 1.2 GB on one thread
// (BENCHMARKS.md). DuckDB's own worker threads (Options.Threads above 1)
// keep their threads, and arenas, throughout.
func oneThread() (unlock func()) {
	runtime.LockOSThread()
	return runtime.UnlockOSThread
}

// memorySettings describes the memory limit and temporary directory of
// conn's database, for exportError: once a statement has failed, the
// transaction answers nothing more.
func memorySettings(ctx context.Context, conn *sql.Conn) string {
	var limit, temp string
	if err := conn.QueryRowContext(ctx,
		"SELECT current_setting('memory_limit'), current_setting('temp_directory')").Scan(&limit, &temp); err != nil {
		return "memory_limit unknown"
	}
	return fmt.Sprintf("memory_limit %s, spilling to %q", limit, temp)
}

// exportError wraps DuckDB's out-of-memory error in ErrExportMemory,
// naming the limit (mem, from memorySettings). A commit that ran out of
// memory is a transaction error to DuckDB, whose message says why.
func exportError(err error, mem string) error {
	var de *duckdb.Error
	if errors.Is(err, ErrExportMemory) || !errors.As(err, &de) {
		return err
	}
	msg := de.Msg
	oom := de.Type == duckdb.ErrorTypeOutOfMemory ||
		de.Type == duckdb.ErrorTypeTransaction && (strings.Contains(msg, "failed to pin block") ||
			strings.Contains(msg, "could not allocate block") || strings.Contains(msg, "Out of Memory"))
	if !oom {
		return err
	}
	return fmt.Errorf("%w (%s): %w", ErrExportMemory, mem, err)
}

// parquetFiles counts the Parquet files under root and their bytes.
func parquetFiles(root string) (files int, bytes int64) {
	_ = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".parquet") {
			return nil
		}
		if fi, err := d.Info(); err == nil {
			files++
			bytes += fi.Size()
		}
		return nil
	})
	return files, bytes
}

// reporter calls ExportOptions.Progress: from a ticker while a table is
// written, and when it is done. Without Progress it does nothing.
type reporter struct {
	progress func(ExportProgress)
	mu       sync.Mutex // serialises progress calls and guards cur, measure
	cur      ExportProgress
	began    time.Time
	measure  func() (int, int64) // files and bytes written so far
	quit     chan struct{}
	wg       sync.WaitGroup
}

func newReporter(o ExportOptions) *reporter {
	r := &reporter{progress: o.Progress, quit: make(chan struct{})}
	if r.progress == nil {
		return r
	}
	r.wg.Go(func() {
		t := time.NewTicker(o.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-r.quit:
				return
			case <-t.C:
				r.mu.Lock()
				if r.measure != nil {
					r.report(false)
				}
				r.mu.Unlock()
			}
		}
	})
	return r
}

// report calls progress with r.cur brought up to date; r.mu is held.
func (r *reporter) report(done bool) {
	r.cur.Files, r.cur.Bytes = r.measure()
	r.cur.Elapsed, r.cur.Done = time.Since(r.began), done
	r.progress(r.cur)
}

// begin starts reporting on a table of total rows, whose files measure
// counts.
func (r *reporter) begin(table string, total int64, measure func() (int, int64)) {
	if r.progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = ExportProgress{Table: table, TotalRows: total}
	r.began, r.measure = time.Now(), measure
}

func (r *reporter) advance(rows int64) {
	if r.progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur.Rows += rows
}

// end reports the table done and stops the ticker's reports until the
// next begin.
func (r *reporter) end() {
	if r.progress == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.measure == nil {
		return
	}
	r.cur.Rows = r.cur.TotalRows
	r.report(true)
	r.measure = nil
}

func (r *reporter) stop() {
	close(r.quit)
	r.wg.Wait()
}
