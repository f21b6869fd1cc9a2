package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"google.golang.org/grpc/codes"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/flightsql"
)

// Query runs SQL over the DuckDB file at path, read-only, and writes the
// result as table, csv, json or arrow (an Arrow IPC stream). A file that
// no process holds is opened read-only, as ever. A file a running
// pipeline holds (its endpoint file answers, or DuckDB refuses the file
// as locked) is queried through that pipeline's endpoint instead, with
// the credentials and TLS of co.
func Query(ctx context.Context, co ClientOptions, path, sql, format string, w io.Writer) error {
	if err := analytics.CheckFormat(format); err != nil {
		return err
	}
	if u, err := LiveEndpoint(ctx, co, path); err == nil {
		return QueryEndpoint(ctx, co, u, sql, format, w)
	} else if !errors.Is(err, ErrNoEndpoint) {
		return err
	}
	store, err := openReadOnly(ctx, path)
	if err != nil {
		return heldError(ctx, co, path, err, func(u string) error { return QueryEndpoint(ctx, co, u, sql, format, w) })
	}
	defer store.Close()
	return store.Query(ctx, sql, w, format)
}

// heldError turns DuckDB's lock error into a use of the holder's endpoint
// when one answers by now (a pipeline that has just started), and into
// advice when none does.
func heldError(ctx context.Context, co ClientOptions, path string, err error, viaEndpoint func(url string) error) error {
	if !analytics.IsLocked(err) {
		return err
	}
	u, lerr := LiveEndpoint(ctx, co, path)
	if lerr == nil {
		return viaEndpoint(u)
	}
	if !errors.Is(lerr, ErrNoEndpoint) {
		return lerr
	}
	return fmt.Errorf("%w\nanother process holds %s and no query endpoint answers for it (%s): "+
		"run the pipeline with its default --query-addr, or pass --endpoint URL", err, path, EndpointFile(path))
}

// openReadOnly opens the file at path read-only: DuckDB then lets other
// read-only processes in, and Query cannot write.
func openReadOnly(ctx context.Context, path string) (*analytics.Store, error) {
	o := analytics.DefaultOptions(path)
	o.ReadOnly = true
	return analytics.Open(ctx, o)
}

// ErrNoEndpoint: no endpoint answers for a DuckDB file: it has no
// endpoint file, or the process that wrote it is gone (a pipeline killed),
// or its address now serves another file.
var ErrNoEndpoint = errors.New("no query endpoint answers for the file")

// LiveEndpoint returns the URL of the endpoint serving the DuckDB file at
// path, if its endpoint file names one that answers /healthz for that
// file; otherwise ErrNoEndpoint. An endpoint that answers but that co
// cannot speak to (its certificate is not trusted, it requires a client
// certificate) is that error, with advice, not ErrNoEndpoint: falling back
// to the locked file would hide it.
func LiveEndpoint(ctx context.Context, co ClientOptions, path string) (string, error) {
	b, err := os.ReadFile(EndpointFile(path))
	if err != nil {
		return "", ErrNoEndpoint
	}
	u := strings.TrimSpace(string(b))
	if u == "" {
		return "", ErrNoEndpoint
	}
	c, err := co.open()
	if err != nil {
		return "", err
	}
	defer c.close()
	served, err := c.health(ctx, u)
	if err != nil {
		if errors.Is(err, ErrTLS) {
			return "", fmt.Errorf("the endpoint of %s (%s): %w", path, EndpointFile(path), err)
		}
		return "", fmt.Errorf("%w: %w", ErrNoEndpoint, err)
	}
	// A port reused by another pipeline serves another file.
	if served != "" && !sameFile(served, path) {
		return "", fmt.Errorf("%w: %s serves %s", ErrNoEndpoint, u, served)
	}
	return u, nil
}

