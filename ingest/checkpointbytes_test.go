package ingest

import (
	"context"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// TestCheckpointBytes: after a clean stop, each partition's checkpoint is
// the snapshot of exactly the state its input builds.
func TestCheckpointBytes(t *testing.T) {
	env := testKafka(t, 3, "shift-events")
	produce(t, env.addr, env.topic("shift-events"), workload())
	opts := env.options("g-bytes")
	p := runUntil(t, opts, NewMemorySink(), caughtUp(t))

	got, err := p.CheckpointBytes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	procs := map[int32]*processors.Partition{}
	var out processors.Output
	for _, m := range readAll(t, env.addr, env.topic("shift-events")) {
		part := int32(m.Partition)
		if procs[part] == nil {
			if procs[part], err = processors.NewPartition(opts.Processor, part); err != nil {
				t.Fatal(err)
			}
		}
		if ev, err := shift.Decode(m.Value); err == nil {
			_ = procs[part].Process(&ev, processors.Input{Offset: m.Offset, LogTime: m.Time}, &out) // duplicates are expected
		}
		out.Reset()
	}
	if len(got) != len(procs) || len(got) == 0 {
		t.Fatalf("checkpoint sizes %v for %d partitions with input", got, len(procs))
	}
	for part, proc := range procs {
		if want := int64(len(proc.AppendSnapshot(nil))); got[part] != want {
			t.Errorf("partition %d: checkpoint %d bytes, its state's snapshot %d", part, got[part], want)
		}
	}
}
