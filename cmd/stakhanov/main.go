// Command stakhanov is the pipeline's one binary: run it against Kafka, try
// it on the embedded broker, feed it simulated plants, query its output and
// measure it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/app"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/simulator"
)

const usage = `stakhanov — record shifts, norms and pace-setters from shift events on Kafka

Usage:
  stakhanov demo     [--duckdb FILE]                 the whole pipeline on an embedded broker and simulated plants
  stakhanov run      --brokers HOST:PORT[,…] [flags]  the long-running pipeline against any Kafka (--role process|sink|all)
  stakhanov broker   [--listen 127.0.0.1:9092]       an embedded Kafka-protocol broker for development
  stakhanov simulate --brokers HOST:PORT[,…]         produce simulated plants' shift events
  stakhanov query    [--duckdb FILE] [--format table|csv|json|arrow] [--endpoint URL] SQL
  stakhanov snapshot [--duckdb FILE] [--endpoint URL] a consistent copy (DuckDB file + Parquet) that nobody holds
  stakhanov export   [--duckdb FILE] --out DIR       the tables as Parquet, partitioned by industry, plant and month
  stakhanov bench    [--events N] [--input TOPIC] [--brokers …] [--rate R] [--json]

query, snapshot and export work while a pipeline holds the file: they go
through the read-only endpoint it serves (see docs/live-reading.md).
Run "stakhanov COMMAND -h" for a command's flags.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "demo":
		err = demo(ctx, args)
	case "run":
		err = run(ctx, args)
	case "broker":
		err = broker(ctx, args)
	case "simulate":
		err = simulate(ctx, args)
	case "query":
		err = query(ctx, args)
	case "snapshot":
		err = snapshot(ctx, args)
	case "export":
		err = export(ctx, args)
	case "bench":
		err = bench(ctx, args)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "stakhanov: unknown command %q\n\n%s", cmd, usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stakhanov: %v\n", err)
		os.Exit(1)
	}
}

func newFlags(name, synopsis string, about ...string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: stakhanov %s\n\n", synopsis)
		for _, a := range about {
			fmt.Fprintf(fs.Output(), "%s\n\n", a)
		}
		fmt.Fprintf(fs.Output(), "Flags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// logFlags adds --log-level and --log-format and returns a constructor.
func logFlags(fs *flag.FlagSet, defaultLevel string) func() *slog.Logger {
	level := fs.String("log-level", defaultLevel, "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	return func() *slog.Logger {
		var l slog.Level
		if err := l.UnmarshalText([]byte(*level)); err != nil {
			l = slog.LevelInfo
		}
		o := &slog.HandlerOptions{Level: l}
		if *format == "json" {
			return slog.New(slog.NewJSONHandler(os.Stderr, o))
		}
		return slog.New(slog.NewTextHandler(os.Stderr, o))
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func demo(ctx context.Context, args []string) error {
	fs := newFlags("demo", "demo [--duckdb FILE] [flags]")
	o := app.DefaultDemoOptions()
	fs.StringVar(&o.DuckDB, "duckdb", o.DuckDB, "DuckDB file to write (a previous demo's file is replaced)")
	fs.Int64Var(&o.Simulation.Seed, "seed", o.Simulation.Seed, "simulation seed")
	fs.IntVar(&o.Simulation.Plants, "plants", o.Simulation.Plants, "simulated plants")
	fs.IntVar(&o.Simulation.Days, "days", o.Simulation.Days, "simulated days")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "input topic partitions")
	fs.StringVar(&o.QueryAddr, "query-addr", o.QueryAddr, "serve read-only SQL over the file while the demo runs, on this host:port (\"off\": none)")
	// the progress line has the terminal: only problems are logged
	logger := logFlags(fs, "warn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Logger = logger()
	_, err := app.Demo(ctx, o)
	return err
}

func run(ctx context.Context, args []string) error {
	fs := newFlags("run", "run --brokers HOST:PORT[,…] [flags]",
		`While the sink (--role sink or all) holds the DuckDB file, no other process can open it.
