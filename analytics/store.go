package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/stakhanov/stakhanov/ingest"
)

var _ ingest.Sink = (*Store)(nil)

// ErrReadOnly is returned by Commit on a store opened with ReadOnly.
var ErrReadOnly = errors.New("analytics: store is read-only")

// Store is a DuckDB file holding the pipeline's results. Its methods are
// safe for concurrent use; commits are serialised.
type Store struct {
	opts Options
	db   *sql.DB

	// mu serialises commits: they share the Arrow builders, and DuckDB
	// would abort one of two concurrent writers on a conflict anyway.
	mu      sync.Mutex
	loaders *loaders // nil when read-only
	// invalid: DuckDB gave up on this handle after a fatal error (a full
	// disk during a checkpoint, say); the next commit reopens the file.
	invalid error
	commits atomic.Uint64

	// damage is the first report of a damaged file (nil while there is
	// none); damaged is closed then. corruptions counts the reports.
	damage      atomic.Pointer[CorruptError]
	damaged     chan struct{}
	damageOnce  sync.Once
	corruptions atomic.Uint64
}

// Open opens (and, unless read-only, creates and migrates) the database
// file opts.Path. A file DuckDB finds damaged, or one a Store marked
// damaged (DamageMarker) when it is opened read-write, is a *CorruptError
// (ErrCorrupt).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if damage, ok := readMarker(opts.Path); ok {
			return nil, &CorruptError{Path: opts.Path, Err: damage}
		}
	}
	db, err := openDB(ctx, opts)
	if err != nil {
		if isCorrupt(err, opts.Path) {
			// no marker: a file that cannot be opened says so each time
			return nil, &CorruptError{Path: opts.Path, Err: err}
		}
		return nil, err
	}
	s := &Store{opts: opts, db: db, damaged: make(chan struct{})}
	if !opts.ReadOnly {
		s.loaders = newLoaders(defaultLoaderConfig)
	}
	return s, nil
}

func openDB(ctx context.Context, opts Options) (*sql.DB, error) {
	settings := url.Values{}
	settings.Set("threads", strconv.Itoa(opts.Threads))
	settings.Set("memory_limit", opts.MemoryLimit)
	if opts.CheckpointThreshold != "" && !opts.ReadOnly {
		settings.Set("checkpoint_threshold", opts.CheckpointThreshold)
	}
	if opts.ReadOnly {
		settings.Set("access_mode", "READ_ONLY")
	}
	if opts.TempDirectory != "" {
		settings.Set("temp_directory", opts.TempDirectory)
	}
	// TimeZone cannot go in the DSN: it belongs to the icu extension,
	// which is not loaded yet when the DSN settings are applied.
	connector, err := duckdb.NewConnector(opts.Path+"?"+settings.Encode(), initConn)
	if err != nil {
		return nil, fmt.Errorf("analytics: open %s: %w", opts.Path, err)
	}
	// sql.DB.Close closes the connector, which checkpoints the WAL into
	// the file when this was the file's last handle in the process.
	db := sql.OpenDB(connector)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("analytics: open %s: %w", opts.Path, err), db.Close())
	}
	if !opts.ReadOnly {
		if err := migrate(ctx, db); err != nil {
			return nil, errors.Join(fmt.Errorf("analytics: open %s: %w", opts.Path, err), db.Close())
		}
	}
	return db, nil
}

// reopen replaces a handle DuckDB invalidated: the file is opened afresh,
// which replays its write-ahead log, and commits go on from what it holds.
func (s *Store) reopen(ctx context.Context) error {
	_ = s.db.Close() // an invalidated database fails to close cleanly; the file is what counts
	db, err := openDB(ctx, s.opts)
	if err != nil {
		return fmt.Errorf("analytics: reopening %s after %v: %w", s.opts.Path, s.invalid, s.check(err))
	}
	s.db, s.invalid = db, nil
	return nil
}

// isFatal: DuckDB invalidated the database handle.
func isFatal(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeFatal
}

func initConn(c driver.ExecerContext) error {
	_, err := c.ExecContext(context.Background(), "SET TimeZone = 'UTC'", nil)
	return err
}

// Close waits for a running commit, then closes the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaders != nil {
		s.loaders.release()
		s.loaders = nil
	}
	return s.check(s.db.Close())
}

// check passes err on, and when it is DuckDB reporting that the file is
// damaged, records the damage and returns it as a *CorruptError. The first
// report closes Damaged and, on a store that writes, leaves the marker
// that keeps the file from being opened read-write again.
func (s *Store) check(err error) error {
	if !isCorrupt(err, s.opts.Path) {
		return err
	}
	s.corruptions.Add(1)
	ce, ok := errors.AsType[*CorruptError](err)
	if !ok {
		ce = &CorruptError{Path: s.opts.Path, Err: err}
	}
	s.damageOnce.Do(func() {
		s.damage.Store(ce)
		if !s.opts.ReadOnly {
			// best effort: the caller learns of the damage either way
			_ = writeMarker(s.opts.Path, ce.Err, time.Now())
		}
		close(s.damaged)
	})
	return ce
}

// Damage is the first report of damage to the file this Store found, a
// *CorruptError, or nil while it has found none. A Store that found its
// file damaged refuses commits and keeps answering reads, which succeed
// where they do not reach the damage.
func (s *Store) Damage() error {
	if d := s.damage.Load(); d != nil {
		return d
	}
	return nil
}

// Damaged is closed when the Store first finds its file damaged.
func (s *Store) Damaged() <-chan struct{} { return s.damaged }

// CorruptionErrors counts the operations that failed because the file is
// damaged, from every caller: commits, queries, snapshots, Verify.
func (s *Store) CorruptionErrors() uint64 { return s.corruptions.Load() }

// DB gives direct access to the database, for queries this package does
// not offer. Writing through it bypasses the offsets contract.
func (s *Store) DB() *sql.DB { return s.db }
