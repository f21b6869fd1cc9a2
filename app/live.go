package app

import (
	"context"
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

	"github.com/stakhanov/stakhanov/analytics"
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
	// The endpoint has no authentication and its SELECTs can read any file
	// this process can, so it binds loopback unless given another address,
	// and then logs a warning.
	QueryAddr string
	// QueryTimeout bounds one query. Default 60 s.
	QueryTimeout time.Duration
	// QueryMaxConcurrent bounds the queries (and snapshots) the endpoint
	// runs at once; more get HTTP 503. Default 4.
	QueryMaxConcurrent int
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
	// QueryAddrOff turns the endpoint off.
	QueryAddrOff = "off"
)

// DefaultLiveOptions returns the documented defaults.
func DefaultLiveOptions() LiveOptions {
	return LiveOptions{
		QueryAddr:          DefaultQueryAddr,
		QueryTimeout:       analytics.DefaultQueryTimeout,
		QueryMaxConcurrent: analytics.DefaultMaxConcurrent,
		SnapshotInterval:   DefaultSnapshotInterval,
	}
}

// ErrInvalidLiveOptions is wrapped by every LiveOptions.Validate failure.
var ErrInvalidLiveOptions = errors.New("invalid live reading options")

// Validate reports the first option outside its domain.
func (o LiveOptions) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidLiveOptions, fmt.Sprintf(f, a...))
	}
	if o.serves() {
		_, port, err := net.SplitHostPort(o.QueryAddr)
		if err != nil {
			return fail("query address %q: %v (want host:port, or %q)", o.QueryAddr, err, QueryAddrOff)
		}
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || (n == 0 && port != "0") {
			return fail("query address %q: bad port", o.QueryAddr)
		}
		if o.QueryTimeout <= 0 {
			return fail("query timeout %v not positive", o.QueryTimeout)
		}
		if o.QueryMaxConcurrent < 1 {
			return fail("query max concurrent %d below 1", o.QueryMaxConcurrent)
		}
	}
	if o.SnapshotInterval < 0 {
		return fail("snapshot interval %v negative", o.SnapshotInterval)
	}
	return nil
}

func (o LiveOptions) serves() bool { return o.QueryAddr != "" && o.QueryAddr != QueryAddrOff }

// EndpointFile is the sidecar file in which a process holding the DuckDB
// file at path writes its endpoint's URL while it serves one.
func EndpointFile(path string) string { return path + ".endpoint" }

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
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	log     *slog.Logger
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
		eo := analytics.DefaultEndpointOptions()
		eo.QueryTimeout, eo.MaxConcurrent = o.QueryTimeout, o.QueryMaxConcurrent
		eo.SnapshotDir, eo.DuckDBPath, eo.Logger = dir, abs, log
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", o.QueryAddr)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("query endpoint: %w", err)
		}
		bound := ln.Addr().(*net.TCPAddr)
		eo.LoopbackHostOnly = bound.IP.IsLoopback()
		h, err := analytics.NewEndpoint(store, store, eo)
		if err != nil {
			ln.Close()
			cancel()
			return nil, err
		}
		if !bound.IP.IsLoopback() {
			log.Warn("query endpoint listens beyond this machine: it has no authentication, and its SELECTs can read any file this process can",
				"addr", bound.String())
		}
		l.URL = "http://" + dialable(bound, o.QueryAddr)
		l.srv = &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return lctx },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		l.wg.Go(func() {
			if err := l.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("query endpoint stopped", "err", err)
			}
		})
		if path != ":memory:" {
			l.sidecar = EndpointFile(path)
			if err := writeFileAtomic(l.sidecar, []byte(l.URL+"\n")); err != nil {
				log.Warn("could not write the endpoint file; clients need --endpoint", "path", l.sidecar, "err", err)
				l.sidecar = ""
			}
		}
		log.Info("serving read-only SQL", "url", l.URL, "endpoint_file", l.sidecar, "snapshot_dir", dir,
			"query_timeout", o.QueryTimeout, "max_concurrent", o.QueryMaxConcurrent)
	}
	if o.SnapshotInterval > 0 && dir != "" {
		l.wg.Go(func() { snapshotEvery(lctx, store, dir, o.SnapshotInterval, log) })
	}
	return l, nil
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
	l.cancel() // interrupts what Shutdown's grace left, and the schedule
	if l.srv != nil {
		_ = l.srv.Close()
	}
	l.wg.Wait()
	if l.sidecar != "" {
		if err := os.Remove(l.sidecar); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.log.Warn("could not remove the endpoint file", "path", l.sidecar, "err", err)
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
