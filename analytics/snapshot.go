package analytics

import (
	"context"
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
	// Files and Bytes are the Parquet files of each table and their size.
	Files map[string]int   `json:"files,omitempty"`
	Bytes map[string]int64 `json:"bytes,omitempty"`
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
// export of ExportTables (see ExportParquet) linked as dir/parquet, both
// from one read transaction, so that every table shows the same commits.
// Another process may open the snapshot while this one holds the
// database. Works on a read-only Store as well. Snapshots into one
// directory are serialised. The export takes DefaultExportOptions.
func (s *Store) Snapshot(ctx context.Context, dir string) (*SnapshotResult, error) {
	return s.SnapshotWith(ctx, dir, DefaultExportOptions())
}

// SnapshotWith is Snapshot with the Parquet export shaped, and its
// progress reported, by o. The copy of the database reports as the table
// SnapshotFile, by the bytes of the copy.
func (s *Store) SnapshotWith(ctx context.Context, dir string, o ExportOptions) (*SnapshotResult, error) {
	start := time.Now()
	if err := o.Validate(); err != nil {
		return nil, err
	}
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
	rep := newReporter(o)
	defer rep.stop()
	defer oneThread()()
	mem := memorySettings(ctx, conn)
	err = inTx(ctx, conn, func() error {
		var current string
		if err := conn.QueryRowContext(ctx, "SELECT current_database()").Scan(&current); err != nil {
			return err
		}
		// The Parquet export first: the copy's rows stay in this
		// transaction's memory until it commits, which would leave the
		// export's sorts less of the memory limit.
		if err := exportTables(ctx, conn, gen, o, rep, res, mem); err != nil {
			return err
		}
		// Attaching inside the transaction keeps the copy and the export
		// on one snapshot of the source; only the new file is written.
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("ATTACH %s AS %s (READ_WRITE)", quoteString(tmpFile), alias)); err != nil {
			return fmt.Errorf("attach %s: %w", tmpFile, err)
		}
		rep.begin(SnapshotFile, 0, func() (int, int64) { return fileBytes(tmpFile, tmpFile+".wal") })
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("COPY FROM DATABASE %s TO %s", quoteIdent(current), alias)); err != nil {
			return fmt.Errorf("copy database: %w", exportError(err, mem))
		}
		return nil
	})
	// The copy's rows are written when the transaction commits (indexes
	// included), which may run out of memory too.
	err = exportError(err, mem)
	if err == nil {
		// DETACH closes the copy, checkpointing it: one file, no WAL.
		if _, derr := conn.ExecContext(ctx, "DETACH "+alias); derr != nil {
			err = fmt.Errorf("detach: %w", exportError(derr, mem))
		}
		rep.end()
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

// fileBytes counts the files of paths that exist, and their bytes.
func fileBytes(paths ...string) (files int, bytes int64) {
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil {
			files++
			bytes += fi.Size()
		}
	}
	return files, bytes
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

func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
