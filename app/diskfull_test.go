package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
)

// smallDisk mounts a tmpfs of size bytes for the test, and returns its
// directory and a function that remounts it with other options. It needs root (mount); under CI
// a failure to mount fails the test rather than skipping it.
func smallDisk(t *testing.T, size string) (string, func(string)) {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mounting a small disk: %v %s", err, out)
		}
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir, func(opts string) {
		if out, err := exec.Command("mount", "-o", "remount,"+opts, dir).CombinedOutput(); err != nil {
			t.Fatalf("resizing: %v %s", err, out)
		}
	}
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
	}{
		{"full", "6m", "", "size=512m"},
		// a disk cannot turn read-only under an open file, so this one is
		// read-only from the start and made writable while the run waits
		{"read-only", "512m", "ro", "rw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, remount := smallDisk(t, tc.size)
			stage := 0
			if tc.fault != "" {
				remount(tc.fault)
				// the run starts, waits for the file; then the disk mends
				time.AfterFunc(3*time.Second, func() {
					// not remount: t must not fail from another goroutine
					exec.Command("mount", "-o", "remount,"+tc.fix, dir).Run()
				})
				stage = 2
			}
			b := testBroker(t, 8)
			input := b.topic("shift-events")
			sim, msgs, produce := simulatedInput(t, b.Addr, input)
			produce(msgs[:len(msgs)/2])

			io := ingest.DefaultOptions(b.Addr)
			io.InputTopic, io.Group = input, b.topic("disk")
			io.AlertsTopic, io.DLQTopic = b.topic("alerts"), b.topic("dlq")
			io.RetryBackoffMax = 500 * time.Millisecond
			io.Logger = quiet()
			path := filepath.Join(dir, "faulty.duckdb")
			o := RunOptions{Ingest: io, DuckDB: analytics.DefaultOptions(path)}
			o.DuckDB.MemoryLimit = "256MB"

			produced := false
			runTo(t, o, func(p *ingest.Pipeline) bool {
				if !produced {
					produce(msgs[len(msgs)/2:])
					produced = true
				}
				st := p.Stats()
				switch stage {
				case 0, 1: // the stored count stops moving while input remains
					before := st.Shifts
					time.Sleep(2 * time.Second)
					if p.Stats().Shifts == before && before < sim.Truth().Valid {
						t.Logf("%s: storing stopped at %d shifts; clearing the fault", tc.name, before)
						remount(tc.fix)
						stage = 2
					}
					return false
				}
				return caughtUp(p)
			})
			if stage != 2 {
				t.Fatal("the fault never stopped the sink")
			}
			db := openRO(t, path)
			if n := column(t, db, `SELECT count(*)::VARCHAR FROM shifts`); n[0] != itoa(sim.Truth().Valid) {
				t.Fatalf("%s shifts stored after the fault, want %d", n[0], sim.Truth().Valid)
			}
		})
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
