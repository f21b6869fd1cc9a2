package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
)

// TestLiveReadingWhileIngesting runs the pipeline command on the embedded
// broker while a producer feeds it, and reads its DuckDB file as analysts
// do: through the endpoint (counts rise; an INSERT is refused; Arrow
// decodes), `query` and `export` by the file's name, a snapshot on
// request, and then, while the pipeline still holds its file, the
// snapshot and both Parquet exports from a second process: Python with
// duckdb and pyarrow (STAKHANOV_PYTHON).
func TestLiveReadingWhileIngesting(t *testing.T) {
	b := testBroker(t, 8)
	input := b.topic("shift-events")
	sim, msgs, produce := simulatedInput(t, b.Addr, input)
	dir := t.TempDir()
	path := filepath.Join(dir, "live.duckdb")

	o := runOptionsOn(b, input, "live", path)
	o.Ingest.BatchMaxEvents = 2000 // many small commits: counts rise visibly
	// Snapshots only on request here, so that the one the second process
	// reads is the one the test asked for (TestSnapshotSchedule covers the
	// interval).
	o.Live.SnapshotInterval = 0
	var pipeline atomic.Pointer[ingest.Pipeline]
	o.started = func(p *ingest.Pipeline) { pipeline.Store(p) }

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { _, err := Run(ctx, o); ran <- err }()
	// the input arrives over a few seconds, in parts
	const parts = 10
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range parts {
			produce(msgs[i*len(msgs)/parts : (i+1)*len(msgs)/parts])
			time.Sleep(300 * time.Millisecond)
		}
	}()

	base := waitEndpoint(t, path)
	t.Logf("endpoint %s", base)
	valid := int64(sim.Truth().Valid)

	// counts rise while the pipeline ingests
	var seen []int64
	deadline := time.Now().Add(60 * time.Second)
	for len(seen) < 4 && time.Now().Before(deadline) {
		n := countShifts(t, base)
		if len(seen) == 0 || n > seen[len(seen)-1] {
			seen = append(seen, n)
		} else if n < seen[len(seen)-1] {
			t.Fatalf("shift count went down: %v then %d", seen, n)
		}
		time.Sleep(30 * time.Millisecond)
	}
	if len(seen) < 4 || seen[len(seen)-1] >= valid {
		t.Fatalf("counts seen while ingesting: %v (of %d)", seen, valid)
	}
	t.Logf("shift counts seen while ingesting: %v of %d", seen, valid)

	t.Run("INSERT refused", func(t *testing.T) {
		resp, err := http.Get(base + "/v1/query?format=csv&sql=" + url.QueryEscape("INSERT INTO shifts (event_id) VALUES ('forged')"))
		if err != nil {
			t.Fatal(err)
		}
		var eb analytics.ErrorBody
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || err != nil || eb.StatementType != "INSERT" {
			t.Fatalf("HTTP %d %+v (%v)", resp.StatusCode, eb, err)
		}
		err = QueryEndpoint(ctx, ClientOptions{}, base, "DELETE FROM shifts", analytics.FormatCSV, io.Discard)
		var ee *EndpointError
		if !errors.Is(err, analytics.ErrNotReadOnly) || !errors.As(err, &ee) || ee.StatementType != "DELETE" {
			t.Fatalf("DELETE through QueryEndpoint: %v", err)
		}
	})
	t.Run("arrow decodes", func(t *testing.T) {
		resp, err := http.Get(base + "/v1/query?format=arrow&sql=" + url.QueryEscape("SELECT plant_id, day, rate, shift_start FROM shifts"))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/vnd.apache.arrow.stream" {
			t.Fatalf("HTTP %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		r, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Release()
		var rows int64
		for r.Next() {
			rows += r.RecordBatch().NumRows()
		}
		if r.Err() != nil || rows == 0 || r.Schema().Field(1).Type.String() != "date32" {
			t.Fatalf("%d rows, schema %s, %v", rows, r.Schema(), r.Err())
		}
	})
	t.Run("query by file name goes through the endpoint", func(t *testing.T) {
		var out bytes.Buffer
		if err := Query(ctx, ClientOptions{}, path, "SELECT count(*) > 0 AS some FROM alerts", analytics.FormatCSV, &out); err != nil {
			t.Fatal(err)
		}
		if out.String() != "some\ntrue\n" {
			t.Errorf("%q", out.String())
		}
	})
	// export by the file's name, while ingesting: through a snapshot
	exportDir := filepath.Join(dir, "export")
	exported, from, err := Export(ctx, ExportOptions{DuckDB: path, Out: exportDir})
	if err != nil {
		t.Fatal(err)
	}
	if from != filepath.Join(DefaultSnapshotDir(path), analytics.SnapshotFile) || exported.Tables["shifts"] == 0 {
		t.Fatalf("export from %s: %+v", from, exported)
	}
	t.Logf("exported while ingesting: %v", exported.Tables)

	// once everything is in, the snapshot holds it all
	deadline = time.Now().Add(90 * time.Second)
	for {
		p := pipeline.Load()
		select {
		case <-produced:
			if p != nil && caughtUp(p) {
				goto done
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the pipeline did not catch up in 90 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
done:
	if n := countShifts(t, base); n != valid {
		t.Fatalf("%d shifts stored, %d valid events", n, valid)
	}
	snap, err := Snapshot(ctx, SnapshotOptions{DuckDB: path})
	if err != nil {
		t.Fatal(err)
	}
	truth := sim.Truth()
	if snap.Tables["shifts"] != valid || snap.Tables["rejects"] != int64(truth.MalformedCount) || snap.Tables["alerts"] == 0 {
		t.Fatalf("snapshot %+v; truth %d valid, %d malformed", snap, valid, truth.MalformedCount)
	}
	if snap.Path != filepath.Join(DefaultSnapshotDir(path), analytics.SnapshotFile) {
		t.Fatalf("snapshot at %s", snap.Path)
	}

	t.Run("a second process reads the snapshot and the exports", func(t *testing.T) {
		py := os.Getenv("STAKHANOV_PYTHON")
		if py == "" {
			testenv.Missing(t, "STAKHANOV_PYTHON is not set: it names a Python with duckdb (1.5.x) and pyarrow, which reads the snapshot in a second process",
				"make test sets up notebooks/requirements.txt's virtualenv under ~/.cache/stakhanov and sets it; by hand: python3 -m venv DIR && DIR/bin/pip install -r notebooks/requirements.txt, then STAKHANOV_PYTHON=DIR/bin/python")
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Minute)
		defer pcancel()
		cmd := exec.CommandContext(pctx, py, filepath.Join("testdata", "read_snapshot.py"), snap.Path, snap.ParquetDir, exportDir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v\n%s", py, err, stderr.String())
		}
		var got struct {
			Versions        map[string]string
			Snapshot        map[string]int64
			SnapshotViews   int                         `json:"snapshot_views"`
			SnapshotParquet map[string]map[string]int64 `json:"snapshot_parquet"`
			Export          map[string]map[string]int64
		}
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Logf("read by %v", got.Versions)
		if !maps.Equal(got.Snapshot, snap.Tables) || got.SnapshotViews == 0 {
			t.Errorf("snapshot file: %v and %d views, want %v", got.Snapshot, got.SnapshotViews, snap.Tables)
		}
		for _, c := range []struct {
			name string
			got  map[string]map[string]int64
			want map[string]int64
		}{{"snapshot Parquet", got.SnapshotParquet, snap.Tables}, {"export", got.Export, exported.Tables}} {
			if len(c.got) < 2 {
				t.Errorf("%s: read by %d libraries", c.name, len(c.got))
			}
			for lib, counts := range c.got {
				if !maps.Equal(counts, c.want) {
					t.Errorf("%s read by %s: %v, want %v", c.name, lib, counts, c.want)
				}
			}
		}
	})

	t.Run("Flight SQL", func(t *testing.T) {
		b, err := os.ReadFile(FlightFile(path))
		if err != nil {
			t.Fatal(err)
		}
		uri := strings.TrimSpace(string(b))
		if !strings.HasPrefix(uri, "grpc://127.0.0.1:") {
			t.Fatalf("%s holds %q", FlightFile(path), uri)
		}
		var out bytes.Buffer
		if err := QueryFlight(ctx, ClientOptions{}, uri, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil {
			t.Fatal(err)
		}
		n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(out.String()), "n\n"), 10, 64)
		if err != nil || n == 0 || n > valid {
			t.Fatalf("count through Flight SQL: %q (%v)", out.String(), err)
		}
		err = QueryFlight(ctx, ClientOptions{}, uri, "INSERT INTO shifts (event_id) VALUES ('forged')", analytics.FormatCSV, io.Discard)
		if !errors.Is(err, analytics.ErrNotReadOnly) || !strings.Contains(err.Error(), "INSERT") {
			t.Fatalf("INSERT through Flight SQL: %v", err)
		}
	})

	cancel()
	if err := <-ran; err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{EndpointFile(path), FlightFile(path)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left after a clean stop: %v", f, err)
		}
	}
	// the file is free again: query opens it
	var out bytes.Buffer
	if err := Query(context.Background(), ClientOptions{}, path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != fmt.Sprintf("n\n%d\n", valid) {
		t.Errorf("after the run: %q", out.String())
	}
}

// waitEndpoint waits for the pipeline holding path to serve its endpoint.
func waitEndpoint(t *testing.T, path string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if u, err := LiveEndpoint(context.Background(), ClientOptions{}, path); err == nil {
			return u
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no endpoint for %s after 30 s", path)
	return ""
}

func countShifts(t *testing.T, base string) int64 {
	t.Helper()
	var out bytes.Buffer
	if err := QueryEndpoint(context.Background(), ClientOptions{}, base, "SELECT count(*) FROM shifts", analytics.FormatCSV, &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	n, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", out.String(), err)
	}
	return n
}

// TestSnapshotSchedule: the sink's live reading without Kafka: the
// endpoint file while it serves, snapshots on the interval (logged with
// their rows) only when something was stored since the last, and nothing
// left after stop.
func TestSnapshotSchedule(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "s.duckdb")
	store, err := analytics.Open(context.Background(), analytics.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	var logs testenv.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := DefaultLiveOptions()
	o.SnapshotInterval = 100 * time.Millisecond
	lv, err := startLive(context.Background(), o, path, store, log)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := LiveEndpoint(context.Background(), ClientOptions{}, path); err != nil || u != lv.URL || !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("endpoint file names %q (%v), serving %s", u, err, lv.URL)
	}
	waitSnapshots := func(n int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(logs.String(), "snapshot written") < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := strings.Count(logs.String(), "snapshot written"); got != n {
			t.Fatalf("%d snapshots, want %d; log:\n%s", got, n, logs.String())
		}
	}
	waitSnapshots(1)
	// nothing stored: the next intervals come and take none
	skipped := strings.Count(logs.String(), "snapshot skipped")
	for deadline := time.Now().Add(20 * time.Second); strings.Count(logs.String(), "snapshot skipped") < skipped+3; {
		if time.Now().After(deadline) {
			t.Fatalf("no three intervals passed in 20 s without a write (each logs \"snapshot skipped\"); log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitSnapshots(1)
	if _, err := store.Commit(context.Background(), &ingest.Batch{Topic: "results", Offsets: map[int32]int64{0: 7}}); err != nil {
		t.Fatal(err)
	}
	waitSnapshots(2)
	lv.stop()
	l := logs.String()
	// each of the two snapshots logs every table done, and the copy
	done := strings.Count(l, "msg=\"snapshot progress\"") - strings.Count(l, "done=false")
	if !strings.Contains(l, "rows=\"map[alerts:0 norms:0 rejects:0 shifts:0]\"") ||
		!strings.Contains(l, "files=\"map[alerts:1 norms:1 rejects:1 shifts:1]\"") || done != 2*5 ||
		strings.Count(l, "serving read-only SQL") != 1 || strings.Count(l, "serving Arrow Flight SQL") != 1 {
		t.Errorf("log:\n%s", l)
	}
	if _, err := os.Stat(filepath.Join(DefaultSnapshotDir(path), analytics.SnapshotFile)); err != nil {
		t.Error(err)
	}
	for _, f := range []string{EndpointFile(path), FlightFile(path)} {
		if _, err := os.Stat(f); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after stop: %v", f, err)
		}
	}
	if _, err := LiveEndpoint(context.Background(), ClientOptions{}, path); !errors.Is(err, ErrNoEndpoint) {
		t.Error("an endpoint answers after stop")
	}
}

func TestLiveOptionsValidate(t *testing.T) {
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true}, {"off", true}, {"", true}, {"[::1]:8080", true}, {"localhost:8080", true}, {"0.0.0.0:9000", false}, {":9000", false},
		{"localhost", false}, {"127.0.0.1:99999", false}, {"127.0.0.1:x", false},
	} {
		o := DefaultLiveOptions()
		o.QueryAddr = c.addr
		if err := o.Validate(); (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidLiveOptions)) {
			t.Errorf("%q: %v", c.addr, err)
		}
	}
	// The Flight SQL server asks for the endpoint's credentials: beyond
	// loopback without them it is refused with the options to set.
	for _, c := range []struct {
		addr  string
		token string
		ok    bool
	}{
		{"127.0.0.1:0", "", true}, {"localhost:31337", "", true}, {"[::1]:0", "", true}, {"off", "", true},
		{"0.0.0.0:31337", "", false}, {":31337", "", false}, {"[::]:0", "", false}, {"192.0.2.1:0", "", false},
		{"0.0.0.0:31337", testToken, true}, {"localhost", "", false},
	} {
		o := DefaultLiveOptions()
		o.FlightAddr, o.QueryToken = c.addr, c.token
		err := o.Validate()
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalidLiveOptions)) {
			t.Errorf("flight %q (token %v): %v", c.addr, c.token != "", err)
		}
		if err != nil && strings.Contains(c.addr, ":") && (!errors.Is(err, ErrNoCredentials) ||
			!strings.Contains(err.Error(), "endpoints.flight_addr (--flight-addr) "+c.addr) || !strings.Contains(err.Error(), credentialsAdvice)) {
			t.Errorf("flight %q: the refusal names not the options: %v", c.addr, err)
		}
	}
	o := DefaultLiveOptions()
	o.QueryTimeout = 0
	if o.Validate() == nil {
		t.Error("a zero query timeout passed")
	}
	o = DefaultLiveOptions()
	o.SnapshotInterval = -time.Second
	if o.Validate() == nil {
		t.Error("a negative interval passed")
	}
}

