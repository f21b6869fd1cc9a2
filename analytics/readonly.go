package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// SQL from analysts reaches the pipeline's own read-write handle (the
// query endpoint), so QueryReadOnly puts three walls in front of it:
//
//  1. The first keyword must be one a read starts with (SELECT, WITH,
//     FROM, VALUES, TABLE, DESCRIBE, SHOW, SUMMARIZE, PRAGMA, EXPLAIN).
//     This is no classification, only a fence around the next wall:
//     merely preparing some statements acts (binding EXPORT DATABASE
//     creates its directory; CREATE SECRET may download an extension), so
//     those are refused unprepared, named by their keyword.
//  2. DuckDB's own classification. The text must hold exactly one
//     statement, and its prepared form must be a SELECT (which is what
//     DuckDB makes of DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM … and the
//     PRAGMAs that only read) or an EXPLAIN of one. Preparing executes
//     nothing; anything else is refused under DuckDB's name for its type.
//  3. The statement runs in a READ ONLY transaction, rolled back after, so
//     what a SELECT could still do to the database (nextval on a sequence,
//     force_checkpoint(), which would abort the sink's transaction) fails in
//     DuckDB itself.
//
// What neither wall stops is reading: a SELECT may read any file the
// process can (read_csv, read_parquet, …). That is why the endpoint serves
// loopback unless told otherwise.

var (
	// ErrNotReadOnly: the statement is not one that only reads, or it
	// tried to write. The error is a *StatementError naming its type.
	ErrNotReadOnly = errors.New("analytics: not a read-only statement")
	// ErrBadSQL: DuckDB refused the statement (syntax, an unknown table,
	// a failed cast, …); the message is DuckDB's.
	ErrBadSQL = errors.New("analytics: bad SQL")
)

// StatementError is the error for a refused statement.
type StatementError struct {
	// Type is DuckDB's statement type: INSERT, CREATE, ATTACH, …; MULTI
	// for more than one statement, "EXPLAIN INSERT" and the like for an
	// EXPLAIN of a statement that would write.
	Type   string
	Reason string
}

func (e *StatementError) Error() string {
	return fmt.Sprintf("%v: %s: %s", ErrNotReadOnly, e.Type, e.Reason)
}

func (e *StatementError) Unwrap() error { return ErrNotReadOnly }

// StatementTypeName is DuckDB's name of a statement type, as its C API
// spells it without the prefix ("SELECT", "VARIABLE_SET", …).
func StatementTypeName(t duckdb.StmtType) string {
	if n, ok := stmtTypeNames[t]; ok {
		return n
	}
	// Types newer than this list (DuckDB 1.5 has MERGE_INTO and
	// UPDATE_EXTENSIONS without a Go constant) are refused all the same.
	return fmt.Sprintf("TYPE_%d", int(t))
}

var stmtTypeNames = map[duckdb.StmtType]string{
	duckdb.STATEMENT_TYPE_INVALID:      "INVALID",
	duckdb.STATEMENT_TYPE_SELECT:       "SELECT",
	duckdb.STATEMENT_TYPE_INSERT:       "INSERT",
	duckdb.STATEMENT_TYPE_UPDATE:       "UPDATE",
	duckdb.STATEMENT_TYPE_EXPLAIN:      "EXPLAIN",
	duckdb.STATEMENT_TYPE_DELETE:       "DELETE",
	duckdb.STATEMENT_TYPE_PREPARE:      "PREPARE",
	duckdb.STATEMENT_TYPE_CREATE:       "CREATE",
	duckdb.STATEMENT_TYPE_EXECUTE:      "EXECUTE",
	duckdb.STATEMENT_TYPE_ALTER:        "ALTER",
	duckdb.STATEMENT_TYPE_TRANSACTION:  "TRANSACTION",
	duckdb.STATEMENT_TYPE_COPY:         "COPY",
	duckdb.STATEMENT_TYPE_ANALYZE:      "ANALYZE",
	duckdb.STATEMENT_TYPE_VARIABLE_SET: "VARIABLE_SET",
	duckdb.STATEMENT_TYPE_CREATE_FUNC:  "CREATE_FUNC",
	duckdb.STATEMENT_TYPE_DROP:         "DROP",
	duckdb.STATEMENT_TYPE_EXPORT:       "EXPORT",
	duckdb.STATEMENT_TYPE_PRAGMA:       "PRAGMA",
	duckdb.STATEMENT_TYPE_VACUUM:       "VACUUM",
	duckdb.STATEMENT_TYPE_CALL:         "CALL",
	duckdb.STATEMENT_TYPE_SET:          "SET",
	duckdb.STATEMENT_TYPE_LOAD:         "LOAD",
	duckdb.STATEMENT_TYPE_RELATION:     "RELATION",
	duckdb.STATEMENT_TYPE_EXTENSION:    "EXTENSION",
	duckdb.STATEMENT_TYPE_LOGICAL_PLAN: "LOGICAL_PLAN",
	duckdb.STATEMENT_TYPE_ATTACH:       "ATTACH",
	duckdb.STATEMENT_TYPE_DETACH:       "DETACH",
	duckdb.STATEMENT_TYPE_MULTI:        "MULTI",
	29:                                 "UPDATE_EXTENSIONS",
	30:                                 "MERGE_INTO",
}

