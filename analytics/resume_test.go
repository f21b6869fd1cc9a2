package analytics

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
)

// TestResumeAfterReopen is the resume contract: what one process commits,
// the next one reads back, offsets and rows alike.
func TestResumeAfterReopen(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/resume.duckdb"
	s, err := Open(ctx, DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	// Partition 0 gets shifts 0..299 over three commits, partition 1 gets
	// 300..349.
	var committed []processors.Shift
	for c := range 3 {
		b := shiftBatch(c*100, 100, 0, int64(c*100))
		b.Shifts[len(b.Shifts)-1].Section = "" // an absent section is NULL
		committed = append(committed, b.Shifts...)
		if _, err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	b := shiftBatch(300, 50, 1, 1000)
	committed = append(committed, b.Shifts...)
	if _, err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	// Only offsets move for partition 2.
	if _, err := s.Commit(ctx, &ingest.Batch{Topic: testTopic, Offsets: map[int32]int64{2: 5}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openPath(t, path)
	offs, err := s.Offsets(ctx, testTopic)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int32]int64{0: 300, 1: 1050, 2: 5}; fmt.Sprint(offs) != fmt.Sprint(want) {
		t.Errorf("offsets %v, want %v", offs, want)
	}
	if offs, _ := s.Offsets(ctx, "unknown"); len(offs) != 0 {
		t.Errorf("offsets of an unknown topic: %v", offs)
	}
	if n := count(t, s, "shifts"); n != len(committed) {
		t.Errorf("%d shifts after reopening, want %d", n, len(committed))
	}
	checkShiftRows(t, s, committed, testTopic)
}

// helperEnv names the database file a helper process opens.
const helperEnv = "STAKHANOV_ANALYTICS_HELPER_DB"

// TestHelperProcess is not a test: run by TestSecondProcess in a child
// process, it opens the file read-only, reads every row of every table and
// prints the counts.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	opts := DefaultOptions(path)
	opts.ReadOnly = true
	s, err := Open(context.Background(), opts)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(3)
	}
	var out []string
	for _, q := range []string{
		// Scanning every column reads every stored vector.
		"SELECT count(*) FROM (SELECT DISTINCT * FROM shifts)",
		"SELECT count(*) FROM (SELECT DISTINCT * FROM alerts)",
		"SELECT count(*) FROM (SELECT DISTINCT * FROM norms)",
		"SELECT count(*) FROM (SELECT DISTINCT * FROM rejects)",
		"SELECT count(*) FROM ingest_offsets",
		// A view left by RegisterView is what crashes a reader.
		"SELECT count(*) FROM duckdb_views() WHERE view_name LIKE 'stakhanov_load_%'",
	} {
		var n int
		if err := s.DB().QueryRow(q).Scan(&n); err != nil {
			fmt.Println(q, err)
			os.Exit(4)
		}
		out = append(out, fmt.Sprint(n))
	}
	if err := s.Close(); err != nil {
		fmt.Println("close:", err)
		os.Exit(5)
	}
	fmt.Println("counts", strings.Join(out, " "))
	os.Exit(0)
}

// TestSecondProcess guards against the RegisterView bug: a view left in
// the file crashes the next process that opens it.
func TestSecondProcess(t *testing.T) {
	s, path := openTemp(t)
	mustCommit(t, s, fullBatch(0, 0, 0))
	mustCommit(t, s, fullBatch(100, 1, 0))
	big := shiftBatch(1000, 20000, 2, 0)
	mustCommit(t, s, big)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	run := func() string {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("helper process: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	const want = "counts 20100 4 2 2 3 0"
	if got := run(); !strings.Contains(got, want) {
		t.Errorf("helper printed %q, want %q", got, want)
	}
	// Twice: the first reader must not have changed the file either.
	if got := run(); !strings.Contains(got, want) {
		t.Errorf("second helper printed %q, want %q", got, want)
	}
}
