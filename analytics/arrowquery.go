package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// Arrow results for programs that take record batches as they come (the
// Flight SQL server): the same walls as QueryReadOnly, no text format.

// QueryArrowReadOnly runs query as QueryReadOnly does — through the same
// checks, in a READ ONLY transaction — and hands its result to fn as an
// Arrow record reader in the types DuckDB gives its columns. The reader
// and its batches are valid only until fn returns; a batch kept longer
// (sent to another goroutine) must be retained. Go holds one batch at a
// time: how many fn keeps is up to fn. args bind the query's parameters
// ($1 or ?), for callers that build SQL around values they were given.
//
// Errors are QueryReadOnly's: a *StatementError (ErrNotReadOnly), ErrBadSQL
// for SQL DuckDB rejects, ErrCorrupt for a damaged file, and what fn
// returns, wrapped.
func (s *Store) QueryArrowReadOnly(ctx context.Context, query string, fn func(array.RecordReader) error, args ...any) error {
	return s.readOnly(ctx, query, func(conn *sql.Conn) error {
		return conn.Raw(func(dc any) error {
			a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
			if err != nil {
				return err
			}
			rr, err := a.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rr.Release()
			if err := fn(rr); err != nil {
				return err
			}
			return rr.Err()
		})
	})
}

// ResultSchemaReadOnly is the Arrow schema of query's result, as
// QueryArrowReadOnly would yield it, mostly without running query: DuckDB
// prepares it, which names its columns and their types, and converts an
// empty result of those types to Arrow (so that the schema is DuckDB's
// own conversion, not a second one kept here). A column whose type cannot
// be written back as SQL (a parameter whose type is not known yet, say)
// makes it run query itself, in the read-only transaction, and take the
// schema of its result without reading a batch. Errors are QueryReadOnly's.
func (s *Store) ResultSchemaReadOnly(ctx context.Context, query string) (*arrow.Schema, error) {
	var schema *arrow.Schema
	err := s.readOnly(ctx, query, func(conn *sql.Conn) error {
		return conn.Raw(func(dc any) error {
			probe, err := probeQuery(dc.(driver.Conn), query)
			if err != nil {
				return err
			}
			if probe == "" {
				probe = query // no SQL for a type: run the query itself
			}
			a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
			if err != nil {
				return err
			}
			rr, err := a.QueryContext(ctx, probe)
			if err != nil {
				return err
			}
			defer rr.Release()
			schema = rr.Schema()
			return nil
		})
	})
	return schema, err
}

// probeQuery prepares query and returns a SELECT of no rows with its
// columns' names and types, or "" when a type has no SQL name here.
func probeQuery(dc driver.Conn, query string) (string, error) {
	st, err := dc.Prepare(query)
	if err != nil {
		return "", err
	}
	defer st.Close()
	ds, ok := st.(*duckdb.Stmt)
	if !ok {
		return "", fmt.Errorf("analytics: prepared statement is a %T", st)
	}
	n, err := ds.ColumnCount()
	if err != nil {
		return "", err
	}
	cols := make([]string, n)
	for i := range n {
		name, err := ds.ColumnName(i)
		if err != nil {
			return "", err
		}
		info, err := ds.ColumnTypeInfo(i)
		if err != nil {
			return "", nil // a type the driver cannot describe
		}
		typ, ok := sqlType(info)
		if !ok {
			return "", nil
		}
		cols[i] = "CAST(NULL AS " + typ + ") AS " + QuoteIdent(name)
	}
	return "SELECT " + strings.Join(cols, ", ") + " LIMIT 0", nil
}

