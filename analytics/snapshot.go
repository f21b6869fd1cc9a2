package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A snapshot directory holds:
//
//	stakhanov-snapshot.duckdb   a copy of the whole database (tables, views)
//	parquet -> parquet-<time>   a symbolic link to the newest Parquet export
//	parquet-<time>/             shifts, alerts, norms, rejects (see ExportParquet)
//
// Readers never see a half-written one: the DuckDB file is written under a
// temporary name and renamed over the last; a Parquet export is written to
// a directory of its own and the link swapped by renaming a new link over
// it, which is atomic where renaming a directory over a non-empty one is
// impossible. The previous export is kept until the next snapshot, for
// readers that listed its files before the swap.

// SnapshotFile is the name of the DuckDB copy in a snapshot directory.
const SnapshotFile = "stakhanov-snapshot.duckdb"

// SnapshotParquet is the name of the link to the newest Parquet export in
// a snapshot directory.
const SnapshotParquet = "parquet"

// ExportTables are the tables a Parquet export holds, in export order.
var ExportTables = []string{"shifts", "alerts", "norms", "rejects"}

// SnapshotResult describes a snapshot or export.
type SnapshotResult struct {
	// Path is the DuckDB snapshot file; empty for a Parquet export alone.
	Path string `json:"path,omitempty"`
	// ParquetDir is the Parquet export's directory (through the link for a
	// snapshot, so that it names the newest export).
	ParquetDir string `json:"parquet_dir"`
	// TookMS is how long it took, in milliseconds.
	TookMS int64 `json:"took_ms"`
	// Tables are the rows of each exported table.
	Tables map[string]int64 `json:"tables"`
	// TakenAt is when the read transaction began, UTC.
	TakenAt time.Time `json:"taken_at"`
}

// ErrExportTarget: the export directory exists and is not empty.
var ErrExportTarget = errors.New("analytics: export directory exists and is not empty")

// snapshotLocks serialise snapshots into one directory, whichever Store
// asks: the interval's and an on-demand one would otherwise rename over
// each other's files.
var snapshotLocks sync.Map // absolute dir → chan struct{} (capacity 1)

func lockDir(ctx context.Context, dir string) (unlock func(), err error) {
	v, _ := snapshotLocks.LoadOrStore(dir, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// attachSeq makes each snapshot's catalog alias unique within the process.
var attachSeq atomic.Int64

// Snapshot writes a consistent copy of the database into dir (created if
// missing): the DuckDB file dir/stakhanov-snapshot.duckdb and a Parquet
// export of ExportTables linked as dir/parquet, both from one read
// transaction, so that every table shows the same commits. Another process
// may open the snapshot while this one holds the database. Works on a
// read-only Store as well. Snapshots into one directory are serialised.
func (s *Store) Snapshot(ctx context.Context, dir string) (*SnapshotResult, error) {
	start := time.Now()
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("analytics: snapshot: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("analytics: snapshot: %w", err)
	}
	unlock, err := lockDir(ctx, dir)
	if err != nil {
		return nil, fmt.Errorf("analytics: snapshot: %w", err)
	}
	defer unlock()

	stamp := start.UTC().Format("20060102T150405.000000000Z")
	final := filepath.Join(dir, SnapshotFile)
	tmpFile := filepath.Join(dir, "."+SnapshotFile+".tmp-"+stamp)
	genName := SnapshotParquet + "-" + stamp
	gen := filepath.Join(dir, genName)
	cleanup := func() {
		for _, f := range []string{tmpFile, tmpFile + ".wal"} {
			_ = os.Remove(f)
		}
		_ = os.RemoveAll(gen)
	}

	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: snapshot: %w", err)
	}
	defer conn.Close()
	res := &SnapshotResult{Path: final, ParquetDir: filepath.Join(dir, SnapshotParquet), TakenAt: start.UTC()}
	alias := fmt.Sprintf("stakhanov_snapshot_%d", attachSeq.Add(1))
	err = inTx(ctx, conn, func() error {
		var current string
		if err := conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&current); err != nil {
			return err
		}
		// Attaching inside the transaction keeps the copy and the export
		// on one snapshot of the source; only the new file is written.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("ATTACH %s AS %s (READ_WRITE)", quoteString(tmpFile), alias)); err != nil {
			return fmt.Errorf("attach %s: %w", tmpFile, err)
		}
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY FROM DATABASE %s TO %s", quoteIdent(current), alias)); err != nil {
			return fmt.Errorf("copy database: %w", err)
		}
		tables, err := exportTables(ctx, conn, gen)
		if err != nil {
			return err
		}
		res.Tables = tables
		return nil
	})
	if err == nil {
		// DETACH closes the copy, checkpointing it: one file, no WAL.
		if _, derr := conn.ExecContext(ctx, "DETACH "+alias); derr != nil {
			err = fmt.Errorf("detach: %w", derr)
		}
	} else {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), "DETACH DATABASE IF EXISTS "+alias)
	}
	if err == nil {
		if _, serr := os.Stat(tmpFile + ".wal"); serr == nil {
			err = fmt.Errorf("%s.wal left after detach", tmpFile)
		}
	}
	if err == nil {
		err = os.Rename(tmpFile, final)
	}
	if err == nil {
		err = swapLink(dir, genName)
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("analytics: snapshot into %s: %w", dir, s.check(err))
	}
	pruneExports(dir, genName)
	res.TookMS = time.Since(start).Milliseconds()
	return res, nil
}

