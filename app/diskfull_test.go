package app

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
)

// smallDisk mounts a tmpfs of size bytes for the test and returns its
// directory. Mounting needs root (CAP_SYS_ADMIN): without it the test
// skips, and fails under CI.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, fmt.Sprintf("cannot mount a %s tmpfs for the DuckDB file (%v: %s)", size, err, bytes.TrimSpace(out)),
			"run the test as root, e.g. sudo -E go test -tags duckdb_arrow ./app -run DiskFaults")
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// remount changes a mounted disk's options ("size=512m", "ro", "rw").
func remount(dir, opts string) error {
	if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
		return fmt.Errorf("remounting %s with %s: %v %s", dir, opts, err, bytes.TrimSpace(out))
	}
	return nil
}

// TestDiskFaults: the DuckDB file's disk fills up mid-run, or turns
// read-only. The sink stops storing (and so stops moving its offsets),
// says so, and carries on once the fault is cleared; in the end every
// valid event is stored once and the file opens cleanly.
func TestDiskFaults(t *testing.T) {
	for _, tc := range []struct {
		name       string
		size       string
		fault, fix string // remount options
		// the line the run logs while the fault holds; the fault is
		// cleared only once it is there
		waiting, cause string
	}{
		{"full", "6m", "", "size=512m", "waiting: storing a batch failed", "no space left on device"},
		// a disk cannot turn read-only under an open file, so this one is
		// read-only from the start and made writable while the run waits
		{"read-only", "512m", "ro", "rw", "waiting: opening the DuckDB file failed", "read-only file system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := smallDisk(t, tc.size)
			if tc.fault != "" {
				if err := remount(dir, tc.fault); err != nil {
					t.Fatal(err)
				}
			}
			b := testBroker(t, 8)
			input := b.topic("shift-events")
			sim, msgs, produce := simulatedInput(t, b.Addr, input)
			produce(msgs[:len(msgs)/2])

			var logs testenv.LogBuffer
			var out io.Writer = &logs
			if os.Getenv("STAKHANOV_TEST_LOG") != "" {
				out = io.MultiWriter(&logs, os.Stderr)
			}
			ing := ingest.DefaultOptions(b.Addr)
			ing.InputTopic, ing.Group = input, b.topic("disk")
			ing.AlertsTopic, ing.DLQTopic = b.topic("alerts"), b.topic("dlq")
			ing.RetryBackoffMax = 500 * time.Millisecond
			ing.Logger = slog.New(slog.NewTextHandler(out, nil))
			path := filepath.Join(dir, "faulty.duckdb")
			o := RunOptions{Ingest: ing, DuckDB: analytics.DefaultOptions(path)}
			o.DuckDB.MemoryLimit = "256MB"
			defer func() {
				if t.Failed() {
					t.Logf("the run's log:\n%s", tail(logs.String(), 6000))
				}
			}()

			// faulted: the run has said it waits on the fault; then, and
			// only then, the fault is cleared
			var mu sync.Mutex
			var cleared bool
			var stored int64 = -1 // shifts stored when the fault was seen
			var failure error
			faulted := func() bool {
				l := strings.ToLower(logs.String())
				return strings.Contains(l, strings.ToLower(tc.waiting)) && strings.Contains(l, strings.ToLower(tc.cause))
			}
			clear := func(st int64) {
				mu.Lock()
				defer mu.Unlock()
				if cleared {
					return
				}
				cleared, stored = true, st
				if err := remount(dir, tc.fix); err != nil {
					failure = err
				}
			}
			stopWatch := make(chan struct{})
			defer close(stopWatch)
			if tc.fault != "" {
				// the run waits for the file before it makes a pipeline
				go func() {
					for !faulted() {
						select {
						case <-stopWatch:
							return
						case <-time.After(20 * time.Millisecond):
						}
					}
					clear(0)
				}()
			}
			produced := false
			runTo(t, o, func(p *ingest.Pipeline) bool {
				if !produced {
					produce(msgs[len(msgs)/2:])
					produced = true
				}
				mu.Lock()
				done := cleared
				mu.Unlock()
				if !done {
					if faulted() {
						clear(p.Stats().Shifts)
						return false
					}
					// through without a fault: judged below
					return caughtUp(p)
				}
				return caughtUp(p)
			})
			mu.Lock()
			defer mu.Unlock()
			if failure != nil {
				t.Fatal(failure)
			}
			if !cleared {
				t.Fatalf("%s: the run never logged %q with %q", tc.name, tc.waiting, tc.cause)
			}
			if stored >= sim.Truth().Valid {
				t.Fatalf("%s: the fault came only after all %d shifts were stored: it stopped nothing", tc.name, stored)
			}
			t.Logf("%s: the run waited on the fault (%d shifts stored then) and went on once it was cleared", tc.name, stored)
			db := openRO(t, path)
			if n := column(t, db, `SELECT count(*)::VARCHAR FROM shifts`); n[0] != itoa(sim.Truth().Valid) {
				t.Fatalf("%s shifts stored after the fault, want %d", n[0], sim.Truth().Valid)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
