package analytics

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// TestCorruptMessage: DuckDB 1.5's messages for a damaged file (as the
// tests below made it say them) are recognised; failures that are not
// damage, and text a query put into a message, are not.
func TestCorruptMessage(t *testing.T) {
	const db = "/data/stakhanov.duckdb"
	for _, c := range []struct {
		typ  duckdb.ErrorType
		msg  string
		want bool
	}{
		{duckdb.ErrorTypeIO, "IO Error: Corrupt database file: computed checksum 9138520278990062890 does not match stored checksum 4872913917387726375 in block at location 6565888", true},
		{duckdb.ErrorTypeIO, `IO Error: The file "/data/stakhanov.duckdb" exists, but it is not a valid DuckDB database file!`, true},
		{duckdb.ErrorTypeIO, `IO Error: Could not read enough bytes from file "/data/stakhanov.duckdb": attempted to read 262144 bytes from location 9711616`, true},
		{duckdb.ErrorTypeIO, `IO Error: Could not read from file "/data/stakhanov.duckdb.wal": Input/output error`, true},
		{duckdb.ErrorTypeFatal, "FATAL Error: Failed to rollback transaction. Cannot continue operation.\nOriginal Error: IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at location 274432\nRollback Error: IO Error: Corrupt database file: …", true},
		{duckdb.ErrorTypeFatal, "FATAL Error: Failed: database has been invalidated because of a previous fatal error. The database must be restarted prior to being used again.\nOriginal error: \"Failed to rollback transaction. Cannot continue operation.\nOriginal Error: IO Error: Corrupt database file: computed checksum 1 does not match stored checksum 2 in block at location 274432\"", true},
		{duckdb.ErrorTypeInternal, "INTERNAL Error: Failed to scan dictionary string - index was out of range. Database file appears to be corrupted.", true},
		{duckdb.ErrorTypeIO, "IO Error: Corrupt WAL file: entry at byte position 52 computed checksum 1 does not match stored checksum 2", true},

		// not damage
		{duckdb.ErrorTypeFatal, "FATAL Error: Failed: database has been invalidated because of a previous fatal error. The database must be restarted prior to being used again.\nOriginal error: \"Could not write file \"/data/stakhanov.duckdb\": No space left on device\"", false},
		{duckdb.ErrorTypeIO, `IO Error: Could not set lock on file "/data/stakhanov.duckdb": Conflicting lock is held`, false},
		{duckdb.ErrorTypeIO, `IO Error: Could not read from file "/tmp": Is a directory`, false},
		{duckdb.ErrorTypeIO, `IO Error: The file "/data/other.csv" exists, but it is not a valid DuckDB database file!`, false},
		{duckdb.ErrorTypeIO, `IO Error: No files found that match the pattern "Corrupt database file"`, false},
		{duckdb.ErrorTypeIO, `IO Error: No files found that match the pattern "x Original Error: IO Error: Corrupt database file"`, false},
		{duckdb.ErrorTypeInvalidInput, "Invalid Input Error: Corrupt database file: made up by error()", false},
		{duckdb.ErrorTypeCatalog, "Catalog Error: Table with name corrupt does not exist!", false},
	} {
		got := isCorrupt(&duckdb.Error{Type: c.typ, Msg: c.msg}, db)
		if got != c.want {
			t.Errorf("%q: corrupt %v, want %v", c.msg, got, c.want)
		}
	}
	if isCorrupt(errors.New("IO Error: Corrupt database file"), db) {
		t.Error("an error that is not DuckDB's taken for damage")
	}
}

