package app

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
)

// Rebuilding a DuckDB file. The sink stores the results topic; a new file
// made from that topic, from the start of each partition, through the same
// commits, holds the same rows and the same offsets as the file the sink
// wrote — so a sink started on it resumes where the rebuild ended. This is
// the way out of a damaged file (analytics.ErrCorrupt), and it needs the
// results topic to hold every result since the start (docs/operations.md).

// RebuildOptions configure Rebuild. Start from DefaultRebuildOptions.
type RebuildOptions struct {
	// Ingest is the configuration the sink runs with: the brokers and how
	// to reach them, the group (whose results topic is read), the input
	// topic and Repartition (which name where the shifts came from), and
	// the rule options (recorded in rule_options).
	Ingest ingest.Options
	// DuckDB is the file to write. It must not exist: Rebuild never
	// replaces a file, the damaged one least of all. It is written under a
	// temporary name beside it and appears under its own only when
	// complete.
	DuckDB analytics.Options
	// AllowPartial rebuilds from what the results topic still holds when
	// retention has deleted the start of some partitions; the rows of the
	// deleted results are missing from the file, and the result says
	// which. Default false: Rebuild refuses such a topic, naming the
	// partitions and offsets, before it writes anything.
	AllowPartial bool
	// ProgressEvery is how often a progress line is logged. Default 5 s.
	ProgressEvery time.Duration
	// Logger receives the progress lines. Default slog.Default().
	Logger *slog.Logger
}

// DefaultRebuildOptions returns the defaults for the given brokers.
func DefaultRebuildOptions(brokers ...string) RebuildOptions {
	return RebuildOptions{
		Ingest:        ingest.DefaultOptions(brokers...),
		DuckDB:        analytics.DefaultOptions(""),
		ProgressEvery: 5 * time.Second,
	}
}

// ErrRebuildTarget: the file Rebuild was asked to write exists.
var ErrRebuildTarget = errors.New("rebuild writes a new file")

// Validate reports the first unusable option.
func (o RebuildOptions) Validate() error {
	if err := errors.Join(o.Ingest.Validate(), o.DuckDB.Validate()); err != nil {
		return err
	}
	switch {
	case o.DuckDB.ReadOnly:
		return fmt.Errorf("%w: rebuild: the new file cannot be read-only", analytics.ErrInvalidOptions)
	case o.DuckDB.Path == ":memory:":
		return fmt.Errorf("%w: rebuild: name a file, not :memory:", analytics.ErrInvalidOptions)
	case o.ProgressEvery <= 0:
		return fmt.Errorf("%w: rebuild: progress interval %v not positive", ingest.ErrInvalidOptions, o.ProgressEvery)
	}
	return nil
}

// RebuildResult says what Rebuild wrote and how far it got.
type RebuildResult struct {
	// Path is the new file; empty when Rebuild failed (nothing is left).
	Path string `json:"path,omitempty"`
	ingest.ReplayProgress
}

// Rebuild writes a new DuckDB file from the results topic (see
// RebuildOptions): each partition from its start to the end it had when
// Rebuild began, stored exactly as the sink stores it, offsets included,
// so that a sink started on the new file goes on from there. The result
// says how far it got, also when it fails; a failed or stopped Rebuild
// leaves no file behind.
func Rebuild(ctx context.Context, o RebuildOptions) (RebuildResult, error) {
	if err := o.Validate(); err != nil {
		return RebuildResult{}, err
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	o.Ingest.Logger = log
	path := o.DuckDB.Path
	for _, p := range []string{path, path + ".wal"} {
		if _, err := os.Lstat(p); err == nil {
			return RebuildResult{}, fmt.Errorf("%w: %s exists; name a file that does not (the damaged file stays where it is until the new one replaces it)", ErrRebuildTarget, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%s.rebuilding-%d", filepath.Base(path), os.Getpid()))
	for _, p := range []string{tmp, tmp + ".wal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
		}
	}
	cleanup := func() {
		_ = os.Remove(tmp)
		_ = os.Remove(tmp + ".wal")
	}
	so := o.DuckDB
	so.Path = tmp
	store, err := analytics.Open(ctx, so)
	if err != nil {
		cleanup()
		return RebuildResult{}, fmt.Errorf("rebuild: %w", err)
	}

	topic := o.Ingest.ResultsTopic()
	log.Info("rebuilding a DuckDB file from the results topic", "topic", topic, "into", path,
		"input", o.Ingest.InputTopic, "repartition", o.Ingest.Repartition, "allow_partial", o.AllowPartial)
	ro := ingest.DefaultReplayOptions()
	ro.AllowPartial, ro.ProgressEvery = o.AllowPartial, o.ProgressEvery
	var lastMessages int64
	lastAt := time.Duration(0)
	ro.Progress = func(p ingest.ReplayProgress) {
		if p.Done {
			return
		}
		rate := float64(p.Messages-lastMessages) / max((p.Elapsed-lastAt).Seconds(), 1e-3)
		lastMessages, lastAt = p.Messages, p.Elapsed
		log.Info("rebuild progress", "done", fmt.Sprintf("%.1f%%", 100*p.Fraction()), "messages", p.Messages,
			"messages_per_s", int64(rate), "shifts", p.ShiftsStored, "alerts", p.AlertsStored, "norms", p.Norms,
			"rejects", p.Rejects, "partitions", partitionsLine(p.Partitions), "elapsed", p.Elapsed.Round(time.Millisecond))
	}
	p, err := ingest.ReplayResults(ctx, o.Ingest, store, ro)
	res := RebuildResult{ReplayProgress: p}
	if err != nil {
		_ = store.Close()
		cleanup()
		return res, fmt.Errorf("rebuild: %w", err)
	}
	// Closing checkpoints the write-ahead log into the file: one file.
	if err := store.Close(); err != nil {
		cleanup()
		return res, fmt.Errorf("rebuild: closing %s: %w", tmp, err)
	}
	if _, err := os.Stat(tmp + ".wal"); err == nil {
		cleanup()
		return res, fmt.Errorf("rebuild: %s.wal left after closing", tmp)
	}
	if err := placeNew(tmp, path); err != nil {
		cleanup()
		return res, fmt.Errorf("rebuild: %w", err)
	}
	res.Path = path
	log.Info("rebuilt", "path", path, "messages", p.Messages, "shifts", p.ShiftsStored, "alerts", p.AlertsStored,
		"norms", p.Norms, "rejects", p.Rejects, "commits", p.Commits, "took", p.Elapsed.Round(time.Millisecond),
		"partitions", partitionsLine(p.Partitions))
	return res, nil
}

// placeNew gives the finished file its name, failing if a file took that
// name meanwhile: a hard link does not replace, where a rename would.
func placeNew(tmp, path string) error {
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s appeared while rebuilding", ErrRebuildTarget, path)
		}
		// a file system without hard links
		if _, serr := os.Lstat(path); serr == nil {
			return fmt.Errorf("%w: %s appeared while rebuilding", ErrRebuildTarget, path)
		}
		return os.Rename(tmp, path)
	}
	return os.Remove(tmp)
}

// partitionsLine is each partition's next offset of its end: "0:1200/3400 1:…".
func partitionsLine(ps []ingest.PartitionProgress) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%d:%d/%d", p.Partition, p.Next, p.End)
	}
	return b.String()
}
