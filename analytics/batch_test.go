package analytics

import (
	"context"
	"database/sql"
	"math"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// TestBatchNormsEqualProcessors runs simulated plants through the real
// processors, partitioned by plant as producers key them, stores the results
// as the sink does, and checks that the one-query batch computation gives
// every on-time shift the norm, window count and ratio the stream gave it,
// and that ActiveWorkers counts the workers the windows hold at the end.
func TestBatchNormsEqualProcessors(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	sim, err := simulator.New(simulator.ConfigForEvents(20_000))
	if err != nil {
		t.Fatal(err)
	}
	const nParts = 4
	popts := processors.DefaultOptions()
	parts := []int{0, 1, 2, 3}
	procs := make([]*processors.Partition, nParts)
	for i := range procs {
		if procs[i], err = processors.NewPartition(popts, int32(i)); err != nil {
			t.Fatal(err)
		}
	}
	type onTime struct {
		part          int32
		plant, worker string
		start         time.Time
	}
	var kept []onTime
	next := map[int32]int64{}
	var out processors.Output
	late := 0
	flush := func() {
		b := &ingest.Batch{Topic: "results", SourceTopic: testTopic, Shifts: out.Shifts, Alerts: out.Alerts, Norms: out.Norms,
			Offsets: map[int32]int64{}}
		for p, o := range next {
			b.Offsets[p] = o
		}
		mustCommit(t, s, b)
		out.Reset()
	}
	bal := kafka.Murmur2Balancer{}
	for {
		m, ok := sim.Next()
		if !ok {
			break
		}
		part := int32(bal.Balance(kafka.Message{Key: m.Key}, parts...))
		off := next[part]
		next[part] = off + 1
		ev, err := shift.Decode(m.Value)
		if err != nil {
			continue
		}
		n := len(out.Shifts)
		_ = procs[part].Process(&ev, processors.Input{Offset: off}, &out) // duplicates append nothing
		if len(out.Shifts) > n {
			sh := &out.Shifts[n]
			if sh.Late {
				late++
			} else {
				kept = append(kept, onTime{part, sh.PlantID, sh.WorkerID, sh.ShiftStart})
			}
		}
		if len(out.Shifts) >= 5000 {
			flush()
		}
	}
	flush()
	if late == 0 {
		t.Fatal("the input has no late shift: the test would not show they are left out")
	}

	o := DefaultBatchOptions()
	o.Rows = true
	o.Threads = 2 // the store runs with 1: the query's own setting must not stay
	res, err := s.BatchNorms(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var threads int
	if err := s.DB().QueryRowContext(ctx, "SELECT current_setting('threads')").Scan(&threads); err != nil {
		t.Fatal(err)
	}
	if threads != s.opts.Threads {
		t.Errorf("DuckDB runs with %d threads after the batch query, want the store's %d back", threads, s.opts.Threads)
	}
	if res.Took <= 0 || res.Shifts != int64(len(kept)) || len(res.Rows) != len(kept) {
		t.Fatalf("batch: %d shifts (%d rows) in %v, want %d on-time shifts", res.Shifts, len(res.Rows), res.Took, len(kept))
	}
	type stored struct {
		norm, ratio float64
		count       int64
	}
	want := map[string]stored{}
	rows, err := s.DB().QueryContext(ctx, "SELECT event_id, norm_rate, norm_count, ratio FROM shifts WHERE NOT late")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var norm, ratio sql.NullFloat64
		var count sql.NullInt64 // NULL without history
		if err := rows.Scan(&id, &norm, &count, &ratio); err != nil {
			t.Fatal(err)
		}
		want[id] = stored{orNaN(norm), orNaN(ratio), count.Int64}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	withNorm := 0
	for _, r := range res.Rows {
		w, ok := want[r.EventID]
		if !ok {
			t.Fatalf("batch row %s is not a stored on-time shift", r.EventID)
		}
		if !close9(r.Norm, w.norm) || !close9(r.Ratio, w.ratio) || r.Count != w.count {
			t.Errorf("%s: batch norm %v ratio %v count %d, pipeline %v %v %d", r.EventID, r.Norm, r.Ratio, r.Count, w.norm, w.ratio, w.count)
		}
		if !math.IsNaN(r.Norm) {
			withNorm++
		}
	}
	if withNorm < len(res.Rows)*9/10 {
		t.Errorf("only %d of %d shifts have a norm", withNorm, len(res.Rows))
	}

	active := map[[2]string]bool{}
	for _, k := range kept {
		end := procs[k.part].StreamTime()
		if !k.start.Before(end.Add(-popts.Window)) && !k.start.After(end) {
			active[[2]string{k.plant, k.worker}] = true
		}
	}
	got, err := s.ActiveWorkers(ctx, popts.Window)
	if err != nil {
		t.Fatal(err)
	}
	if got != int64(len(active)) || got == 0 {
		t.Errorf("ActiveWorkers = %d, want %d", got, len(active))
	}
}

// close9: equal within 1e-9 (relative above 1), NaN matching NaN.
func close9(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