// health asks an endpoint for /healthz and returns the file it serves.
func (c *endpointClient) health(ctx context.Context, base string) (served string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/healthz", nil)
	if err != nil {
		return "", err
	}
	resp, err := c.do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/healthz: HTTP %d", base, resp.StatusCode)
	}
	return resp.Header.Get(analytics.HeaderDuckDB), nil
}

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// QueryEndpoint sends SQL to the query endpoint at base (http://host:port
// or https://…) with the credentials and TLS of co, and copies the
// result, in format, to w. Errors wrap the endpoint's sentinel:
// analytics.ErrNotReadOnly (HTTP 403), analytics.ErrBadSQL (400),
// analytics.ErrCorrupt (500 for a damaged file), analytics.ErrBusy (503),
// context.DeadlineExceeded (504), ErrUnauthorized (401); a TLS failure
// wraps ErrTLS.
func QueryEndpoint(ctx context.Context, co ClientOptions, base, sql, format string, w io.Writer) error {
	c, err := co.open()
	if err != nil {
		return err
	}
	defer c.close()
	u := strings.TrimRight(base, "/") + "/v1/query?format=" + url.QueryEscape(format)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(sql))
	if err != nil {
		return fmt.Errorf("query endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "application/sql")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.endpointError(base, resp)
	}
	if _, err := io.Copy(w, resp.Body); err != nil {
		// The endpoint breaks off a result that failed half-way.
		return fmt.Errorf("query endpoint %s: result cut short: %w", base, err)
	}
	return nil
}

// EndpointError is an endpoint's refusal, with the sentinel of its status.
type EndpointError struct {
	URL           string
	Status        int
	Message       string
	StatementType string
	sentinel      error
}

func (e *EndpointError) Error() string {
	return fmt.Sprintf("endpoint %s: %s (HTTP %d)", e.URL, e.Message, e.Status)
}

func (e *EndpointError) Unwrap() error { return e.sentinel }

// httpToHTTPS is what Go's server answers a plain request on a TLS port.
const httpToHTTPS = "Client sent an HTTP request to an HTTPS server."

func (c *endpointClient) endpointError(base string, resp *http.Response) error {
	var body analytics.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if json.Unmarshal(b, &body) != nil || body.Error == "" {
		body.Error = strings.TrimSpace(string(b))
		if body.Error == "" {
			body.Error = http.StatusText(resp.StatusCode)
		}
	}
	e := &EndpointError{URL: base, Status: resp.StatusCode, Message: body.Error, StatementType: body.StatementType}
	switch {
	case body.Damaged:
		e.sentinel = analytics.ErrCorrupt
	case resp.StatusCode == http.StatusUnauthorized:
		e.sentinel = ErrUnauthorized
		// the server's hint is for any client; this one knows its options
		e.Message, _, _ = strings.Cut(e.Message, ": ")
		e.Message += ": " + c.unauthorizedAdvice()
	case resp.StatusCode == http.StatusBadRequest && strings.Contains(body.Error, httpToHTTPS):
		e.sentinel = ErrTLS
		e.Message = "it speaks TLS: use https:// rather than http://"
	case resp.StatusCode == http.StatusForbidden:
		e.sentinel = analytics.ErrNotReadOnly
	case resp.StatusCode == http.StatusBadRequest:
		e.sentinel = analytics.ErrBadSQL
	case resp.StatusCode == http.StatusServiceUnavailable:
		e.sentinel = analytics.ErrBusy
	case resp.StatusCode == http.StatusGatewayTimeout:
		e.sentinel = context.DeadlineExceeded
	}
	return e
}

// RequestSnapshot asks the endpoint at base for a snapshot into its
// snapshot directory, with the credentials and TLS of co, and returns
// where it is.
func RequestSnapshot(ctx context.Context, co ClientOptions, base string) (*analytics.SnapshotResult, error) {
	c, err := co.open()
	if err != nil {
		return nil, err
	}
	defer c.close()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/v1/snapshot", nil)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, c.endpointError(base, resp)
	}
	var res analytics.SnapshotResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return nil, fmt.Errorf("snapshot: reading the answer of %s: %w", base, err)
	}
	return &res, nil
}

