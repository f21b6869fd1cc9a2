package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// A damaged file. DuckDB keeps a checksum in every 256 KiB block of the
// file and checks it whenever it reads the block, so an overwritten or
// decayed block is found when something reads it — and only then: a file
// whose damage lies in a block of table data opens, takes commits (they
// append to other blocks) and answers every query that does not read that
// block. What DuckDB 1.5 says, by what was damaged:
//
//	a block of table data, an index, the catalog:
//	    IO Error: Corrupt database file: computed checksum 9138520278990062890
//	    does not match stored checksum 4872913917387726375 in block at location 6565888
//	the file's first 4 KiB:
//	    IO Error: The file "…" exists, but it is not a valid DuckDB database file!
//	a file cut short:
//	    IO Error: Could not read enough bytes from file "…": attempted to read
//	    262144 bytes from location 9711616
//	a disk that fails the read:
//	    IO Error: Could not read from file "…": Input/output error
//	damage met while a transaction rolled back, and every later statement:
//	    FATAL Error: Failed to rollback transaction. Cannot continue operation.
//	    Original Error: IO Error: Corrupt database file: …
//	    FATAL Error: Failed: database has been invalidated because of a previous
//	    fatal error. … Original error: "… Corrupt database file: …"
//
// and, for a block whose checksum is right but whose content is not (a
// block copied over another), the decoders' own complaints ("Corrupted ALP
// segment: …", "Failed to scan dictionary string - … Database file appears
// to be corrupted", …). corruptMessage knows these; the Store wraps them in
// a *CorruptError wherever they surface — opening, commits and the
// checkpoints inside them, queries, snapshots, exports, Verify — records the
// damage (Damage, Damaged) and, for a file opened read-write, writes a
// marker beside it (DamageMarker) that makes the next Open refuse the file:
// the damage stays known across restarts until the file is replaced.

// ErrCorrupt is wrapped by every error that says the DuckDB file is
// damaged: retrying cannot help. The way out is `stakhanov rebuild`, which
// recreates the file from the results topic (docs/operations.md).
var ErrCorrupt = errors.New("analytics: the DuckDB file is damaged")

// CorruptError is DuckDB reporting a damaged file, or the damage marker
// found by Open. It wraps ErrCorrupt and DuckDB's error.
type CorruptError struct {
	Path string // the DuckDB file; empty when unknown (ExportParquet)
	Err  error  // DuckDB's error, or the marker's account of it
}

func (e *CorruptError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%v: %v", ErrCorrupt, e.Err)
	}
	return fmt.Sprintf("%v: %s: %v", ErrCorrupt, e.Path, e.Err)
}

func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// DamageMarker is the file written beside the DuckDB file at path when a
// Store that holds it read-write finds it damaged. While it exists, Open
// refuses the file read-write (read-only opens go on). Move it aside with
// the damaged file when a rebuilt one takes its place.
func DamageMarker(path string) string { return path + ".damaged" }

// corruptPhrases begin DuckDB's messages for a file whose content is not
// what was written (DuckDB 1.5's wording).
var corruptPhrases = []string{
	"Corrupt database file", // a block's checksum; FSST, ALPRD, bitpacking data
	"Corrupted ",            // ALP, ALPRD, RLE, Patas segments, "Corrupted database - loaded column …", an ART index
	"Corrupt WAL",           // the write-ahead log replayed at open
	"Bitpacking offset is out of range",
	"Failed to scan dictionary string",
	"Row group column count is unaligned",
	"Table statistics column count is not aligned",
	"In DeserializeDeletes",
	"Partial-delete vector info mask",
	"Failed to decode LEB128 integer",
	"Data corruption detected",
	"The file is not a valid DuckDB database file",
}

// fileFailures begin DuckDB's messages for a file it could not read; they
// name the file, and say the database is damaged only when that file is
// the database or its write-ahead log (a query may read other files).
var fileFailures = []string{
	`Could not read from file "`,
	`Could not read enough bytes from file "`,
	`The file "`, // … exists, but it is not a valid DuckDB database file!
}

// fatalWrappers begin DuckDB's fatal errors that carry the error that
// caused them after "Original Error: " (or "Original error: ").
var fatalWrappers = []string{
	"Failed to rollback transaction",
	"Failed: database has been invalidated",
	"Checkpoint failed for database",
	"Database \"",
}

// isCorrupt says whether err is DuckDB reporting damage to the database
// at path (any file, when path is empty).
func isCorrupt(err error, path string) bool {
	if err == nil || errors.Is(err, ErrCorrupt) {
		return err != nil
	}
	var de *duckdb.Error
	if !errors.As(err, &de) {
		return false
	}
	switch de.Type {
	case duckdb.ErrorTypeInvalidInput, duckdb.ErrorTypeParser, duckdb.ErrorTypeBinder,
		duckdb.ErrorTypeCatalog, duckdb.ErrorTypeConversion, duckdb.ErrorTypeConstraint:
		// messages that may start with text a query chose (error('…'))
		return false
	}
	return corruptMessage(de.Msg, databaseFiles(path))
}