// swapLink points dir/parquet at genName by renaming a new link over it.
func swapLink(dir, genName string) error {
	link := filepath.Join(dir, SnapshotParquet)
	if fi, err := os.Lstat(link); err == nil && fi.Mode()&fs.ModeSymlink == 0 {
		return fmt.Errorf("%s exists and is not a symbolic link", link)
	}
	tmp := filepath.Join(dir, "."+SnapshotParquet+".link-"+genName)
	_ = os.Remove(tmp)
	if err := os.Symlink(genName, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// pruneExports removes Parquet exports older than the previous one, and
// what failed snapshots left behind.
func pruneExports(dir, current string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var gens []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, SnapshotParquet+"-") && e.IsDir():
			gens = append(gens, name)
		case strings.HasPrefix(name, "."+SnapshotFile+".tmp-") || strings.HasPrefix(name, "."+SnapshotParquet+".link-"):
			// a crashed snapshot's: no snapshot runs now (the lock is held)
			_ = os.RemoveAll(filepath.Join(dir, name))
		}
	}
	slices.Sort(gens) // the time stamp sorts as text
	for i, g := range gens {
		if g != current && i < len(gens)-2 {
			_ = os.RemoveAll(filepath.Join(dir, g))
		}
	}
}

// ExportParquet writes ExportTables of db, from one read transaction, as
// Parquet under dir: shifts, alerts and norms partitioned hive-style as
// <table>/industry=…/plant_id=…/month=YYYY-MM/*.parquet, rejects as
// rejects/data_0.parquet. The partition columns live in the paths, not in
// the files: read with hive partitioning (DuckDB's default for such
// paths, pyarrow's partitioning="hive", Polars' hive_partitioning). Norms
// have no industry column; each norm takes its plant's industry from
// shifts, NULL for a plant with no shift. A NULL partition value is
// written as __HIVE_DEFAULT_PARTITION__, Hive's convention, which DuckDB
// reads back as NULL. An empty table is one file, <table>/data_0.parquet,
// with no rows and the same columns, so that every table's glob matches.
//
// dir must be missing or empty: the export is written to a temporary
// sibling and renamed into place, so dir is either absent or complete.
// db may be any DuckDB handle of this process, read-only or not.
func ExportParquet(ctx context.Context, db *sql.DB, dir string) (*SnapshotResult, error) {
	start := time.Now()
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
	err = inTx(ctx, conn, func() error {
		var err error
		res.Tables, err = exportTables(ctx, conn, tmp)
		return err
	})
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

// exportQueries select what each table's Parquet holds. month is derived
// for partitioning and, like industry and plant_id, is in the paths only.
var exportQueries = map[string]string{
	"shifts": `SELECT *, strftime(day, '%Y-%m') AS month FROM shifts`,
	"alerts": `SELECT *, strftime(day, '%Y-%m') AS month FROM alerts`,
	"norms": `SELECT n.*, p.industry, strftime(n.day, '%Y-%m') AS month FROM norms n
		LEFT JOIN (SELECT plant_id, min(industry) AS industry FROM shifts GROUP BY plant_id) p
		ON p.plant_id = n.plant_id`,
	"rejects": `SELECT * FROM rejects`,
}

// exportTables writes ExportTables under dir (which may not exist yet) on
// conn, inside the caller's transaction, and returns their row counts.
func exportTables(ctx context.Context, conn *sql.Conn, dir string) (map[string]int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(ExportTables))
	for _, table := range ExportTables {
		var rows int64
		if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&rows); err != nil {
			return nil, fmt.Errorf("export %s: %w", table, err)
		}
		// Rejects are few and have no partition key worth having; an
		// empty table written partitioned would leave no file at all.
		single := table == "rejects" || rows == 0
		stmt := fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet, PARTITION_BY (industry, plant_id, month))",
			exportQueries[table], quoteString(filepath.Join(dir, table)))
		if single {
			if err := os.MkdirAll(filepath.Join(dir, table), 0o755); err != nil {
				return nil, err
			}
			stmt = fmt.Sprintf("COPY (%s) TO %s (FORMAT parquet)",
				exportQueries[table], quoteString(filepath.Join(dir, table, "data_0.parquet")))
		}
		r, err := conn.ExecContext(ctx, stmt)
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", table, err)
		}
		n, err := r.RowsAffected()
		if err != nil {
			return nil, fmt.Errorf("export %s: %w", table, err)
		}
		if n != rows {
			return nil, fmt.Errorf("export %s: %d rows written of %d", table, n, rows)
		}
		counts[table] = n
	}
	return counts, nil
}

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
