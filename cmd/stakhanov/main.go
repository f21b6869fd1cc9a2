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
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/stakhanov/stakhanov/access"
	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/app"
	"github.com/stakhanov/stakhanov/config"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/simulator"
)

const usage = `stakhanov — record shifts, norms and pace-setters from shift events on Kafka

Usage:
  stakhanov demo     [--duckdb FILE]                 the whole pipeline on an embedded broker and simulated plants
  stakhanov run      --brokers HOST:PORT[,…] [flags]  the long-running pipeline against any Kafka (--role process|sink|all)
  stakhanov config   [--config FILE] [flags]         the configuration run would use (file < environment < flags)
  stakhanov status   --brokers HOST:PORT[,…] [--config FILE] [--json]  each partition's committed offset, lag, owner, stream time
  stakhanov broker   [--listen 127.0.0.1:9092]       an embedded Kafka-protocol broker for development
  stakhanov simulate --brokers HOST:PORT[,…]         produce simulated plants' shift events
  stakhanov query    [--duckdb FILE] [--format table|csv|json|arrow] [--endpoint URL | --flight URL] SQL
  stakhanov snapshot [--duckdb FILE] [--endpoint URL] a consistent copy (DuckDB file + Parquet) that nobody holds
  stakhanov export   [--duckdb FILE] --out DIR       the tables as Parquet, by month or year, sorted by plant and time
  stakhanov token    [--out FILE]                    a new bearer token for the query endpoint
  stakhanov rebuild  --duckdb NEW [--config FILE | --brokers … --group …] [--allow-partial]
                                                     a new DuckDB file from the results topic, for a damaged one
  stakhanov bench    [--events N] [--input TOPIC] [--brokers …] [--rate R] [--json]

query, snapshot and export work while a pipeline holds the file: they go
through the read-only endpoint it serves, sending the token of
$STAKHANOV_ENDPOINTS_QUERY_TOKEN or --query-token-file (see docs/live-reading.md).
Run "stakhanov COMMAND -h" for a command's flags.

Exit status: 0 done, 1 failed, 2 usage, 3 the DuckDB file is damaged
(rebuild it: docs/operations.md, "A damaged DuckDB file").
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
	case "config":
		err = showConfig(ctx, args)
	case "status":
		err = status(ctx, args)
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
	case "token":
		err = token(ctx, args)
	case "rebuild":
		err = rebuild(ctx, args)
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
	if errors.Is(err, errSilent) {
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "stakhanov: %v\n", err)
	}
	os.Exit(exitCode(err))
}

// Exit statuses beyond 0, 1 and 2 (usage).
const exitDamaged = 3 // the DuckDB file is damaged: rebuild it

func exitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, analytics.ErrCorrupt):
		return exitDamaged
	}
	return 1
}

// errSilent fails a command that has said why already.
var errSilent = errors.New("failed")

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
	fs.StringVar(&o.QueryAddr, "query-addr", o.QueryAddr, "serve read-only SQL over the file while the demo runs, on this loopback host:port (\"off\": none)")
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
	c, _, err := resolveRun("run", "run --brokers HOST:PORT[,…] [--config FILE] [flags]", args, nil,
		`While the sink (--role sink or all) holds the DuckDB file, no other process can open it.
Analysts read it through the read-only SQL endpoint this process serves (--query-addr;
its URL is written to FILE.endpoint, which "stakhanov query|snapshot|export" find by
themselves), through its Arrow Flight SQL server (--flight-addr; its URL is written to
FILE.flight) and through snapshots in --snapshot-dir, taken every --snapshot-interval
and on request (POST /v1/snapshot, "stakhanov snapshot"). See docs/live-reading.md.

