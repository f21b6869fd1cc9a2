package app

import (
	"context"
	"io"

	"github.com/stakhanov/stakhanov/analytics"
)

// Query runs SQL over a DuckDB file no other process holds, read-only, and
// writes the result as table, csv or json.
func Query(ctx context.Context, path, sql, format string, w io.Writer) error {
	o := analytics.DefaultOptions(path)
	o.ReadOnly = true
	store, err := analytics.Open(ctx, o)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.Query(ctx, sql, w, format)
}