// QuoteIdent quotes an identifier for DuckDB's SQL.
func QuoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// simpleTypes are the SQL names of the types without parameters.
var simpleTypes = map[duckdb.Type]string{
	duckdb.TYPE_BOOLEAN:      "BOOLEAN",
	duckdb.TYPE_TINYINT:      "TINYINT",
	duckdb.TYPE_SMALLINT:     "SMALLINT",
	duckdb.TYPE_INTEGER:      "INTEGER",
	duckdb.TYPE_BIGINT:       "BIGINT",
	duckdb.TYPE_UTINYINT:     "UTINYINT",
	duckdb.TYPE_USMALLINT:    "USMALLINT",
	duckdb.TYPE_UINTEGER:     "UINTEGER",
	duckdb.TYPE_UBIGINT:      "UBIGINT",
	duckdb.TYPE_FLOAT:        "FLOAT",
	duckdb.TYPE_DOUBLE:       "DOUBLE",
	duckdb.TYPE_TIMESTAMP:    "TIMESTAMP",
	duckdb.TYPE_DATE:         "DATE",
	duckdb.TYPE_TIME:         "TIME",
	duckdb.TYPE_INTERVAL:     "INTERVAL",
	duckdb.TYPE_HUGEINT:      "HUGEINT",
	duckdb.TYPE_UHUGEINT:     "UHUGEINT",
	duckdb.TYPE_VARCHAR:      "VARCHAR",
	duckdb.TYPE_BLOB:         "BLOB",
	duckdb.TYPE_TIMESTAMP_S:  "TIMESTAMP_S",
	duckdb.TYPE_TIMESTAMP_MS: "TIMESTAMP_MS",
	duckdb.TYPE_TIMESTAMP_NS: "TIMESTAMP_NS",
	duckdb.TYPE_UUID:         "UUID",
	duckdb.TYPE_BIT:          "BIT",
	duckdb.TYPE_TIME_TZ:      "TIME WITH TIME ZONE",
	duckdb.TYPE_TIMESTAMP_TZ: "TIMESTAMP WITH TIME ZONE",
	duckdb.TYPE_BIGNUM:       "BIGNUM",
}

// sqlType writes a type as DuckDB's SQL names it; ok is false for one it
// cannot (NULL, ANY, types newer than this code).
func sqlType(info duckdb.TypeInfo) (string, bool) {
	if info.Alias() == "JSON" {
		return "JSON", true
	}
	t := info.InternalType()
	if name, ok := simpleTypes[t]; ok {
		return name, true
	}
	switch d := info.Details().(type) {
	case *duckdb.DecimalDetails:
		return fmt.Sprintf("DECIMAL(%d, %d)", d.Width, d.Scale), true
	case *duckdb.EnumDetails:
		vals := make([]string, len(d.Values))
		for i, v := range d.Values {
			vals[i] = quoteLiteral(v)
		}
		return "ENUM(" + strings.Join(vals, ", ") + ")", true
	case *duckdb.ListDetails:
		c, ok := sqlType(d.Child)
		return c + "[]", ok
	case *duckdb.ArrayDetails:
		c, ok := sqlType(d.Child)
		return c + "[" + strconv.FormatUint(d.Size, 10) + "]", ok
	case *duckdb.MapDetails:
		k, okk := sqlType(d.Key)
		v, okv := sqlType(d.Value)
		return "MAP(" + k + ", " + v + ")", okk && okv
	case *duckdb.StructDetails:
		fields := make([]string, len(d.Entries))
		for i, e := range d.Entries {
			ft, ok := sqlType(e.Info())
			if !ok {
				return "", false
			}
			fields[i] = QuoteIdent(e.Name()) + " " + ft
		}
		return "STRUCT(" + strings.Join(fields, ", ") + ")", true
	case *duckdb.UnionDetails:
		members := make([]string, len(d.Members))
		for i, m := range d.Members {
			mt, ok := sqlType(m.Type)
			if !ok {
				return "", false
			}
			members[i] = QuoteIdent(m.Name) + " " + mt
		}
		return "UNION(" + strings.Join(members, ", ") + ")", true
	}
	return "", false
}

// WriteArrowResult writes the record batches of rr to w in format, as
// Query writes a result: an Arrow IPC stream for FormatArrow; otherwise the
// batches are read through an in-memory DuckDB, so that table, CSV and
// JSON render values exactly as Query renders them. For results that
// arrived as Arrow from elsewhere (a Flight SQL server). Batches are read
// as they come; a table holds its first TableWidthRows rows, as ever.
func WriteArrowResult(ctx context.Context, rr array.RecordReader, w io.Writer, format string) error {
	if err := CheckFormat(format); err != nil {
		return err
	}
	if format == FormatArrow {
		iw := ipc.NewWriter(w, ipc.WithSchema(rr.Schema()))
		for rr.Next() {
			if err := iw.Write(rr.RecordBatch()); err != nil {
				return errors.Join(err, iw.Close())
			}
		}
		if err := rr.Err(); err != nil {
			return err // no end-of-stream marker: a reader sees it cut short
		}
		return iw.Close()
	}
	connector, err := duckdb.NewConnector("", initConn)
	if err != nil {
		return fmt.Errorf("analytics: rendering a result: %w", err)
	}
	db := sql.OpenDB(connector)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: rendering a result: %w", err)
	}
	defer conn.Close()
	var release func()
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		release, err = a.RegisterView(rr, "result")
		return err
	})
	if err != nil {
		return fmt.Errorf("analytics: rendering a result: %w", err)
	}
	// The view reads rr while the query runs: released after it.
	defer release()
	return writeResult(ctx, conn, `SELECT * FROM "result"`, w, format)
}