On loopback (the default) both may be open. On any other address they require
credentials, or run refuses to start: a bearer token (--query-token-file, or
$STAKHANOV_ENDPOINTS_QUERY_TOKEN; "stakhanov token" makes one) or client certificates
(--query-tls-client-ca-file), the same for both. --query-tls-cert-file and
--query-tls-key-file serve both over TLS, with one certificate.`)
	if err != nil {
		return err
	}
	log, err := c.Logger(os.Stderr)
	if err != nil {
		return err
	}
	c.Run.Ingest.Logger = log
	c.Run.ConfigFile = configPath(args)
	if unknown := c.Registry().UnknownEnv(os.Environ(), knownEnv...); len(unknown) > 0 {
		log.Warn("environment variables that name no option, ignored", "variables", unknown)
	}
	_, err = app.Run(ctx, c.Run)
	return err
}

// knownEnv are STAKHANOV_ variables that are not options.
var knownEnv = []string{configEnv, "STAKHANOV_PYTHON"}

// configEnv names the configuration file when --config is not given.
const configEnv = "STAKHANOV_CONFIG"

// resolveRun reads the run command's options: defaults, then the file of
// --config (or $STAKHANOV_CONFIG), then STAKHANOV_… variables, then flags.
func resolveRun(name, synopsis string, args []string, extra func(*flag.FlagSet), about ...string) (*app.RunConfig, *config.Registry, error) {
	fs := newFlags(name, synopsis, append(about, `Every option can also be set in a YAML file (--config; deploy/stakhanov.yaml
is a commented example) and in the environment (the variable in brackets);
flags override the environment, which overrides the file. "stakhanov config"
prints the resolved configuration.`)...)
	c := app.DefaultRunConfig()
	reg := c.Registry()
	path := fs.String("config", "", "YAML configuration file (default $"+configEnv+")")
	reg.Bind(fs)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	if *path == "" {
		*path = os.Getenv(configEnv)
	}
	if err := reg.Resolve(*path, nil); err != nil {
		return nil, nil, err
	}
	return c, reg, nil
}

// status prints how the pipeline's groups stand, from the brokers.
func status(ctx context.Context, args []string) error {
	var asJSON *bool
	c, _, err := resolveRun("status", "status --brokers HOST:PORT[,…] [--config FILE] [--json]", args,
		func(fs *flag.FlagSet) { asJSON = fs.Bool("json", false, "print the report as JSON") },
		"Reads, from the brokers alone, each input partition's committed offset, lag, owner and the stream\ntime of its latest checkpoint, and the sink group's position on the results topic. It takes\nthe same configuration as run (--config, STAKHANOV_… variables, flags) and changes nothing.")
	if err != nil {
		return err
	}
	c.Run.Ingest.Logger = slog.New(slog.DiscardHandler)
	if err := c.Run.Ingest.Validate(); err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	r, err := ingest.Report(rctx, c.Run.Ingest)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	fmt.Printf("group %s (%s) on %s; sink group %s (%s) on %s\n\n", r.Group, orNone(r.GroupState), r.Input,
		r.SinkGroup, orNone(r.SinkState), r.Results)
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tEND\tLAG\tOWNER\tSTREAM TIME\tCHECKPOINT AT\tSINK COMMITTED\tSINK LAG\tSINK OWNER")
	for _, p := range r.Partitions {
		st := "-"
		if !p.StreamTime.IsZero() {
			st = p.StreamTime.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", p.Partition, offset(p.Committed), p.End, p.Lag, orNone(p.Owner),
			st, offset(p.CheckpointOffset), offset(p.SinkCommitted), lagOf(p.SinkEnd, p.SinkLag), orNone(p.SinkOwner))
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func offset(o int64) string {
	if o < 0 {
		return "-"
	}
	return strconv.FormatInt(o, 10)
}

func lagOf(end, lag int64) string {
	if end < 0 {
		return "-"
	}
	return strconv.FormatInt(lag, 10)
}

// showConfig prints the configuration run would use, secrets redacted.
func showConfig(_ context.Context, args []string) error {
	c, reg, err := resolveRun("config", "config [--config FILE] [run's flags]", args, nil,
		"Prints the configuration \"stakhanov run\" would use with the same file, environment\nand flags, as YAML, secrets redacted; each value not a default says where it came from.")
	if err != nil {
		return err
	}
	if err := reg.WriteYAML(os.Stdout); err != nil {
		return err
	}
	if err := c.Run.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "stakhanov config: this configuration would not run: %v\n", err)
		return errSilent
	}
	return nil
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
	shuffle := fs.Bool("shuffle", false, "send each day's reports in a random order (out of order within the allowed lateness)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	po.Brokers = splitList(*brokers)
	if *events > 0 {
		cfg = simulator.ConfigForEvents(*events)
	}
	cfg.Seed, cfg.ShuffleDays = *seed, *shuffle
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
	fmt.Printf("produced %d messages to %s in %s: %d valid on time, %d late, %d duplicates, %d malformed; planted %d records, %d suspect records, %d pace-setters, %d near misses\n",
		sent.Load(), po.Topic, time.Since(start).Round(time.Millisecond), t.OnTime, t.LateCount, t.DuplicateCount, t.MalformedCount,
		t.RecordCount, t.SuspectCount, t.PaceSetterCount, t.NearRecordCount+t.NearDayCount)
	return nil
}

func query(ctx context.Context, args []string) error {
	fs := newFlags("query", "query [--duckdb FILE] [--format table|csv|json|arrow] [--endpoint URL | --flight URL] SQL",
		`Runs one SQL statement over the DuckDB file, read-only. A file no process holds is opened