// databaseFiles are the files of the database at path, absolute; nil for
// any file.
func databaseFiles(path string) []string {
	if path == "" || path == memoryPath {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	return []string{abs, abs + ".wal"}
}

// corruptMessage reads a DuckDB message ("IO Error: …"): whether it, or
// the original error of a fatal one, begins with what DuckDB says of a
// damaged file. Only the beginnings count, so that text a query put into
// a message (a file name it asked for) cannot make it one.
func corruptMessage(msg string, files []string) bool {
	rest := stripErrorType(msg)
	if damagedAt(rest, files) {
		return true
	}
	wrapped := false
	for _, w := range fatalWrappers {
		wrapped = wrapped || strings.HasPrefix(rest, w)
	}
	if !wrapped {
		return false
	}
	for _, sep := range []string{"Original Error: ", "Original error: "} {
		for s := rest; ; {
			i := strings.Index(s, sep)
			if i < 0 {
				break
			}
			s = s[i+len(sep):]
			if damagedAt(stripErrorType(strings.TrimLeft(s, `"`)), files) {
				return true
			}
		}
	}
	return false
}

// stripErrorType drops a leading "<type> Error: ".
func stripErrorType(msg string) string {
	i := strings.Index(msg, " Error: ")
	if i < 0 || i > 40 || strings.ContainsAny(msg[:i], ":\n\"") {
		return msg
	}
	return msg[i+len(" Error: "):]
}

func damagedAt(s string, files []string) bool {
	for _, p := range corruptPhrases {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	for _, p := range fileFailures {
		if !strings.HasPrefix(s, p) {
			continue
		}
		name, rest, ok := strings.Cut(s[len(p):], `"`)
		if !ok {
			return false
		}
		if p == `The file "` && !strings.HasPrefix(rest, " exists, but it is not a valid DuckDB database file") {
			return false
		}
		if files == nil {
			return true
		}
		abs, err := filepath.Abs(name)
		if err != nil {
			abs = name
		}
		for _, f := range files {
			if abs == f {
				return true
			}
		}
	}
	return false
}

// writeMarker records the damage beside the file, once: the first account
// is the one kept.
func writeMarker(path string, damage error, at time.Time) error {
	if path == memoryPath {
		return nil
	}
	marker := DamageMarker(path)
	f, err := os.OpenFile(marker, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintf(f, `%s is damaged: stakhanov's sink will not write to it again.
detected: %s
error: %s

Rebuild it from the results topic into a new file, with the configuration
the sink runs with:

  stakhanov rebuild --duckdb NEW.duckdb [--config FILE | --brokers … --group …]

then stop the sink, move %s, its .wal and this file aside, move the
rebuilt file to %s and start the sink again (docs/operations.md,
"A damaged DuckDB file").
`, path, at.UTC().Format(time.RFC3339), oneLine(damage), path, path)
	return errors.Join(werr, f.Close())
}

// readMarker returns the damage a marker beside path records, if any.
func readMarker(path string) (error, bool) {
	if path == memoryPath {
		return nil, false
	}
	marker := DamageMarker(path)
	b, err := os.ReadFile(marker)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		return fmt.Errorf("%s exists and cannot be read: %w", marker, err), true
	}
	var detected, what string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "detected: "); ok {
			detected = v
		}
		if v, ok := strings.CutPrefix(line, "error: "); ok {
			what = v
		}
	}
	return fmt.Errorf("marked damaged by %s (detected %s: %s); move it aside only with the damaged file", marker, detected, what), true
}

// oneLine is err's text on one line, for the marker and log lines.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// VerifyResult says what Verify read.
type VerifyResult struct {
	Tables map[string]int64 `json:"tables"` // rows of each table read
	TookMS int64            `json:"took_ms"`
}

// verifyTables are the tables Verify reads, small ones first.
var verifyTables = []string{"schema_version", "rule_options", "ingest_offsets", "norms", "rejects", "alerts", "shifts"}

// Verify reads every column of every row of every table once, in one
// read-only transaction, so that damage to a block of table data shows now
// — as a *CorruptError, recorded like any other — rather than when a query
// first reaches it. Indexes are not read: the commits that use them (every
// commit updates ingest_offsets') meet their damage. Verify runs beside
// commits, on a connection of its own, and reads the whole file: on a large
// one it takes a while (0.4 s per million shifts, measured on one core).
func (s *Store) Verify(ctx context.Context) (*VerifyResult, error) {
	start := time.Now()
	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: verify: %w", s.check(err))
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return nil, fmt.Errorf("analytics: verify: %w", s.check(err))
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	res := &VerifyResult{Tables: make(map[string]int64, len(verifyTables))}
	for _, table := range verifyTables {
		// hashing the row reads each of its columns
		var rows int64
		var sum sql.NullString
		q := fmt.Sprintf("SELECT count(*), bit_xor(hash(t))::VARCHAR FROM %s AS t", quoteIdent(table))
		if err := conn.QueryRowContext(ctx, q).Scan(&rows, &sum); err != nil {
			return nil, fmt.Errorf("analytics: verify %s: %w", table, s.check(err))
		}
		res.Tables[table] = rows
	}
	res.TookMS = time.Since(start).Milliseconds()
	return res, nil
}
