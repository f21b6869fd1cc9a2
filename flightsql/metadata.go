package flightsql

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	arrowsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql/schema_ref"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stakhanov/stakhanov/analytics"
)

// What clients ask on connecting and for their database browsers
// (JDBC's DatabaseMetaData: getCatalogs, getSchemas, getTables with and
// without columns, getTableTypes; DBeaver's navigator): answered from
// DuckDB's catalogue through the same read-only path as any query, with
// the client's filters bound as parameters, never spliced into the SQL.

// Table types as DuckDB's information_schema names them.
var tableTypes = []string{"BASE TABLE", "LOCAL TEMPORARY", "VIEW"}

// userCatalogs keeps DuckDB's own databases (system, temp) out.
const userCatalogs = `(SELECT database_name FROM duckdb_databases() WHERE NOT internal)`

const catalogsSQL = `SELECT database_name FROM duckdb_databases() WHERE NOT internal ORDER BY 1`

const schemasSQL = `SELECT catalog_name, schema_name FROM information_schema.schemata
WHERE catalog_name IN ` + userCatalogs + `
  AND ($1::VARCHAR IS NULL OR catalog_name = $1)
  AND ($2::VARCHAR IS NULL OR schema_name LIKE $2 ESCAPE '\')
ORDER BY 1, 2`

const tablesSQL = `SELECT table_catalog, table_schema, table_name, table_type FROM information_schema.tables
WHERE table_catalog IN ` + userCatalogs + `
  AND ($1::VARCHAR IS NULL OR table_catalog = $1)
  AND ($2::VARCHAR IS NULL OR table_schema LIKE $2 ESCAPE '\')
  AND ($3::VARCHAR IS NULL OR table_name LIKE $3 ESCAPE '\')
ORDER BY 1, 2, 3`