directly. A file a running pipeline holds is queried through the endpoint that pipeline
serves (found through FILE.endpoint, or given with --endpoint), or through its Arrow
Flight SQL server with --flight (grpc://host:port, grpc+tls://host:port; the pipeline
writes it to FILE.flight). Either answers one SELECT (or DESCRIBE, SHOW, SUMMARIZE,
EXPLAIN) per request and refuses anything that writes.
--format arrow writes an Arrow IPC stream: redirect it to a file or a pipe.`, clientAbout)
	duck := fs.String("duckdb", "stakhanov.duckdb", "DuckDB file to read")
	format := fs.String("format", analytics.FormatTable, "output format: "+strings.Join(analytics.Formats, ", "))
	endpoint := fs.String("endpoint", "", "query this endpoint (http://host:port or https://…) instead of finding one for --duckdb")
	flightURL := fs.String("flight", "", "query this Arrow Flight SQL server (grpc://host:port or grpc+tls://host:port; the pipeline writes it to FILE.flight)")
	client := clientFlags(fs)
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
	if err := analytics.CheckFormat(*format); err != nil {
		return err
	}
	switch {
	case *flightURL != "" && *endpoint != "":
		return errors.New("give --endpoint or --flight, not both")
	case *flightURL != "":
		return app.QueryFlight(ctx, client(), *flightURL, sql, *format, os.Stdout)
	case *endpoint != "":
		return app.QueryEndpoint(ctx, client(), *endpoint, sql, *format, os.Stdout)
	}
	return app.Query(ctx, client(), *duck, sql, *format, os.Stdout)
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
pipeline takes it, into its own --snapshot-dir, under its own memory limit; otherwise it
is taken here, into --dir, under --memory-limit, with progress logged on stderr.`, clientAbout)
	o := app.SnapshotOptions{}
	fs.StringVar(&o.DuckDB, "duckdb", "stakhanov.duckdb", "DuckDB file to snapshot")
	fs.StringVar(&o.Endpoint, "endpoint", "", "ask this endpoint (http://host:port or https://…) instead of finding one for --duckdb")
	fs.StringVar(&o.Dir, "dir", "", "directory for a snapshot taken here, of a file no process holds (default FILE.snapshot)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	client := clientFlags(fs)
	logger := exportFlags(fs, &o.Local, "for a snapshot taken here: ")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Client = client()
	o.Local.Logger = logger()
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
empty), in hive partitions by the month or year of day, each sorted by plant and time,
in files of at most --file-size-mb:

  DIR/shifts/month=YYYY-MM/data_N.parquet
  DIR/alerts/year=YYYY/data_N.parquet
  DIR/norms/year=YYYY/data_N.parquet
  DIR/rejects/data_N.parquet