// SnapshotOptions say which file to snapshot and where.
type SnapshotOptions struct {
	// DuckDB is the file. Default "stakhanov.duckdb".
	DuckDB string
	// Endpoint is the URL of the endpoint of the process that holds the
	// file. Default: the one its endpoint file names.
	Endpoint string
	// Dir receives a snapshot taken here, of a file no process holds.
	// Default <DuckDB>.snapshot. A pipeline writes into its own directory.
	Dir string
	// Client is how the endpoint is reached: token and TLS.
	Client ClientOptions
	// Local shapes a snapshot taken here (see ExportLocal); a pipeline
	// takes its snapshots under its own settings.
	Local ExportLocal
}

// ExportLocal shapes a snapshot or export this process writes from a file
// it opens itself. Zero fields take the defaults.
type ExportLocal struct {
	// MemoryLimit is DuckDB's memory limit for the work, in DuckDB's
	// syntax. Default DefaultExportMemoryLimit.
	MemoryLimit string
	// Threads are DuckDB's worker threads. Default 1.
	Threads int
	// Parquet shapes the Parquet files. Default
	// analytics.DefaultExportOptions(); its Progress is set from Logger.
	Parquet analytics.ExportOptions
	// Logger receives a progress line per table every
	// Parquet.ProgressEvery and when it is done. Default: none.
	Logger *slog.Logger
}

// DefaultExportMemoryLimit is the DuckDB memory limit of `stakhanov
// export` and of `stakhanov snapshot` taken without a pipeline: in a 2 GB
// container it leaves room for what DuckDB holds outside its limit and for
// the Go side (a 10 M-event export peaks at 1.1 GB resident, a snapshot
// at 1.2 GB; BENCHMARKS.md). An export works under any limit down to
// 128MB, which only spills more to the temporary directory; a snapshot's
// copy of the database needs its primary-key indexes in memory as it
// commits, more as the file grows (256MB at 10 M events).
const DefaultExportMemoryLimit = "1GB"

func (l ExportLocal) withDefaults() ExportLocal {
	if l.MemoryLimit == "" {
		l.MemoryLimit = DefaultExportMemoryLimit
	}
	if l.Threads == 0 {
		l.Threads = analytics.DefaultThreads
	}
	d := analytics.DefaultExportOptions()
	if l.Parquet.FileSizeBytes == 0 {
		l.Parquet.FileSizeBytes = d.FileSizeBytes
	}
	if l.Parquet.RowGroupRows == 0 {
		l.Parquet.RowGroupRows = d.RowGroupRows
	}
	if l.Parquet.ProgressEvery == 0 {
		l.Parquet.ProgressEvery = d.ProgressEvery
	}
	if log := l.Logger; log != nil && l.Parquet.Progress == nil {
		l.Parquet.Progress = func(p analytics.ExportProgress) { logProgress(log, p) }
	}
	return l
}

func logProgress(log *slog.Logger, p analytics.ExportProgress) {
	elapsed := p.Elapsed.Round(time.Millisecond)
	switch {
	case p.Table == analytics.SnapshotFile && p.Done:
		log.Info("database copied", "file", p.Table, "bytes", p.Bytes, "took", elapsed)
	case p.Table == analytics.SnapshotFile:
		log.Info("copying the database", "file", p.Table, "bytes", p.Bytes, "elapsed", elapsed)
	case p.Done:
		log.Info("table exported", "table", p.Table, "rows", p.Rows, "files", p.Files, "bytes", p.Bytes, "took", elapsed)
	default:
		log.Info("exporting", "table", p.Table, "rows", fmt.Sprintf("%d/%d", p.Rows, p.TotalRows),
			"files", p.Files, "bytes", p.Bytes, "elapsed", elapsed)
	}
}

