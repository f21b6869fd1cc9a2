package analytics

import (
	"errors"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// IsLocked reports whether err (from Open) is DuckDB refusing a file that
// another process holds: read-write, which keeps every other process out,
// or read-only, which keeps writers out.
func IsLocked(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeIO &&
		strings.Contains(de.Msg, "Could not set lock on file")
}