A file no process holds is read directly; for a file a running pipeline holds, the
pipeline takes a snapshot and the export is read from it. Memory stays within
--memory-limit, whatever the file's size: what does not fit is spilled to a directory
beside DIR. Progress is logged on stderr. See docs/live-reading.md.`, clientAbout)
	o := app.ExportOptions{}
	fs.StringVar(&o.DuckDB, "duckdb", "stakhanov.duckdb", "DuckDB file to export")
	fs.StringVar(&o.Endpoint, "endpoint", "", "ask this endpoint (http://host:port or https://…) for the snapshot instead of finding one for --duckdb")
	fs.StringVar(&o.Out, "out", "", "directory to write (required; missing or empty)")
	client := clientFlags(fs)
	logger := exportFlags(fs, &o.Local, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.Client = client()
	if o.Out == "" {
		fs.Usage()
		return errors.New("no --out directory given")
	}
	o.Local.Logger = logger()
	res, from, err := app.Export(ctx, o)
	if err != nil {
		return err
	}
	fmt.Printf("exported %s to %s in %s (read from %s)\n", rowCounts(res.Tables), res.ParquetDir,
		time.Duration(res.TookMS)*time.Millisecond, from)
	return nil
}

// clientAbout explains the client flags of query, snapshot and export.
const clientAbout = `An endpoint (or Flight SQL server) beyond loopback requires a bearer token: the first line
of --query-token-file, else of the file $STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE names, else
$STAKHANOV_ENDPOINTS_QUERY_TOKEN (the variables the pipeline reads its own from). An https://
endpoint (a grpc+tls:// server) is trusted by the system's authorities or --query-tls-ca-file.`

// clientFlags adds the flags of how query, snapshot and export reach an
// endpoint, and returns what they and the environment say.
func clientFlags(fs *flag.FlagSet) func() app.ClientOptions {
	tokenFile := fs.String("query-token-file", "", "file holding the endpoint's bearer token, sent from its first line (default $"+app.EnvQueryTokenFile+", else $"+app.EnvQueryToken+")")
	var t access.ClientTLSOptions
	fs.StringVar(&t.CAFile, "query-tls-ca-file", "", "PEM authorities to trust for an https:// endpoint or a grpc+tls:// server (default: the system's)")
	fs.StringVar(&t.CertFile, "query-tls-cert-file", "", "PEM client certificate, for an endpoint that requires one")
	fs.StringVar(&t.KeyFile, "query-tls-key-file", "", "PEM key of the client certificate")
	fs.StringVar(&t.ServerName, "query-tls-server-name", "", "name the endpoint's certificate must carry (default: the URL's host)")
	return func() app.ClientOptions {
		co := app.ClientOptionsFromEnv(nil)
		if *tokenFile != "" {
			co.TokenFile, co.Token = *tokenFile, ""
		}
		co.TLS = t
		return co
	}
}

// token makes a bearer token for the query endpoint.
func token(_ context.Context, args []string) error {
	fs := newFlags("token", "token [--out FILE]",
		`Makes a new bearer token for the query endpoint: 32 random bytes, in hex. Without --out
it is printed. With --out FILE it is written to FILE, created with mode 0600, unless FILE
holds a token already, which is kept (a container that starts again keeps its token).
Give the file to run (--query-token-file) and to the clients (--query-token-file, or
$STAKHANOV_ENDPOINTS_QUERY_TOKEN_FILE).`)
	out := fs.String("out", "", "write the token to this file, unless it holds one (default: print it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		fmt.Println(access.NewToken())
		return nil
	}
	created, err := access.EnsureTokenFile(*out)
	if err != nil {
		return err
	}
	if created {
		fmt.Printf("wrote a new token to %s\n", *out)
	} else {
		fmt.Printf("%s holds a token already: kept\n", *out)
	}
	return nil
}

// exportFlags adds the flags that shape an export written here, and the
// logging of its progress (on stderr), and returns the logger's
// constructor.
func exportFlags(fs *flag.FlagSet, l *app.ExportLocal, prefix string) func() *slog.Logger {
	d := analytics.DefaultExportOptions()
	fs.StringVar(&l.MemoryLimit, "memory-limit", app.DefaultExportMemoryLimit, prefix+"DuckDB's memory limit, such as 1GB; what does not fit is spilled to a directory beside the output")
	fs.IntVar(&l.Threads, "threads", analytics.DefaultThreads, prefix+"DuckDB worker threads")
	mb := int64(d.FileSizeBytes >> 20)
	fs.Func("file-size-mb", fmt.Sprintf("%sMiB a Parquet file holds at most, give or take a row group (default %d)", prefix, mb), func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return fmt.Errorf("want a whole number of MiB, at least 1")
		}
		l.Parquet.FileSizeBytes = n << 20
		return nil
	})
	return logFlags(fs, "info")
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