Analysts read it through the read-only SQL endpoint this process serves (--query-addr;
its URL is written to FILE.endpoint, which "stakhanov query|snapshot|export" find by
themselves) and through snapshots in --snapshot-dir, taken every --snapshot-interval
and on request (POST /v1/snapshot, "stakhanov snapshot"). See docs/live-reading.md.`)
	ro := app.DefaultRunOptions()
	io := ro.Ingest
	po := &io.Processor
	lo := &ro.Live
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers, comma-separated (required)")
	duck := fs.String("duckdb", ro.DuckDB.Path, "DuckDB file to write")
	fs.StringVar(&lo.QueryAddr, "query-addr", lo.QueryAddr,
		"host:port of the read-only SQL endpoint (port 0: a free one, written to FILE.endpoint); \"off\": none. "+
			"Any address but loopback is served only when given here, with a warning: the endpoint has no authentication")
	fs.DurationVar(&lo.QueryTimeout, "query-timeout", lo.QueryTimeout, "longest run of one endpoint query")
	fs.IntVar(&lo.QueryMaxConcurrent, "query-max-concurrent", lo.QueryMaxConcurrent, "endpoint queries and snapshots at once; more get HTTP 503")
	fs.StringVar(&lo.SnapshotDir, "snapshot-dir", "", "directory of snapshots, periodic and requested (default FILE.snapshot beside the DuckDB file)")
	fs.DurationVar(&lo.SnapshotInterval, "snapshot-interval", lo.SnapshotInterval, "how often the sink takes a snapshot, when something was stored since the last (0: only on request)")
	fs.StringVar(&io.Group, "group", io.Group, "consumer group")
	fs.StringVar(&io.InputTopic, "input", io.InputTopic, "input topic of shift events")
	fs.StringVar(&io.AlertsTopic, "alerts", io.AlertsTopic, "alerts topic (created if missing)")
	fs.StringVar(&io.DLQTopic, "dlq", io.DLQTopic, "dead-letter topic (created if missing)")
	fs.BoolVar(&io.CreateTopics, "create-topics", io.CreateTopics, "create missing alerts and dead-letter topics")
	role := fs.String("role", "all", "what this process runs: process (the rules, no DuckDB), sink (the DuckDB writer, one per file) or all")
	fs.BoolVar(&io.Repartition, "repartition", io.Repartition, "re-key input by plant_id through an internal topic (input not keyed by plant)")
	fs.DurationVar(&io.CheckpointInterval, "checkpoint-interval", io.CheckpointInterval, "how often partition state is checkpointed to Kafka")
	fs.IntVar(&io.BatchMaxEvents, "batch-max-events", io.BatchMaxEvents, "input messages per processed batch at most")
	fs.IntVar(&io.SinkBatchMaxRows, "sink-batch-max-rows", io.SinkBatchMaxRows, "rows per DuckDB commit at most; bounds the sink's memory")
	fs.DurationVar(&io.BatchMaxWait, "batch-max-wait", io.BatchMaxWait, "longest wait before committing a batch")
	fs.DurationVar(&po.Window, "window", po.Window, "trailing window of a shift's norm")
	fs.DurationVar(&po.AllowedLateness, "lateness", po.AllowedLateness, "allowed lateness before a day closes")
	fs.IntVar(&po.RecordMinShifts, "record-min-shifts", po.RecordMinShifts, "shifts in the window needed to judge a record")
	fs.Float64Var(&po.RecordRatio, "record-ratio", po.RecordRatio, "rate over the norm that makes a record")
	fs.Float64Var(&po.SuspectScrapShare, "suspect-scrap-share", po.SuspectScrapShare, "scrap share above which a record is suspect")
	fs.IntVar(&po.PaceMinWorkers, "pace-min-workers", po.PaceMinWorkers, "workers a day group needs to be judged for pace")
	fs.Float64Var(&po.PaceSetterRatio, "pace-setter-ratio", po.PaceSetterRatio, "day rate over the day's median that makes a pace-setter")
	fs.Float64Var(&po.CommonPaceTolerance, "common-pace-tolerance", po.CommonPaceTolerance, "half-width of the common level, relative to the median")
	fs.Float64Var(&po.CommonPaceShare, "common-pace-share", po.CommonPaceShare, "share of workers at the common level for common_pace")
	threads := fs.Int("duckdb-threads", analytics.DefaultThreads, "DuckDB worker threads")
	mem := fs.String("duckdb-memory-limit", analytics.DefaultMemoryLimit, "DuckDB memory limit")
	report := fs.Duration("report-every", ro.ReportEvery, "interval of progress log lines (0: none)")
	logger := logFlags(fs, "info")
	if err := fs.Parse(args); err != nil {
		return err
	}
	io.Brokers = splitList(*brokers)
	io.Logger = logger()
	var err error
	if io.Roles, err = ingest.ParseRoles(*role); err != nil {
		return err
	}
	d := analytics.DefaultOptions(*duck)
	d.Threads, d.MemoryLimit = *threads, *mem
	ro.Ingest, ro.DuckDB, ro.ReportEvery = io, d, *report
	_, err = app.Run(ctx, ro)
	return err
}

func broker(ctx context.Context, args []string) error {
	fs := newFlags("broker", "broker [--listen 127.0.0.1:9092] [--partitions N] [--data-dir DIR]")
	o := app.DefaultBrokerOptions()
	fs.StringVar(&o.Listen, "listen", o.Listen, "loopback address to serve")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of created topics")
	fs.StringVar(&o.DataDir, "data-dir", "", "directory to persist the log in (default: memory only)")
	topics := fs.String("topics", strings.Join(o.Topics, ","), "topics to create at start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Topics = splitList(*topics)
	b, err := app.StartBroker(o)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("embedded broker serving on %s (topics %v, %d partitions; others created on first use)\n", b.Addr, o.Topics, o.Partitions)
	<-ctx.Done()
	return nil
}

func simulate(ctx context.Context, args []string) error {
	fs := newFlags("simulate", "simulate --brokers HOST:PORT[,…] [flags]")
	po := app.DefaultProduceOptions()
	cfg := simulator.DefaultConfig()
	brokers := fs.String("brokers", "", "Kafka bootstrap brokers (required)")
	fs.StringVar(&po.Topic, "topic", po.Topic, "topic to produce to")
	fs.IntVar(&po.Partitions, "partitions", po.Partitions, "partitions if the topic must be created")
	fs.Float64Var(&po.Rate, "rate", 0, "messages per second (0: as fast as possible)")
	events := fs.Int("events", 0, "scale the simulation to about this many messages (0: the default run)")
	seed := fs.Int64("seed", cfg.Seed, "simulation seed")
	if err := fs.Parse(args); err != nil {
		return err
	}
	po.Brokers = splitList(*brokers)
	if *events > 0 {
		cfg = simulator.ConfigForEvents(*events)
	}
	cfg.Seed = *seed
	sim, err := simulator.New(cfg)
	if err != nil {
		return err
	}
	var sent atomic.Int64
	start := time.Now()
	if err := app.Produce(ctx, po, sim, &sent); err != nil {
		return err
	}
	t := sim.Truth()
	fmt.Printf("produced %d messages to %s in %s: %d valid on time, %d late, %d duplicates, %d malformed; planted %d records, %d suspect records, %d pace-setters\n",
		sent.Load(), po.Topic, time.Since(start).Round(time.Millisecond), t.OnTime, t.LateCount, t.DuplicateCount, t.MalformedCount,
		t.RecordCount, t.SuspectCount, t.PaceSetterCount)
	return nil
}

func query(ctx context.Context, args []string) error {
	fs := newFlags("query", "query [--duckdb FILE] [--format table|csv|json|arrow] [--endpoint URL] SQL",
		`Runs one SQL statement over the DuckDB file, read-only. A file no process holds is opened
