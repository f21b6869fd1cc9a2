package flightsql

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	arrowsql "github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/internal/testpki"
)

// testRows is how many rows table t holds: several of DuckDB's batches
// (2 048 rows), so that a result streams in more than one.
const testRows = 10_000

// openStore opens a pipeline database file in a temporary directory with
// a table t of testRows rows and a view v over it.
func openStore(t testing.TB) *analytics.Store {
	t.Helper()
	ctx := context.Background()
	o := analytics.DefaultOptions(filepath.Join(t.TempDir(), "flight.duckdb"))
	s, err := analytics.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, q := range []string{
		`CREATE TABLE t AS SELECT range AS i, 'row ' || range AS s, DATE '2026-01-01' + (range % 365)::INTEGER AS d FROM range(10000)`,
		`CREATE VIEW v AS SELECT i FROM t WHERE i < 10`,
		`CREATE SEQUENCE seq`,
	} {
		if _, err := s.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// serve starts a server over s with o on a loopback port and returns its
// address as grpc[+tls]://127.0.0.1:PORT.
func serve(t testing.TB, s Querier, o Options) string {
	t.Helper()
	srv, err := New(s, o)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	scheme := SchemePlain
	if o.TLS != nil {
		scheme = SchemeTLS
	}
	return scheme + "://" + ln.Addr().String()
}

func codeOf(err error) codes.Code {
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	return status.Code(err)
}

// count reads a whole result, counting rows and batches.
func count(rr array.RecordReader) (rows, batches int64) {
	for rr.Next() {
		rows += rr.RecordBatch().NumRows()
		batches++
	}
	return rows, batches
}

// TestQueries: statements through the arrow-go Flight SQL client, as
// statements and as prepared statements; what is refused, how, and that
// nothing refused ran.
func TestQueries(t *testing.T) {
	s := openStore(t)
	uri := serve(t, s, DefaultOptions())
	ctx := context.Background()
	tests := []struct {
		sql  string
		rows int64
		cols []string
		code codes.Code // codes.OK: accepted
		msg  string     // in the refusal
	}{
		{sql: `SELECT * FROM t`, rows: testRows, cols: []string{"i", "s", "d"}},
		{sql: `SELECT count(*) AS n FROM t`, rows: 1, cols: []string{"n"}},
		{sql: `FROM v`, rows: 10, cols: []string{"i"}},
		{sql: `SELECT * FROM t WHERE false`, rows: 0, cols: []string{"i", "s", "d"}},
		{sql: `DESCRIBE t`, rows: 3, cols: []string{"column_name", "column_type", "null", "key", "default", "extra"}},
		{sql: `PRAGMA table_info('t')`, rows: 3, cols: []string{"cid", "name", "type", "notnull", "dflt_value", "pk"}},
		{sql: `EXPLAIN SELECT 1`, rows: 1, cols: []string{"explain_key", "explain_value"}},
		{sql: `INSERT INTO t VALUES (1, 'x', DATE '2026-01-01')`, code: codes.PermissionDenied, msg: "INSERT"},
		{sql: `DELETE FROM t`, code: codes.PermissionDenied, msg: "DELETE"},
		{sql: `DROP TABLE t`, code: codes.PermissionDenied, msg: "DROP"},
		{sql: `ATTACH 'other.duckdb' AS o`, code: codes.PermissionDenied, msg: "ATTACH"},
		{sql: `SELECT 1; DELETE FROM t`, code: codes.PermissionDenied, msg: "MULTI"},
		{sql: `BEGIN TRANSACTION`, code: codes.PermissionDenied, msg: "BEGIN"},
		{sql: `SELECT nextval('seq')`, code: codes.PermissionDenied, msg: "change the database"},
		{sql: `SELECT * FROM no_such_table`, code: codes.InvalidArgument, msg: "no_such_table"},
		{sql: `SELEC 1`, code: codes.InvalidArgument, msg: "syntax error"},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			check := func(t *testing.T, how string, rows int64, sc *arrow.Schema, err error) {
				t.Helper()
				if tc.code != codes.OK {
					if codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
						t.Fatalf("%s: want %s naming %q, got %v", how, tc.code, tc.msg, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s: %v", how, err)
				}
				var names []string
				for _, f := range sc.Fields() {
					names = append(names, f.Name)
				}
				if rows != tc.rows || strings.Join(names, ",") != strings.Join(tc.cols, ",") {
					t.Fatalf("%s: %d rows of %v; want %d of %v", how, rows, names, tc.rows, tc.cols)
				}
			}
			// a statement: GetFlightInfo, then DoGet
			var rows int64
			var sc *arrow.Schema
			err := Query(ctx, uri, tc.sql, ClientOptions{}, func(rr array.RecordReader) error {
				sc = rr.Schema()
				rows, _ = count(rr)
				return nil
			})
			check(t, "statement", rows, sc, err)

			// a prepared statement, as JDBC sends every query
			cl, cctx, err := Dial(ctx, uri, ClientOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			prep, err := cl.Prepare(cctx, tc.sql)
			if err != nil {
				check(t, "prepare", 0, nil, remoteError(uri, err))
				return
			}
			defer prep.Close(cctx)
			if tc.code == codes.OK && !prep.DatasetSchema().Equal(sc) {
				t.Fatalf("prepared schema %v, result's %v", prep.DatasetSchema(), sc)
			}
			info, err := prep.Execute(cctx)
			if err != nil {
				check(t, "prepared execute", 0, nil, remoteError(uri, err))
				return
			}
			r, err := cl.DoGet(cctx, info.Endpoint[0].Ticket)
			if err != nil {
				check(t, "prepared DoGet", 0, nil, remoteError(uri, err))
				return
			}
			defer r.Release()
			rows, _ = count(r)
			check(t, "prepared", rows, r.Schema(), r.Err())
		})
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != testRows {
		t.Fatalf("t has %d rows (%v) after the refused statements", n, err)
	}
}

// TestStreams: a result of many batches arrives as many batches, typed as
// DuckDB types its columns, with the values it holds.
func TestStreams(t *testing.T) {
	s := openStore(t)
	uri := serve(t, s, DefaultOptions())
	var rows, batches, sum int64
	err := Query(context.Background(), uri, `SELECT i, s, d FROM t ORDER BY i`, ClientOptions{}, func(rr array.RecordReader) error {
		if got := rr.Schema().String(); !strings.Contains(got, "i: type=int64") || !strings.Contains(got, "s: type=utf8") || !strings.Contains(got, "d: type=date32") {
			t.Errorf("schema %s", got)
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			ints := rec.Column(0).(*array.Int64)
			for k := range ints.Len() {
				if rec.Column(1).(*array.String).Value(k) != "row "+strings.TrimSpace(ints.ValueStr(k)) {
					t.Fatalf("row %d: %s", ints.Value(k), rec.Column(1).(*array.String).Value(k))
				}
				sum += ints.Value(k)
			}
			rows += rec.NumRows()
			batches++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rows != testRows || sum != testRows*(testRows-1)/2 || batches < testRows/2048 {
		t.Fatalf("%d rows in %d batches, sum %d", rows, batches, sum)
	}
}

// TestWritesRefused: every way Flight SQL has to write is refused with
// PermissionDenied (or InvalidArgument for transactions), saying why.
func TestWritesRefused(t *testing.T) {
	s := openStore(t)
	uri := serve(t, s, DefaultOptions())
	cl, ctx, err := Dial(context.Background(), uri, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	batch := func() array.RecordReader {
		b := array.NewRecordBuilder(memory.DefaultAllocator, arrow.NewSchema([]arrow.Field{{Name: "i", Type: arrow.PrimitiveTypes.Int64}}, nil))
		defer b.Release()
		b.Field(0).(*array.Int64Builder).Append(1)
		rec := b.NewRecordBatch()
		defer rec.Release()
		rr, _ := array.NewRecordReader(rec.Schema(), []arrow.RecordBatch{rec})
		return rr
	}
	tests := []struct {
		name string
		call func() error
		code codes.Code
		msg  string
	}{
		{"ExecuteUpdate INSERT", func() error {
			_, err := cl.ExecuteUpdate(ctx, `INSERT INTO t VALUES (1, 'x', DATE '2026-01-01')`)
			return err
		}, codes.PermissionDenied, "only reads"},
		{"ExecuteUpdate of a SELECT", func() error {
			_, err := cl.ExecuteUpdate(ctx, `SELECT 1`)
			return err
		}, codes.PermissionDenied, "only reads"},
		{"ExecuteIngest", func() error {
			_, err := cl.ExecuteIngest(ctx, batch(), &arrowsql.ExecuteIngestOpts{Table: "t", TableDefinitionOptions: &arrowsql.TableDefinitionOptions{}})
			return err
		}, codes.PermissionDenied, "nothing is ingested"},
		{"BeginTransaction", func() error {
			_, err := cl.BeginTransaction(ctx)
			return err
		}, codes.InvalidArgument, "transactions are not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want %s naming %q, got %v", tc.code, tc.msg, err)
			}
		})
	}
	var n int
	if err := s.DB().QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil || n != testRows {
		t.Fatalf("t has %d rows (%v)", n, err)
	}
}

// TestMetadata: what JDBC's DatabaseMetaData and DBeaver ask.
func TestMetadata(t *testing.T) {
	s := openStore(t)
	uri := serve(t, s, DefaultOptions())
	cl, ctx, err := Dial(context.Background(), uri, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// read fetches a metadata result as rows of its columns' text.
	read := func(t *testing.T, info *flight.FlightInfo, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		r, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var out []string
		for r.Next() {
			rec := r.RecordBatch()
			for i := range int(rec.NumRows()) {
				var cells []string
				for c := range int(rec.NumCols()) {
					if _, bin := rec.Column(c).(*array.Binary); bin {
						sc, err := flight.DeserializeSchema(rec.Column(c).(*array.Binary).Value(i), memory.DefaultAllocator)
						if err != nil {
							t.Fatal(err)
						}
						var names []string
						for _, f := range sc.Fields() {
							names = append(names, f.Name+":"+f.Type.String())
						}
						cells = append(cells, "("+strings.Join(names, " ")+")")
						continue
					}
					cells = append(cells, rec.Column(c).ValueStr(i))
				}
				out = append(out, strings.Join(cells, "|"))
			}
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
		return out
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name string
		info func() (*flight.FlightInfo, error)
		want []string
	}{
		{"catalogs", func() (*flight.FlightInfo, error) { return cl.GetCatalogs(ctx) }, []string{"flight"}},
		{"schemas", func() (*flight.FlightInfo, error) { return cl.GetDBSchemas(ctx, &arrowsql.GetDBSchemasOpts{}) }, []string{"flight|main"}},
		{"schemas of no catalog", func() (*flight.FlightInfo, error) {
			return cl.GetDBSchemas(ctx, &arrowsql.GetDBSchemasOpts{Catalog: str("nope")})
		}, nil},
		{"tables", func() (*flight.FlightInfo, error) {
			return cl.GetTables(ctx, &arrowsql.GetTablesOpts{TableNameFilterPattern: str("%")})
		}, []string{
			"flight|main|alerts|BASE TABLE", "flight|main|norms|BASE TABLE",
			"flight|main|rejects|BASE TABLE", "flight|main|shifts|BASE TABLE", "flight|main|t|BASE TABLE", "flight|main|v|VIEW",
		}},
		{"views only", func() (*flight.FlightInfo, error) {
			return cl.GetTables(ctx, &arrowsql.GetTablesOpts{TableTypes: []string{"VIEW"}})
		}, []string{"flight|main|records|VIEW", "flight|main|v|VIEW"}},
		{"a pattern, with columns", func() (*flight.FlightInfo, error) {
			return cl.GetTables(ctx, &arrowsql.GetTablesOpts{DbSchemaFilterPattern: str("ma_n"), TableNameFilterPattern: str("_"), IncludeSchema: true})
		}, []string{"flight|main|t|BASE TABLE|(i:int64 s:utf8 d:date32)", "flight|main|v|VIEW|(i:int64)"}},
		{"a pattern with a quote", func() (*flight.FlightInfo, error) {
			return cl.GetTables(ctx, &arrowsql.GetTablesOpts{TableNameFilterPattern: str("t' OR '1'='1")})
		}, nil},
		{"table types", func() (*flight.FlightInfo, error) { return cl.GetTableTypes(ctx) }, []string{"BASE TABLE", "LOCAL TEMPORARY", "VIEW"}},
		{"sql info", func() (*flight.FlightInfo, error) {
			return cl.GetSqlInfo(ctx, []arrowsql.SqlInfo{arrowsql.SqlInfoFlightSqlServerReadOnly, arrowsql.SqlInfoFlightSqlServerName})
		}, []string{"3|[1,true]", `0|[0,"Stakhanov (DuckDB, read-only)"]`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := tc.info()
			got := read(t, info, err)
			// the pipeline's own tables come and go with its schema: t and
			// v are the test's, and must be there as listed
			switch tc.name {
			case "views only":
				for _, g := range got {
					if !strings.HasSuffix(g, "|VIEW") {
						t.Fatalf("not a view: %s", g)
					}
				}
				got = filterKnown(got, tc.want)
			case "tables":
				got = filterKnown(got, tc.want)
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// filterKnown keeps the rows of got that want lists, failing on none.
func filterKnown(got, want []string) []string {
	var out []string
	for _, g := range got {
		for _, w := range want {
			if g == w {
				out = append(out, g)
			}
		}
	}
	return out
}

// serverTokens are the tokens of a token file holding toks, as the
// pipeline reads its endpoint's, re-read within a millisecond of a change.
func serverTokens(t testing.TB, toks ...string) (*access.Tokens, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "query-token")
	if err := os.WriteFile(file, []byte(strings.Join(toks, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens, err := access.NewTokens(access.TokenOptions{File: file, Recheck: time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return tokens, file
}

const (
	testToken  = "s3cret-flight-token-0123456789"
	otherToken = "an0ther-flight-token-987654321"
)

// TestAuth: with tokens, a call without one, with another, or with Basic
// credentials is refused; with one of them, it runs. A token file that
// cannot be read refuses every call.
func TestAuth(t *testing.T) {
	s := openStore(t)
	tokens, _ := serverTokens(t, testToken, otherToken)
	withToken := DefaultOptions()
	withToken.Tokens = tokens
	withToken.TokenHint = "set THE_TOKEN_VARIABLE"
	uri := serve(t, s, withToken)
	brokenTokens, brokenFile := serverTokens(t, testToken)
	broken := DefaultOptions()
	broken.Tokens = brokenTokens
	brokenURI := serve(t, s, broken)
	if err := os.Remove(brokenFile); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // past the recheck
	open := serve(t, s, DefaultOptions())

	tests := []struct {
		name  string
		uri   string
		token string
		code  codes.Code
		msg   string
	}{
		{"no token", uri, "", codes.Unauthenticated, "no credentials"},
		{"wrong token", uri, testToken[:len(testToken)-1] + "X", codes.Unauthenticated, "wrong token"},
		{"a prefix of the token", uri, testToken[:20], codes.Unauthenticated, "wrong token"},
		{"the token", uri, testToken, codes.OK, ""},
		{"the file's second token", uri, otherToken, codes.OK, ""},
		{"the server cannot read its token file", brokenURI, testToken, codes.Unavailable, "cannot read its token file"},
		{"no token wanted", open, "", codes.OK, ""},
		{"a token nobody wants", open, "anything", codes.OK, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rows int64
			err := Query(context.Background(), tc.uri, `SELECT * FROM v`, ClientOptions{Token: tc.token}, func(rr array.RecordReader) error {
				rows, _ = count(rr)
				return nil
			})
			if tc.code == codes.OK {
				if err != nil || rows != 10 {
					t.Fatalf("%d rows, %v", rows, err)
				}
				return
			}
			if codeOf(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want %s naming %q, got %v", tc.code, tc.msg, err)
			}
			if tc.code == codes.Unauthenticated && (!errors.Is(err, ErrUnauthenticated) || !strings.HasSuffix(err.Error(), "set THE_TOKEN_VARIABLE (Unauthenticated)")) {
				t.Fatalf("%v is not ErrUnauthenticated ending with the hint", err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Fatalf("the refusal quotes the token: %v", err)
			}
		})
	}
	t.Run("basic credentials", func(t *testing.T) {
		cl, ctx, err := Dial(context.Background(), uri, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		_, err = cl.Client.AuthenticateBasicToken(ctx, "analyst", testToken)
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "token=") {
			t.Fatalf("got %v", err)
		}
	})
	// The JDBC driver opens with a Handshake carrying its token=.
	for _, tc := range []struct {
		token string
		code  codes.Code
	}{{testToken, codes.OK}, {"", codes.Unauthenticated}, {otherToken + "x", codes.Unauthenticated}} {
		t.Run("handshake with token "+tc.token, func(t *testing.T) {
			cl, ctx, err := Dial(context.Background(), uri, ClientOptions{Token: tc.token})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			hs, err := cl.Client.Handshake(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := hs.CloseSend(); err != nil {
				t.Fatal(err)
			}
			_, err = hs.Recv()
			if tc.code == codes.OK && err != io.EOF || tc.code != codes.OK && status.Code(err) != tc.code {
				t.Fatalf("handshake ended with %v, want %s", err, tc.code)
			}
		})
	}
}

// TestExposure: beyond loopback, a server asking for neither a token nor
// a client certificate does not start.
func TestExposure(t *testing.T) {
	tokens, _ := serverTokens(t, testToken)
	serverOnly := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return nil, nil }}
	mutual := serverOnly.Clone()
	mutual.ClientAuth = tls.RequireAndVerifyClientCert
	tests := []struct {
		addr   string
		tokens *access.Tokens
		tls    *tls.Config
		ok     bool
	}{
		{"127.0.0.1:1", nil, nil, true},
		{"[::1]:1", nil, nil, true},
		{"0.0.0.0:1", nil, nil, false},
		{"[::]:1", nil, nil, false},
		{"192.0.2.7:1", nil, nil, false},
		{"0.0.0.0:1", tokens, nil, true},
		{"0.0.0.0:1", nil, serverOnly, false}, // TLS alone authenticates no one
		{"0.0.0.0:1", nil, mutual, true},
	}
	for _, tc := range tests {
		o := DefaultOptions()
		o.Tokens, o.TLS = tc.tokens, tc.tls
		a, err := net.ResolveTCPAddr("tcp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		err = o.CheckExposure(a)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrNoCredentials)) {
			t.Errorf("%s (tokens %v, TLS %v): %v", tc.addr, tc.tokens != nil, tc.tls != nil, err)
		}
	}
	// Serve itself refuses, and closes the listener.
	srv, err := New(openStore(t), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	wide := &addrListener{Listener: ln, addr: &net.TCPAddr{IP: net.IPv4zero, Port: ln.Addr().(*net.TCPAddr).Port}}
	if err := srv.Serve(wide); !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "0.0.0.0") {
		t.Fatalf("Serve on 0.0.0.0 without credentials: %v", err)
	}
	if _, err := ln.Accept(); err == nil {
		t.Fatal("the refused listener is still open")
	}
}

// addrListener reports another address than it listens on.
type addrListener struct {
	net.Listener
	addr net.Addr
}

func (l *addrListener) Addr() net.Addr { return l.addr }

// serverTLS is the TLS of a server with files from a test authority, as
// the pipeline serves its endpoint's (access.ServerTLS).
func serverTLS(t testing.TB, o access.TLSOptions) *tls.Config {
	t.Helper()
	st, err := access.NewServerTLS(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st.Config()
}

// clientTLS is a client's TLS, as access reads it.
func clientTLS(t testing.TB, o access.ClientTLSOptions) *tls.Config {
	t.Helper()
	c, err := o.Config()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTLS: a server with a certificate of a test authority answers a
// client that trusts the authority, and no other; with client
// certificates required, only a client with one of that authority.
func TestTLS(t *testing.T) {
	s := openStore(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t, dir, "flight")
	other := testpki.NewCA(t, dir, "other")
	cert, key := ca.Server(t, "sink", "127.0.0.1", "localhost")
	clientCert, clientKey := ca.ClientCert(t, "analyst")
	strangerCert, strangerKey := other.ClientCert(t, "stranger")
	tokens, _ := serverTokens(t, testToken)

	o := DefaultOptions()
	o.Tokens = tokens
	o.TLS = serverTLS(t, access.TLSOptions{CertFile: cert, KeyFile: key})
	uri := serve(t, s, o)
	mo := DefaultOptions()
	mo.TLS = serverTLS(t, access.TLSOptions{CertFile: cert, KeyFile: key, ClientCAFile: ca.CAFile})
	mutual := serve(t, s, mo)

	tests := []struct {
		name string
		uri  string
		tls  *tls.Config
		ok   bool
	}{
		{"trusting the authority", uri, clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile}), true},
		{"by the name localhost", strings.Replace(uri, "127.0.0.1", "localhost", 1), clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile}), true},
		{"the system's authorities", uri, nil, false},
		{"another authority", uri, clientTLS(t, access.ClientTLSOptions{CAFile: other.CAFile}), false},
		{"a name the certificate lacks", uri, clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile, ServerName: "sink.example"}), false},
		{"plaintext", strings.Replace(uri, SchemeTLS, SchemePlain, 1), nil, false},
		{"client certificate", mutual, clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile, CertFile: clientCert, KeyFile: clientKey}), true},
		{"no client certificate", mutual, clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile}), false},
		{"a stranger's client certificate", mutual, clientTLS(t, access.ClientTLSOptions{CAFile: ca.CAFile, CertFile: strangerCert, KeyFile: strangerKey}), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var rows int64
			err := Query(ctx, tc.uri, `SELECT * FROM t`, ClientOptions{Token: testToken, TLS: tc.tls}, func(rr array.RecordReader) error {
				rows, _ = count(rr)
				return nil
			})
			if tc.ok != (err == nil) || (tc.ok && rows != testRows) {
				t.Fatalf("%d rows, %v", rows, err)
			}
			if !tc.ok && codeOf(err) != codes.Unavailable {
				t.Fatalf("want Unavailable (no connection), got %v", err)
			}
		})
	}
}

// TestLimits: one call more than MaxConcurrent is refused at once, and a
// query longer than QueryTimeout is interrupted.
func TestLimits(t *testing.T) {
	s := openStore(t)
	t.Run("concurrency", func(t *testing.T) {
		o := DefaultOptions()
		o.MaxConcurrent = 1
		uri := serve(t, s, o)
		cl, ctx, err := Dial(context.Background(), uri, ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		info, err := cl.Execute(ctx, `SELECT * FROM range(1000000)`)
		if err != nil {
			t.Fatal(err)
		}
		// a result read no further than its first batch holds its slot
		r, err := cl.DoGet(ctx, info.Endpoint[0].Ticket)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Next() {
			t.Fatal(r.Err())
		}
		err = Query(context.Background(), uri, `SELECT 1`, ClientOptions{}, func(array.RecordReader) error { return nil })
		if codeOf(err) != codes.ResourceExhausted || !errors.Is(err, analytics.ErrBusy) {
			t.Fatalf("a second query while the first streams: %v", err)
		}
		rows, _ := count(r)
		r.Release()
		if rows+2048 < 1000000 || r.Err() != nil {
			t.Fatalf("the first query: %d more rows, %v", rows, r.Err())
		}
		// its slot is free once it ended
		deadline := time.Now().Add(5 * time.Second)
		for {
			err = Query(context.Background(), uri, `SELECT 1`, ClientOptions{}, func(array.RecordReader) error { return nil })
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("after the first query ended: %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		o := DefaultOptions()
		o.QueryTimeout = 300 * time.Millisecond
		uri := serve(t, s, o)
		start := time.Now()
		err := Query(context.Background(), uri, `SELECT sum(hash(range)) FROM range(100000000000)`, ClientOptions{}, func(rr array.RecordReader) error {
			count(rr)
			return nil
		})
		if codeOf(err) != codes.DeadlineExceeded || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "300ms") {
			t.Fatalf("got %v", err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Fatalf("interrupted after %v", took)
		}
	})
	t.Run("SQL size", func(t *testing.T) {
		o := DefaultOptions()
		o.MaxSQLBytes = 100
		uri := serve(t, s, o)
		err := Query(context.Background(), uri, "SELECT 1 "+strings.Repeat(" ", 100), ClientOptions{}, func(array.RecordReader) error { return nil })
		if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "longer than 100 bytes") {
			t.Fatalf("got %v", err)
		}
	})
}