// TestHeldByAnotherProcess: query, snapshot and export of a file another
// process holds read-write: refused with advice when it serves no
// endpoint, through its endpoint when it does, and directly again once it
// is gone, even if killed with its endpoint file left behind.
func TestHeldByAnotherProcess(t *testing.T) {
	if path := os.Getenv("STAKHANOV_HOLD_DUCKDB"); path != "" {
		holdDuckDB(t, path, os.Getenv("STAKHANOV_HOLD_QUERY_ADDR"))
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "held.duckdb")
	s, err := analytics.Open(ctx, analytics.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	insertShifts(t, s)
	s.Close()
	count := "n\n3\n"

	hold := func(addr string) (*exec.Cmd, io.WriteCloser) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestHeldByAnotherProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), "STAKHANOV_HOLD_DUCKDB="+path, "STAKHANOV_HOLD_QUERY_ADDR="+addr)
		cmd.Stderr = os.Stderr
		stdin, _ := cmd.StdinPipe()
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		line, err := readLine(stdout)
		if err != nil || line != "ready" {
			t.Fatalf("holder said %q (%v)", line, err)
		}
		go io.Copy(io.Discard, stdout)
		return cmd, stdin
	}

	t.Run("no endpoint", func(t *testing.T) {
		cmd, stdin := hold(QueryAddrOff)
		err := Query(ctx, ClientOptions{}, path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, io.Discard)
		if !analytics.IsLocked(err) || !strings.Contains(err.Error(), "no query endpoint answers") {
			t.Errorf("query: %v", err)
		}
		if _, err := Snapshot(ctx, SnapshotOptions{DuckDB: path}); !analytics.IsLocked(err) {
			t.Errorf("snapshot: %v", err)
		}
		if _, _, err := Export(ctx, ExportOptions{DuckDB: path, Out: filepath.Join(dir, "x")}); !analytics.IsLocked(err) {
			t.Errorf("export: %v", err)
		}
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("through its endpoint, then killed", func(t *testing.T) {
		cmd, _ := hold(DefaultQueryAddr)
		var out bytes.Buffer
		if err := Query(ctx, ClientOptions{}, path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil || out.String() != count {
			t.Fatalf("query: %q %v", out.String(), err)
		}
		snap, err := Snapshot(ctx, SnapshotOptions{DuckDB: path, Dir: filepath.Join(dir, "ignored")})
		if err != nil || snap.Path != filepath.Join(DefaultSnapshotDir(path), analytics.SnapshotFile) || snap.Tables["shifts"] != 3 {
			t.Fatalf("snapshot: %+v %v", snap, err)
		}
		res, from, err := Export(ctx, ExportOptions{DuckDB: path, Out: filepath.Join(dir, "export")})
		if err != nil || from != snap.Path || res.Tables["shifts"] != 3 {
			t.Fatalf("export: %+v from %s: %v", res, from, err)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if _, err := os.Stat(EndpointFile(path)); err != nil {
			t.Fatalf("a killed holder should leave its endpoint file: %v", err)
		}
		out.Reset()
		if err := Query(ctx, ClientOptions{}, path, "SELECT count(*) AS n FROM shifts", analytics.FormatCSV, &out); err != nil || out.String() != count {
			t.Fatalf("query after the holder died: %q %v", out.String(), err)
		}
	})
}

// holdDuckDB is the other process: it opens path read-write, serves the
// endpoint on addr, says "ready" and holds the file until stdin closes.
func holdDuckDB(t *testing.T, path, addr string) {
	ctx := context.Background()
	s, err := analytics.Open(ctx, analytics.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := DefaultLiveOptions()
	o.QueryAddr, o.SnapshotInterval = addr, 0
	lv, err := startLive(ctx, o, path, s, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer lv.stop()
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
}

func readLine(r io.Reader) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		if _, err := r.Read(one); err != nil {
			return string(b), err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
}

// insertShifts stores three shifts.
func insertShifts(t *testing.T, s *analytics.Store) {
	t.Helper()
	for _, id := range []string{"a", "b", "c"} {
		if _, err := s.DB().Exec(`INSERT INTO shifts (event_id, plant_id, industry, day) VALUES (?, 'p', 'coal', DATE '1935-08-31')`, id); err != nil {
			t.Fatal(err)
		}
	}
}