directly. A file a running pipeline holds is queried through the endpoint that pipeline
serves (found through FILE.endpoint, or given with --endpoint); it answers one SELECT
(or DESCRIBE, SHOW, SUMMARIZE, EXPLAIN) per request and refuses anything that writes.
--format arrow writes an Arrow IPC stream: redirect it to a file or a pipe.`)
	duck := fs.String("duckdb", "stakhanov.duckdb", "DuckDB file to read")
	format := fs.String("format", analytics.FormatTable, "output format: "+strings.Join(analytics.Formats, ", "))
	endpoint := fs.String("endpoint", "", "query this endpoint (http://host:port) instead of finding one for --duckdb")
	if err := fs.Parse(args); err != nil {
		return err
	}
	sql := strings.Join(fs.Args(), " ")
	if strings.TrimSpace(sql) == "" {
		fs.Usage()
		return errors.New("no SQL given")
	}
	if *format == analytics.FormatArrow && isTerminal(os.Stdout) {
		return errors.New("--format arrow writes binary: redirect standard output to a file or a pipe")
	}
	if *endpoint != "" {
		if err := analytics.CheckFormat(*format); err != nil {
			return err
		}
		return app.QueryEndpoint(ctx, *endpoint, sql, *format, os.Stdout)
	}
	return app.Query(ctx, *duck, sql, *format, os.Stdout)
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func snapshot(ctx context.Context, args []string) error {
	fs := newFlags("snapshot", "snapshot [--duckdb FILE] [--endpoint URL] [--dir DIR] [--json]",
		`Takes a consistent snapshot of the DuckDB file and prints where it is: a copy of the
