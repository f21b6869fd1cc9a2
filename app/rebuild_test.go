package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
)

// overwriteBlock overwrites, with random bytes, a block in the middle of
// those holding table's data in the closed DuckDB file at path, as a disk
// or a stray write would, and returns its number.
func overwriteBlock(t *testing.T, path, table string) int64 {
	t.Helper()
	s := openStore(t, path)
	var blockSize, total int64
	if err := s.DB().QueryRow(`SELECT block_size, total_blocks FROM pragma_database_size()`).Scan(&blockSize, &total); err != nil {
		t.Fatal(err)
	}
	blocks := column(t, s.DB(), `SELECT DISTINCT block_id::VARCHAR FROM pragma_storage_info(?) WHERE block_id >= 0 ORDER BY block_id`, table)
	s.Close()
	if len(blocks) == 0 {
		t.Fatalf("no block of %s", table)
	}
	var block int64
	fmt.Sscan(blocks[len(blocks)/2], &block)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	header := fi.Size() - total*blockSize // three 4 KiB headers, then the blocks
	if header != 3*4096 {
		t.Fatalf("file of %d bytes, %d blocks of %d: not a 12 KiB header", fi.Size(), total, blockSize)
	}
	junk := make([]byte, blockSize)
	r := rand.New(rand.NewPCG(uint64(block), 1935))
	for i := range junk {
		junk[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(junk, header+block*blockSize); err != nil {
		t.Fatal(err)
	}
	return block
}

// sameTables fails unless the tables of the DuckDB files a and b hold the
// same rows, counted both ways.
func sameTables(t *testing.T, a, b string, tables ...string) {
	t.Helper()
	db := openRO(t, a)
	if _, err := db.Exec(fmt.Sprintf(`ATTACH '%s' AS other (READ_ONLY)`, b)); err != nil {
		t.Fatal(err)
	}
	defer db.Exec(`DETACH other`)
	for _, table := range tables {
		n := column(t, db, fmt.Sprintf(`SELECT count(*)::VARCHAR FROM ((SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM other.%[1]s) UNION ALL (SELECT * FROM other.%[1]s EXCEPT ALL SELECT * FROM %[1]s))`, table))
		rows := column(t, db, `SELECT count(*)::VARCHAR FROM `+table)
		if n[0] != "0" {
			t.Errorf("%s differs between %s and %s: %s rows", table, filepath.Base(a), filepath.Base(b), n[0])
		} else {
			t.Logf("%s: %s rows, the same in both", table, rows[0])
		}
	}
}

// bgRun is a Run in the background, its metrics address and its log.
type bgRun struct {
	base string
	logs *testenv.LogBuffer
	stop context.CancelFunc
	done chan error
}

func startRun(t *testing.T, o RunOptions) *bgRun {
	t.Helper()
	r := &bgRun{logs: &testenv.LogBuffer{}, done: make(chan error, 1)}
	var out io.Writer = r.logs
	if os.Getenv("STAKHANOV_TEST_LOG") != "" {
		out = io.MultiWriter(r.logs, os.Stderr)
	}
	o.Ingest.Logger = slog.New(slog.NewTextHandler(out, nil))
	addr := make(chan string, 1)
	o.serving = func(a string) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() { _, err := Run(ctx, o); r.done <- err }()
	r.base = "http://" + <-addr
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("the run's log:\n%s", r.logs.String())
		}
	})
	return r
}

