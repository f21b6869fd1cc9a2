package app

import (
	"context"
	"crypto/tls"
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
// that holds it: a read-only SQL endpoint over HTTP and snapshots (a copy
// of the file and a Parquet export) that nobody holds. docs/live-reading.md
// is the user's guide.

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
	// for data (not /healthz): from the configuration file or the
	// environment (STAKHANOV_ENDPOINTS_QUERY_TOKEN), never a flag.
	// Default "": none. Prefer QueryTokenFile, which can be rotated.
	QueryToken string
	// QueryTokenFile holds the bearer tokens the endpoint accepts, one per
	// line; it is re-read when it changes. Clients send its first line.
	// Default "": none. Not together with QueryToken.
	QueryTokenFile string
	// QueryTLS serves the endpoint over TLS (QueryTLS.CertFile and
	// KeyFile) and, with QueryTLS.ClientCAFile, requires client
	// certificates. Default: plain HTTP.
	QueryTLS access.TLSOptions
	// QueryTimeout bounds one query. Default 60 s.
	QueryTimeout time.Duration
	// QueryMaxConcurrent bounds the queries (and snapshots) the endpoint
	// runs at once; more get HTTP 503. Default 4.
	QueryMaxConcurrent int
	// FlightAddr is the host:port of the Arrow Flight SQL server, which
	// serves the same read-only SQL to Flight SQL clients (ADBC, JDBC:
	// DBeaver, Superset, Tableau); port 0 takes a free port. Default
	// "127.0.0.1:0", like QueryAddr: on loopback it is as open as the
	// HTTP endpoint and costs nothing idle. "off" (or "") serves none.
	// Beyond loopback it needs FlightToken, or the pipeline refuses to
	// start. Its URL (grpc://host:port, grpc+tls:// with FlightTLS) is
	// written to FILE.flight.
	FlightAddr string
	// FlightToken returns the bearer token the Flight SQL server requires
	// of every call (called per call, so a token file may change); nil:
	// none, which only loopback allows. Set from the same token options as
	// the HTTP endpoint's.
	FlightToken func() (string, error)
	// FlightTLS, when set, makes the Flight SQL server serve TLS.
	FlightTLS *tls.Config
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

// ErrNoCredentials: the endpoint would listen beyond loopback with neither
// a token nor client certificates. Wrapped with ErrInvalidLiveOptions.
var ErrNoCredentials = errors.New("the query endpoint would serve beyond this machine without credentials")

// credentialsAdvice names the options that give the endpoint credentials.
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
		// An address that is a name is checked once bound (startFlight).
		if host, _, _ := net.SplitHostPort(o.FlightAddr); o.FlightToken == nil && !loopbackName(host) &&
			(host == "" || net.ParseIP(strings.Trim(host, "[]")) != nil) {
			return fail("flight address %q is beyond loopback and the Flight SQL server has no token: it would serve SQL to anyone "+
				"who reaches it; bind it to loopback (--flight-addr 127.0.0.1:PORT) or give the server a token", o.FlightAddr)
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
			return fail("query endpoint: %v", err)
		}
		if host, _, _ := net.SplitHostPort(o.QueryAddr); o.serves() && !loopbackName(host) && !o.credentials() {
			return fmt.Errorf("%w: %w: endpoints.query_addr (--query-addr) %s is reachable from other machines: %s",
				ErrInvalidLiveOptions, ErrNoCredentials, o.QueryAddr, credentialsAdvice)
		}
	}
	if o.SnapshotInterval < 0 {
		return fail("snapshot interval %v negative", o.SnapshotInterval)
	}
	return nil
}

func (o LiveOptions) serves() bool { return o.QueryAddr != "" && o.QueryAddr != QueryAddrOff }

func (o LiveOptions) tokens() access.TokenOptions {
	return access.TokenOptions{Token: o.QueryToken, File: o.QueryTokenFile}
}