// configPath is the configuration file a command reads: --config's, or
// $STAKHANOV_CONFIG.
func configPath(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			return v
		}
		if v, ok := strings.CutPrefix(a, "-config="); ok {
			return v
		}
		if (a == "--config" || a == "-config") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv(configEnv)
}

// rebuild writes a new DuckDB file from the results topic.
func rebuild(ctx context.Context, args []string) error {
	var allowPartial, asJSON *bool
	c, reg, err := resolveRun("rebuild", "rebuild --duckdb NEW [--config FILE | --brokers HOST:PORT[,…] --group G] [--allow-partial] [--json]", args,
		func(fs *flag.FlagSet) {
			allowPartial = fs.Bool("allow-partial", false, "rebuild from what the results topic still holds when retention deleted the start of some partitions (their rows will be missing)")
			asJSON = fs.Bool("json", false, "print the result as JSON")
		},
		`Writes a new DuckDB file from the pipeline's results topic (<group>-results), from the
start of each partition, through the commits the sink makes: the same rows, and the
results offsets they reach, so that a sink started on the new file goes on from there.
It is the way out of a damaged file (docs/operations.md, "A damaged DuckDB file").

It takes run's configuration — give it the sink's (--config, STAKHANOV_… variables,
flags): the brokers, TLS and SASL, the group, the input topic, --repartition and the
rules decide what it writes. --duckdb names the new file, which must not exist; it is
written under a temporary name beside it and appears only when complete.

It refuses, naming the partitions and offsets, when retention has deleted the start of a
partition of the results topic, since the file would then miss rows; --allow-partial
writes what is left and says what is missing. The sink may keep running meanwhile: the
rebuild reads up to where the topic ended when it began.`)
	if err != nil {
		return err
	}
	if src, _ := reg.Lookup("duckdb.path").Source(); src != config.FromFlag {
		return errors.New("rebuild: name the new file with --duckdb NEW (a file that does not exist; the damaged one stays until the new one replaces it)")
	}
	log, err := c.Logger(os.Stderr)
	if err != nil {
		return err
	}
	ro := app.DefaultRebuildOptions()
	ro.Ingest, ro.DuckDB, ro.AllowPartial, ro.Logger = c.Run.Ingest, c.Run.DuckDB, *allowPartial, log
	res, err := app.Rebuild(ctx, ro)
	if err != nil {
		if res.Commits > 0 {
			fmt.Fprintf(os.Stderr, "stakhanov rebuild: stopped after storing %d results messages (%d shifts) of %s; nothing was kept:\n",
				res.Messages, res.ShiftsStored, res.Topic)
			printPartitions(os.Stderr, res)
		}
		if errors.Is(err, ingest.ErrResultsTruncated) {
			err = fmt.Errorf("%w\nThe results topic's retention no longer reaches back to the start of these partitions "+
				"(docs/operations.md, \"Results topic retention\"). --allow-partial rebuilds what is left, without the rows of the deleted results", err)
		}
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("rebuilt %s from %s in %s: %d results messages in %d commits\n", res.Path, res.Topic,
		res.Elapsed.Round(time.Millisecond), res.Messages, res.Commits)
	fmt.Printf("stored: %d shifts, %d alerts, %d norms, %d rejects\n", res.ShiftsStored, res.AlertsStored, res.Norms, res.Rejects)
	printPartitions(os.Stdout, res)
	for _, tp := range res.Truncated {
		fmt.Printf("MISSING: partition %d, results %d to %d (%d messages), were deleted before the rebuild read them: their rows are not in %s\n",
			tp.Partition, tp.Needed, tp.Start-1, tp.Missing(), res.Path)
	}
	fmt.Printf("A sink started on %s resumes at these offsets. To put it in place: stop the sink; move the damaged file, "+
		"its .wal and .damaged files aside; move %s to the damaged file's name; start the sink.\n", res.Path, res.Path)
	return nil
}

func printPartitions(w io.Writer, res app.RebuildResult) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTITION\tFROM\tNEXT\tEND")
	for _, p := range res.Partitions {
		fmt.Fprintf(tw, "%d\t%d\t%d\t%d\n", p.Partition, p.From, p.Next, p.End)
	}
	tw.Flush()
}
