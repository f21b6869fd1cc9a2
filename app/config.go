package app

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/config"
	"github.com/stakhanov/stakhanov/ingest"
)

// RunConfig is everything `stakhanov run` takes: the pipeline's options
// and the process's own (logging, metrics). Start from DefaultRunConfig.
type RunConfig struct {
	Run RunOptions
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string
	// LogFormat is text or json. Default text.
	LogFormat string
}

// DefaultRunConfig returns the documented defaults.
func DefaultRunConfig() *RunConfig {
	return &RunConfig{Run: DefaultRunOptions(), LogLevel: "info", LogFormat: "text"}
}

// Registry lists every option of c, bound to c's fields: its key in the
// configuration file, its environment variable and its flag. It is the
// one list `stakhanov run`, `stakhanov config` and the deployment files'
// test read.
func (c *RunConfig) Registry() *config.Registry {
	r := &config.Registry{}
	in, po, lo, dd, sec := &c.Run.Ingest, &c.Run.Ingest.Processor, &c.Run.Live, &c.Run.DuckDB, &c.Run.Ingest.Security

	r.Var(config.List(&in.Brokers), "kafka.brokers", "brokers", "Kafka bootstrap brokers, host:port (required)")
	r.Var(config.String(&in.Group), "kafka.group", "group", "consumer group; names the internal topics")
	r.Var(config.String(&in.InputTopic), "kafka.input", "input", "input topic of shift events")
	r.Var(config.String(&in.AlertsTopic), "kafka.alerts", "alerts", "alerts topic")
	r.Var(config.String(&in.DLQTopic), "kafka.dlq", "dlq", "dead-letter topic")
	r.Var(config.Bool(&in.CreateTopics), "kafka.create_topics", "create-topics", "create missing alerts and dead-letter topics")
	r.Var(config.Int(&in.FetchMaxBytes), "kafka.fetch_max_bytes", "fetch-max-bytes", "bytes of one fetch of one partition at most")
	r.Var(config.Duration(&in.FetchMaxWait), "kafka.fetch_max_wait", "fetch-max-wait", "how long a broker may hold a fetch for data")
	r.Var(config.Bool(&sec.TLS.Enabled), "kafka.tls.enabled", "tls", "connect to the brokers over TLS")
	r.Var(config.String(&sec.TLS.CAFile), "kafka.tls.ca_file", "tls-ca-file", "PEM file of the authorities to trust (default: the system's)")
	r.Var(config.String(&sec.TLS.CertFile), "kafka.tls.cert_file", "tls-cert-file", "PEM client certificate, for mutual TLS")
	r.Var(config.String(&sec.TLS.KeyFile), "kafka.tls.key_file", "tls-key-file", "PEM key of the client certificate")
	r.Var(config.String(&sec.TLS.ServerName), "kafka.tls.server_name", "tls-server-name", "name the brokers' certificates must carry (default: each broker's host)")
	r.Var(config.Bool(&sec.TLS.InsecureSkipVerify), "kafka.tls.insecure_skip_verify", "tls-insecure-skip-verify", "accept any broker certificate (testing only)")
	r.Var(config.String(&sec.SASL.Mechanism), "kafka.sasl.mechanism", "sasl-mechanism", "SASL mechanism: plain, scram-sha-256, scram-sha-512 (default: none)")
	r.Var(config.String(&sec.SASL.Username), "kafka.sasl.username", "sasl-username", "SASL username")
	// No flag: a password on the command line is visible to every user of
	// the machine.
	r.Add(&config.Option{Key: "kafka.sasl.password", Usage: "SASL password (file or environment only)", Secret: true, Value: config.String(&sec.SASL.Password)})

	r.Var(config.Func(func() string { return in.Roles.String() }, func(s string) (err error) {
		in.Roles, err = ingest.ParseRoles(s)
		return err
	}), "pipeline.role", "role", "what this process runs: process (the rules, no DuckDB), sink (the DuckDB writer, one per file) or all")
	r.Var(config.Bool(&in.Repartition), "pipeline.repartition", "repartition", "re-key input by plant_id through an internal topic (input not keyed by plant)")
	r.Var(config.Duration(&in.CheckpointInterval), "pipeline.checkpoint_interval", "checkpoint-interval", "how often partition state is checkpointed to Kafka")
	r.Var(config.Int(&in.BatchMaxEvents), "pipeline.batch_max_events", "batch-max-events", "input messages per processed batch at most")
	r.Var(config.Duration(&in.BatchMaxWait), "pipeline.batch_max_wait", "batch-max-wait", "longest wait before a batch is flushed")
	r.Var(config.Int(&in.SinkBatchMaxRows), "pipeline.sink_batch_max_rows", "sink-batch-max-rows", "rows per DuckDB commit at most; bounds the sink's memory")
	r.Var(config.Duration(&in.RetryBackoffMax), "pipeline.retry_backoff_max", "retry-backoff-max", "longest wait between retries of a failed broker or DuckDB call")
	r.Var(config.Duration(&in.ShutdownTimeout), "pipeline.shutdown_timeout", "shutdown-timeout", "how long the final flush may take on shutdown")
	r.Var(config.Duration(&c.Run.ReportEvery), "pipeline.report_every", "report-every", "interval of progress log lines (0: none)")

	for _, p := range po.Params() {
		var v flag.Value
		switch x := p.Value.(type) {
		case *time.Duration:
			v = config.Duration(x)
		case *int:
			v = config.Int(x)
		case *float64:
			v = config.Float(x)
		default:
			panic(fmt.Sprintf("rules.%s: no configuration value for %T", p.Key, x))
		}
		r.Var(v, "rules."+p.Key, p.Flag, p.Usage)
	}

	r.Var(config.String(&dd.Path), "duckdb.path", "duckdb", "DuckDB file to write (sink role)")
	r.Var(config.Int(&dd.Threads), "duckdb.threads", "duckdb-threads", "DuckDB worker threads")
	r.Var(config.String(&dd.MemoryLimit), "duckdb.memory_limit", "duckdb-memory-limit", "DuckDB memory limit, such as 2GB")
	r.Var(config.String(&dd.CheckpointThreshold), "duckdb.checkpoint_threshold", "duckdb-checkpoint-threshold", "WAL size at which DuckDB checkpoints, such as 256MB")
	r.Var(config.Bool(&c.Run.VerifyOnStart), "duckdb.verify_on_start", "duckdb-verify-on-start", "read every table once in the background when the sink opens the file, to find a damaged block at start")

	r.Var(config.String(&lo.QueryAddr), "endpoints.query_addr", "query-addr",
		`host:port of the read-only SQL endpoint (port 0: a free one, written to FILE.endpoint); "off": none; beyond loopback it needs a token or client certificates`)
	r.Var(config.String(&lo.FlightAddr), "endpoints.flight_addr", "flight-addr",
		`host:port of the read-only Arrow Flight SQL server (port 0: a free one, written to FILE.flight); "off": none; beyond loopback it needs the endpoint's token or client certificates, and serves its TLS`)
	r.Var(config.Duration(&lo.QueryTimeout), "endpoints.query_timeout", "query-timeout", "longest run of one query (endpoint and Flight SQL)")
	r.Var(config.Int(&lo.QueryMaxConcurrent), "endpoints.query_max_concurrent", "query-max-concurrent", "queries and snapshots at once, for the endpoint and for Flight SQL each; more get HTTP 503 (Flight SQL: RESOURCE_EXHAUSTED)")
	// No flag: a token on the command line is visible to every user of
	// the machine.
	r.Add(&config.Option{Key: "endpoints.query_token", Usage: "bearer token the query endpoint and the Flight SQL server require (file or environment only; prefer query_token_file)",
		Secret: true, Value: config.String(&lo.QueryToken)})
	r.Var(config.String(&lo.QueryTokenFile), "endpoints.query_token_file", "query-token-file",
		"file of the bearer tokens the query endpoint and the Flight SQL server accept, one per line, re-read when it changes (clients send the first)")
	r.Var(config.String(&lo.QueryTLS.CertFile), "endpoints.query_tls.cert_file", "query-tls-cert-file", "PEM certificate chain the query endpoint and the Flight SQL server serve TLS with (re-read when renewed)")
	r.Var(config.String(&lo.QueryTLS.KeyFile), "endpoints.query_tls.key_file", "query-tls-key-file", "PEM key of that certificate")
	r.Var(config.String(&lo.QueryTLS.ClientCAFile), "endpoints.query_tls.client_ca_file", "query-tls-client-ca-file",
		"PEM authorities whose client certificates the query endpoint and the Flight SQL server require (mutual TLS; default: none asked)")
	r.Var(config.String(&c.Run.MetricsAddr), "endpoints.metrics_addr", "metrics-addr", `host:port of /metrics, /healthz and /readyz; "off": none`)
	r.Var(config.String(&lo.SnapshotDir), "snapshots.dir", "snapshot-dir", "directory of snapshots (default FILE.snapshot beside the DuckDB file)")
	r.Var(config.Duration(&lo.SnapshotInterval), "snapshots.interval", "snapshot-interval", "how often the sink takes a snapshot, when something was stored since the last (0: only on request)")

	r.Var(config.String(&c.LogLevel), "log.level", "log-level", "log level: debug, info, warn, error")
	r.Var(config.String(&c.LogFormat), "log.format", "log-format", "log format: text or json")
	return r
}

// Logger builds the logger c describes, writing to w.
func (c *RunConfig) Logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return nil, fmt.Errorf("log level %q: choose debug, info, warn or error", c.LogLevel)
	}
	o := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(c.LogFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("log format %q: choose text or json", c.LogFormat)
}