// credentials: a request must carry a token or a client certificate.
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
	if o.serves() {
		if err := l.serve(ctx, lctx, o, path, abs, dir, store, log); err != nil {
			cancel()
			return nil, err
		}
	}
	if o.servesFlight() {
		if err := l.startFlight(ctx, o, path, abs, store, log); err != nil {
			l.stop()
			return nil, err
		}
	}
	if o.SnapshotInterval > 0 && dir != "" {
		l.wg.Go(func() { snapshotEvery(lctx, store, dir, o.SnapshotInterval, log) })
	}
	return l, nil
}

// serve starts the endpoint: its credentials and TLS read first, so that
// a missing file fails before anything listens; then the listener, the
// handler behind the guard, and the endpoint file.
func (l *live) serve(ctx, lctx context.Context, o LiveOptions, path, abs, dir string, store *analytics.Store, log *slog.Logger) error {
	var tokens *access.Tokens
	if o.tokens().Enabled() {
		var err error
		if tokens, err = access.NewTokens(o.tokens(), log); err != nil {
			return fmt.Errorf("query endpoint: %w", err)
		}
	}
	var stls *access.ServerTLS
	if o.QueryTLS.Enabled() {
		var err error
		if stls, err = access.NewServerTLS(o.QueryTLS, log); err != nil {
			return fmt.Errorf("query endpoint: %w", err)
		}
	}
	eo := analytics.DefaultEndpointOptions()
	eo.QueryTimeout, eo.MaxConcurrent = o.QueryTimeout, o.QueryMaxConcurrent
	eo.SnapshotDir, eo.DuckDBPath, eo.Logger = dir, abs, log
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.QueryAddr)
	if err != nil {
		return fmt.Errorf("query endpoint: %w", err)
	}
	bound := ln.Addr().(*net.TCPAddr)
	// A host name may resolve beyond loopback although Validate took it
	// for loopback ("localhost" pointed elsewhere): the bound address
	// decides.
	if !bound.IP.IsLoopback() && !o.credentials() {
		ln.Close()
		return fmt.Errorf("%w: %w: endpoints.query_addr (--query-addr) %s bound %s, reachable from other machines: %s",
			ErrInvalidLiveOptions, ErrNoCredentials, o.QueryAddr, bound, credentialsAdvice)
	}
	eo.LoopbackHostOnly = bound.IP.IsLoopback()
	h, err := analytics.NewEndpoint(store, store, eo)
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

// startFlight starts the Flight SQL server o asks for over store.
func (l *live) startFlight(ctx context.Context, o LiveOptions, path, abs string, store *analytics.Store, log *slog.Logger) error {
	fo := flightsql.DefaultOptions()
	fo.QueryTimeout, fo.MaxConcurrent = o.QueryTimeout, o.QueryMaxConcurrent
	fo.Token, fo.TLS, fo.DuckDBPath, fo.Logger = o.FlightToken, o.FlightTLS, abs, log
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
	if err := fo.CheckExposure(bound); err != nil {
		ln.Close()
		return fmt.Errorf("--flight-addr %s: %w (bind it to loopback, --flight-addr 127.0.0.1:PORT, or give the server a token)", o.FlightAddr, err)
	}
	scheme := flightsql.SchemePlain
	if o.FlightTLS != nil {
		scheme = flightsql.SchemeTLS
	}
	l.flight, l.FlightURL = srv, scheme+"://"+dialable(bound, o.FlightAddr)
	l.wg.Go(func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("flight SQL server stopped", "err", err)
		}
	})
	if path != ":memory:" {
		l.flightSidecar = FlightFile(path)
		if err := writeFileAtomic(l.flightSidecar, []byte(l.FlightURL+"\n")); err != nil {
			log.Warn("could not write the Flight SQL address file; clients need the address from this log", "path", l.flightSidecar, "err", err)
			l.flightSidecar = ""
		}
	}
	log.Info("serving Arrow Flight SQL", "url", l.FlightURL, "address_file", l.flightSidecar,
		"token", o.FlightToken != nil, "tls", o.FlightTLS != nil)
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
		res, err := store.Snapshot(ctx, dir)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("snapshot failed", "dir", dir, "err", err)
			}
			continue
		}
		taken, any = commits, true
		log.Info("snapshot written", "path", res.Path, "parquet", res.ParquetDir,
			"took", time.Duration(res.TookMS)*time.Millisecond, "rows", res.Tables)
	}
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