// CheckReadOnly classifies query as QueryReadOnly does, without running
// it: nil for a statement QueryReadOnly accepts, a *StatementError
// (ErrNotReadOnly) or ErrBadSQL otherwise.
func (s *Store) CheckReadOnly(ctx context.Context, query string) error {
	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: %w", s.check(err))
	}
	defer conn.Close()
	return s.check(checkReadOnly(ctx, conn, query))
}

const refusedReason = "only SELECT (and DESCRIBE, SHOW, SUMMARIZE, EXPLAIN of a SELECT) is served"

// readKeywords are the first keywords wall 1 lets through to DuckDB.
var readKeywords = map[string]bool{
	"SELECT": true, "WITH": true, "FROM": true, "VALUES": true, "TABLE": true,
	"DESCRIBE": true, "DESC": true, "SHOW": true, "SUMMARIZE": true, "PRAGMA": true,
	"EXPLAIN": true,
}

func checkReadOnly(ctx context.Context, conn *sql.Conn, query string) error {
	kw, err := firstKeyword(query)
	if err != nil {
		return err
	}
	if kw == "EXPLAIN" {
		// EXPLAIN ANALYZE runs what it explains, and DuckDB calls every
		// EXPLAIN an EXPLAIN: what follows the keywords goes through the
		// walls first. Text this cannot take apart is refused.
		inner, ok := explained(query)
		if !ok {
			return &StatementError{Type: "EXPLAIN", Reason: "the explained statement could not be told apart"}
		}
		if err := checkSelect(ctx, conn, inner, false); err != nil {
			var se *StatementError
			if errors.As(err, &se) {
				return &StatementError{Type: "EXPLAIN " + se.Type, Reason: se.Reason}
			}
			return err
		}
		typ, err := statementType(ctx, conn, query)
		switch {
		case err != nil:
			return err
		case typ != duckdb.STATEMENT_TYPE_EXPLAIN:
			return &StatementError{Type: StatementTypeName(typ), Reason: refusedReason}
		}
		return nil
	}
	return checkSelect(ctx, conn, query, true)
}

// checkSelect passes a statement that is a SELECT by its first keyword
// and by DuckDB's classification. explain allows EXPLAIN as the keyword.
func checkSelect(ctx context.Context, conn *sql.Conn, query string, explain bool) error {
	kw, err := firstKeyword(query)
	if err != nil {
		return err
	}
	if !readKeywords[kw] || (kw == "EXPLAIN" && !explain) {
		if msg := syntaxError(ctx, conn, query); msg != "" {
			return fmt.Errorf("%w: Parser Error: %s", ErrBadSQL, msg)
		}
		return &StatementError{Type: kw, Reason: refusedReason}
	}
	typ, err := statementType(ctx, conn, query)
	if err != nil {
		return err
	}
	if typ != duckdb.STATEMENT_TYPE_SELECT {
		return &StatementError{Type: StatementTypeName(typ), Reason: refusedReason}
	}
	return nil
}

// syntaxError is DuckDB's parser's complaint about query, if it has one.
// json_serialize_sql only parses; preparing, and duckdb.GetTableNames,
// bind, which is what wall 1 keeps these statements from.
func syntaxError(ctx context.Context, conn *sql.Conn, query string) string {
	var js string
	if err := conn.QueryRowContext(ctx, `SELECT json_serialize_sql(?::VARCHAR)::VARCHAR`, query).Scan(&js); err != nil {
		return ""
	}
	var res struct {
		Error   bool   `json:"error"`
		Type    string `json:"error_type"`
		Message string `json:"error_message"`
	}
	if json.Unmarshal([]byte(js), &res) != nil || !res.Error || res.Type != "parser" {
		return ""
	}
	return res.Message
}

// firstKeyword is the statement's first word, upper case, past comments
// and opening parentheses.
func firstKeyword(query string) (string, error) {
	rest := skipSpaceAndComments(query)
	for strings.HasPrefix(rest, "(") {
		rest = skipSpaceAndComments(rest[1:])
	}
	if rest == "" || rest == ";" {
		return "", fmt.Errorf("%w: no statement", ErrBadSQL)
	}
	kw, _ := word(rest)
	if kw == "" {
		return "", fmt.Errorf("%w: the statement does not start with a keyword", ErrBadSQL)
	}
	return strings.ToUpper(kw), nil
}

