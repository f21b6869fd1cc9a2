package ingest

import (
	"sync/atomic"
	"testing"
	"time"
)

// TestPartitionsAndReady: once caught up, every partition is listed for
// both roles, restored, with its stream time and no lag, the process is
// ready, commits were reported, and rejects are split by reason.
func TestPartitionsAndReady(t *testing.T) {
	env := testKafka(t, 4, "shift-events")
	msgs := workload()
	produce(t, env.addr, env.topic("shift-events"), msgs)
	opts := env.options("status")
	var commits, rows atomic.Int64
	opts.OnCommit = func(d time.Duration, n int) {
		if d <= 0 {
			t.Errorf("commit of %v", d)
		}
		commits.Add(1)
		rows.Add(int64(n))
	}
	var seen []PartitionStatus
	var ready bool
	p := runUntil(t, opts, NewMemorySink(), func(p *Pipeline) bool {
		if !caughtUp(t)(p) || !p.Ready() {
			return false
		}
		// every partition fetched once, empty ones included
		seen, ready = p.Partitions(), p.Ready()
		if len(seen) < 8 {
			return false
		}
		for _, s := range seen {
			if s.High < 0 || s.Next < 0 || s.Role == RoleProcess && s.RestoreProgress != 1 {
				return false
			}
		}
		return true
	})
	if !ready {
		t.Error("not ready once caught up")
	}
	byRole := map[Role]int{}
	for _, s := range seen {
		byRole[s.Role]++
		if s.Lag() != 0 || s.Next < 0 || s.High < 0 {
			t.Errorf("%v partition %d: next %d high %d once caught up", s.Role, s.Partition, s.Next, s.High)
		}
		if s.Role == RoleProcess {
			if !s.Restored || s.RestoreProgress != 1 || s.High > 0 && s.StreamTime.IsZero() || s.Topic != env.topic("shift-events") {
				t.Errorf("partition %d: %+v", s.Partition, s)
			}
		}
	}
	if byRole[RoleProcess] != 4 || byRole[RoleSink] != 4 {
		t.Errorf("partitions by role %v, want 4 each", byRole)
	}
	if commits.Load() == 0 || rows.Load() == 0 {
		t.Errorf("OnCommit saw %d commits of %d rows", commits.Load(), rows.Load())
	}
	st := p.Stats()
	var byReason int64
	for _, n := range st.RejectsByReason {
		byReason += n
	}
	if st.Rejects == 0 || byReason != st.Rejects {
		t.Errorf("rejects %d, by reason %v", st.Rejects, st.RejectsByReason)
	}
}

func TestRestoreProgress(t *testing.T) {
	tests := []struct {
		name string
		ps   procStatus
		next int64
		want float64
	}{
		{"not restored", procStatus{restored: false, from: 0, target: 10}, 5, 0},
		{"no fetch yet", procStatus{restored: true, from: 0, target: -1}, -1, 0},
		{"half way", procStatus{restored: true, from: 100, target: 300}, 200, 0.5},
		{"caught up", procStatus{restored: true, from: 100, target: 300}, 300, 1},
		{"nothing to replay", procStatus{restored: true, from: 300, target: 300}, -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := restoreProgress(&tt.ps, tt.next); got != tt.want {
				t.Errorf("progress %v, want %v", got, tt.want)
			}
		})
	}
}
