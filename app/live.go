package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/flightsql"
)

// DuckDB lets no other process open a file that one process holds
// read-write, so analysts read the pipeline's file through the process
// that holds it: a read-only SQL endpoint over HTTP, the same SQL over
// Arrow Flight SQL, both behind the same credentials, and snapshots (a
// copy of the file and a Parquet export) that nobody holds.
// docs/live-reading.md is the user's guide.

// LiveOptions configure reading the DuckDB file while this process holds
// it. The zero value serves nothing and takes no snapshots; start from
// DefaultLiveOptions.
type LiveOptions struct {
	// QueryAddr is the host:port of the read-only SQL endpoint; port 0
	// takes a free port. Default "127.0.0.1:0". "off" (or "") serves none.
	// On loopback the endpoint may be open (only this machine's users
	// reach it); on any other address it needs credentials, a token or
	// client certificates, and Validate fails without them.
	QueryAddr string
	// QueryToken is a bearer token the endpoint requires of every request
	// for data (not /healthz), and the Flight SQL server of every call:
	// from the configuration file or the environment
	// (STAKHANOV_ENDPOINTS_QUERY_TOKEN), never a flag. Default "": none.
	// Prefer QueryTokenFile, which can be rotated.
	QueryToken string
	// QueryTokenFile holds the bearer tokens the endpoint and the Flight
	// SQL server accept, one per line; it is re-read when it changes.
	// Clients send its first line. Default "": none. Not together with
	// QueryToken.
	QueryTokenFile string
	// QueryTLS serves the endpoint and the Flight SQL server over TLS,
	// with one certificate (QueryTLS.CertFile and KeyFile) and, with
	// QueryTLS.ClientCAFile, requires client certificates of both's
	// clients. Default: plain HTTP and plaintext gRPC.
	QueryTLS access.TLSOptions
	// QueryTimeout bounds one query. Default 60 s.
	QueryTimeout time.Duration
	// QueryMaxConcurrent bounds the queries (and snapshots) the endpoint
	// runs at once; more get HTTP 503. Default 4.
	QueryMaxConcurrent int
	// FlightAddr is the host:port of the Arrow Flight SQL server, which
	// serves the same read-only SQL to Flight SQL clients (ADBC, JDBC:
	// DBeaver, Tableau); port 0 takes a free port. Default "127.0.0.1:0",
	// like QueryAddr: on loopback it is as open as the HTTP endpoint and
	// costs nothing idle. "off" (or "") serves none. It asks for the
	// endpoint's credentials (QueryToken or QueryTokenFile, client
	// certificates of QueryTLS) and serves TLS with its certificate: one
	// token and one certificate for both. Beyond loopback without
	// credentials Validate fails, as for QueryAddr. Its URL
	// (grpc://host:port, grpc+tls:// with TLS) is written to FILE.flight.
	FlightAddr string
	// SnapshotDir receives the snapshots, periodic and requested (POST
	// /v1/snapshot writes nowhere else). Default "": <DuckDB file>.snapshot
	// beside the file.
	SnapshotDir string
	// SnapshotInterval is how often a snapshot is taken, skipped when
	// nothing was stored since the last. Default 15 min; 0 takes none but
	// those requested.
	SnapshotInterval time.Duration
}

// Defaults of LiveOptions.
const (
	DefaultQueryAddr        = "127.0.0.1:0"
	DefaultSnapshotInterval = 15 * time.Minute
	// QueryAddrOff turns the endpoint off (and, as FlightAddr, the
	// Flight SQL server).
	QueryAddrOff      = "off"
	DefaultFlightAddr = "127.0.0.1:0"
)

// DefaultLiveOptions returns the documented defaults.
func DefaultLiveOptions() LiveOptions {
	return LiveOptions{
		QueryAddr:          DefaultQueryAddr,
		FlightAddr:         DefaultFlightAddr,
		QueryTimeout:       analytics.DefaultQueryTimeout,
		QueryMaxConcurrent: analytics.DefaultMaxConcurrent,
		SnapshotInterval:   DefaultSnapshotInterval,
	}
}

// ErrInvalidLiveOptions is wrapped by every LiveOptions.Validate failure.
var ErrInvalidLiveOptions = errors.New("invalid live reading options")

// ErrNoCredentials: the endpoint or the Flight SQL server would listen
// beyond loopback with neither a token nor client certificates. Wrapped
// with ErrInvalidLiveOptions.
var ErrNoCredentials = errors.New("SQL would be served beyond this machine without credentials")

