package analytics

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
)

// TestCheckReadOnly: every kind of statement against DuckDB's own
// classification, and nothing refused has run.
func TestCheckReadOnly(t *testing.T) {
	s, path := openTemp(t)
	ctx := context.Background()
	mustCommit(t, s, fullBatch(0, 0, 0))
	if _, err := s.DB().Exec(`CREATE SEQUENCE seq`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := func(name string) string { return filepath.Join(dir, name) }
	src := filepath.Join(t.TempDir(), "src.csv")
	if err := os.WriteFile(src, []byte("event_id\nzz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const allowed = ""
	const bad = "bad SQL"
	tests := []struct {
		sql  string
		want string // allowed, bad, or the refused statement's type
	}{
		{`SELECT count(*) FROM shifts`, allowed},
		{`FROM shifts LIMIT 1`, allowed},
		{`VALUES (1), (2)`, allowed},
		{`WITH x AS (SELECT 1 AS i) SELECT * FROM x`, allowed},
		{`SELECT 1;`, allowed},
		{`DESCRIBE shifts`, allowed},
		{`SHOW TABLES`, allowed},
		{`SUMMARIZE alerts`, allowed},
		{`PRAGMA table_info('shifts')`, allowed},
		{`EXPLAIN SELECT * FROM shifts`, allowed},
		{`EXPLAIN ANALYZE SELECT count(*) FROM shifts`, allowed},
		{"/* why */ -- and how\nEXPLAIN (FORMAT json) SELECT 1", allowed},

		{`INSERT INTO shifts (event_id) VALUES ('x')`, "INSERT"},
		{`UPDATE shifts SET plant_id = 'x'`, "UPDATE"},
		{`DELETE FROM shifts`, "DELETE"},
		{`MERGE INTO shifts USING (SELECT 'q' AS event_id) s ON shifts.event_id = s.event_id
			WHEN NOT MATCHED THEN INSERT (event_id) VALUES (s.event_id)`, "MERGE"},
		{`CREATE TABLE t (i INTEGER)`, "CREATE"},
		{`CREATE OR REPLACE VIEW v AS SELECT 1`, "CREATE"},
		{`CREATE MACRO m(x) AS x`, "CREATE"},
		{`DROP TABLE shifts`, "DROP"},
		{`ALTER TABLE shifts ADD COLUMN z INTEGER`, "ALTER"},
		{`ATTACH '` + in("x.duckdb") + `' AS x`, "ATTACH"},
		{`DETACH x`, "DETACH"},
		{`COPY shifts TO '` + in("x.csv") + `'`, "COPY"},
		{`COPY shifts FROM '` + src + `'`, "COPY"},
		{`EXPORT DATABASE '` + in("exp") + `'`, "EXPORT"},
		{`SET threads = 1`, "SET"},
		{`RESET threads`, "RESET"},
		{`SET VARIABLE v = 1`, "SET"},
		{`USE memory`, "USE"},
		{`CALL pragma_version()`, "CALL"},
		{`CHECKPOINT`, "CHECKPOINT"},
		{`VACUUM`, "VACUUM"},
		{`ANALYZE`, "ANALYZE"},
		{`BEGIN TRANSACTION`, "BEGIN"},
		{`COMMIT`, "COMMIT"},
		{`LOAD json`, "LOAD"},
		{`INSTALL json`, "INSTALL"},
		{`UPDATE EXTENSIONS`, "UPDATE"},
		{`PREPARE p AS SELECT 1`, "PREPARE"},
		{`EXECUTE p`, "EXECUTE"},
		{`CREATE SECRET (TYPE s3)`, "CREATE"},
		// past the keyword fence, DuckDB names what it is
		{`SELECT 1; DELETE FROM shifts`, "MULTI"},
		{`(SELECT 1); (SELECT 2)`, "MULTI"},
		{`WITH x AS (SELECT 'w' AS id) INSERT INTO shifts (event_id) SELECT id FROM x`, "INSERT"},
		{`PRAGMA enable_profiling`, "PRAGMA"},
		{`PRAGMA threads = 1`, "SET"},
		{`DELETE FROM shifts; SELECT 1`, "DELETE"},
		{`EXPLAIN ANALYZE DELETE FROM shifts`, "EXPLAIN DELETE"},
		{`explain analyze /* x */ INSERT INTO shifts (event_id) VALUES ('y')`, "EXPLAIN INSERT"},
		{`EXPLAIN EXPORT DATABASE '` + in("exp2") + `'`, "EXPLAIN EXPORT"},
		{`EXPLAIN EXPLAIN SELECT 1`, "EXPLAIN EXPLAIN"},

		{`SELEC 1`, bad},
		{`SELECT * FROM nope`, bad},
		{`1 + 1`, bad},
		{`;`, bad},
		{`FROM query('DELETE FROM shifts')`, bad},
		{`WITH d AS (DELETE FROM shifts RETURNING *) SELECT * FROM d`, bad},
		{``, bad},
		{`  -- only a comment`, bad},
	}
	for _, tt := range tests {
		name := strings.Join(strings.Fields(tt.sql), " ")
		t.Run(name, func(t *testing.T) {
			check := s.CheckReadOnly(ctx, tt.sql)
			var out bytes.Buffer
			run := s.QueryReadOnly(ctx, tt.sql, &out, FormatCSV)
			var se *StatementError
			switch tt.want {
			case allowed:
				if check != nil || run != nil {
					t.Fatalf("refused: check %v, run %v", check, run)
				}
				if out.Len() == 0 {
					t.Error("no output")
				}
			case bad:
				if !errors.Is(check, ErrBadSQL) || !errors.Is(run, ErrBadSQL) {
					t.Fatalf("want ErrBadSQL: check %v, run %v", check, run)
				}
			default:
				if !errors.As(check, &se) || se.Type != tt.want || !errors.Is(check, ErrNotReadOnly) {
					t.Fatalf("check: %v, want a refused %s", check, tt.want)
				}
				if !errors.As(run, &se) || se.Type != tt.want {
					t.Fatalf("run: %v, want a refused %s", run, tt.want)
				}
				if out.Len() != 0 {
					t.Errorf("a refused statement wrote %q", out.String())
				}
			}
		})
	}
	// nothing refused ran
	if n := count(t, s, "shifts"); n != 50 {
		t.Errorf("%d shifts after the refused statements, want 50", n)
	}
	var tables int
	if err := s.DB().QueryRow(`SELECT count(*) FROM duckdb_tables() WHERE table_name IN ('t')`).Scan(&tables); err != nil || tables != 0 {
		t.Errorf("table t exists (%d, %v)", tables, err)
	}
	if m, _ := filepath.Glob(in("*")); len(m) != 0 {
		t.Errorf("refused statements wrote files: %v", m)
	}
	var dbs int
	if err := s.DB().QueryRow(`SELECT count(*) FROM duckdb_databases() WHERE NOT internal`).Scan(&dbs); err != nil || dbs != 1 {
		t.Errorf("%d databases attached (%v), want 1 (%s)", dbs, err, path)
	}
}

// TestQueryReadOnlyTransaction: a SELECT that would still write is
// stopped by the read-only transaction.
func TestQueryReadOnlyTransaction(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, err := s.DB().Exec(`CREATE SEQUENCE seq`); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`SELECT nextval('seq')`, `FROM force_checkpoint()`} {
		if err := s.CheckReadOnly(ctx, q); err != nil {
			t.Fatalf("%s: classified as %v; the test needs a SELECT", q, err)
		}
		err := s.QueryReadOnly(ctx, q, &bytes.Buffer{}, FormatCSV)
		if err == nil {
			t.Errorf("%s ran", q)
		}
		t.Logf("%s: %v", q, err)
	}
	for _, q := range []string{`SELECT nextval('seq')`, `FROM force_checkpoint()`} {
		if err := s.QueryReadOnly(ctx, q, &bytes.Buffer{}, FormatCSV); !errors.Is(err, ErrNotReadOnly) {
			t.Errorf("%s: %v, want ErrNotReadOnly", q, err)
		}
	}
	var next int
	if err := s.DB().QueryRow(`SELECT nextval('seq')`).Scan(&next); err != nil || next != 1 {
		t.Errorf("the sequence moved: next %d (%v)", next, err)
	}
	// the connection is usable after the rollbacks
	var buf bytes.Buffer
	if err := s.QueryReadOnly(ctx, `SELECT 42 AS n`, &buf, FormatCSV); err != nil || buf.String() != "n\n42\n" {
		t.Errorf("%q %v", buf.String(), err)
	}
}

func TestQueryArrow(t *testing.T) {
	s, _ := openTemp(t)
	mustCommit(t, s, fullBatch(0, 0, 0))
	for _, f := range []func(context.Context, string, *bytes.Buffer) error{
		func(ctx context.Context, q string, b *bytes.Buffer) error { return s.Query(ctx, q, b, FormatArrow) },
		func(ctx context.Context, q string, b *bytes.Buffer) error {
			return s.QueryReadOnly(ctx, q, b, FormatArrow)
		},
	} {
		var buf bytes.Buffer
		if err := f(context.Background(), `SELECT event_id, day, shift_start, rate FROM shifts ORDER BY event_id`, &buf); err != nil {
			t.Fatal(err)
		}
		r, err := ipc.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		var rows int64
		for r.Next() {
			rows += r.RecordBatch().NumRows()
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		got := r.Schema().String()
		r.Release()
		if rows != 50 || !strings.Contains(got, "event_id: type=utf8") || !strings.Contains(got, "day: type=date32") ||
			!strings.Contains(got, "shift_start: type=timestamp[us, tz=UTC]") {
			t.Errorf("%d rows, schema %s", rows, got)
		}
		// an empty result is a schema and no batch
		buf.Reset()
		if err := f(context.Background(), `SELECT event_id FROM shifts WHERE false`, &buf); err != nil {
			t.Fatal(err)
		}
		r, err = ipc.NewReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if r.Next() || r.Schema().NumFields() != 1 {
			t.Errorf("empty result: a batch, or schema %s", r.Schema())
		}
		r.Release()
	}
}
