package ingest

import (
	"context"
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/internal/testenv"
)

// TestReplayResults: replaying the results topic into an empty sink stores
// what the sink role stored — every shift, alert and reject, and the
// results offsets it reached — and replaying it again into that sink
// stores nothing more.
func TestReplayResults(t *testing.T) {
	env := testKafka(t, 4, "shift-events")
	o := env.options("replay")
	o.FetchMaxBytes = 8 << 10 // small fetches: many results messages
	produceInParts(t, env.addr, env.topic("shift-events"), workload(), 40)
	sink := NewMemorySink()
	runUntil(t, o, sink, caughtUp(t))

	o.SinkBatchMaxRows = 500 // many commits
	var lines []ReplayProgress
	ro := DefaultReplayOptions()
	ro.ProgressEvery = time.Millisecond
	ro.Progress = func(p ReplayProgress) { lines = append(lines, p) }
	again := NewMemorySink()
	start := time.Now()
	p, err := ReplayResults(context.Background(), o, again, ro)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("replayed %d messages (%d shifts) in %d commits, %v", p.Messages, p.Shifts, p.Commits, time.Since(start))
	sameStored(t, sink, again, true)
	want, _ := sink.Offsets(context.Background(), o.ResultsTopic())
	got, _ := again.Offsets(context.Background(), o.ResultsTopic())
	if !maps.Equal(want, got) || len(got) == 0 {
		t.Fatalf("results offsets %v, the sink role's %v", got, want)
	}
	for _, pp := range p.Partitions {
		if pp.From != 0 || pp.Next != pp.End || pp.End != want[pp.Partition] {
			t.Errorf("partition %+v, the sink stored up to %d", pp, want[pp.Partition])
		}
	}
	if !p.Done || p.Fraction() != 1 || len(p.Truncated) > 0 || p.Commits < 2 {
		t.Errorf("final progress %+v", p)
	}
	if len(lines) == 0 || !lines[len(lines)-1].Done {
		t.Errorf("%d progress calls, the last not done", len(lines))
	}
	if rules, ok := again.Rules(); !ok || rules != o.Processor {
		t.Errorf("rule options not recorded: %v", ok)
	}

	p, err = ReplayResults(context.Background(), o, again, DefaultReplayOptions())
	if err != nil || p.Messages != 0 || p.Commits != 0 {
		t.Fatalf("a second replay into the same sink: %+v, %v", p, err)
	}
}

// TestReplayRefusesTruncated: once the start of a partition of the results
// topic is deleted, a replay into an empty sink refuses before it stores
// anything, naming the partition and the offsets lost; with AllowPartial
// it stores the rest and says what is missing.
func TestReplayRefusesTruncated(t *testing.T) {
	env := testKafka(t, 2, "shift-events")
	o := env.options("truncated")
	o.FetchMaxBytes = 8 << 10
	produceInParts(t, env.addr, env.topic("shift-events"), workload(), 40)
	sink := NewMemorySink()
	runUntil(t, o, sink, caughtUp(t))
	ends, _ := sink.Offsets(context.Background(), o.ResultsTopic())
	if ends[1] < 4 {
		t.Fatalf("results partition 1 has %d messages", ends[1])
	}
	testenv.DeleteRecords(t, env.addr, o.ResultsTopic(), 1, 3)

	empty := NewMemorySink()
	_, err := ReplayResults(context.Background(), o, empty, DefaultReplayOptions())
	var te *TruncatedError
	if !errors.As(err, &te) || !errors.Is(err, ErrResultsTruncated) {
		t.Fatalf("replay of a truncated topic: %v, want a TruncatedError", err)
	}
	t.Logf("refused: %v", err)
	if len(te.Partitions) != 1 || te.Partitions[0].Partition != 1 || te.Partitions[0].Start != 3 ||
		te.Partitions[0].Needed != 0 || te.Partitions[0].Missing() != 3 || !strings.Contains(err.Error(), "partition 1 holds offsets 3 to") {
		t.Fatalf("TruncatedError %+v", te.Partitions)
	}
	if _, ok := empty.Rules(); ok || len(empty.Shifts()) > 0 {
		t.Fatal("the refused replay stored something")
	}

	ro := DefaultReplayOptions()
	ro.AllowPartial = true
	p, err := ReplayResults(context.Background(), o, empty, ro)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Truncated) != 1 || p.Truncated[0].Partition != 1 || len(empty.Shifts()) == 0 ||
		len(empty.Shifts()) >= len(sink.Shifts()) {
		t.Fatalf("partial replay: %+v, %d shifts of %d", p.Truncated, len(empty.Shifts()), len(sink.Shifts()))
	}
	got, _ := empty.Offsets(context.Background(), o.ResultsTopic())
	if !maps.Equal(got, ends) {
		t.Fatalf("results offsets %v after a partial replay, want %v", got, ends)
	}

	// a sink that already holds what was deleted needs none of it
	p, err = ReplayResults(context.Background(), o, sink, DefaultReplayOptions())
	if err != nil || p.Messages != 0 {
		t.Fatalf("replay into the sink that holds everything: %+v, %v", p, err)
	}
}

// produceInParts produces msgs n at a time: small record batches, which
// small fetches read apart, so that the processors publish many results
// messages.
func produceInParts(t *testing.T, addr, topic string, msgs []msg, n int) {
	t.Helper()
	for len(msgs) > 0 {
		k := min(n, len(msgs))
		produce(t, addr, topic, msgs[:k])
		msgs = msgs[k:]
	}
}