// credentialsAdvice names the options that give the endpoint and the
// Flight SQL server their credentials.
const credentialsAdvice = "set endpoints.query_token_file (--query-token-file, STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE) " +
	"or STAKHANOV_ENDPOINTS_QUERY_TOKEN, or require client certificates with endpoints.query_tls.client_ca_file " +
	"(--query-tls-client-ca-file); or bind it to 127.0.0.1"

// Validate reports the first option outside its domain.
func (o LiveOptions) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidLiveOptions, fmt.Sprintf(f, a...))
	}
	checkAddr := func(what, addr string) error {
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			return fail("%s address %q: %v (want host:port, or %q)", what, addr, err, QueryAddrOff)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			return fail("%s address %q: bad port", what, addr)
		}
		return nil
	}
	if o.serves() {
		if err := checkAddr("query", o.QueryAddr); err != nil {
			return err
		}
	}
	if o.servesFlight() {
		if err := checkAddr("flight", o.FlightAddr); err != nil {
			return err
		}
	}
	if o.serves() || o.servesFlight() {
		if o.QueryTimeout <= 0 {
			return fail("query timeout %v not positive", o.QueryTimeout)
		}
		if o.QueryMaxConcurrent < 1 {
			return fail("query max concurrent %d below 1", o.QueryMaxConcurrent)
		}
		if err := o.tokens().Validate(); err != nil {
			return fail("query token: %v", err)
		}
		if err := o.QueryTLS.Validate(); err != nil {
			return fail("query TLS: %v", err)
		}
		for _, l := range o.listeners() {
			if host, _, _ := net.SplitHostPort(l.addr); !loopbackName(host) && !o.credentials() {
				return fmt.Errorf("%w: %w: %s %s is reachable from other machines: %s",
					ErrInvalidLiveOptions, ErrNoCredentials, l.option, l.addr, credentialsAdvice)
			}
		}
	}
	if o.SnapshotInterval < 0 {
		return fail("snapshot interval %v negative", o.SnapshotInterval)
	}
	return nil
}

func (o LiveOptions) serves() bool { return o.QueryAddr != "" && o.QueryAddr != QueryAddrOff }

// listener is an address o serves SQL on, and the option that sets it.
type listener struct{ option, addr string }

// listeners are the addresses o serves SQL on.
func (o LiveOptions) listeners() []listener {
	var ls []listener
	if o.serves() {
		ls = append(ls, listener{"endpoints.query_addr (--query-addr)", o.QueryAddr})
	}
	if o.servesFlight() {
		ls = append(ls, listener{"endpoints.flight_addr (--flight-addr)", o.FlightAddr})
	}
	return ls
}

func (o LiveOptions) tokens() access.TokenOptions {
	return access.TokenOptions{Token: o.QueryToken, File: o.QueryTokenFile}
}

// credentials: a request (or a Flight SQL call) must carry a token or a
// client certificate.
func (o LiveOptions) credentials() bool {
	return o.tokens().Enabled() || o.QueryTLS.ClientCertificates()
}

