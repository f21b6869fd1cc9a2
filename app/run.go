package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
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
	// 127.0.0.1:0, "off" for none), the Arrow Flight SQL server
	// (Live.FlightAddr, likewise) and snapshots (Live.SnapshotDir, default
	// <DuckDB file>.snapshot; Live.SnapshotInterval, default 15 min, 0 for
	// none). Its zero value serves nothing and takes no snapshots.
	Live LiveOptions
	// MetricsAddr is the host:port serving Prometheus metrics (/metrics),
	// /healthz and /readyz. Default "127.0.0.1:9464"; "off" (or "") serves
	// none. Like the query endpoint it binds loopback unless given another
	// address.
	MetricsAddr string
	// VerifyOnStart reads every table of the DuckDB file once, in the
	// background, when the sink has opened it, so that a damaged block is
	// found at start rather than by the first query that reads it.
	// Default true.
	VerifyOnStart bool
	// ConfigFile is the configuration file these options were read from,
	// if any: the advice logged for a damaged DuckDB file names it in the
	// rebuild command.
	ConfigFile string

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
		Ingest:        ingest.DefaultOptions(brokers...),
		DuckDB:        analytics.DefaultOptions("stakhanov.duckdb"),
		ReportEvery:   30 * time.Second,
		Live:          DefaultLiveOptions(),
		MetricsAddr:   DefaultMetricsAddr,
		VerifyOnStart: true,
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
//
// A damaged DuckDB file (analytics.ErrCorrupt: found when the file is
// opened, verified, committed to, queried or snapshotted) stops the
// pipeline — the sink stores nothing more into it, and processors in this
// process stop with it — and is logged once, at error level, with the
// rebuild command. The process stays up, not ready, serving reads of what
// is intact and its metrics, until ctx ends; Run then returns the damage.
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
			if errors.Is(err, analytics.ErrCorrupt) {
				// waiting cannot cure it: say so, and stay up, not ready
				m.openCorrupt.Add(1)
				reportDamage(log, m, o, err)
				<-ctx.Done()
				return ingest.Stats{}, err
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
		m.attachStore(store)
	}
	var lv *live
	if store != nil {
		var err error
		if lv, err = startLive(ctx, o.Live, o.DuckDB.Path, store, log); err != nil {
			store.Close()
			return ingest.Stats{}, err
		}
	}
	// pctx ends the pipeline: when ctx does, or when the file is found
	// damaged.
	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	var watch sync.WaitGroup
	reported := sync.OnceFunc(func() { reportDamage(log, m, o, store.Damage()) })
	if store != nil {
		watch.Go(func() {
			select {
			case <-store.Damaged():
				reported()
				stopPipeline()
			case <-pctx.Done():
			}
		})
		if o.VerifyOnStart {
			watch.Go(func() { verify(pctx, store, log) })
		}
	}
	p, err := ingest.New(o.Ingest, sink)
	if err != nil {
		stopPipeline()
		watch.Wait()
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
	runErr := p.Run(pctx)
	close(stopReport)
	stopPipeline()
	watch.Wait()
	if store != nil && store.Damage() != nil {
		reported()
		// The sink has stopped; what is intact can still be read through
		// the endpoint until the process is told to stop.
		<-ctx.Done()
		runErr = store.Damage()
	} else if runErr != nil {
		m.failed.Store(&runErr)
	}
	st := p.Stats()
	// Readers go before the file closes; they were served through the
	// final flush.
	lv.stop()
	if store != nil {
		if err := store.Close(); err != nil && runErr == nil {
			runErr = fmt.Errorf("closing %s: %w", o.DuckDB.Path, err)
		}
		if runErr == nil && store.Damage() != nil {
			reported() // found by the final checkpoint
			runErr = store.Damage()
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

// verify reads the whole file once (analytics.Store.Verify); damage it
// finds reaches the watcher through the store.
func verify(ctx context.Context, store *analytics.Store, log *slog.Logger) {
	res, err := store.Verify(ctx)
	switch {
	case err == nil:
		log.Info("verified the DuckDB file: every table read", "took", time.Duration(res.TookMS)*time.Millisecond, "rows", res.Tables)
	case errors.Is(err, analytics.ErrCorrupt), ctx.Err() != nil:
	default:
		log.Warn("verifying the DuckDB file failed", "err", err)
	}
}

// reportDamage tells, once and loudly, that the DuckDB file is damaged and
// what to do, and makes /readyz say it.
func reportDamage(log *slog.Logger, m *metrics, o RunOptions, damage error) {
	cmd := RebuildCommand(o)
	path := o.DuckDB.Path
	advice := fmt.Sprintf("Rebuild it from the results topic %s into a new file: %s\n"+
		"then stop this process, move %s, %s.wal and %s aside, move the new file to %s and start again (docs/operations.md).",
		o.Ingest.ResultsTopic(), cmd, path, path, analytics.DamageMarker(path), path)
	m.setDamage(damage, advice)
	marker := analytics.DamageMarker(path)
	if _, err := os.Stat(marker); err != nil {
		marker = "(none written: " + err.Error() + ")"
	}
	log.Error("THE DUCKDB FILE IS DAMAGED: the sink has stopped storing into it and the pipeline in this process has stopped; "+
		"reads of what is intact go on until the process is stopped. Rebuild the file from the results topic",
		"path", path, "err", damage, "rebuild", cmd,
		"then", fmt.Sprintf("stop this process, move %s, %s.wal and %s aside, move the rebuilt file to %s, start again", path, path, analytics.DamageMarker(path), path),
		"marker", marker, "results_topic", o.Ingest.ResultsTopic())
}

// RebuildCommand is the `stakhanov rebuild` command that recreates the
// DuckDB file of o from its results topic into a new file beside it: with
// --config when o came from a file, otherwise with the options that name
// the topics and the rules where they are not the defaults.
func RebuildCommand(o RunOptions) string {
	args := []string{"stakhanov", "rebuild"}
	if o.ConfigFile != "" {
		args = append(args, "--config", o.ConfigFile)
	} else {
		in, def := o.Ingest, ingest.DefaultOptions()
		args = append(args, "--brokers", strings.Join(in.Brokers, ","))
		if in.Group != def.Group {
			args = append(args, "--group", in.Group)
		}
		if in.InputTopic != def.InputTopic {
			args = append(args, "--input", in.InputTopic)
		}
		if in.Repartition {
			args = append(args, "--repartition")
		}
		po, dpo := in.Processor, def.Processor
		dp := dpo.Params()
		for i, p := range po.Params() {
			v, d := fmt.Sprint(reflect.ValueOf(p.Value).Elem()), fmt.Sprint(reflect.ValueOf(dp[i].Value).Elem())
			if v != d {
				args = append(args, "--"+p.Flag, v)
			}
		}
		if in.Security.TLS.Enabled || in.Security.SASL.Mechanism != "" {
			args = append(args, "…(this run's kafka.tls and kafka.sasl settings)")
		}
	}
	args = append(args, "--duckdb", rebuiltPath(o.DuckDB.Path))
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$`\\") && !strings.HasPrefix(a, "…") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}

// rebuiltPath names a new file beside path: x.duckdb → x.rebuilt.duckdb.
func rebuiltPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + ".rebuilt" + ext
}
