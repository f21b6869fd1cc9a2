package ingest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// TestRestoreMillionShifts measures how long a partition holding a million
// shifts of window state takes to come back on another owner: read its
// checkpoint from Kafka and load it. BENCHMARKS.md records the figure.
// Building the state takes a while, so it runs only when asked:
// STAKHANOV_RESTORE_SHIFTS=1000000 go test ./ingest -run RestoreMillion -v
func TestRestoreMillionShifts(t *testing.T) {
	n := 50_000
	if s := os.Getenv("STAKHANOV_RESTORE_SHIFTS"); s != "" {
		fmt.Sscan(s, &n)
	}
	env := testKafka(t, 1, "shift-events")
	o := env.options("restore")
	b, err := newBase(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := EnsureTopics(ctx, b.client, 1, o.CheckpointTopic()); err != nil {
		t.Fatal(err)
	}
	role := newProcessorRole(&b, &counters{})
	defer role.close()

	// one plant's worth of groups per 36 workers, a shift a day each, all
	// inside the 28-day window
	proc, err := processors.NewPartition(o.Processor, 0)
	if err != nil {
		t.Fatal(err)
	}
	const workers, days = 36, 27
	groups := n / (workers * days)
	start := time.Date(1935, 6, 1, 6, 0, 0, 0, time.UTC)
	var out processors.Output
	built := time.Now()
	for d := 0; d < days; d++ {
		for g := 0; g < groups; g++ {
			for w := 0; w < workers; w++ {
				ev := shift.Event{
					EventID: fmt.Sprintf("g%d-w%d-d%d", g, w, d), PlantID: fmt.Sprintf("plant-%d", g), Industry: "coal",
					Role: "hewer", Unit: "t", WorkerID: fmt.Sprintf("w%d", w), CrewSize: 1,
					ShiftStart: start.Add(time.Duration(d) * 24 * time.Hour), ShiftHours: 6, Output: 12 + float64((w*7+d)%5),
				}
				_ = proc.Process(&ev, processors.Input{Offset: 0}, &out)
			}
			out.Reset()
		}
	}
	st := proc.Stats()
	t.Logf("state of %d window shifts built in %s", st.WindowShifts, time.Since(built).Round(time.Millisecond))

	snap := proc.AppendSnapshot(nil)
	saved := time.Now()
	cp, err := role.ckpt.save(ctx, 0, checkpoint{}, 123, snap)
	if err != nil {
		t.Fatal(err)
	}
	saveTook := time.Since(saved)

	restored := time.Now()
	got, back, err := role.restore(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(restored)
	if back.offset != 123 || back.gen != cp.gen || got.Stats() != st {
		t.Fatalf("restored %+v at offset %d, want %+v at 123", got.Stats(), back.offset, st)
	}
	t.Logf("checkpoint of %d shifts: %d bytes in %d chunks, written in %s; restored (read from Kafka and loaded) in %s",
		st.WindowShifts, len(snap), cp.chunks, saveTook.Round(time.Millisecond), took.Round(time.Millisecond))
}