// loopbackName: a host only this machine reaches (a loopback address or
// "localhost"). "" and 0.0.0.0 are every interface.
func loopbackName(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (o LiveOptions) servesFlight() bool { return o.FlightAddr != "" && o.FlightAddr != QueryAddrOff }

// EndpointFile is the sidecar file in which a process holding the DuckDB
// file at path writes its endpoint's URL while it serves one.
func EndpointFile(path string) string { return path + ".endpoint" }

// FlightFile is the sidecar file in which a process holding the DuckDB
// file at path writes its Flight SQL server's URL while it serves one.
func FlightFile(path string) string { return path + ".flight" }

// DefaultSnapshotDir is where snapshots of the file at path go unless
// configured otherwise.
func DefaultSnapshotDir(path string) string { return path + ".snapshot" }

func (o LiveOptions) snapshotDir(path string) string {
	if o.SnapshotDir != "" || path == ":memory:" {
		return o.SnapshotDir
	}
	return DefaultSnapshotDir(path)
}

// live is a running endpoint and snapshot schedule.
type live struct {
	URL     string
	srv     *http.Server
	sidecar string
	// FlightURL is the Flight SQL server's grpc[+tls]://host:port.
	FlightURL     string
	flight        *flightsql.Server
	flightSidecar string
	cancel        context.CancelFunc
	wg            sync.WaitGroup
	log           *slog.Logger
}

// startLive starts what o asks for over store, the DuckDB file at path.
// The endpoint and snapshots outlive ctx (the pipeline's): they go on
// through the final flush, until stop.
func startLive(ctx context.Context, o LiveOptions, path string, store *analytics.Store, log *slog.Logger) (*live, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l := &live{cancel: cancel, log: log}
	dir := o.snapshotDir(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	var acc liveAccess
	if o.serves() || o.servesFlight() {
		if acc, err = o.openAccess(log); err != nil {
			cancel()
			return nil, err
		}
	}
	if o.serves() {
		if err := l.serve(ctx, lctx, o, acc, path, abs, dir, store, log); err != nil {
			cancel()
			return nil, err
		}
	}
	if o.servesFlight() {
		if err := l.startFlight(ctx, o, acc, path, abs, store, log); err != nil {
			l.stop()
			return nil, err
		}
	}
	if o.SnapshotInterval > 0 && dir != "" {
		l.wg.Go(func() { snapshotEvery(lctx, store, dir, o.SnapshotInterval, log) })
	}
	return l, nil
}

// liveAccess are the credentials and TLS the endpoint and the Flight SQL
// server share: one token file, read once and re-read for both when it
// changes, and one certificate.
type liveAccess struct {
	tokens *access.Tokens    // nil: no token asked
	tls    *access.ServerTLS // nil: no TLS
}

// openAccess reads the token file and the TLS files now, so that a
// missing one fails before anything listens.
func (o LiveOptions) openAccess(log *slog.Logger) (liveAccess, error) {
	var acc liveAccess
	var err error
	if o.tokens().Enabled() {
		if acc.tokens, err = access.NewTokens(o.tokens(), log); err != nil {
			return acc, fmt.Errorf("query token: %w", err)
		}
	}
	if o.QueryTLS.Enabled() {
		if acc.tls, err = access.NewServerTLS(o.QueryTLS, log); err != nil {
			return acc, fmt.Errorf("query TLS: %w", err)
		}
	}
	return acc, nil
}

// refuseBound refuses a listener bound beyond loopback without
// credentials: a host name may resolve beyond loopback although Validate
// took it for loopback ("localhost" pointed elsewhere), so the bound
// address decides.
func (o LiveOptions) refuseBound(option, addr string, bound *net.TCPAddr) error {
	if bound.IP.IsLoopback() || o.credentials() {
		return nil
	}
	return fmt.Errorf("%w: %w: %s %s bound %s, reachable from other machines: %s",
		ErrInvalidLiveOptions, ErrNoCredentials, option, addr, bound, credentialsAdvice)
}

// serve starts the endpoint: the listener, the handler behind the guard,
// and the endpoint file.
func (l *live) serve(ctx, lctx context.Context, o LiveOptions, acc liveAccess, path, abs, dir string, store *analytics.Store, log *slog.Logger) error {
	tokens, stls := acc.tokens, acc.tls
	eo := analytics.DefaultEndpointOptions()
	eo.QueryTimeout, eo.MaxConcurrent = o.QueryTimeout, o.QueryMaxConcurrent
	eo.SnapshotDir, eo.DuckDBPath, eo.Logger = dir, abs, log
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.QueryAddr)
	if err != nil {
		return fmt.Errorf("query endpoint: %w", err)
	}
	bound := ln.Addr().(*net.TCPAddr)
	if err := o.refuseBound("endpoints.query_addr (--query-addr)", o.QueryAddr, bound); err != nil {
		ln.Close()
		return err
	}
	eo.LoopbackHostOnly = bound.IP.IsLoopback()
	h, err := analytics.NewEndpoint(store, loggedSnapshots{store, log}, eo)
	if err != nil {
		ln.Close()
		return err
	}
	h = access.Guard(h, access.GuardOptions{
		Tokens:    tokens,
		Open:      func(r *http.Request) bool { return r.URL.Path == "/healthz" },
		TokenHint: tokenAdvice,
		Logger:    log,
	})
	host, scheme := dialable(bound, o.QueryAddr), "http"
	if stls != nil {
		scheme = "https"
		host = certifiedHost(stls.Leaf(), host, log)
	}
	l.URL = scheme + "://" + host
	l.srv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return lctx },
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if stls != nil {
		l.srv.TLSConfig = stls.Config()
	}
	l.wg.Go(func() {
		var err error
		if stls != nil {
			err = l.srv.ServeTLS(ln, "", "")
		} else {
			err = l.srv.Serve(ln)
		}
		if err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("query endpoint stopped", "err", err)
		}
	})
	if !bound.IP.IsLoopback() && stls == nil && tokens != nil {
		log.Warn("query endpoint listens beyond this machine without TLS: its token crosses the network in the clear; "+
			"set endpoints.query_tls.cert_file and key_file (--query-tls-cert-file, --query-tls-key-file)", "addr", bound.String())
	}
	if path != ":memory:" {
		l.sidecar = EndpointFile(path)
		if err := writeFileAtomic(l.sidecar, []byte(l.URL+"\n")); err != nil {
			log.Warn("could not write the endpoint file; clients need --endpoint", "path", l.sidecar, "err", err)
			l.sidecar = ""
		}
	}
	log.Info("serving read-only SQL", "url", l.URL, "endpoint_file", l.sidecar, "snapshot_dir", dir,
		"query_timeout", o.QueryTimeout, "max_concurrent", o.QueryMaxConcurrent,
		"credentials", credentialsOf(tokens != nil, o.QueryTLS.ClientCertificates(), bound.IP.IsLoopback()), "tls", stls != nil)
	return nil
}

