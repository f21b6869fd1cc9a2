package app

import (
	"context"
	"io"

	"github.com/stakhanov/stakhanov/analytics"
)

// Query runs SQL over a DuckDB file no other process holds, read-only, and
// writes the result as table, csv or json.
func Query(ctx context.Context, path, sql, format string, w io.Writer) error {
	store, err := openReadOnly(ctx, path)
	if err != nil {
		return err
	}
	defer store.Close()
	return store.Query(ctx, sql, w, format)
}

func openReadOnly(ctx context.Context, path string) (*analytics.Store, error) {
	o := analytics.DefaultOptions(path)
	o.ReadOnly = true
	return analytics.Open(ctx, o)
}
