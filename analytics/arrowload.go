package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	duckdb "github.com/duckdb/duckdb-go/v2"
)

// loader moves rows into one table as an Arrow record batch. Its builder
// lives as long as the Store so that each commit reuses the builders
// instead of allocating a new set.
type loader struct {
	view   string // name of the transient view; dropped before COMMIT
	b      *array.RecordBuilder
	insert string
	// fresh is the same insert without a conflict clause: a third faster,
	// and right whenever no id in the batch is stored already — nearly
	// always, since the processors drop repeats. A conflict aborts the
	// transaction, and Commit retries it with insert.
	fresh string
}

// column describes a loader column; its name is the table's column name.
type column struct {
	name string
	typ  arrow.DataType
}

// Column types. Timestamp_us carries time zone UTC, which DuckDB maps to
// TIMESTAMPTZ; Date32 is days since the epoch, like shift.Day.
var (
	tString    = arrow.BinaryTypes.String
	tInt32     = arrow.PrimitiveTypes.Int32
	tInt64     = arrow.PrimitiveTypes.Int64
	tFloat64   = arrow.PrimitiveTypes.Float64
	tBool      = arrow.FixedWidthTypes.Boolean
	tDate      = arrow.FixedWidthTypes.Date32
	tTimestamp = arrow.FixedWidthTypes.Timestamp_us
	// tDict is for strings with few distinct values in a batch (plant,
	// role, unit, …): DuckDB receives them as dictionary vectors and reads
	// VARCHAR.
	tDict = &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int32, ValueType: arrow.BinaryTypes.String}
)

// newLoader prepares a loader; verb is "INSERT OR IGNORE" or
// "INSERT OR REPLACE".
//
// The statement must read every column of the view, in the view's order,
// with no WHERE, and only once. The view comes from duckdb_arrow_scan of
// DuckDB's C API, whose stream ignores the projection and filters DuckDB
// pushes into it (duckdb/duckdb#17012, checked here on v1.5.6): a query
// that needs fewer columns gets the first columns of the stream under
// the wrong names, silently or with a crash, and a filter is not applied.
// The stream itself can be consumed only once.
func newLoader(table, verb string, cols []column) *loader {
	fields := make([]arrow.Field, len(cols))
	names := make([]string, len(cols))
	for i, c := range cols {
		fields[i] = arrow.Field{Name: c.name, Type: c.typ, Nullable: true}
		names[i] = c.name
	}
	view := "stakhanov_load_" + table
	list := strings.Join(names, ", ")
	return &loader{
		view:   view,
		b:      array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema(fields, nil)),
		insert: fmt.Sprintf("%s INTO %s (%s) SELECT %s FROM %s", verb, table, list, list, view),
		fresh:  fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s", table, list, list, view),
	}
}

// load inserts the rows in the builder on the transaction's connection and
// returns the rows affected. Whatever happens, the builder is empty
// afterwards. The view's stream is handed to tx and released only after
// the transaction ends: DuckDB may touch the view until then.
func (l *loader) load(ctx context.Context, tx *commitTx) (int64, error) {
	rec := l.b.NewRecordBatch()
	l.resetDicts()
	return l.loadRecord(ctx, tx, rec)
}

// loadRecord inserts rec, built by a builder of the loader's schema, and
// releases it.
func (l *loader) loadRecord(ctx context.Context, tx *commitTx, rec arrow.RecordBatch) (int64, error) {
	defer rec.Release()
	if rec.NumRows() == 0 {
		return 0, nil
	}
	rdr, err := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
	if err != nil {
		return 0, err
	}
	// The exported stream holds its own reference to the reader.
	defer rdr.Release()
	err = tx.conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		release, err := a.RegisterView(rdr, l.view)
		if err != nil {
			return err
		}
		tx.releases = append(tx.releases, release)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("register view %s: %w", l.view, err)
	}
	stmt := l.insert
	if !tx.onConflict {
		stmt = l.fresh
	}
	res, err := tx.conn.ExecContext(ctx, stmt)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	// The view would otherwise be committed into the file, pointing at
	// memory of this process (see doc.go).
	if _, err := tx.conn.ExecContext(ctx, "DROP VIEW "+l.view); err != nil {
		return 0, fmt.Errorf("drop view %s: %w", l.view, err)
	}
	return n, nil
}

// resetDicts forgets the dictionaries' values: a dictionary builder keeps
// them across batches, which would let worker ids of every past batch
// travel with each new one.
func (l *loader) resetDicts() {
	for _, f := range l.b.Fields() {
		if d, ok := f.(array.DictionaryBuilder); ok {
			d.ResetFull()
		}
	}
}

// strCol appends to a VARCHAR column built either plain or as a
// dictionary.
type strCol struct {
	plain *array.StringBuilder
	dict  *array.BinaryDictionaryBuilder
}

func newStrCol(b array.Builder) strCol {
	switch b := b.(type) {
	case *array.StringBuilder:
		return strCol{plain: b}
	case *array.BinaryDictionaryBuilder:
		return strCol{dict: b}
	}
	panic(fmt.Sprintf("analytics: %T is not a string builder", b))
}

func (c strCol) append(v string) {
	if c.plain != nil {
		c.plain.Append(v)
		return
	}
	// Only fails for values that are not strings or byte slices.
	_ = c.dict.AppendString(v)
}

// appendNullable stores "" as NULL.
func (c strCol) appendNullable(v string) {
	if v == "" {
		if c.plain != nil {
			c.plain.AppendNull()
		} else {
			c.dict.AppendNull()
		}
		return
	}
	c.append(v)
}

// appendFloat stores NaN as NULL: SQL aggregates skip NULL, but one NaN
// turns a sum or mean into NaN.
func appendFloat(b *array.Float64Builder, v float64) {
	if math.IsNaN(v) {
		b.AppendNull()
		return
	}
	b.Append(v)
}

// commitTx is one commit's transaction on its pinned connection.
type commitTx struct {
	conn     *sql.Conn
	releases []func()
	// onConflict: insert with the loaders' conflict clauses (OR IGNORE);
	// false tries the plain insert first.
	onConflict bool
}