// tokenAdvice ends a 401: what a client sets to send the token.
const tokenAdvice = "send the endpoint's token as \"Authorization: Bearer <token>\" " +
	"(stakhanov query, snapshot, export: set STAKHANOV_ENDPOINTS_QUERY_TOKEN or --query-token-file)"

// credentialsOf says, for the log, what a request needs.
func credentialsOf(token, clientCerts, loopback bool) string {
	switch {
	case token && clientCerts:
		return "bearer token and client certificate"
	case token:
		return "bearer token"
	case clientCerts:
		return "client certificate"
	case loopback:
		return "none (loopback only)"
	}
	return "none"
}

// certifiedHost is the host a local client dials for the endpoint file:
// the dialable address if the certificate names it, else "localhost" if
// it names that and the address is loopback; otherwise the address, with
// a warning that clients must name the server (--query-tls-server-name).
func certifiedHost(leaf *x509.Certificate, hostport string, log *slog.Logger) string {
	host, port, _ := net.SplitHostPort(hostport)
	if leaf.VerifyHostname(host) == nil {
		return hostport
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() && leaf.VerifyHostname("localhost") == nil {
		return net.JoinHostPort("localhost", port)
	}
	log.Warn("the query endpoint's TLS certificate names neither this address nor localhost: clients that find it through the endpoint file "+
		"must pass --query-tls-server-name with a name it has (or add 127.0.0.1 and localhost to the certificate)",
		"addr", hostport, "names", leaf.DNSNames, "ips", leaf.IPAddresses)
	return hostport
}

// flightTokenAdvice ends a Flight SQL refusal of a token: where this
// repository's client sets it (JDBC and ADBC are named by the server).
const flightTokenAdvice = "stakhanov query --flight: set STAKHANOV_ENDPOINTS_QUERY_TOKEN or --query-token-file"

// startFlight starts the Flight SQL server o asks for over store, with
// the endpoint's credentials and certificate.
func (l *live) startFlight(ctx context.Context, o LiveOptions, acc liveAccess, path, abs string, store *analytics.Store, log *slog.Logger) error {
	fo := flightsql.DefaultOptions()
	fo.QueryTimeout, fo.MaxConcurrent = o.QueryTimeout, o.QueryMaxConcurrent
	fo.Tokens, fo.TokenHint, fo.DuckDBPath, fo.Logger = acc.tokens, flightTokenAdvice, abs, log
	if acc.tls != nil {
		fo.TLS = acc.tls.Config()
	}
	srv, err := flightsql.New(store, fo)
	if err != nil {
		return fmt.Errorf("flight SQL server: %w", err)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.FlightAddr)
	if err != nil {
		return fmt.Errorf("flight SQL server: %w", err)
	}
	bound := ln.Addr().(*net.TCPAddr)
	if err := o.refuseBound("endpoints.flight_addr (--flight-addr)", o.FlightAddr, bound); err != nil {
		ln.Close()
		return err
	}
	host, scheme := dialable(bound, o.FlightAddr), flightsql.SchemePlain
	if acc.tls != nil {
		scheme = flightsql.SchemeTLS
		host = certifiedHost(acc.tls.Leaf(), host, log)
	}
	l.flight, l.FlightURL = srv, scheme+"://"+host
	l.wg.Go(func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("flight SQL server stopped", "err", err)
		}
	})
	if !bound.IP.IsLoopback() && acc.tls == nil && acc.tokens != nil {
		log.Warn("flight SQL server listens beyond this machine without TLS: its token crosses the network in the clear; "+
			"set endpoints.query_tls.cert_file and key_file (--query-tls-cert-file, --query-tls-key-file)", "addr", bound.String())
	}
	if path != ":memory:" {
		l.flightSidecar = FlightFile(path)
		if err := writeFileAtomic(l.flightSidecar, []byte(l.FlightURL+"\n")); err != nil {
			log.Warn("could not write the Flight SQL address file; clients need the address from this log", "path", l.flightSidecar, "err", err)
			l.flightSidecar = ""
		}
	}
	log.Info("serving Arrow Flight SQL", "url", l.FlightURL, "address_file", l.flightSidecar,
		"credentials", credentialsOf(acc.tokens != nil, o.QueryTLS.ClientCertificates(), bound.IP.IsLoopback()), "tls", acc.tls != nil)
	return nil
}

