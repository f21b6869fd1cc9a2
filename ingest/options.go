package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stakhanov/stakhanov/processors"
)

// Options configure a Pipeline. Start from DefaultOptions.
type Options struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// InputTopic carries shift events. Default "shift-events".
	InputTopic string
	// AlertsTopic receives alerts. Default "shift-alerts".
	AlertsTopic string
	// DLQTopic receives bad records with their reason. Default
	// "shift-events-dlq".
	DLQTopic string
	// Group is the consumer group. Default "stakhanov".
	Group string
	// CreateTopics creates the alerts and dead-letter topics, with the
	// input's partition count, when they are missing. Default true. The
	// internal topics are always created.
	CreateTopics bool

	// Roles this process plays. Default RoleProcess|RoleSink: one process
	// does everything. Scale out with several RoleProcess instances and one
	// RoleSink instance (the DuckDB file has one writer).
	Roles Role
	// Repartition re-keys the input by plant_id through an internal topic
	// before the stateful step, for input that producers did not key by
	// plant. Default false.
	Repartition bool
	// CheckpointInterval is how often a partition's state is checkpointed
	// to the checkpoint topic; a partition that moves replays at most this
	// much input. Default 10 s.
	CheckpointInterval time.Duration

	// BatchMaxEvents flushes a batch to the sink once it holds this many
	// input messages. Default 100 000.
	BatchMaxEvents int
	// BatchMaxWait flushes a non-empty batch this long after its first
	// message, bounding alert latency. Default 50 ms.
	BatchMaxWait time.Duration
	// SinkBatchMaxRows bounds the rows (shifts, alerts, norms, rejects) the
	// sink gathers for one DuckDB commit while the previous one runs; it
	// then stops reading until that commit ends. It bounds the sink's
	// memory whatever the backlog. Default 250 000: DuckDB's per-commit cost
	// makes commits much smaller than that slower (BENCHMARKS.md).
	SinkBatchMaxRows int
	// FetchMaxBytes bounds one fetch of one partition. Default 4 MiB.
	FetchMaxBytes int
	// FetchMaxWait is how long the broker may hold a fetch for data.
	// Default 100 ms.
	FetchMaxWait time.Duration
	// RetryBackoff is the first wait after a failed broker or sink call; it
	// doubles up to RetryBackoffMax. Defaults 100 ms and 10 s.
	RetryBackoff, RetryBackoffMax time.Duration
	// ShutdownTimeout bounds the final flush on shutdown. Default 30 s.
	ShutdownTimeout time.Duration

	// Security is how connections to the brokers are made (TLS, SASL).
	// Default: plain TCP.
	Security Security

	// Processor holds the rules' thresholds.
	Processor processors.Options
	// Logger receives one line per notable event. Default slog.Default().
	Logger *slog.Logger
	// OnCommit, when set, is called after each successful sink commit with
	// its duration and the rows it stored (metrics). It must be quick.
	OnCommit func(d time.Duration, rows int)
}

// DefaultOptions returns the documented defaults for the given brokers.
func DefaultOptions(brokers ...string) Options {
	return Options{
		Brokers:            brokers,
		InputTopic:         "shift-events",
		AlertsTopic:        "shift-alerts",
		DLQTopic:           "shift-events-dlq",
		Group:              "stakhanov",
		CreateTopics:       true,
		Roles:              RoleProcess | RoleSink,
		CheckpointInterval: 10 * time.Second,
		BatchMaxEvents:     100_000,
		BatchMaxWait:       50 * time.Millisecond,
		SinkBatchMaxRows:   250_000,
		FetchMaxBytes:      4 << 20,
		FetchMaxWait:       100 * time.Millisecond,
		RetryBackoff:       100 * time.Millisecond,
		RetryBackoffMax:    10 * time.Second,
		ShutdownTimeout:    30 * time.Second,
		Processor:          processors.DefaultOptions(),
	}
}

// ErrInvalidOptions is wrapped by every Validate failure.
var ErrInvalidOptions = errors.New("invalid ingest options")

