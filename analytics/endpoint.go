package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"
)

// The query endpoint: HTTP over the process that holds the DuckDB file,
// because DuckDB lets no other process open a file one process holds
// read-write. See docs/live-reading.md for its use.
//
//	GET  /v1/query?sql=…&format=table|csv|json|arrow
//	POST /v1/query?format=…          the body is the SQL
//	POST /v1/snapshot                a snapshot into the configured directory
//	GET  /healthz                    200 "ok"
//
// Errors are JSON, {"error": "…"} (and "statement_type" with a 403,
// "damaged": true when the file is damaged): 400 bad SQL or format, 403 a
// statement that does not only read, 500 the DuckDB file is damaged where
// the query (or snapshot) read it, or another failure of the server, 503
// too many queries at once, 504 the query ran out of time.

// HeaderDuckDB names the DuckDB file an endpoint serves, in every
// response, so that a client finding a stale address (the port reused by
// another process) can tell.
const HeaderDuckDB = "X-Stakhanov-Duckdb"

// ErrBusy: the endpoint runs as many queries as it may.
var ErrBusy = errors.New("analytics: too many queries running")

// Querier runs SQL that only reads. *Store is one.
type Querier interface {
	QueryReadOnly(ctx context.Context, query string, w io.Writer, format string) error
}

// Snapshotter takes snapshots into a directory. *Store is one.
type Snapshotter interface {
	Snapshot(ctx context.Context, dir string) (*SnapshotResult, error)
}

// EndpointOptions configure NewEndpoint. Start from DefaultEndpointOptions.
type EndpointOptions struct {
	// QueryTimeout bounds one query; it is interrupted after. Default 60 s.
	QueryTimeout time.Duration
	// MaxConcurrent bounds the queries and snapshots running at once;
	// requests beyond get 503 at once rather than queueing behind them.
	// Default 4: DuckDB's threads are shared with the pipeline's commits.
	MaxConcurrent int
	// SnapshotDir is the only directory POST /v1/snapshot writes to; a
	// client cannot name another. Empty: the endpoint takes no snapshots.
	SnapshotDir string
	// SnapshotTimeout bounds an on-demand snapshot. Default 30 min.
	SnapshotTimeout time.Duration
	// MaxSQLBytes bounds the SQL text of a request. Default 1 MiB.
	MaxSQLBytes int64
	// DuckDBPath is the served file, sent in HeaderDuckDB.
	DuckDBPath string
	// LoopbackHostOnly refuses requests whose Host is not a loopback
	// address or "localhost": with the endpoint on loopback, a web page
	// whose name an attacker points at 127.0.0.1 (DNS rebinding) cannot
	// reach it through a browser.
	LoopbackHostOnly bool
	// Logger receives a debug line per request. Default slog.Default().
	Logger *slog.Logger
}

// Defaults of EndpointOptions.
const (
	DefaultQueryTimeout    = 60 * time.Second
	DefaultMaxConcurrent   = 4
	DefaultSnapshotTimeout = 30 * time.Minute
	DefaultMaxSQLBytes     = 1 << 20
)

// DefaultEndpointOptions returns the defaults, with no snapshot directory.
func DefaultEndpointOptions() EndpointOptions {
	return EndpointOptions{
		QueryTimeout:    DefaultQueryTimeout,
		MaxConcurrent:   DefaultMaxConcurrent,
		SnapshotTimeout: DefaultSnapshotTimeout,
		MaxSQLBytes:     DefaultMaxSQLBytes,
	}
}

// Validate reports the first option outside its domain.
func (o EndpointOptions) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: endpoint: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case o.QueryTimeout <= 0:
		return fail("query timeout %v not positive", o.QueryTimeout)
	case o.MaxConcurrent < 1:
		return fail("max concurrent queries %d below 1", o.MaxConcurrent)
	case o.SnapshotTimeout <= 0:
		return fail("snapshot timeout %v not positive", o.SnapshotTimeout)
	case o.MaxSQLBytes < 1:
		return fail("max SQL bytes %d below 1", o.MaxSQLBytes)
	}
	return nil
}

type endpoint struct {
	q    Querier
	snap Snapshotter
	o    EndpointOptions
	log  *slog.Logger
	sem  chan struct{}
}

// NewEndpoint returns the endpoint's handler over q and, when
// o.SnapshotDir is set, snap (which may be nil otherwise).
func NewEndpoint(q Querier, snap Snapshotter, o EndpointOptions) (http.Handler, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.SnapshotDir != "" && snap == nil {
		return nil, fmt.Errorf("%w: endpoint: a snapshot directory without a Snapshotter", ErrInvalidOptions)
	}
	e := &endpoint{q: q, snap: snap, o: o, log: o.Logger, sem: make(chan struct{}, o.MaxConcurrent)}
	if e.log == nil {
		e.log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok")
	})
	mux.HandleFunc("GET /v1/query", e.query)
	mux.HandleFunc("POST /v1/query", e.query)
	mux.HandleFunc("POST /v1/snapshot", e.snapshot)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.DuckDBPath != "" {
			w.Header().Set(HeaderDuckDB, o.DuckDBPath)
		}
		if o.LoopbackHostOnly && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not a loopback address", r.Host), "")
			return
		}
		mux.ServeHTTP(w, r)
	}), nil
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// acquire takes a query slot without waiting.
func (e *endpoint) acquire() bool {
	select {
	case e.sem <- struct{}{}:
		return true
	default:
		return false
	}
}

