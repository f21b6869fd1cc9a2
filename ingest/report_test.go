package ingest

import (
	"context"
	"testing"
)

// TestReport reads the groups from the brokers while the pipeline runs
// (every partition owned, nothing to do) and after it stopped (no owner,
// the stream time of each partition's last checkpoint).
func TestReport(t *testing.T) {
	env := testKafka(t, 4, "shift-events")
	produce(t, env.addr, env.topic("shift-events"), workload())
	opts := env.options("report")
	ctx := context.Background()
	var during *GroupReport
	p := runUntil(t, opts, NewMemorySink(), func(p *Pipeline) bool {
		if !caughtUp(t)(p) {
			return false
		}
		r, err := Report(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, pr := range r.Partitions {
			// group offsets are committed after the results: wait for them
			if pr.Owner == "" || pr.Lag != 0 || pr.End > 0 && pr.Committed != pr.End || pr.SinkEnd > 0 && pr.SinkLag != 0 {
				return false
			}
		}
		during = r
		return true
	})
	if len(during.Partitions) != 4 || during.GroupState != "Stable" || during.Input != env.topic("shift-events") {
		t.Fatalf("while running: %+v", during)
	}
	streamTimes := map[int32]bool{}
	for _, s := range p.Partitions() {
		if s.Role == RoleProcess && !s.StreamTime.IsZero() {
			streamTimes[s.Partition] = true
		}
	}
	if len(streamTimes) == 0 {
		t.Fatal("no partition with a stream time: the checkpoint checks below would check nothing")
	}
	after, err := Report(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range after.Partitions {
		if pr.Owner != "" || pr.SinkOwner != "" {
			t.Errorf("partition %d still owned after the stop: %q %q", pr.Partition, pr.Owner, pr.SinkOwner)
		}
		if streamTimes[pr.Partition] && (pr.StreamTime.IsZero() || pr.CheckpointOffset != pr.End) {
			t.Errorf("partition %d: stream time %v, checkpoint at %d of %d", pr.Partition, pr.StreamTime, pr.CheckpointOffset, pr.End)
		}
	}

	// a wrong group is reported as having nothing, not as an error
	opts.Group = env.prefix + "nobody"
	r, err := Report(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, pr := range r.Partitions {
		if pr.Committed != -1 || pr.Owner != "" || pr.CheckpointOffset != -1 {
			t.Errorf("unknown group, partition %d: %+v", pr.Partition, pr)
		}
	}
}
