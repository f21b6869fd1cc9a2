package analytics

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	ok := DefaultOptions("/tmp/x.duckdb")
	if ok.Threads != 1 || ok.MemoryLimit != "2GB" || ok.ReadOnly {
		t.Errorf("defaults %+v", ok)
	}
	tests := []struct {
		name   string
		modify func(*Options)
		valid  bool
	}{
		{"defaults", func(*Options) {}, true},
		{"in memory", func(o *Options) { o.Path = ":memory:" }, true},
		{"empty path", func(o *Options) { o.Path = "" }, false},
		{"question mark", func(o *Options) { o.Path = "/tmp/a?b" }, false},
		{"hash", func(o *Options) { o.Path = "/tmp/a#b" }, false},
		{"read-only memory", func(o *Options) { o.Path = ":memory:"; o.ReadOnly = true }, false},
		{"no threads", func(o *Options) { o.Threads = 0 }, false},
		{"no memory limit", func(o *Options) { o.MemoryLimit = "" }, false},
		{"memory limit not a size", func(o *Options) { o.MemoryLimit = "lots" }, false},
		{"DuckDB's checkpoint threshold", func(o *Options) { o.CheckpointThreshold = "" }, true},
		{"checkpoint threshold not a size", func(o *Options) { o.CheckpointThreshold = "big" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.modify(&o)
			err := o.Validate()
			if (err == nil) != tt.valid {
				t.Errorf("Validate() = %v, want valid %v", err, tt.valid)
			}
			if err != nil && !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("%v does not wrap ErrInvalidOptions", err)
			}
		})
	}
}

func TestOpenSettings(t *testing.T) {
	ctx := context.Background()
	opts := DefaultOptions(filepath.Join(t.TempDir(), "s.duckdb"))
	opts.Threads = 3
	opts.MemoryLimit = "256MB"
	s, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var threads int
	var limit, ckpt string
	err = s.DB().QueryRow(`SELECT current_setting('threads'), current_setting('memory_limit'),
		current_setting('checkpoint_threshold')`).Scan(&threads, &limit, &ckpt)
	if err != nil {
		t.Fatal(err)
	}
	// DuckDB reports sizes in its own units (256MB → 244.1 MiB).
	if threads != 3 || limit != "244.1 MiB" || ckpt != "244.1 MiB" {
		t.Errorf("threads %d, memory_limit %q, checkpoint_threshold %q", threads, limit, ckpt)
	}

	opts.MemoryLimit = "2 bananas"
	opts.Path = filepath.Join(t.TempDir(), "bad.duckdb")
	if s, err := Open(ctx, opts); err == nil {
		s.Close()
		t.Error("a bad memory limit opened")
	}
}

func TestOpenMigrations(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	mustCommit(t, s, shiftBatch(0, 1, 0, 0))
	s.Close()
	// Reopening runs the idempotent schema again and keeps the data.
	s = openPath(t, path)
	if n := count(t, s, "schema_version"); n != 1 {
		t.Errorf("%d schema_version rows", n)
	}
	if n := count(t, s, "shifts"); n != 1 {
		t.Errorf("%d shifts after reopening", n)
	}
	if _, err := s.DB().Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(ctx, DefaultOptions(path)); !errors.Is(err, ErrSchemaTooNew) {
		if err == nil {
			s.Close()
		}
		t.Errorf("open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	// Reading a newer file is still allowed.
	opts := DefaultOptions(path)
	opts.ReadOnly = true
	ro, err := Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	ro.Close()
	// A read-only open does not create a file.
	opts.Path = filepath.Join(t.TempDir(), "missing.duckdb")
	if ro, err := Open(ctx, opts); err == nil {
		ro.Close()
		t.Error("read-only open of a missing file succeeded")
	}
}
