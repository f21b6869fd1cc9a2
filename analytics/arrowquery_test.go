package analytics

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// TestResultSchemaReadOnly: the schema told before a query runs is the one
// its result has, for every kind of column DuckDB returns, and for the
// statements that are not SELECTs by their first word.
func TestResultSchemaReadOnly(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mustCommit(t, s, fullBatch(0, 0, 0))
	queries := []string{
		`SELECT * FROM shifts`,
		`SELECT * FROM alerts`,
		`SELECT * FROM norms`,
		`SELECT * FROM rejects`,
		`SELECT 1::TINYINT a, 2::SMALLINT b, 3 c, 4::BIGINT d, 5::HUGEINT e, 6::UTINYINT f, 7::USMALLINT g,
			8::UINTEGER h, 9::UBIGINT i, 10::UHUGEINT j, 1.5::FLOAT k, 2.5::DOUBLE l, 3.25::DECIMAL(9,2) m,
			12345678901234.5::DECIMAL(30,4) n, true o, 'x' p, 'y'::BLOB q, uuid() r, '101'::BIT s`,
		`SELECT DATE '2026-01-02' a, TIME '03:04:05' b, TIMESTAMP '2026-01-02 03:04:05' c,
			TIMESTAMPTZ '2026-01-02 03:04:05+00' d, '2026-01-02'::TIMESTAMP_S e, '2026-01-02'::TIMESTAMP_MS f,
			'2026-01-02'::TIMESTAMP_NS g, INTERVAL 3 DAY h, TIMETZ '03:04:05+01' i`,
		`SELECT [1, 2] a, [[1.5]] b, {'x': 1, 'y z': 'q'} c, MAP {'k': 1} d, [1, 2, 3]::INTEGER[3] e,
			'{"a": 1}'::JSON f, 'b'::ENUM('a', 'b', 'it''s') g, union_value(n := 1) h, [{'s': [1]}] i`,
		`SELECT 1 AS "quoted ""name""", 2 AS a, 3 AS a`,
		`DESCRIBE shifts`,
		`SHOW TABLES`,
		`SUMMARIZE SELECT 1 AS x`,
		`PRAGMA table_info('shifts')`,
		`EXPLAIN SELECT 1`,
		`SELECT NULL AS nothing`,
	}
	for _, q := range queries {
		t.Run(q, func(t *testing.T) {
			told, err := s.ResultSchemaReadOnly(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			err = s.QueryArrowReadOnly(ctx, q, func(rr array.RecordReader) error {
				got = rr.Schema().String()
				for rr.Next() {
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if told.String() != got {
				t.Errorf("told\n%s\nran\n%s", told, got)
			}
		})
	}
}

// TestQueryArrowReadOnly: the Arrow path keeps the walls of QueryReadOnly:
// refused statements never reach fn, a write inside a SELECT fails, and
// parameters bind.
func TestQueryArrowReadOnly(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mustCommit(t, s, fullBatch(0, 0, 0))
	if _, err := s.DB().Exec(`CREATE SEQUENCE seq`); err != nil {
		t.Fatal(err)
	}
	shifts := int64(count(t, s, "shifts"))
	tests := []struct {
		sql     string
		args    []any
		rows    int64 // rows read, when accepted
		refused string
		bad     bool
	}{
		{sql: `SELECT * FROM shifts`, rows: shifts},
		{sql: `SELECT * FROM range(10000)`, rows: 10000},
		{sql: `SELECT * FROM range(?)`, args: []any{5}, rows: 5},
		{sql: `SELECT * FROM shifts WHERE plant_id = $1`, args: []any{"no such plant"}, rows: 0},
		{sql: `DELETE FROM shifts`, refused: "DELETE"},
		{sql: `SELECT 1; DELETE FROM shifts`, refused: "MULTI"},
		{sql: `SELECT nextval('seq')`, refused: "SELECT"},
		{sql: `SELECT * FROM no_such_table`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			called := false
			var rows int64
			err := s.QueryArrowReadOnly(ctx, tc.sql, func(rr array.RecordReader) error {
				called = true
				for rr.Next() {
					rows += rr.RecordBatch().NumRows()
				}
				return nil
			}, tc.args...)
			var se *StatementError
			switch {
			case tc.refused != "":
				if !errors.As(err, &se) || se.Type != tc.refused {
					t.Fatalf("want refused as %s, got %v", tc.refused, err)
				}
				if called && tc.refused != "SELECT" {
					t.Fatal("a refused statement reached fn")
				}
			case tc.bad:
				if !errors.Is(err, ErrBadSQL) || called {
					t.Fatalf("want bad SQL before fn, got %v (fn called %v)", err, called)
				}
			default:
				if err != nil || rows != tc.rows {
					t.Fatalf("%d rows, %v; want %d", rows, err, tc.rows)
				}
			}
		})
	}
	if n := int64(count(t, s, "shifts")); n != shifts {
		t.Fatalf("shifts %d after the refused statements, were %d", n, shifts)
	}
	t.Run("fn's error", func(t *testing.T) {
		boom := errors.New("client went away")
		err := s.QueryArrowReadOnly(ctx, `SELECT 1`, func(array.RecordReader) error { return boom })
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	})
}

// TestWriteArrowResult: a result that arrives as Arrow renders as Query
// renders the same rows, in every format.
func TestWriteArrowResult(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	mustCommit(t, s, fullBatch(0, 0, 0))
	const q = `SELECT * FROM shifts ORDER BY event_id`
	for _, format := range []string{FormatTable, FormatCSV, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			var want, got bytes.Buffer
			if err := s.Query(ctx, q, &want, format); err != nil {
				t.Fatal(err)
			}
			err := s.QueryArrowReadOnly(ctx, q, func(rr array.RecordReader) error {
				return WriteArrowResult(ctx, rr, &got, format)
			})
			if err != nil {
				t.Fatal(err)
			}
			if want.Len() < 100 || got.String() != want.String() {
				t.Fatalf("through Arrow:\n%s\nQuery:\n%s", got.String(), want.String())
			}
		})
	}
	t.Run(FormatArrow, func(t *testing.T) {
		var got bytes.Buffer
		err := s.QueryArrowReadOnly(ctx, q, func(rr array.RecordReader) error {
			return WriteArrowResult(ctx, rr, &got, FormatArrow)
		})
		if err != nil {
			t.Fatal(err)
		}
		r, err := ipc.NewReader(&got)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var rows int64
		for r.Next() {
			rows += r.RecordBatch().NumRows()
		}
		if want := int64(count(t, s, "shifts")); rows != want || r.Err() != nil {
			t.Fatalf("%d rows (%v), want %d", rows, r.Err(), want)
		}
	})
}
