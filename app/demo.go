package app

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/simulator"
)

// DemoOptions configure the demo.
type DemoOptions struct {
	// DuckDB is the output file. Default "stakhanov.duckdb". A file the demo
	// made before is replaced; any other file is refused.
	DuckDB string
	// Simulation is the synthetic input. Default simulator.DefaultConfig().
	Simulation simulator.Config
	// Partitions of the input topic. Default 8.
	Partitions int
	// QueryAddr serves read-only SQL over the file while the demo runs, as
	// the run command does (LiveOptions.QueryAddr); POST /v1/snapshot
	// writes to <DuckDB>.snapshot. Default "127.0.0.1:0"; "off" or ""
	// serves none. Loopback only: the demo takes no credentials.
	QueryAddr string
	// Out receives the summary, Progress the running progress line (nil
	// for none).
	Out, Progress io.Writer
	Logger        *slog.Logger
}

// DefaultDemoOptions returns the defaults.
func DefaultDemoOptions() DemoOptions {
	return DemoOptions{DuckDB: "stakhanov.duckdb", Simulation: simulator.DefaultConfig(), Partitions: 8,
		QueryAddr: DefaultQueryAddr, Out: os.Stdout, Progress: os.Stderr}
}

// DemoResult is what the demo did, for its summary and for tests.
type DemoResult struct {
	DuckDB     string
	Simulation simulator.Config
	Stats      ingest.Stats
	Truth      *simulator.Truth
	Elapsed    time.Duration
	// Found counts the planted findings present among the stored alerts.
	FoundRecords, FoundSuspects, FoundPaceSetters int
	// OpenPaceSetters are planted pace-setters of days still open when the
	// stream ended: no later event moved stream time past their day's end
	// plus the allowed lateness, so their day was never judged.
	OpenPaceSetters int
	// NearMisses counts the planted near misses of days that closed, and
	// NearMissesAsPlanted those whose stored alerts are the truth's: an
	// alert on the side of a threshold that raises one, none on the other.
	NearMisses, NearMissesAsPlanted int
}

// ErrNotDemoFile protects files the demo did not make.
var ErrNotDemoFile = errors.New("file exists and was not made by stakhanov demo")

const demoMarker = "demo"