database (DIR/stakhanov-snapshot.duckdb) and a Parquet export (DIR/parquet), from one
transaction, that any process may open. When a running pipeline holds the file, the
pipeline takes it, into its own --snapshot-dir; otherwise it is taken here, into --dir.`)
	o := app.SnapshotOptions{}
	fs.StringVar(&o.DuckDB, "duckdb", "stakhanov.duckdb", "DuckDB file to snapshot")
	fs.StringVar(&o.Endpoint, "endpoint", "", "ask this endpoint (http://host:port) instead of finding one for --duckdb")
	fs.StringVar(&o.Dir, "dir", "", "directory for a snapshot taken here, of a file no process holds (default FILE.snapshot)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := app.Snapshot(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("snapshot: %s\nparquet:  %s\ntook %s; rows: %s\n", res.Path, res.ParquetDir,
		time.Duration(res.TookMS)*time.Millisecond, rowCounts(res.Tables))
	return nil
}

func export(ctx context.Context, args []string) error {
	fs := newFlags("export", "export [--duckdb FILE] [--endpoint URL] --out DIR",
		`Writes the tables shifts, alerts, norms and rejects as Parquet under DIR (missing or
empty): DIR/<table>/industry=…/plant_id=…/month=YYYY-MM/*.parquet, rejects in one file.
A file no process holds is read directly; for a file a running pipeline holds, the
pipeline takes a snapshot and the export is read from it.`)
	o := app.ExportOptions{}
	fs.StringVar(&o.DuckDB, "duckdb", "stakhanov.duckdb", "DuckDB file to export")
	fs.StringVar(&o.Endpoint, "endpoint", "", "ask this endpoint (http://host:port) for the snapshot instead of finding one for --duckdb")
	fs.StringVar(&o.Out, "out", "", "directory to write (required; missing or empty)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Out == "" {
		fs.Usage()
		return errors.New("no --out directory given")
	}
	res, from, err := app.Export(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("exported %s to %s in %s (read from %s)\n", rowCounts(res.Tables), res.ParquetDir,
		time.Duration(res.TookMS)*time.Millisecond, from)
	return nil
}

func rowCounts(tables map[string]int64) string {
	var parts []string
	for _, t := range analytics.ExportTables {
		if n, ok := tables[t]; ok {
			parts = append(parts, fmt.Sprintf("%s %d", t, n))
		}
	}
	return strings.Join(parts, ", ")
}
