package analytics

import (
	"errors"
	"fmt"
	"strings"
)

// Options configure a Store. Start from DefaultOptions.
type Options struct {
	// Path is the DuckDB database file, created when missing (unless
	// ReadOnly). ":memory:" opens a private in-memory database, useful in
	// tests. DuckDB reads settings from the text after '?', so the path may
	// contain neither '?' nor '#'.
	Path string
	// Threads bounds DuckDB's worker threads. Default 1: the pipeline's
	// inserts gain nothing from a second thread, which only takes a core
	// from decoding, the rules and Kafka (1 M-event bench on 2 cores:
	// 136–141k ev/s and p99 alert latency 32 ms with 1, 122–132k and
	// 43–80 ms with 2). Analysts' queries through the endpoint share it;
	// snapshots are for heavy reading.
	Threads int
	// MemoryLimit caps DuckDB's buffer manager, in DuckDB's syntax ("2GB",
	// "512MB"). Default "2GB"; DuckDB's own default is 80 % of RAM, which
	// leaves the rest of the process nothing to grow into.
	MemoryLimit string
	// TempDirectory is where DuckDB spills what does not fit in
	// MemoryLimit (the sorts of an export, large joins). Default "":
	// DuckDB's own, <Path>.tmp beside the file (none for ":memory:").
	// Commands that only read a file set one beside what they write, as
	// the file's directory may not be writable.
	TempDirectory string
	// CheckpointThreshold is the WAL size at which DuckDB folds the WAL
	// into the file, in DuckDB's syntax. Default "256MB": a checkpoint
	// lands inside the commit that crosses the threshold, and DuckDB's own
	// 16MB made one every few commits of the hot shifts table (about a
	// tenth of the pipeline's time, BENCHMARKS.md). The price is a larger
	// WAL to replay when the file is opened after a crash. Empty leaves
	// DuckDB's own.
	CheckpointThreshold string
	// ReadOnly opens an existing file for reading only, for tools such as
	// `stakhanov query`: several read-only processes may share the file,
	// the schema is left as it is, and Commit fails with ErrReadOnly.
	// DuckDB lets no process in while another holds the file read-write.
	ReadOnly bool
}

// Defaults of Options.
const (
	DefaultThreads             = 1
	DefaultMemoryLimit         = "2GB"
	DefaultCheckpointThreshold = "256MB"
)

// DefaultOptions returns the defaults for the file at path.
func DefaultOptions(path string) Options {
	return Options{Path: path, Threads: DefaultThreads, MemoryLimit: DefaultMemoryLimit,
		CheckpointThreshold: DefaultCheckpointThreshold}
}

// ErrInvalidOptions is wrapped by every Validate failure.
var ErrInvalidOptions = errors.New("invalid analytics options")

// Validate reports the first option outside its domain.
func (o Options) Validate() error {
	fail := func(f string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(f, a...))
	}
	switch {
	case o.Path == "":
		return fail("empty path")
	case strings.ContainsAny(o.Path, "?#"):
		// The driver splits its DSN at '?', and url parsing would turn a
		// '#' into a fragment and silently drop the settings after it.
		return fail("path %q contains '?' or '#'", o.Path)
	case o.Path == memoryPath && o.ReadOnly:
		return fail("a read-only in-memory database is always empty")
	case o.Threads < 1:
		return fail("threads %d below 1", o.Threads)
	case o.MemoryLimit == "" || o.MemoryLimit[0] < '0' || o.MemoryLimit[0] > '9':
		return fail("memory limit %q is not a size such as \"2GB\"", o.MemoryLimit)
	case o.CheckpointThreshold != "" && (o.CheckpointThreshold[0] < '0' || o.CheckpointThreshold[0] > '9'):
		return fail("checkpoint threshold %q is not a size such as \"256MB\"", o.CheckpointThreshold)
	}
	return nil
}

const memoryPath = ":memory:"