// dialable is the address a local client dials for a listener's address:
// an unspecified IP (all interfaces) becomes loopback, IPv6 only if the
// configured host was IPv6 (Go reports "0.0.0.0" bound dual-stack as "::").
func dialable(a *net.TCPAddr, configured string) string {
	ip := a.IP
	if ip == nil || ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if host, _, _ := net.SplitHostPort(configured); strings.Contains(host, ":") {
			ip = net.IPv6loopback
		}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(a.Port))
}

func snapshotEvery(ctx context.Context, store *analytics.Store, dir string, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	// A quiet pipeline would otherwise rewrite the same snapshot every
	// interval; the first is always taken, since the file may predate it.
	taken, any := uint64(0), false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if store.Damage() != nil {
			log.Debug("snapshot skipped: the DuckDB file is damaged", "dir", dir)
			continue
		}
		commits := store.Commits()
		if any && commits == taken {
			log.Debug("snapshot skipped: nothing stored since the last", "dir", dir)
			continue
		}
		res, err := loggedSnapshots{store, log}.Snapshot(ctx, dir)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("snapshot failed", "dir", dir, "err", err)
			}
			continue
		}
		taken, any = commits, true
		log.Info("snapshot written", "path", res.Path, "parquet", res.ParquetDir,
			"took", time.Duration(res.TookMS)*time.Millisecond, "rows", res.Tables, "files", res.Files, "bytes", res.Bytes)
	}
}

// loggedSnapshots take the store's snapshots, periodic and requested,
// with their progress logged at debug level: a table's rows, files and
// bytes every few seconds and when it is done.
type loggedSnapshots struct {
	store *analytics.Store
	log   *slog.Logger
}

func (l loggedSnapshots) Snapshot(ctx context.Context, dir string) (*analytics.SnapshotResult, error) {
	o := analytics.DefaultExportOptions()
	o.Progress = func(p analytics.ExportProgress) {
		l.log.Debug("snapshot progress", "dir", dir, "table", p.Table, "rows", p.Rows, "total_rows", p.TotalRows,
			"files", p.Files, "bytes", p.Bytes, "elapsed", p.Elapsed.Round(time.Millisecond), "done", p.Done)
	}
	return l.store.SnapshotWith(ctx, dir, o)
}

// stop ends the schedule (interrupting a snapshot under way), lets running
// queries finish for a few seconds, closes the endpoint and removes the
// endpoint file. The store may be closed after.
func (l *live) stop() {
	if l == nil {
		return
	}
	if l.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := l.srv.Shutdown(ctx); err != nil {
			l.log.Warn("query endpoint: closing with queries still running", "err", err)
		}
		cancel()
	}
	if l.flight != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		l.flight.Shutdown(ctx) // cancels the calls still running after the grace
		cancel()
	}
	l.cancel() // interrupts what Shutdown's grace left, and the schedule
	if l.srv != nil {
		_ = l.srv.Close()
	}
	l.wg.Wait()
	for _, f := range []string{l.sidecar, l.flightSidecar} {
		if f == "" {
			continue
		}
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("could not remove the address file", "path", f, "err", err)
		}
	}
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, so that a reader sees all of it or the previous file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