// damagedFile writes a file as the sink does — shifts, alerts, norms,
// rejects and offsets over many commits, checkpointed when it is closed —
// and returns its path with a pristine copy of it.
func damagedFile(t *testing.T) (path, pristine string) {
	t.Helper()
	dir := t.TempDir()
	path = filepath.Join(dir, "damaged.duckdb")
	s, err := Open(context.Background(), DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		b := shiftBatch(i*5000, 5000, int32(i%4), int64(i/4*5000))
		b.Alerts = []processors.Alert{testAlert(i, processors.RecordShift), testAlert(i, processors.PaceSetter)}
		b.Norms = []processors.NormRow{{Group: shift.GroupKey{PlantID: "p", Role: "r", Unit: "t"}, Day: shift.Day(i),
			Norm: processors.Norm{Count: 1, Median: 1}}}
		b.Rejects = []ingest.Reject{{Topic: testTopic, Partition: int32(i % 4), Offset: int64(i), Reason: "bad_json"}}
		mustCommit(t, s, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	pristine = filepath.Join(dir, "pristine.duckdb")
	copyFile(t, path, pristine)
	return path, pristine
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// overwriteBlock overwrites, with random bytes, the block in the middle of
// those holding table's data (one column's when column is set) in the
// closed file at path, and returns its number.
func overwriteBlock(t *testing.T, path, table, column string) int64 {
	t.Helper()
	o := DefaultOptions(path)
	o.ReadOnly = true
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []int64
	rows, err := s.DB().Query(`SELECT DISTINCT block_id FROM pragma_storage_info(?)
		WHERE block_id >= 0 AND (? = '' OR column_name = ?) ORDER BY 1`, table, column, column)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var b int64
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	rows.Close()
	var blockSize, total int64
	if err := s.DB().QueryRow(`SELECT block_size, total_blocks FROM pragma_database_size()`).Scan(&blockSize, &total); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(blocks) == 0 {
		t.Fatalf("no block holds %s %s", table, column)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// the file: three 4 KiB headers, then the blocks
	header := fi.Size() - total*blockSize
	if header != 3*4096 {
		t.Fatalf("file of %d bytes, %d blocks of %d: header of %d bytes, not 12 KiB", fi.Size(), total, blockSize, header)
	}
	block := blocks[len(blocks)/2]
	junk := make([]byte, blockSize)
	r := rand.New(rand.NewPCG(uint64(block), 1935))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, header+block*blockSize); err != nil {
		t.Fatal(err)
	}
	return block
}

// TestDamagedDataBlock: a file with an overwritten block of shift data
// opens and answers what does not read the block — as DuckDB itself does.
// Verify finds the damage; from then on the Store refuses commits (a sink
// must not retry them), queries that read the block fail with ErrCorrupt
// and never as bad SQL, the endpoint answers 500 "damaged", snapshots and
// exports fail with ErrCorrupt, and the file is marked so that it is not
// opened read-write again.
func TestDamagedDataBlock(t *testing.T) {
	ctx := context.Background()
	path, pristine := damagedFile(t)
	overwriteBlock(t, path, "shifts", "output")
	before, _ := os.ReadFile(path)

	s, err := Open(ctx, DefaultOptions(path))
	if err != nil {
		t.Fatalf("a file with a damaged data block did not open: %v", err)
	}
	defer s.Close()
	if s.Damage() != nil {
		t.Fatal("damage reported before anything read it")
	}
	// reads that do not reach the block work
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM alerts`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("alerts: %d, %v", n, err)
	}
	_, err = s.Verify(ctx)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Verify: %v, want ErrCorrupt", err)
	}
	t.Logf("Verify: %v", err)
	select {
	case <-s.Damaged():
	default:
		t.Fatal("Damaged not closed")
	}
	if !errors.Is(s.Damage(), ErrCorrupt) || !strings.Contains(s.Damage().Error(), "Corrupt database file") {
		t.Fatalf("Damage() = %v", s.Damage())
	}
	if _, err := os.Stat(DamageMarker(path)); err != nil {
		t.Fatalf("no marker: %v", err)
	}

	_, err = s.Commit(ctx, shiftBatch(900000, 10, 9, 0))
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ingest.ErrSinkFailed) {
		t.Fatalf("commit into a damaged file: %v, want ErrCorrupt and ingest.ErrSinkFailed", err)
	}
	if err := s.RecordRules(ctx, processors.DefaultOptions()); !errors.Is(err, ingest.ErrSinkFailed) {
		t.Fatalf("RecordRules into a damaged file: %v", err)
	}

	err = s.QueryReadOnly(ctx, `SELECT sum(output) FROM shifts`, io.Discard, FormatCSV)
	if !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrBadSQL) {
		t.Fatalf("a query reading the block: %v, want ErrCorrupt and not ErrBadSQL", err)
	}
	if err := s.QueryReadOnly(ctx, `SELECT count(*) FROM norms`, io.Discard, FormatCSV); err != nil {
		t.Fatalf("a query that does not read the block: %v", err)
	}
	if err := s.Query(ctx, `SELECT sum(output * 2) FROM shifts`, io.Discard, FormatTable); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Query: %v", err)
	}
	if _, err := s.Snapshot(ctx, filepath.Join(t.TempDir(), "snap")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Snapshot: %v", err)
	}

	srv := startEndpoint(t, s, EndpointOptions{QueryTimeout: DefaultQueryTimeout, MaxConcurrent: 2,
		SnapshotTimeout: DefaultSnapshotTimeout, MaxSQLBytes: DefaultMaxSQLBytes, SnapshotDir: t.TempDir()})
	status, _, eb := get(t, srv.URL, `SELECT avg(output) FROM shifts`, FormatJSON)
	if status != http.StatusInternalServerError || !eb.Damaged || !strings.Contains(eb.Error, "damaged") {
		t.Fatalf("endpoint: HTTP %d %+v, want 500 damaged", status, eb)
	}
	if status, _, _ := get(t, srv.URL, `SELECT count(*) FROM alerts`, FormatJSON); status != http.StatusOK {
		t.Fatalf("endpoint, a query beside the damage: HTTP %d", status)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/snapshot", nil)
	if status, _, eb := do(t, req); status != http.StatusInternalServerError || !eb.Damaged {
		t.Fatalf("endpoint snapshot: HTTP %d %+v", status, eb)
	}
	if c := s.CorruptionErrors(); c < 6 {
		t.Errorf("%d corruption errors counted", c)
	}
	if err := s.Close(); err != nil && !errors.Is(err, ErrCorrupt) {
		t.Fatalf("close: %v", err)
	}
	after, _ := os.ReadFile(path)
	if len(after) != len(before) {
		t.Errorf("the damaged file changed size: %d → %d bytes", len(before), len(after))
	}

	// the marker keeps writers out, not readers
	_, err = Open(ctx, DefaultOptions(path))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), DamageMarker(path)) {
		t.Fatalf("reopened read-write: %v, want ErrCorrupt naming the marker", err)
	}
	t.Logf("reopened read-write: %v", err)
	o := DefaultOptions(path)
	o.ReadOnly = true
	ro, err := Open(ctx, o)
	if err != nil {
		t.Fatalf("read-only: %v", err)
	}
	defer ro.Close()
	if _, err := ExportParquet(ctx, ro.DB(), filepath.Join(t.TempDir(), "pq"), DefaultExportOptions()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("export: %v", err)
	}
	// the pristine copy is whole
	p := openPath(t, pristine)
	if _, err := p.Verify(ctx); err != nil {
		t.Fatalf("pristine copy: %v", err)
	}
}

// TestDamagedOffsetsBlock: damage under what every commit writes — the
// offsets — fails the commit itself (DuckDB cannot even roll it back); the
// error is ErrCorrupt and ingest.ErrSinkFailed, and the next commit is
// refused without touching the file.
func TestDamagedOffsetsBlock(t *testing.T) {
	ctx := context.Background()
	path, _ := damagedFile(t)
	overwriteBlock(t, path, "ingest_offsets", "")
	s, err := Open(ctx, DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Commit(ctx, shiftBatch(900000, 10, 1, 100000))
	if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ingest.ErrSinkFailed) {
		t.Fatalf("commit: %v, want ErrCorrupt and ingest.ErrSinkFailed", err)
	}
	t.Logf("commit: %v", err)
	_, err = s.Commit(ctx, shiftBatch(900100, 10, 1, 100010))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("second commit: %v, want it refused", err)
	}
	if _, err := s.Offsets(ctx, testTopic); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Offsets: %v", err)
	}
}

// TestDamagedAtOpen: damage DuckDB meets while opening — the headers, a
// file cut short — is ErrCorrupt from Open, without a marker (the file
// says so each time it is opened).
func TestDamagedAtOpen(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(f *os.File, size int64) error
	}{
		{"first header", func(f *os.File, _ int64) error { _, err := f.WriteAt(make([]byte, 4096), 0); return err }},
		{"database header", func(f *os.File, _ int64) error { _, err := f.WriteAt([]byte("overwritten"), 4096+100); return err }},
		{"cut short", func(f *os.File, size int64) error { return f.Truncate(size / 2) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			path, _ := damagedFile(t)
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			fi, _ := f.Stat()
			if err := c.damage(f, fi.Size()); err != nil {
				t.Fatal(err)
			}
			f.Close()
			_, err = Open(context.Background(), DefaultOptions(path))
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: %v, want ErrCorrupt", err)
			}
			t.Logf("open: %v", err)
			if _, err := os.Stat(DamageMarker(path)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("marker written at open: %v", err)
			}
		})
	}
}
