package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/simulator"
)

// testLog sends progress lines to the test's log.
type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// TestBench runs the whole benchmark on a small input and the embedded
// broker: every figure is there and sane, the JSON holds exactly the eight,
// every alert of the latency phase is traced to the event that caused it,
// and the batch query's norms are the pipeline's stored ones.
func TestBench(t *testing.T) {
	o := DefaultBenchOptions()
	o.Events, o.Rate, o.LatencyDuration = 20_000, 5_000, 3*time.Second
	o.Dir, o.Progress = t.TempDir(), testLog{t}
	compared := 0
	o.afterPipeline = func(ctx context.Context, s *analytics.Store) error {
		compared = compareBatchNorms(t, ctx, s)
		return nil
	}
	res, err := Bench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)

	if res.Events < 15_000 || res.Broker != "embedded" || !strings.HasPrefix(res.Input, "bench-") {
		t.Errorf("input: %d events on %s, topic %q", res.Events, res.Broker, res.Input)
	}
	for name, v := range map[string]float64{
		"pipeline": res.PipelineEventsPerS, "ceiling": res.CeilingEventsPerS, "batch": res.DuckDBBatchEventsPerS,
		"p50": res.P50AlertLatencyMS, "p99": res.P99AlertLatencyMS, "state": res.StateBytesPerWorker, "rss": res.PeakRSSMB,
	} {
		if !(v > 0) || math.IsInf(v, 0) {
			t.Errorf("%s = %v, want a positive figure", name, v)
		}
	}
	if !(res.RatioToCeiling > 0 && res.RatioToCeiling <= 1.5) {
		t.Errorf("ratio to ceiling %v not in (0, 1.5]", res.RatioToCeiling)
	}
	if math.Abs(res.RatioToCeiling-res.PipelineEventsPerS/res.CeilingEventsPerS) > 1e-9 {
		t.Errorf("ratio %v is not pipeline/ceiling", res.RatioToCeiling)
	}
	// The batch computes a norm for every on-time shift: nearly all events.
	if compared == 0 || res.BatchShifts != int64(compared) || res.BatchShifts < res.Events*9/10 || res.BatchShifts > res.Events {
		t.Errorf("batch over %d shifts (%d compared) of %d events", res.BatchShifts, compared, res.Events)
	}

	if res.LatencyEvents != int64(o.Rate*o.LatencyDuration.Seconds()) {
		t.Errorf("latency phase sent %d events, want %v", res.LatencyEvents, o.Rate*o.LatencyDuration.Seconds())
	}
	if res.AlertsMeasured < 50 || int64(res.AlertsMeasured) != res.AlertsPublished || res.AlertsUnmatched != 0 {
		t.Errorf("alerts: %d measured, %d published, %d without a cause", res.AlertsMeasured, res.AlertsPublished, res.AlertsUnmatched)
	}
	if res.P50AlertLatencyMS > res.P99AlertLatencyMS || res.P99AlertLatencyMS > 10_000 {
		t.Errorf("alert latency p50 %v ms, p99 %v ms", res.P50AlertLatencyMS, res.P99AlertLatencyMS)
	}

	// A worker holds at most the retention span's shifts (~35 days, one a
	// day, 5 in 6 worked: ≤ ~30), each taking a window entry and a
	// remembered id (~19 bytes together in the snapshot), plus open days
	// and shared strings: some hundreds of bytes, never tens of thousands.
	if res.StateBytesPerWorker < 100 || res.StateBytesPerWorker > 5_000 || res.ActiveWorkers == 0 {
		t.Errorf("state: %v bytes per worker (%d bytes, %d workers)", res.StateBytesPerWorker, res.StateBytes, res.ActiveWorkers)
	}

	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(b, &obj); err != nil {
		t.Fatal(err)
	}
	want := []string{"ceiling_events_per_s", "duckdb_batch_events_per_s", "p50_alert_latency_ms", "p99_alert_latency_ms",
		"peak_rss_mb", "pipeline_events_per_s", "ratio_to_ceiling", "state_bytes_per_worker"}
	var keys []string
	for k, v := range obj {
		keys = append(keys, k)
		if _, ok := v.(float64); !ok {
			t.Errorf("%s = %v is not a number", k, v)
		}
	}
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("JSON keys %v, want exactly %v", keys, want)
	}
}

// TestBenchOnGivenInput measures on a topic filled beforehand, as a peer
// benchmark shares it: the count is the topic's, the topic is read from its
// start by both throughput phases, and the latency phase still runs.
func TestBenchOnGivenInput(t *testing.T) {
	ctx := context.Background()
	b, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: 4, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	sim, err := simulator.New(simulator.ConfigForEvents(5_000))
	if err != nil {
		t.Fatal(err)
	}
	po := DefaultProduceOptions(b.Addr)
	po.Topic, po.Partitions = "given-shifts", 4
	var sent atomic.Int64
	if err := Produce(ctx, po, sim, &sent); err != nil {
		t.Fatal(err)
	}

	o := DefaultBenchOptions()
	o.Brokers, o.Input, o.Partitions = []string{b.Addr}, po.Topic, 4
	o.Rate, o.LatencyDuration = 5_000, time.Second
	o.Dir, o.Progress = t.TempDir(), testLog{t}
	res, err := Bench(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != sent.Load() || res.Input != po.Topic || res.Broker != b.Addr {
		t.Errorf("measured %d events of %s on %s, want %d of %s on %s", res.Events, res.Input, res.Broker, sent.Load(), po.Topic, b.Addr)
	}
	if !(res.PipelineEventsPerS > 0 && res.CeilingEventsPerS > 0 && res.DuckDBBatchEventsPerS > 0 && res.StateBytesPerWorker > 0) ||
		res.AlertsMeasured == 0 || res.AlertsUnmatched != 0 || res.P50AlertLatencyMS > res.P99AlertLatencyMS {
		t.Errorf("figures %+v", *res)
	}
}

// compareBatchNorms checks the batch query against the norms the pipeline
// stored, for every on-time shift, and returns how many it compared.
func compareBatchNorms(t *testing.T, ctx context.Context, s *analytics.Store) int {
	t.Helper()
	bo := analytics.DefaultBatchOptions()
	bo.Rows = true
	batch, err := s.BatchNorms(ctx, bo)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][2]float64{}
	rows, err := s.DB().QueryContext(ctx, "SELECT event_id, norm_rate, ratio FROM shifts WHERE NOT late")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var norm, ratio sql.NullFloat64
		if err := rows.Scan(&id, &norm, &ratio); err != nil {
			t.Fatal(err)
		}
		stored[id] = [2]float64{nullNaN(norm), nullNaN(ratio)}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(batch.Rows) != len(stored) {
		t.Fatalf("batch computed %d shifts, the pipeline stored %d on time", len(batch.Rows), len(stored))
	}
	bad := 0
	for _, r := range batch.Rows {
		w, ok := stored[r.EventID]
		if !ok || !within(r.Norm, w[0]) || !within(r.Ratio, w[1]) {
			if bad++; bad <= 5 {
				t.Errorf("%s: batch norm %v ratio %v, pipeline %v (stored %v)", r.EventID, r.Norm, r.Ratio, w, ok)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d shifts differ", bad, len(batch.Rows))
	}
	return len(batch.Rows)
}

func nullNaN(f sql.NullFloat64) float64 {
	if !f.Valid {
		return math.NaN()
	}
	return f.Float64
}

// within: equal to 1e-9 (relative above 1); NaN (no norm) only matches NaN.
func within(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b))
}