// Validate reports the first unusable option.
func (o Options) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case len(o.Brokers) == 0:
		return fail("no brokers")
	case o.InputTopic == "" || o.AlertsTopic == "" || o.DLQTopic == "":
		return fail("empty topic name")
	case o.InputTopic == o.AlertsTopic || o.InputTopic == o.DLQTopic || o.AlertsTopic == o.DLQTopic:
		return fail("input, alerts and dead-letter topics must differ")
	case o.Group == "":
		return fail("empty consumer group")
	case o.BatchMaxEvents < 1:
		return fail("batch max events %d < 1", o.BatchMaxEvents)
	case o.BatchMaxWait <= 0:
		return fail("batch max wait %v not positive", o.BatchMaxWait)
	case o.SinkBatchMaxRows < 1:
		return fail("sink batch max rows %d < 1", o.SinkBatchMaxRows)
	case o.FetchMaxBytes < 1<<10:
		return fail("fetch max bytes %d below 1 KiB", o.FetchMaxBytes)
	case o.FetchMaxWait <= 0:
		return fail("fetch max wait %v not positive", o.FetchMaxWait)
	case o.RetryBackoff <= 0 || o.RetryBackoffMax < o.RetryBackoff:
		return fail("retry backoff %v..%v", o.RetryBackoff, o.RetryBackoffMax)
	case o.ShutdownTimeout <= 0:
		return fail("shutdown timeout %v not positive", o.ShutdownTimeout)
	case o.Roles == 0 || o.Roles&^(RoleProcess|RoleSink) != 0:
		return fail("roles %v: choose process, sink or both", o.Roles)
	case o.CheckpointInterval <= 0:
		return fail("checkpoint interval %v not positive", o.CheckpointInterval)
	}
	for _, t := range []string{o.ResultsTopic(), o.CheckpointTopic(), o.RepartitionTopic()} {
		if t == o.InputTopic || t == o.AlertsTopic || t == o.DLQTopic {
			return fail("topic %s is internal to group %s", t, o.Group)
		}
	}
	if err := o.Security.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	if err := o.Processor.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return nil
}

func (o Options) logger() *slog.Logger {
	if o.Logger != nil {
		return o.Logger
	}
	return slog.Default()
}

// Role is a part of the topology a process runs.
type Role uint8

const (
	// RoleProcess consumes the input (through the repartition topic when
	// Options.Repartition), runs the rules with state checkpointed to Kafka,
	// and publishes alerts, dead letters and results.
	RoleProcess Role = 1 << iota
	// RoleSink consumes the results topic and stores it in the Sink, with
	// its offsets, exactly once.
	RoleSink
)

// ParseRoles reads "process", "sink" or "all".
func ParseRoles(s string) (Role, error) {
	switch s {
	case "all", "":
		return RoleProcess | RoleSink, nil
	case "process":
		return RoleProcess, nil
	case "sink":
		return RoleSink, nil
	}
	return 0, fmt.Errorf("%w: role %q: choose process, sink or all", ErrInvalidOptions, s)
}

func (r Role) String() string {
	switch r {
	case RoleProcess | RoleSink:
		return "all"
	case RoleProcess:
		return "process"
	case RoleSink:
		return "sink"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// The internal topics belong to the consumer group: two pipelines with
// different groups over one input keep separate state.

// ResultsTopic carries processed results from processing instances to the
// sink: "<group>-results".
func (o Options) ResultsTopic() string { return o.Group + "-results" }

// CheckpointTopic holds each partition's latest state checkpoint
// (compacted): "<group>-checkpoints".
func (o Options) CheckpointTopic() string { return o.Group + "-checkpoints" }

// RepartitionTopic carries the input re-keyed by plant_id:
// "<group>-repartition".
func (o Options) RepartitionTopic() string { return o.Group + "-repartition" }

// SinkGroup is the consumer group of the sink: "<group>-sink".
func (o Options) SinkGroup() string { return o.Group + "-sink" }

// RepartitionGroup is the consumer group of the repartitioner:
// "<group>-repartition".
func (o Options) RepartitionGroup() string { return o.Group + "-repartition" }

// processInput is the topic the stateful step consumes.
func (o Options) processInput() string {
	if o.Repartition {
		return o.RepartitionTopic()
	}
	return o.InputTopic
}