// Demo runs the whole product in one process: the embedded broker, the
// simulated plants, and the pipeline into DuckDB, until every message is
// stored. Then it prints what it found.
func Demo(ctx context.Context, o DemoOptions) (*DemoResult, error) {
	if o.DuckDB == "" {
		o.DuckDB = "stakhanov.duckdb"
	}
	if o.Partitions < 1 {
		o.Partitions = 8
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if host, _, err := net.SplitHostPort(o.QueryAddr); err == nil && !loopbackName(host) {
		return nil, fmt.Errorf("demo: --query-addr %s: the demo serves its endpoint on loopback only, without credentials; "+
			"stakhanov run serves beyond it, with a token and TLS (docs/live-reading.md)", o.QueryAddr)
	}
	if err := prepareDemoFile(ctx, o.DuckDB); err != nil {
		return nil, err
	}
	sim, err := simulator.New(o.Simulation)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	broker, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: o.Partitions, Topics: []string{"shift-events"}})
	if err != nil {
		return nil, err
	}
	defer broker.Close()

	store, err := analytics.Open(ctx, analytics.DefaultOptions(o.DuckDB))
	if err != nil {
		return nil, err
	}
	if err := setMeta(ctx, store.DB(), "origin", demoMarker); err != nil {
		store.Close()
		return nil, err
	}
	lo := DefaultLiveOptions()
	lo.QueryAddr, lo.SnapshotInterval = o.QueryAddr, 0
	lv, err := startLive(ctx, lo, o.DuckDB, store, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	// closeStore ends the endpoint's queries before the file closes.
	closeStore := func() error {
		lv.stop()
		return store.Close()
	}
	if lv.URL != "" && o.Progress != nil {
		fmt.Fprintf(o.Progress, "while the demo runs, read it with: stakhanov query --duckdb %s \"SELECT count(*) FROM shifts\" (endpoint %s)\n",
			o.DuckDB, lv.URL)
	}
	iopts := ingest.DefaultOptions(broker.Addr)
	iopts.Logger = log
	p, err := ingest.New(iopts, store)
	if err != nil {
		closeStore()
		return nil, err
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var sent atomic.Int64
	produced := make(chan error, 1)
	go func() {
		produced <- Produce(runCtx, DefaultProduceOptions(broker.Addr), sim, &sent)
	}()
	ran := make(chan error, 1)
	go func() { ran <- p.Run(runCtx) }()

	expected := int64(o.Simulation.ExpectedMessages())
	prog := newProgress(o.Progress)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	producing := true
	var runErr error
wait:
	for {
		select {
		case err := <-produced:
			if err != nil {
				stop()
				<-ran
				closeStore()
				return nil, err
			}
			producing = false
			expected = sent.Load()
		case err := <-ran:
			runErr = err
			if runErr == nil {
				runErr = ctx.Err()
			}
			break wait
		case <-tick.C:
			st := p.Stats()
			prog.show(sent.Load(), st, expected, time.Since(start))
			if !producing && st.Messages >= expected {
				if lag, err := p.Lag(ctx); err == nil && sum(lag) == 0 {
					stop()
					runErr = <-ran
					break wait
				}
			}
		}
	}
	prog.done()
	res := &DemoResult{DuckDB: o.DuckDB, Simulation: o.Simulation, Stats: p.Stats(), Truth: sim.Truth(), Elapsed: time.Since(start)}
	if err := closeStore(); err != nil && runErr == nil {
		runErr = err
	}
	if runErr != nil {
		return res, runErr
	}
	if err := res.check(ctx); err != nil {
		return res, err
	}
	return res, res.print(ctx, o.Out)
}

func sum(m map[int32]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

// prepareDemoFile removes the previous demo's file, and refuses any other.
func prepareDemoFile(ctx context.Context, path string) error {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	s, err := openReadOnly(ctx, path)
	if err != nil {
		return fmt.Errorf("%s: %w (%v)", path, ErrNotDemoFile, err)
	}
	origin, err := getMeta(ctx, s.DB(), "origin")
	s.Close()
	if err != nil || origin != demoMarker {
		return fmt.Errorf("%s: %w; choose another --duckdb file", path, ErrNotDemoFile)
	}
	for _, f := range []string{path, path + ".wal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

func setMeta(ctx context.Context, db *sql.DB, k, v string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS stakhanov_meta(key VARCHAR PRIMARY KEY, value VARCHAR)`); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `INSERT OR REPLACE INTO stakhanov_meta VALUES (?, ?)`, k, v)
	return err
}

func getMeta(ctx context.Context, db *sql.DB, k string) (string, error) {
	var v string
	err := db.QueryRowContext(ctx, `SELECT value FROM stakhanov_meta WHERE key = ?`, k).Scan(&v)
	return v, err
}

// check counts the planted findings among the stored alerts.
func (r *DemoResult) check(ctx context.Context) error {
	s, err := openReadOnly(ctx, r.DuckDB)
	if err != nil {
		return err
	}
	defer s.Close()
	ids := map[string]bool{}
	rows, err := s.DB().QueryContext(ctx, `SELECT alert_id FROM alerts`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, e := range r.Truth.RecordShifts {
		if ids[processors.ShiftAlertID(processors.RecordShift, e)] {
			r.FoundRecords++
		}
	}
	for _, e := range r.Truth.SuspectRecords {
		if ids[processors.ShiftAlertID(processors.SuspectRecord, e)] {
			r.FoundSuspects++
		}
	}
	end := r.Simulation.Start.AddDate(0, 0, r.Simulation.Days)
	lateness := processors.DefaultOptions().AllowedLateness
	for _, ps := range r.Truth.PaceSetters {
		if ids[processors.DayAlertID(processors.PaceSetter, ps.Group, ps.WorkerID, ps.Day)] {
			r.FoundPaceSetters++
		} else if ps.Day.End().Add(lateness).After(end) {
			r.OpenPaceSetters++
		}
	}
	for _, n := range r.Truth.NearRecords {
		r.NearMisses++
		record := ids[processors.ShiftAlertID(processors.RecordShift, n.EventID)]
		suspect := ids[processors.ShiftAlertID(processors.SuspectRecord, n.EventID)]
		if record == (n.Alert == simulator.AlertRecordShift) && suspect == (n.Alert == simulator.AlertSuspectRecord) {
			r.NearMissesAsPlanted++
		}
	}
	for _, n := range r.Truth.NearDays {
		if n.Day.End().Add(lateness).After(end) {
			continue
		}
		r.NearMisses++
		pace := n.WorkerID != "" && ids[processors.DayAlertID(processors.PaceSetter, n.Group, n.WorkerID, n.Day)]
		if pace == n.PaceSetter && ids[processors.DayAlertID(processors.CommonPace, n.Group, "", n.Day)] == n.Common {
			r.NearMissesAsPlanted++
		}
	}
	return nil
}

func (r *DemoResult) print(ctx context.Context, w io.Writer) error {
	st, t := r.Stats, r.Truth
	c := r.Simulation
	first := c.Start.Format(time.DateOnly)
	last := c.Start.AddDate(0, 0, c.Days-1).Format(time.DateOnly)
	fmt.Fprintf(w, "\nStakhanov demo: %d simulated plants in %d industries, %s to %s, through Kafka into DuckDB in %s\n\n",
		c.Plants, min(c.Plants, len(c.Industries)), first, last, r.Elapsed.Round(10*time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  messages\t%d\t(%.0f/s)\n", st.Messages, float64(st.Messages)/r.Elapsed.Seconds())
	fmt.Fprintf(tw, "  shifts stored\t%d\n", st.Shifts)
	fmt.Fprintf(tw, "  duplicates dropped\t%d\n", st.Duplicates)
	fmt.Fprintf(tw, "  late reports\t%d\t(stored; judged against what their plant still holds, changing nothing already judged)\n", st.Late)
	fmt.Fprintf(tw, "  bad records\t%d\t(dead-letter topic and rejects table)\n", st.Rejects)
	for _, at := range processors.AlertTypes {
		fmt.Fprintf(tw, "  %s alerts\t%d\n", at, st.Alerts[at])
	}
	fmt.Fprintf(tw, "  planted findings found\trecords %d/%d, suspect %d/%d, pace-setters %d/%d",
		r.FoundRecords, len(t.RecordShifts), r.FoundSuspects, len(t.SuspectRecords), r.FoundPaceSetters, len(t.PaceSetters))
	if r.OpenPaceSetters > 0 {
		fmt.Fprintf(tw, " (%d on the last day, still open when the stream ended)", r.OpenPaceSetters)
	}
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "  near misses judged as planted\t%d/%d\t(just either side of a threshold)\n", r.NearMissesAsPlanted, r.NearMisses)
	tw.Flush()

	fmt.Fprintf(w, "\nTop records (rate against the norm of the peer group's last 28 days):\n\n")
	s, err := openReadOnly(ctx, r.DuckDB)
	if err != nil {
		return err
	}
	defer s.Close()
	const top = `SELECT a.day, a.plant_id, a.role, a.worker_id, round(s.output, 1) || ' ' || s.unit AS output,
  s.shift_hours AS hours, s.crew_size AS crew, round(a.norm_rate * s.shift_hours, 1) AS norm_per_shift,
  round(a.ratio, 1) AS ratio, round(s.crew_ratio, 1) AS ratio_per_crew_hour, a.type
FROM alerts a JOIN shifts s USING (event_id)
WHERE a.type IN ('record_shift', 'suspect_record')
ORDER BY a.ratio DESC LIMIT 8`
	if err := s.Query(ctx, top, w, "table"); err != nil {
		return err
	}
	abs, _ := filepath.Abs(r.DuckDB)
	fmt.Fprintf(w, "\nResults are in %s (tables shifts, alerts, norms, rejects, rule_options, ingest_offsets). Try:\n\n", abs)
	fmt.Fprintf(w, "  stakhanov query --duckdb %s \"SELECT type, count(*) FROM alerts GROUP BY type ORDER BY type\"\n\n", r.DuckDB)
	return nil
}

// progress draws one updating line on a terminal, or a line every few
// seconds elsewhere.
type progress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) show(sent int64, st ingest.Stats, expected int64, elapsed time.Duration) {
	if p.w == nil {
		return
	}
	if !p.tty && time.Since(p.last) < 2*time.Second {
		return
	}
	p.last = time.Now()
	pct := 0.0
	if expected > 0 {
		pct = 100 * float64(st.Messages) / float64(expected)
	}
	var alerts int64
	for _, n := range st.Alerts {
		alerts += n
	}
	line := fmt.Sprintf("produced %d  stored %d (%.0f%%)  %.0f msg/s  alerts %d  rejects %d",
		sent, st.Messages, min(pct, 100), float64(st.Messages)/elapsed.Seconds(), alerts, st.Rejects)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, line)
	}
}

func (p *progress) done() {
	if p.w != nil && p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}