func (e *endpoint) release() { <-e.sem }

func (e *endpoint) query(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	format := r.URL.Query().Get("format")
	if format == "" {
		format = FormatTable
	}
	query := r.URL.Query().Get("sql")
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, e.o.MaxSQLBytes))
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("reading the SQL: %w", err), "")
			return
		}
		query = string(body)
	}
	if len(query) > int(e.o.MaxSQLBytes) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("SQL longer than %d bytes", e.o.MaxSQLBytes), "")
		return
	}
	if strings.TrimSpace(query) == "" {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: no SQL: pass sql=… or POST it as the body", ErrBadSQL), "")
		return
	}
	if err := CheckFormat(format); err != nil {
		writeError(w, http.StatusBadRequest, err, "")
		return
	}
	if !e.admit(w) {
		return
	}
	defer e.release()
	ctx, cancel := context.WithTimeout(r.Context(), e.o.QueryTimeout)
	defer cancel()
	out := &lazyResponse{w: w, contentType: ContentType(format)}
	err := e.q.QueryReadOnly(ctx, query, out, format)
	status := http.StatusOK
	if err != nil {
		var typ string
		status, typ = errorStatus(err, ctx)
		if status == http.StatusGatewayTimeout {
			err = fmt.Errorf("query ran out of its %v: %w", e.o.QueryTimeout, err)
		}
		if out.started {
			// The status is sent: end the response unfinished, so that
			// the client sees a broken transfer, not a short result.
			e.log.Warn("query failed after its result began", "err", err, "bytes", out.n)
			panic(http.ErrAbortHandler)
		}
		writeError(w, status, err, typ)
	} else if !out.started {
		out.start()
	}
	e.log.Debug("query", "status", status, "format", format, "bytes", out.n,
		"took", time.Since(start), "sql", abbreviate(query, 200))
}

// admit takes a slot of the concurrency bound, or answers 503 and says so.
func (e *endpoint) admit(w http.ResponseWriter) bool {
	if e.acquire() {
		return true
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, fmt.Errorf("%w: %d at once; try again", ErrBusy, e.o.MaxConcurrent), "")
	return false
}

func (e *endpoint) snapshot(w http.ResponseWriter, r *http.Request) {
	if e.o.SnapshotDir == "" {
		writeError(w, http.StatusNotFound, errors.New("this endpoint has no snapshot directory"), "")
		return
	}
	if !e.admit(w) {
		return
	}
	defer e.release()
	ctx, cancel := context.WithTimeout(r.Context(), e.o.SnapshotTimeout)
	defer cancel()
	res, err := e.snap.Snapshot(ctx, e.o.SnapshotDir)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			status = http.StatusGatewayTimeout
		}
		e.log.Warn("snapshot failed", "dir", e.o.SnapshotDir, "err", err)
		writeError(w, status, err, "")
		return
	}
	e.log.Info("snapshot written on request", "path", res.Path, "took", time.Duration(res.TookMS)*time.Millisecond, "rows", res.Tables)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// errorStatus is the HTTP status for a failed query and, for a refused
// statement, its type.
func errorStatus(err error, ctx context.Context) (int, string) {
	var se *StatementError
	switch {
	case errors.Is(err, ErrCorrupt):
		// the data, not the request, is at fault
		return http.StatusInternalServerError, ""
	case errors.As(err, &se):
		return http.StatusForbidden, se.Type
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return http.StatusGatewayTimeout, ""
	case errors.Is(err, ErrBadSQL), errors.Is(err, ErrUnknownFormat):
		return http.StatusBadRequest, ""
	}
	return http.StatusInternalServerError, ""
}

// ErrorBody is the JSON body of an endpoint's error response.
type ErrorBody struct {
	Error         string `json:"error"`
	StatementType string `json:"statement_type,omitempty"`
	// Damaged: the DuckDB file is damaged (ErrCorrupt), with HTTP 500.
	Damaged bool `json:"damaged,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error, stmtType string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: err.Error(), StatementType: stmtType, Damaged: errors.Is(err, ErrCorrupt)})
}

// lazyResponse sends the status and headers with the first byte of the
// result, so that a query failing before it has any still gets its own
// status.
type lazyResponse struct {
	w           http.ResponseWriter
	contentType string
	started     bool
	n           int64
}

func (l *lazyResponse) start() {
	l.started = true
	h := l.w.Header()
	h.Set("Content-Type", l.contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyResponse) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	n, err := l.w.Write(p)
	l.n += int64(n)
	return n, err
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