func (r *bgRun) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(r.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitDamaged waits for /readyz to say the file is damaged and returns
// what it says.
func (r *bgRun) waitDamaged(t *testing.T) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, body := r.get(t, "/readyz")
		if code == http.StatusServiceUnavailable && strings.HasPrefix(body, "damaged:") {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz does not tell the damage in 60 s: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// end stops the run and returns its error.
func (r *bgRun) end(t *testing.T) error {
	t.Helper()
	r.stop()
	select {
	case err := <-r.done:
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("run did not stop in 60 s")
		return nil
	}
}

// TestDamagedFileRebuild: the sink's file, checkpointed, gets a block of
// shift data overwritten. A run started on it finds the damage (the
// verification at start reads it), stops storing, says so on /readyz and
// in one error line naming the rebuild command, counts it, answers a query
// that reads the damaged block with a server error rather than as bad SQL,
// keeps answering the rest, and returns ErrCorrupt when stopped; started
// again it refuses the file at once. `stakhanov rebuild` then writes, from
// the results topic alone, a file whose tables equal those of the file as
// it was before the damage, offsets included; swapped in, it is resumed by
// the sink with the rest of the input, and the result equals an
// uninterrupted run of the whole input.
func TestDamagedFileRebuild(t *testing.T) {
	b := testBroker(t, 4)
	input := b.topic("shift-events")
	sim, msgs, produce := simulatedInput(t, b.Addr, input)
	dir := t.TempDir()
	path := filepath.Join(dir, "stakhanov.duckdb")
	opts := func(group, path string) RunOptions {
		o := runOptionsOn(b, input, group, path)
		o.Ingest.Logger = quiet()
		return o
	}
	first := 2 * len(msgs) / 3
	produce(msgs[:first])
	start := time.Now()
	runTo(t, opts("dmg", path), caughtUp)
	t.Logf("the sink's file written in %v", time.Since(start).Round(time.Millisecond))
	pristine := filepath.Join(dir, "pristine.duckdb")
	copyFile(t, path, pristine)
	block := overwriteBlock(t, path, "shifts")
	t.Logf("overwrote block %d of %s", block, path)

	// started on the damaged file
	start = time.Now()
	r := startRun(t, opts("dmg", path))
	ready := r.waitDamaged(t)
	t.Logf("/readyz after %v: %s", time.Since(start).Round(time.Millisecond), ready)
	cmd := "stakhanov rebuild --brokers " + b.Addr + " --group " + b.topic("dmg")
	for _, want := range []string{"Corrupt database file", cmd, "--duckdb " + filepath.Join(dir, "stakhanov.rebuilt.duckdb")} {
		if !strings.Contains(ready, want) {
			t.Errorf("/readyz lacks %q", want)
		}
	}
	if code, body := r.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz of a process serving a damaged file: %d %s", code, body)
	}
	_, text := r.get(t, "/metrics")
	m := parseMetrics(t, text)
	if m["stakhanov_duckdb_damaged"] != 1 || m["stakhanov_duckdb_corruption_errors_total"] < 1 || m["stakhanov_ready"] != 0 {
		t.Errorf("metrics: damaged %v, corruption errors %v, ready %v", m["stakhanov_duckdb_damaged"],
			m["stakhanov_duckdb_corruption_errors_total"], m["stakhanov_ready"])
	}
	logs := r.logs.String()
	if n := strings.Count(logs, "THE DUCKDB FILE IS DAMAGED"); n != 1 || !strings.Contains(logs, "level=ERROR") ||
		!strings.Contains(logs, cmd) {
		t.Errorf("the damage logged %d times, or without the rebuild command", n)
	}
	// reads go on through the endpoint: beside the damage they work, and
	// through it they are the server's failure, not bad SQL
	u, err := LiveEndpoint(context.Background(), ClientOptions{}, path)
	if err != nil {
		t.Fatal("no live endpoint")
	}
	err = QueryEndpoint(context.Background(), ClientOptions{}, u, `SELECT bit_xor(hash(s)) FROM shifts s`, analytics.FormatCSV, io.Discard)
	var ee *EndpointError
	if !errors.As(err, &ee) || ee.Status != http.StatusInternalServerError || !errors.Is(err, analytics.ErrCorrupt) || errors.Is(err, analytics.ErrBadSQL) {
		t.Errorf("a query reading the damaged block: %v, want HTTP 500 and ErrCorrupt", err)
	}
	if err := QueryEndpoint(context.Background(), ClientOptions{}, u, `SELECT count(*) FROM alerts`, analytics.FormatCSV, io.Discard); err != nil {
		t.Errorf("a query beside the damage: %v", err)
	}
	if err := r.end(t); !errors.Is(err, analytics.ErrCorrupt) {
		t.Fatalf("run on a damaged file returned %v, want ErrCorrupt", err)
	}
	if m2 := parseMetrics(t, text); m2["stakhanov_duckdb_corruption_errors_total"] < 1 {
		t.Errorf("corruption errors %v", m2["stakhanov_duckdb_corruption_errors_total"])
	}

	// started again: the marker refuses the file at once
	r = startRun(t, opts("dmg", path))
	ready = r.waitDamaged(t)
	if !strings.Contains(ready, analytics.DamageMarker(path)) {
		t.Errorf("/readyz of the second start does not name the marker: %s", ready)
	}
	if err := r.end(t); !errors.Is(err, analytics.ErrCorrupt) {
		t.Fatalf("second run returned %v", err)
	}

	// rebuilt from the results topic: the tables as they were
	rebuilt := filepath.Join(dir, "stakhanov.rebuilt.duckdb")
	var logs2 testenv.LogBuffer
	ro := DefaultRebuildOptions()
	ro.Ingest = opts("dmg", path).Ingest
	ro.DuckDB = analytics.DefaultOptions(rebuilt)
	ro.ProgressEvery = time.Millisecond
	ro.Logger = slog.New(slog.NewTextHandler(&logs2, nil))
	start = time.Now()
	res, err := Rebuild(context.Background(), ro)
	if err != nil {
		t.Fatalf("rebuild: %v\n%s", err, logs2.String())
	}
	t.Logf("rebuilt in %v: %d messages, %d shifts, %d alerts, %d commits, partitions %s",
		time.Since(start).Round(time.Millisecond), res.Messages, res.ShiftsStored, res.AlertsStored, res.Commits, partitionsLine(res.Partitions))
	if res.Path != rebuilt || !res.Done || len(res.Truncated) > 0 {
		t.Errorf("result %+v", res)
	}
	if !strings.Contains(logs2.String(), "rebuild progress") || !strings.Contains(logs2.String(), "msg=rebuilt") {
		t.Errorf("no progress lines:\n%s", logs2.String())
	}
	sameTables(t, pristine, rebuilt, "shifts", "alerts", "norms", "rejects", "ingest_offsets", "rule_options")
	if entries, _ := filepath.Glob(filepath.Join(dir, ".*rebuilding*")); len(entries) > 0 {
		t.Errorf("left behind: %v", entries)
	}
	// never over an existing file, the damaged one least of all
	for _, target := range []string{rebuilt, path} {
		ro.DuckDB.Path = target
		if _, err := Rebuild(context.Background(), ro); !errors.Is(err, ErrRebuildTarget) {
			t.Errorf("rebuild into the existing %s: %v", target, err)
		}
	}

	// swapped in and resumed with the rest of the input: no row twice
	aside := filepath.Join(dir, "damaged")
	if err := os.Mkdir(aside, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + ".wal", analytics.DamageMarker(path)} {
		if err := os.Rename(f, filepath.Join(aside, filepath.Base(f))); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := os.Rename(rebuilt, path); err != nil {
		t.Fatal(err)
	}
	produce(msgs[first:])
	runTo(t, opts("dmg", path), caughtUp)
	once := filepath.Join(dir, "once.duckdb")
	runTo(t, opts("once", once), caughtUp)
	sameTables(t, once, path, "shifts", "alerts", "norms", "rejects")
	if n := column(t, openRO(t, path), `SELECT count(*)::VARCHAR FROM shifts`); n[0] != fmt.Sprint(sim.Truth().Valid) {
		t.Errorf("shifts %s after the resumed run, distinct valid events %d", n[0], sim.Truth().Valid)
	}
}

// TestRebuildRefusesTruncatedResults: when retention has deleted the
// start of a partition of the results topic, rebuild refuses before it
// writes anything, naming the partition and the offsets gone; with
// AllowPartial it writes what is left and says what is missing.
func TestRebuildRefusesTruncatedResults(t *testing.T) {
	b := testBroker(t, 4)
	input := b.topic("shift-events")
	_, msgs, produce := simulatedInput(t, b.Addr, input)
	dir := t.TempDir()
	path := filepath.Join(dir, "stakhanov.duckdb")
	o := runOptionsOn(b, input, "trunc", path)
	// produced in four parts, each processed before the next: several
	// results messages in each partition
	for i := range 4 {
		produce(msgs[i*len(msgs)/4 : (i+1)*len(msgs)/4])
		runTo(t, o, caughtUp)
	}
	st := openStore(t, path)
	ends, err := st.Offsets(context.Background(), o.Ingest.ResultsTopic())
	st.Close()
	if err != nil || ends[2] < 2 {
		t.Fatalf("results partition 2 ends at %d (%v)", ends[2], err)
	}
	cut := ends[2] / 2
	testenv.DeleteRecords(t, b.Addr, o.Ingest.ResultsTopic(), 2, cut)

	ro := DefaultRebuildOptions()
	ro.Ingest = o.Ingest
	ro.DuckDB = analytics.DefaultOptions(filepath.Join(dir, "rebuilt.duckdb"))
	ro.Logger = quiet()
	_, err = Rebuild(context.Background(), ro)
	if !errors.Is(err, ingest.ErrResultsTruncated) ||
		!strings.Contains(err.Error(), fmt.Sprintf("partition 2 holds offsets %d to %d, offsets 0 to %d (%d results) are deleted", cut, ends[2]-1, cut-1, cut)) {
		t.Fatalf("rebuild from a truncated results topic: %v", err)
	}
	t.Logf("refused: %v", err)
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("the refused rebuild left files: %v", names)
	}

	ro.AllowPartial = true
	res, err := Rebuild(context.Background(), ro)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Truncated) != 1 || res.Truncated[0].Partition != 2 || res.Truncated[0].Missing() != cut {
		t.Fatalf("partial rebuild says %+v", res.Truncated)
	}
	var full, part int
	fmt.Sscan(column(t, openRO(t, path), `SELECT count(*)::VARCHAR FROM shifts`)[0], &full)
	fmt.Sscan(column(t, openRO(t, ro.DuckDB.Path), `SELECT count(*)::VARCHAR FROM shifts`)[0], &part)
	if part == 0 || part >= full {
		t.Errorf("partial rebuild holds %d shifts of %d", part, full)
	}
	t.Logf("partial rebuild: %d shifts of %d; %+v", part, full, res.Truncated)
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
