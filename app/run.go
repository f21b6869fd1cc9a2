package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
)

// RunOptions configure the long-running pipeline. Start from
// DefaultRunOptions.
type RunOptions struct {
	Ingest ingest.Options
	DuckDB analytics.Options
	// ReportEvery logs a progress line at this interval. Default 30 s; 0
	// turns it off.
	ReportEvery time.Duration
	// Live configures reading the DuckDB file while the pipeline holds it
	// (sink role only): the read-only SQL endpoint (Live.QueryAddr, default
	// 127.0.0.1:0, "off" for none) and snapshots (Live.SnapshotDir, default
	// <DuckDB file>.snapshot; Live.SnapshotInterval, default 15 min, 0 for
	// none). Its zero value serves nothing and takes no snapshots.
	Live LiveOptions
	// MetricsAddr is the host:port serving Prometheus metrics (/metrics),
	// /healthz and /readyz. Default "127.0.0.1:9464"; "off" (or "") serves
	// none. Like the query endpoint it binds loopback unless given another
	// address.
	MetricsAddr string

	started func(*ingest.Pipeline) // tests watch the pipeline through this
	serving func(metricsAddr string)
}

// DefaultMetricsAddr is where metrics are served unless told otherwise:
// loopback, on the port Prometheus' exporters conventionally leave free.
const DefaultMetricsAddr = "127.0.0.1:9464"

// DefaultRunOptions returns the documented defaults for the given brokers,
// writing stakhanov.duckdb.
func DefaultRunOptions(brokers ...string) RunOptions {
	return RunOptions{
		Ingest:      ingest.DefaultOptions(brokers...),
		DuckDB:      analytics.DefaultOptions("stakhanov.duckdb"),
		ReportEvery: 30 * time.Second,
		Live:        DefaultLiveOptions(),
		MetricsAddr: DefaultMetricsAddr,
	}
}

// Validate checks every layer's options; DuckDB and Live only matter to
// the sink role.
func (o RunOptions) Validate() error {
	if o.Ingest.Roles&ingest.RoleSink == 0 {
		return o.Ingest.Validate()
	}
	return errors.Join(o.Ingest.Validate(), o.DuckDB.Validate(), o.Live.Validate())
}

// Run opens the DuckDB file and runs the pipeline until ctx ends, then
// commits the batch in hand and closes the file.
func Run(ctx context.Context, o RunOptions) (ingest.Stats, error) {
	if err := o.Validate(); err != nil {
		return ingest.Stats{}, err
	}
	log := o.Ingest.Logger
	if log == nil {
		log = slog.Default()
	}
	// Metrics and health answer from the start: a sink waiting for its
	// file is alive but not ready.
	m := newMetrics()
	if err := m.serve(o.MetricsAddr, log); err != nil {
		return ingest.Stats{}, err
	}
	defer m.stop()
	if o.serving != nil {
		o.serving(m.addr)
	}
	prev := o.Ingest.OnCommit
	o.Ingest.OnCommit = func(d time.Duration, rows int) {
		m.observeCommit(d, rows)
		if prev != nil {
			prev(d, rows)
		}
	}
	// Only the sink role writes DuckDB: processing instances need no disk.
	var store *analytics.Store
	var sink ingest.Sink
	if o.Ingest.Roles&ingest.RoleSink != 0 {
		// A file that cannot be opened yet (a read-only or full disk, a
		// lock another process holds) is waited for, not given up on.
		backoff := o.Ingest.RetryBackoff
		for {
			var err error
			if store, err = analytics.Open(ctx, o.DuckDB); err == nil {
				break
			}
			if errors.Is(err, analytics.ErrInvalidOptions) || errors.Is(err, analytics.ErrSchemaTooNew) {
				return ingest.Stats{}, fmt.Errorf("opening %s: %w", o.DuckDB.Path, err)
			}
			log.Warn("waiting: opening the DuckDB file failed", "path", o.DuckDB.Path, "err", err, "backoff", backoff)
			select {
			case <-ctx.Done():
				return ingest.Stats{}, nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, o.Ingest.RetryBackoffMax)
		}
		sink = store
	}
	var lv *live
	if store != nil {
		var err error
		if lv, err = startLive(ctx, o.Live, o.DuckDB.Path, store, log); err != nil {
			store.Close()
			return ingest.Stats{}, err
		}
	}
	p, err := ingest.New(o.Ingest, sink)
	if err != nil {
		lv.stop()
		if store != nil {
			store.Close()
		}
		return ingest.Stats{}, err
	}
	m.attach(p)
	if o.started != nil {
		o.started(p)
	}
	stopReport := make(chan struct{})
	if o.ReportEvery > 0 {
		go report(p, log, o.ReportEvery, stopReport)
	}
	log.Info("pipeline starting", "role", o.Ingest.Roles, "brokers", o.Ingest.Brokers, "input", o.Ingest.InputTopic,
		"group", o.Ingest.Group, "repartition", o.Ingest.Repartition, "duckdb", o.DuckDB.Path)
	runErr := p.Run(ctx)
	if runErr != nil {
		m.failed.Store(&runErr)
	}
	close(stopReport)
	st := p.Stats()
	// Readers go before the file closes; they were served through the
	// final flush.
	lv.stop()
	if store != nil {
		if err := store.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("closing %s: %w", o.DuckDB.Path, err)
		}
	}
	log.Info("pipeline stopped", "messages", st.Messages, "shifts", st.Shifts, "duplicates", st.Duplicates,
		"late", st.Late, "rejects", st.Rejects, "alerts", st.Alerts)
	return st, runErr
}

func report(p *ingest.Pipeline, log *slog.Logger, every time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			st := p.Stats()
			processed, high := p.Progress()
			var lag int64
			for part, h := range high {
				lag += max(h-processed[part], 0) // a partition never processed counts from 0
			}
			log.Info("progress", "messages", st.Messages, "per_s", float64(st.Messages-last)/every.Seconds(),
				"input_lag", lag, "rejects", st.Rejects, "alerts", st.Alerts, "shifts_stored", st.Shifts)
			last = st.Messages
		}
	}
}
