package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/app"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// publishResults writes a results message of a reject and a norm to each
// of the partitions of topic, as processors do.
func publishResults(t *testing.T, addr, topic string, partitions, each int) {
	t.Helper()
	for p := range partitions {
		conn, err := kafka.DialLeader(context.Background(), "tcp", addr, topic, p)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []kafka.Message
		for i := range each {
			r := ingest.Results{
				Rejects: []ingest.Reject{{Topic: "shift-events", Partition: int32(p), Offset: int64(i), Reason: shift.ReasonInvalidJSON, Detail: "not JSON", Value: []byte("x")}},
				Norms: []processors.NormRow{{Group: shift.GroupKey{PlantID: fmt.Sprintf("plant-%d", p), Role: "hewer", Unit: "t"},
					Day: shift.Day(i), Norm: processors.Norm{Count: 3, Median: 2, Mean: 2, P90: 3}}},
			}
			enc, err := ingest.EncodeResults(nil, &r, ingest.MinResultsMessage)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range enc {
				msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(p)), Value: m})
			}
		}
		if _, err := conn.WriteMessages(msgs...); err != nil {
			t.Fatal(err)
		}
		conn.Close()
	}
}

// TestRebuildCommand: `stakhanov rebuild` writes a new file from the
// results topic and says what it stored and where each partition ends;
// it refuses an existing file, a missing --duckdb, and a results topic
// whose start was deleted (unless --allow-partial, which says what is
// missing). A damaged file is exit status 3.
func TestRebuildCommand(t *testing.T) {
	ctx := context.Background()
	b, err := app.StartBroker(app.BrokerOptions{Listen: "127.0.0.1:0", Partitions: 2, Topics: []string{"g-results"}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	publishResults(t, b.Addr, "g-results", 2, 3)
	dir := t.TempDir()
	nw := filepath.Join(dir, "new.duckdb")
	args := func(extra ...string) []string {
		return append([]string{"--brokers", b.Addr, "--group", "g", "--log-level", "warn"}, extra...)
	}

	out, err := capture(t, func() error { return rebuild(ctx, args("--duckdb", nw)) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("rebuild:\n%s", out)
	for _, want := range []string{"rebuilt " + nw + " from g-results", "stored: 0 shifts, 0 alerts, 6 norms, 6 rejects",
		"PARTITION  FROM  NEXT  END", "0          0     3     3", "1          0     3     3", "resumes at these offsets"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	o := analytics.DefaultOptions(nw)
	o.ReadOnly = true
	s, err := analytics.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var rejects, offsets int
	s.DB().QueryRow(`SELECT (SELECT count(*) FROM rejects), (SELECT sum(next_offset) FROM ingest_offsets WHERE topic = 'g-results')`).Scan(&rejects, &offsets)
	s.Close()
	if rejects != 6 || offsets != 6 {
		t.Errorf("the new file has %d rejects and offsets summing to %d", rejects, offsets)
	}

	if _, err := capture(t, func() error { return rebuild(ctx, args("--duckdb", nw)) }); !errors.Is(err, app.ErrRebuildTarget) || exitCode(err) != 1 {
		t.Errorf("rebuild over an existing file: %v", err)
	}
	if _, err := capture(t, func() error { return rebuild(ctx, args()) }); err == nil || !strings.Contains(err.Error(), "--duckdb") {
		t.Errorf("rebuild without --duckdb: %v", err)
	}

	testenv.DeleteRecords(t, b.Addr, "g-results", 1, 2)
	other := filepath.Join(dir, "other.duckdb")
	_, err = capture(t, func() error { return rebuild(ctx, args("--duckdb", other)) })
	if !errors.Is(err, ingest.ErrResultsTruncated) || !strings.Contains(err.Error(), "partition 1 holds offsets 2 to 2, offsets 0 to 1 (2 results) are deleted") ||
		!strings.Contains(err.Error(), "--allow-partial") {
		t.Fatalf("rebuild from a truncated topic: %v", err)
	}
	if _, err := os.Stat(other); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused rebuild left %s: %v", other, err)
	}
	out, err = capture(t, func() error { return rebuild(ctx, args("--duckdb", other, "--allow-partial")) })
	if err != nil || !strings.Contains(out, "MISSING: partition 1, results 0 to 1 (2 messages)") || !strings.Contains(out, "4 rejects") {
		t.Errorf("rebuild --allow-partial: %v\n%s", err, out)
	}

	if c := exitCode(fmt.Errorf("run: %w", &analytics.CorruptError{Path: "x", Err: errors.New("IO Error: Corrupt database file")})); c != exitDamaged {
		t.Errorf("exit status %d for a damaged file", c)
	}
}
