package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
)

// MetricsOff turns the metrics server off.
const MetricsOff = "off"

// metrics serves Prometheus metrics, /healthz and /readyz for one run.
// Counters and gauges are read from the pipeline when scraped, so the hot
// path pays nothing for them; only the commit histogram is fed as commits
// happen (OnCommit).
type metrics struct {
	reg     *prometheus.Registry
	commits prometheus.Histogram

	mu    sync.Mutex
	p     *ingest.Pipeline // nil until the pipeline exists
	store *analytics.Store // the sink's, once open

	failed atomic.Pointer[error] // the pipeline's fatal error, for /healthz
	// damage: the DuckDB file is damaged (analytics.ErrCorrupt), with the
	// advice /readyz gives; openCorrupt counts refused opens.
	damage      atomic.Pointer[damageReport]
	openCorrupt atomic.Uint64

	srv  *http.Server
	addr string
	done chan struct{}
}

var (
	descMessages   = prometheus.NewDesc("stakhanov_input_messages_total", "Input messages processed by this process (a partition replayed after a move counts again).", nil, nil)
	descDuplicates = prometheus.NewDesc("stakhanov_duplicates_total", "Events dropped as repeats of an event_id.", nil, nil)
	descLate       = prometheus.NewDesc("stakhanov_late_shifts_total", "Shifts that arrived after their day closed or more than a window behind their plant's clock; stored, entering no state.", nil, nil)
	descTooLate    = prometheus.NewDesc("stakhanov_late_shifts_unjudged_total", "Late shifts whose plant no longer held their whole trailing window: stored without a norm.", nil, nil)
	descRejects    = prometheus.NewDesc("stakhanov_rejects_total", "Input messages that are not valid events, sent to the dead-letter topic, by reason.", []string{"reason"}, nil)
	descAlerts     = prometheus.NewDesc("stakhanov_alerts_total", "Alerts published, by type.", []string{"type"}, nil)
	descStored     = prometheus.NewDesc("stakhanov_shifts_stored_total", "Shift rows newly stored in DuckDB (sink role).", nil, nil)
	descBatches    = prometheus.NewDesc("stakhanov_sink_commits_total", "DuckDB commits (sink role).", nil, nil)
	descLag        = prometheus.NewDesc("stakhanov_consumer_lag_messages", "Messages between a partition's high watermark and the next offset this process processes (role process) or stores (role sink).", []string{"role", "topic", "partition"}, nil)
	descStreamTime = prometheus.NewDesc("stakhanov_stream_time_seconds", "A partition's event-time clock (the largest shift_start seen), Unix seconds.", []string{"partition"}, nil)
	descState      = prometheus.NewDesc("stakhanov_state_bytes", "Size of a partition's window state, as last checkpointed.", []string{"partition"}, nil)
	descRestore    = prometheus.NewDesc("stakhanov_restore_progress_ratio", "Share of the input between a partition's checkpoint and the high watermark found on restore that is processed again (1: caught up).", []string{"partition"}, nil)
	descReady      = prometheus.NewDesc("stakhanov_ready", "1 when every role has joined its group and every partition's state is restored.", nil, nil)
	descCorrupt    = prometheus.NewDesc("stakhanov_duckdb_corruption_errors_total", "Operations on the DuckDB file (opening it, commits, queries, snapshots, verification) that failed because the file is damaged.", nil, nil)
	descDamaged    = prometheus.NewDesc("stakhanov_duckdb_damaged", "1 once the DuckDB file is found damaged: the sink has stopped storing, and the file must be rebuilt (stakhanov rebuild).", nil, nil)
)

// damageReport is a damaged DuckDB file as /readyz tells it.
type damageReport struct {
	err    error
	advice string
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.commits = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "stakhanov_sink_commit_duration_seconds",
		Help:    "Duration of one DuckDB commit of a batch (sink role).",
		Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
	})
	m.reg.MustRegister(m, m.commits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeCommit(d time.Duration, _ int) { m.commits.Observe(d.Seconds()) }

func (m *metrics) attach(p *ingest.Pipeline) {
	m.mu.Lock()
	m.p = p
	m.mu.Unlock()
}

func (m *metrics) attachStore(s *analytics.Store) {
	m.mu.Lock()
	m.store = s
	m.mu.Unlock()
}

// setDamage records that the DuckDB file is damaged; the first report
// stays.
func (m *metrics) setDamage(err error, advice string) {
	m.damage.CompareAndSwap(nil, &damageReport{err: err, advice: advice})
}

func (m *metrics) corruptionErrors() uint64 {
	m.mu.Lock()
	s := m.store
	m.mu.Unlock()
	n := m.openCorrupt.Load()
	if s != nil {
		n += s.CorruptionErrors()
	}
	return n
}

func (m *metrics) pipeline() *ingest.Pipeline {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.p
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descDuplicates, descLate, descTooLate, descRejects, descAlerts, descStored,
		descBatches, descLag, descStreamTime, descState, descRestore, descReady, descCorrupt, descDamaged} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	p := m.pipeline()
	ready, damaged := 0.0, 0.0
	if m.damage.Load() != nil {
		damaged = 1
	} else if p != nil && p.Ready() {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, ready)
	ch <- prometheus.MustNewConstMetric(descDamaged, prometheus.GaugeValue, damaged)
	ch <- prometheus.MustNewConstMetric(descCorrupt, prometheus.CounterValue, float64(m.corruptionErrors()))
	if p == nil {
		return
	}
	st := p.Stats()
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(descMessages, st.Messages)
	counter(descDuplicates, st.Duplicates)
	counter(descLate, st.Late)
	counter(descTooLate, st.TooLate)
	for reason, n := range st.RejectsByReason {
		counter(descRejects, n, reason)
	}
	for _, t := range processors.AlertTypes { // every type, 0 included, so rates exist
		counter(descAlerts, st.Alerts[t], string(t))
	}
	counter(descStored, st.Shifts)
	counter(descBatches, st.Batches)
	for _, s := range p.Partitions() {
		part := strconv.Itoa(int(s.Partition))
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
		}
		gauge(descLag, float64(s.Lag()), s.Role.String(), s.Topic, part)
		if s.Role != ingest.RoleProcess {
			continue
		}
		if !s.StreamTime.IsZero() {
			gauge(descStreamTime, float64(s.StreamTime.UnixMilli())/1000, part)
		}
		gauge(descState, float64(s.StateBytes), part)
		gauge(descRestore, s.RestoreProgress, part)
	}
}

// serve starts the server on addr; "" or "off" serves nothing.
func (m *metrics) serve(addr string, log *slog.Logger) error {
	if addr == "" || addr == MetricsOff {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if errp := m.failed.Load(); errp != nil {
			http.Error(w, "failed: "+(*errp).Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		p := m.pipeline()
		switch {
		case m.damage.Load() != nil:
			d := m.damage.Load()
			http.Error(w, fmt.Sprintf("damaged: %v\nThe sink has stopped storing into it; reads of what is intact go on.\n%s",
				d.err, d.advice), http.StatusServiceUnavailable)
		case m.failed.Load() != nil:
			http.Error(w, "failed", http.StatusServiceUnavailable)
		case p == nil:
			http.Error(w, "starting: opening the DuckDB file", http.StatusServiceUnavailable)
		case !p.Ready():
			http.Error(w, "starting: joining the consumer groups and restoring state", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	m.addr = ln.Addr().String()
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", "http://"+m.addr+"/metrics")
	return nil
}

func (m *metrics) stop() {
	if m == nil || m.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = m.srv.Shutdown(ctx)
	<-m.done
}