// openForExport opens the file at path read-only under l, spilling into a
// new directory beside out (removed by the returned cleanup): out is
// being written, so its file system takes files, where the DuckDB file's
// may be read-only.
func openForExport(ctx context.Context, path, out string, l ExportLocal) (*analytics.Store, func(), error) {
	out, err := filepath.Abs(out)
	if err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return nil, nil, err
	}
	spill, err := os.MkdirTemp(filepath.Dir(out), "."+filepath.Base(out)+".spill-")
	if err != nil {
		return nil, nil, err
	}
	o := analytics.DefaultOptions(path)
	o.ReadOnly, o.MemoryLimit, o.Threads, o.TempDirectory = true, l.MemoryLimit, l.Threads, spill
	store, err := analytics.Open(ctx, o)
	if err != nil {
		_ = os.RemoveAll(spill)
		return nil, nil, err
	}
	return store, func() {
		_ = store.Close()
		_ = os.RemoveAll(spill)
	}, nil
}

// exportAdvice adds what to do to an export that ran out of memory.
func exportAdvice(err error, l ExportLocal) error {
	if errors.Is(err, analytics.ErrExportMemory) {
		return fmt.Errorf("%w\nraise --memory-limit (now %s)", err, l.MemoryLimit)
	}
	return err
}

// Snapshot takes a snapshot of the file: through the endpoint of the
// pipeline that holds it, or, if none does, from the file directly.
func Snapshot(ctx context.Context, o SnapshotOptions) (*analytics.SnapshotResult, error) {
	if o.DuckDB == "" {
		o.DuckDB = "stakhanov.duckdb"
	}
	if u, err := endpointFor(ctx, o.Client, o.Endpoint, o.DuckDB); err == nil {
		return RequestSnapshot(ctx, o.Client, u)
	} else if !errors.Is(err, ErrNoEndpoint) {
		return nil, err
	}
	dir := o.Dir
	if dir == "" {
		dir = DefaultSnapshotDir(o.DuckDB)
	}
	l := o.Local.withDefaults()
	store, closeStore, err := openForExport(ctx, o.DuckDB, dir, l)
	if err != nil {
		var res *analytics.SnapshotResult
		err = heldError(ctx, o.Client, o.DuckDB, err, func(u string) (err error) {
			res, err = RequestSnapshot(ctx, o.Client, u)
			return err
		})
		return res, err
	}
	defer closeStore()
	res, err := store.SnapshotWith(ctx, dir, l.Parquet)
	return res, exportAdvice(err, l)
}

// endpointFor is the explicit endpoint, or the live one of path.
func endpointFor(ctx context.Context, co ClientOptions, explicit, path string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	return LiveEndpoint(ctx, co, path)
}

// ExportOptions say what to export where.
type ExportOptions struct {
	// DuckDB is the file. Default "stakhanov.duckdb".
	DuckDB string
	// Endpoint: as in SnapshotOptions.
	Endpoint string
	// Out is the directory to write, missing or empty. Required.
	Out string
	// Client: as in SnapshotOptions.
	Client ClientOptions
	// Local shapes the export, which this process writes in every case
	// (from the file, or from a pipeline's snapshot of it).
	Local ExportLocal
}

// Export writes the Parquet export (analytics.ExportParquet) of the file
// to o.Out. A file no process holds is read directly; for a file a
// pipeline holds, the pipeline takes a snapshot and the export is read
// from that, which no process holds. It returns the result and the file
// it read.
func Export(ctx context.Context, o ExportOptions) (res *analytics.SnapshotResult, from string, err error) {
	if o.DuckDB == "" {
		o.DuckDB = "stakhanov.duckdb"
	}
	if o.Out == "" {
		return nil, "", errors.New("export: no output directory")
	}
	l := o.Local.withDefaults()
	viaSnapshot := func(u string) error {
		snap, err := RequestSnapshot(ctx, o.Client, u)
		if err != nil {
			return err
		}
		if _, err := os.Stat(snap.Path); err != nil {
			return fmt.Errorf("export: the snapshot %s of %s is not readable here: %w", snap.Path, u, err)
		}
		from = snap.Path
		res, err = exportFile(ctx, snap.Path, o.Out, l)
		return err
	}
	if u, err := endpointFor(ctx, o.Client, o.Endpoint, o.DuckDB); err == nil {
		err = viaSnapshot(u)
		return res, from, exportAdvice(err, l)
	} else if !errors.Is(err, ErrNoEndpoint) {
		return nil, "", err
	}
	store, closeStore, err := openForExport(ctx, o.DuckDB, o.Out, l)
	if err != nil {
		err = heldError(ctx, o.Client, o.DuckDB, err, viaSnapshot)
		return res, from, exportAdvice(err, l)
	}
	defer closeStore()
	res, err = analytics.ExportParquet(ctx, store.DB(), o.Out, l.Parquet)
	return res, o.DuckDB, exportAdvice(err, l)
}