// statementType prepares query, which must be one statement, and returns
// DuckDB's type for it. The driver's Prepare, unlike PrepareContext,
// refuses several statements instead of executing all but the last.
func statementType(ctx context.Context, conn *sql.Conn, query string) (duckdb.StmtType, error) {
	if err := ctx.Err(); err != nil {
		return duckdb.STATEMENT_TYPE_INVALID, err
	}
	var typ duckdb.StmtType
	err := conn.Raw(func(dc any) error {
		st, err := dc.(driver.Conn).Prepare(query)
		if err != nil {
			return err
		}
		defer st.Close()
		ds, ok := st.(*duckdb.Stmt)
		if !ok {
			return fmt.Errorf("analytics: prepared statement is a %T", st)
		}
		typ, err = ds.StatementType()
		return err
	})
	if err == nil {
		return typ, nil
	}
	var de *duckdb.Error
	switch {
	case errors.As(err, &de):
		return typ, fmt.Errorf("%w: %w", ErrBadSQL, err)
	case strings.Contains(err.Error(), "empty query"):
		return typ, fmt.Errorf("%w: no statement", ErrBadSQL)
	case strings.Contains(err.Error(), "multi-statement"):
		return typ, &StatementError{Type: "MULTI", Reason: "exactly one statement per request"}
	}
	// Whatever else the driver says, nothing was classified: refuse.
	return typ, &StatementError{Type: "UNKNOWN", Reason: err.Error()}
}

// explained returns the statement an EXPLAIN [ANALYZE] [(options)] query
// explains. ok is false when the text does not start that way.
func explained(query string) (inner string, ok bool) {
	rest := skipSpaceAndComments(query)
	kw, rest := word(rest)
	if !strings.EqualFold(kw, "EXPLAIN") {
		return "", false
	}
	rest = skipSpaceAndComments(rest)
	if kw, after := word(rest); strings.EqualFold(kw, "ANALYZE") || strings.EqualFold(kw, "ANALYSE") {
		rest = skipSpaceAndComments(after)
	}
	if strings.HasPrefix(rest, "(") {
		end := strings.IndexByte(rest, ')')
		if end < 0 || strings.ContainsAny(rest[1:end], `'"(`) {
			return "", false // options with quoting or nesting: not taken apart
		}
		rest = skipSpaceAndComments(rest[end+1:])
	}
	if rest == "" {
		return "", false
	}
	return rest, true
}

func word(s string) (w, rest string) {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] == '_') {
		i++
	}
	return s[:i], s[i:]
}

func skipSpaceAndComments(s string) string {
	for {
		s = strings.TrimLeft(s, " \t\r\n\f\v")
		switch {
		case strings.HasPrefix(s, "--"):
			i := strings.IndexByte(s, '\n')
			if i < 0 {
				return ""
			}
			s = s[i+1:]
		case strings.HasPrefix(s, "/*"):
			i := strings.Index(s[2:], "*/")
			if i < 0 {
				return ""
			}
			s = s[2+i+2:]
		default:
			return s
		}
	}
}

// QueryReadOnly runs query if it only reads, in a read-only transaction,
// and writes its result to w in format (one of Formats). A refused
// statement is a *StatementError (ErrNotReadOnly); SQL DuckDB rejects
// wraps ErrBadSQL. Nothing is written to w unless the query was accepted.
func (s *Store) QueryReadOnly(ctx context.Context, query string, w io.Writer, format string) error {
	if err := CheckFormat(format); err != nil {
		return fmt.Errorf("analytics: query: %w", err)
	}
	return s.readOnly(ctx, query, func(conn *sql.Conn) error {
		return writeResult(ctx, conn, query, w, format)
	})
}

// readOnly passes query through the walls and calls fn with a connection
// inside a READ ONLY transaction, rolled back after. Errors of fn are
// classified as those of a running query.
func (s *Store) readOnly(ctx context.Context, query string, fn func(*sql.Conn) error) (err error) {
	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: query: %w", s.check(err))
	}
	defer conn.Close()
	if err := checkReadOnly(ctx, conn, query); err != nil {
		return s.check(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION READ ONLY"); err != nil {
		return fmt.Errorf("analytics: query: %w", s.check(err))
	}
	defer func() {
		// A cancelled ctx must not stop the rollback.
		if _, rbErr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
			// A connection whose transaction did not end goes, not back
			// to the pool.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			err = errors.Join(err, fmt.Errorf("analytics: query: rollback: %w", rbErr))
		}
	}()
	if err := fn(conn); err != nil {
		return classifyQueryError(s.check(err))
	}
	return nil
}

// classifyQueryError sorts an error of a running query: a damaged file
// (ErrCorrupt: the server's data, not the SQL, is at fault), an attempt to
// write that the read-only transaction stopped, DuckDB refusing the SQL,
// or anything else (the context, the writer, the database).
func classifyQueryError(err error) error {
	var de *duckdb.Error
	if errors.Is(err, ErrCorrupt) || !errors.As(err, &de) {
		return fmt.Errorf("analytics: query: %w", err)
	}
	switch de.Type {
	case duckdb.ErrorTypeTransaction:
		// In a read-only transaction of one SELECT: it tried to write
		// (nextval) or to checkpoint (force_checkpoint()).
		return fmt.Errorf("%w: %w", &StatementError{Type: "SELECT", Reason: "it tried to change the database"}, err)
	case duckdb.ErrorTypeFatal, duckdb.ErrorTypeInternal, duckdb.ErrorTypeConnection, duckdb.ErrorTypeInterrupt:
		return fmt.Errorf("analytics: query: %w", err)
	}
	return fmt.Errorf("%w: %w", ErrBadSQL, err)
}