// registerSqlInfo says what this server is and does. Clients ask for
// some of these on connecting and fail on an id the server does not know.
func registerSqlInfo(f *sqlServer, o Options) error {
	infos := []struct {
		id  arrowsql.SqlInfo
		val any
	}{
		{arrowsql.SqlInfoFlightSqlServerName, "Stakhanov (DuckDB, read-only)"},
		{arrowsql.SqlInfoFlightSqlServerVersion, o.Version},
		{arrowsql.SqlInfoFlightSqlServerArrowVersion, "18"},
		{arrowsql.SqlInfoFlightSqlServerReadOnly, true},
		{arrowsql.SqlInfoFlightSqlServerSql, true},
		{arrowsql.SqlInfoFlightSqlServerSubstrait, false},
		{arrowsql.SqlInfoFlightSqlServerTransaction, int32(arrowsql.SqlTransactionNone)},
		{arrowsql.SqlInfoFlightSqlServerCancel, false},
		{arrowsql.SqlInfoFlightSqlServerBulkIngestion, false},
		{arrowsql.SqlInfoFlightSqlServerIngestTransactionsSupported, false},
		{arrowsql.SqlInfoFlightSqlServerStatementTimeout, int32(o.QueryTimeout.Seconds())},
		{arrowsql.SqlInfoFlightSqlServerTransactionTimeout, int32(0)},
		{arrowsql.SqlInfoDDLCatalog, false},
		{arrowsql.SqlInfoDDLSchema, false},
		{arrowsql.SqlInfoDDLTable, false},
		// DuckDB keeps identifiers' case and matches them without it.
		{arrowsql.SqlInfoIdentifierCase, int32(arrowsql.SqlCaseSensitivityCaseInsensitive)},
		{arrowsql.SqlInfoQuotedIdentifierCase, int32(arrowsql.SqlCaseSensitivityCaseInsensitive)},
		{arrowsql.SqlInfoIdentifierQuoteChar, `"`},
		{arrowsql.SqlInfoSearchStringEscape, `\`},
		{arrowsql.SqlInfoSupportsColumnAliasing, true},
		{arrowsql.SqlInfoNullPlusNullIsNull, true},
		{arrowsql.SqlInfoTransactionsSupported, false},
	}
	for _, i := range infos {
		if err := f.RegisterSqlInfo(i.id, i.val); err != nil {
			return fmt.Errorf("flightsql: %w", err)
		}
	}
	return nil
}

// strings runs a query of VARCHAR columns and returns its rows.
func (s *Server) texts(ctx context.Context, query string, args ...any) ([][]string, error) {
	var rows [][]string
	err := s.q.QueryArrowReadOnly(ctx, query, func(rr array.RecordReader) error {
		for rr.Next() {
			rec := rr.RecordBatch()
			for i := range int(rec.NumRows()) {
				row := make([]string, rec.NumCols())
				for c := range row {
					col, ok := rec.Column(c).(*array.String)
					if !ok {
						return fmt.Errorf("flightsql: column %d of a catalogue query is %s, not text", c, rec.Column(c).DataType())
					}
					// Value points into the batch, which the reader frees.
					row[c] = strings.Clone(col.Value(i))
				}
				rows = append(rows, row)
			}
		}
		return rr.Err()
	}, args...)
	return rows, err
}

// metadata answers a catalogue call: build makes its one batch.
func (s *Server) metadata(ctx context.Context, sc *arrow.Schema, build func(ctx context.Context, b *array.RecordBuilder) error) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	release, err := s.admit()
	if err != nil {
		return nil, nil, err
	}
	defer release()
	qctx, cancel := context.WithTimeout(ctx, s.o.QueryTimeout)
	defer cancel()
	b := array.NewRecordBuilder(s.mem, sc)
	defer b.Release()
	if err := build(qctx, b); err != nil {
		return nil, nil, s.toStatus(qctx, err)
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	rr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	if err != nil {
		return nil, nil, status.Errorf(codes.Internal, "%v", err)
	}
	ch := make(chan flight.StreamChunk)
	go flight.StreamChunksFromReader(ctx, rr, ch) // releases rr
	return sc, ch, nil
}

func appendStrings(b *array.RecordBuilder, row []string) {
	for i, v := range row {
		b.Field(i).(*array.StringBuilder).Append(v)
	}
}

// optional is a filter's value for SQL: nil binds NULL, no filter.
func optional(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func (f *sqlServer) GetFlightInfoCatalogs(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.s.flightInfo(desc, schema_ref.Catalogs, desc.Cmd), nil
}

func (f *sqlServer) DoGetCatalogs(ctx context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return f.s.metadata(ctx, schema_ref.Catalogs, func(ctx context.Context, b *array.RecordBuilder) error {
		rows, err := f.s.texts(ctx, catalogsSQL)
		for _, r := range rows {
			appendStrings(b, r)
		}
		return err
	})
}

func (f *sqlServer) GetFlightInfoSchemas(_ context.Context, _ arrowsql.GetDBSchemas, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.s.flightInfo(desc, schema_ref.DBSchemas, desc.Cmd), nil
}

func (f *sqlServer) DoGetDBSchemas(ctx context.Context, cmd arrowsql.GetDBSchemas) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return f.s.metadata(ctx, schema_ref.DBSchemas, func(ctx context.Context, b *array.RecordBuilder) error {
		rows, err := f.s.texts(ctx, schemasSQL, optional(cmd.GetCatalog()), optional(cmd.GetDBSchemaFilterPattern()))
		for _, r := range rows {
			appendStrings(b, r)
		}
		return err
	})
}

func (f *sqlServer) GetFlightInfoTables(_ context.Context, cmd arrowsql.GetTables, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	sc := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		sc = schema_ref.TablesWithIncludedSchema
	}
	return f.s.flightInfo(desc, sc, desc.Cmd), nil
}

// DoGetTables lists tables and views; with include_schema (JDBC's
// getColumns) each one's columns as the Arrow schema of SELECT * from it,
// told by DuckDB without reading it.
func (f *sqlServer) DoGetTables(ctx context.Context, cmd arrowsql.GetTables) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	sc := schema_ref.Tables
	if cmd.GetIncludeSchema() {
		sc = schema_ref.TablesWithIncludedSchema
	}
	return f.s.metadata(ctx, sc, func(ctx context.Context, b *array.RecordBuilder) error {
		rows, err := f.s.texts(ctx, tablesSQL, optional(cmd.GetCatalog()),
			optional(cmd.GetDBSchemaFilterPattern()), optional(cmd.GetTableNameFilterPattern()))
		if err != nil {
			return err
		}
		types := cmd.GetTableTypes()
		for _, r := range rows {
			if len(types) > 0 && !slices.Contains(types, r[3]) {
				continue
			}
			appendStrings(b, r)
			if !cmd.GetIncludeSchema() {
				continue
			}
			q := "SELECT * FROM " + analytics.QuoteIdent(r[0]) + "." + analytics.QuoteIdent(r[1]) + "." + analytics.QuoteIdent(r[2])
			tsc, err := f.s.q.ResultSchemaReadOnly(ctx, q)
			if err != nil {
				return fmt.Errorf("the columns of %s.%s.%s: %w", r[0], r[1], r[2], err)
			}
			b.Field(4).(*array.BinaryBuilder).Append(flight.SerializeSchema(tsc, f.s.mem))
		}
		return nil
	})
}

func (f *sqlServer) GetFlightInfoTableTypes(_ context.Context, desc *flight.FlightDescriptor) (*flight.FlightInfo, error) {
	return f.s.flightInfo(desc, schema_ref.TableTypes, desc.Cmd), nil
}

func (f *sqlServer) DoGetTableTypes(ctx context.Context) (*arrow.Schema, <-chan flight.StreamChunk, error) {
	return f.s.metadata(ctx, schema_ref.TableTypes, func(_ context.Context, b *array.RecordBuilder) error {
		for _, t := range tableTypes {
			b.Field(0).(*array.StringBuilder).Append(t)
		}
		return nil
	})
}