func exportFile(ctx context.Context, path, out string, l ExportLocal) (*analytics.SnapshotResult, error) {
	store, closeStore, err := openForExport(ctx, path, out, l)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	return analytics.ExportParquet(ctx, store.DB(), out, l.Parquet)
}

// QueryFlight runs SQL on the Arrow Flight SQL server at uri
// (grpc://host:port or grpc+tls://host:port) with the token and TLS of co,
// the endpoint's, and writes the result to w in format, rendered as Query
// renders it. Errors from the server are *flightsql.RemoteError, wrapping
// the sentinels QueryEndpoint's errors do (analytics.ErrNotReadOnly,
// ErrBadSQL, ErrBusy, ErrCorrupt, context.DeadlineExceeded) or
// flightsql.ErrUnauthenticated, with what to set when it is the token; a
// TLS failure wraps ErrTLS, with what to pass.
func QueryFlight(ctx context.Context, co ClientOptions, uri, sql, format string, w io.Writer) error {
	if err := analytics.CheckFormat(format); err != nil {
		return err
	}
	token, from, err := co.readToken()
	if err != nil {
		return err
	}
	fo := flightsql.ClientOptions{Token: token}
	if strings.HasPrefix(uri, flightsql.SchemeTLS+"://") {
		if fo.TLS, err = co.TLS.Config(); err != nil {
			return fmt.Errorf("flight SQL server %s: %w", uri, err)
		}
	}
	err = flightsql.Query(ctx, uri, sql, fo, func(rr array.RecordReader) error {
		return analytics.WriteArrowResult(ctx, rr, w, format)
	})
	var re *flightsql.RemoteError
	if !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case codes.Unauthenticated:
		// the server's advice is for any client; this one knows its options
		head, _, _ := strings.Cut(re.Message, ": ")
		re.Message = head + ": " + unauthorizedAdvice(token, from)
	case codes.Unavailable:
		plain, secure := flightsql.SchemePlain+"://", flightsql.SchemeTLS+"://"
		cause := err
		if fo.TLS != nil && (strings.Contains(re.Message, "broken pipe") || strings.Contains(re.Message, "connection reset")) {
			// see alertConn: the refusal came as an alert gRPC did not read
			if alert := tlsAlert(ctx, uri, fo.TLS); alert != nil {
				cause = alert
			}
		}
		advice := tlsAdvice(cause, co.TLS, plain, secure)
		if advice == "" && fo.TLS == nil && strings.Contains(re.Message, "error reading server preface") {
			// a plaintext client's first read on a TLS port
			advice = fmt.Sprintf("it may speak TLS: use %s rather than %s", secure, plain)
		}
		if advice != "" {
			re.Message = advice + ": " + re.Message
			return fmt.Errorf("%w: %w", ErrTLS, re)
		}
	}
	return err
}

// tlsAlert shakes hands with the Flight SQL server at uri once more and
// reads what it says next: the alert of a server that refused the client's
// certificate after the handshake (TLS 1.3), which gRPC, writing its
// preface meanwhile, reports as a broken pipe. nil when there is none.
func tlsAlert(ctx context.Context, uri string, cfg *tls.Config) error {
	u, err := url.Parse(uri)
	if err != nil {
		return nil
	}
	tc := cfg.Clone()
	if tc.ServerName == "" {
		tc.ServerName = u.Hostname()
	}
	tc.NextProtos = []string{"h2"}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := tls.Dialer{Config: tc}
	conn, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		if strings.Contains(err.Error(), "remote error: tls:") {
			return err
		}
		return nil
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return err
	}
	return nil
}
