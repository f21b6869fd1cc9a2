package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// kafkaEnv is where a test's topics live: the in-process broker, or the
// real cluster KAFKA_BROKERS names (CI brings one up). On a shared cluster
// every test's topics and groups carry a prefix of their own.
type kafkaEnv struct {
	addr   string
	prefix string
}

func testKafka(t *testing.T, partitions int, topics ...string) *kafkaEnv {
	t.Helper()
	env := &kafkaEnv{}
	if b := os.Getenv("KAFKA_BROKERS"); b != "" {
		env.addr = strings.Split(b, ",")[0]
		env.prefix = fmt.Sprintf("%s-%d-", strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()), time.Now().UnixNano()%1e9)
	} else {
		c, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		env.addr = c.ListenAddrs()[0]
	}
	if len(topics) > 0 {
		names := make([]string, len(topics))
		for i, tp := range topics {
			names[i] = env.topic(tp)
		}
		c := &kafka.Client{Addr: kafka.TCP(env.addr), Timeout: 30 * time.Second}
		if err := EnsureTopics(context.Background(), c, partitions, names...); err != nil {
			t.Fatal(err)
		}
	}
	return env
}

func (e *kafkaEnv) topic(name string) string { return e.prefix + name }

// options are the pipeline's defaults on this environment's topics, with
// small batches so that a test sees many.
func (e *kafkaEnv) options(group string) Options {
	o := DefaultOptions(e.addr)
	o.InputTopic, o.AlertsTopic, o.DLQTopic = e.topic("shift-events"), e.topic("shift-alerts"), e.topic("shift-events-dlq")
	o.Group = e.prefix + group
	o.BatchMaxEvents = 400
	o.Logger = slog.New(slog.NewTextHandler(testLogOut(), nil))
	return o
}

type msg struct {
	key, value string
	bad        string // expected reason when bad
	valid      bool
	id         string
}

// workload: four plants of ten workers over 40 days, one record shift, one
// scrap-heavy claim, repeats and bad records of several kinds.
func workload() []msg { return workloadOf(4) }

func workloadOf(plants int) []msg {
	var out []msg
	t0 := time.Date(1935, 7, 1, 6, 0, 0, 0, time.UTC)
	bad := []struct{ v, reason string }{
		{"not json", shift.ReasonInvalidJSON},
		{"", shift.ReasonEmpty},
		{`{"event_id":"x"}`, shift.ReasonMissingField},
		{`{"event_id":"y","plant_id":"p","industry":"i","role":"r","worker_id":"w","shift_start":"1935-07-01T06:00:00Z","shift_hours":25,"output":1,"unit":"t"}`, shift.ReasonShiftHoursRange},
		{`{"event_id":"z","plant_id":"p","industry":"i","role":"r","worker_id":"w","shift_start":"1935-07-01T06:00:00Z","shift_hours":6,"output":1,"unit":"t","scrap":2}`, shift.ReasonScrapAboveOutput},
	}
	n := 0
	for d := 0; d < 40; d++ {
		for p := 0; p < plants; p++ {
			plant := fmt.Sprintf("plant-%d", p)
			for w := 0; w < 10; w++ {
				out_ := 14.0 + float64(w%3)/2
				scrap := 0.0
				if d == 30 && p == 1 && w == 3 {
					out_ = 102
				}
				if d == 31 && p == 2 && w == 4 {
					out_, scrap = 80, 20
				}
				id := fmt.Sprintf("%s-%02d-w%d", plant, d, w)
				v := fmt.Sprintf(`{"event_id":%q,"plant_id":%q,"industry":"coal","role":"hewer","worker_id":"w%d","shift_start":%q,"shift_hours":6,"output":%g,"unit":"t","scrap":%g}`,
					id, plant, w, t0.Add(time.Duration(d)*24*time.Hour).Format(time.RFC3339), out_, scrap)
				out = append(out, msg{key: plant, value: v, valid: true, id: id})
				n++
				if n%97 == 0 {
					out = append(out, msg{key: plant, value: v, id: id}) // a repeat
				}
				if n%131 == 0 {
					b := bad[(n/131)%len(bad)]
					out = append(out, msg{key: plant, value: b.v, bad: b.reason})
				}
			}
		}
	}
	return out
}

func produce(t *testing.T, addr, topic string, msgs []msg) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchSize: 1000, BatchTimeout: time.Millisecond}
	defer w.Close()
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Key: []byte(m.key), Value: []byte(m.value)}
	}
	if err := w.WriteMessages(context.Background(), km...); err != nil {
		t.Fatal(err)
	}
}

// runUntil runs a pipeline until the sink holds the whole input (or stop
// says so), then shuts it down cleanly.
func runUntil(t *testing.T, opts Options, sink Sink, stop func(*Pipeline) bool) *Pipeline {
	t.Helper()
	p, err := New(opts, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- p.Run(ctx) }()
	deadline := time.After(60 * time.Second)
	for !stop(p) {
		select {
		case err := <-errc:
			t.Fatalf("pipeline stopped early: %v", err)
		case <-deadline:
			t.Fatal("pipeline did not get there in 60s")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	return p
}

func caughtUp(t *testing.T) func(*Pipeline) bool {
	return func(p *Pipeline) bool {
		lag, err := p.Lag(context.Background())
		if err != nil || len(lag) == 0 {
			return false
		}
		for _, l := range lag {
			if l > 0 {
				return false
			}
		}
		return true
	}
}

func readAll(t *testing.T, addr, topic string) []kafka.Message {
	t.Helper()
	// its own transport: the shared default one may hold metadata from
	// before the pipeline created topic
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	ctx := context.Background()
	_, end, err := EndOffsets(ctx, c, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for part, e := range end {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: topic, Partition: int(part), MaxWait: 50 * time.Millisecond})
		for i := int64(0); i < e; i++ {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out
}

func header(m kafka.Message, k string) string {
	for _, h := range m.Headers {
		if h.Key == k {
			return string(h.Value)
		}
	}
	return ""
}

func TestPipelineEndToEnd(t *testing.T) {
	env := testKafka(t, 4, "shift-events")
	addr := env.addr
	msgs := workload()
	produce(t, addr, env.topic("shift-events"), msgs)

	sink := NewMemorySink()
	opts := env.options("g1")
	opts.Processor.RecordRatio = 2.5 // the sink records what the pipeline runs with, defaults or not
	p := runUntil(t, opts, sink, caughtUp(t))
	if rules, ok := sink.Rules(); !ok || rules != opts.Processor {
		t.Errorf("the sink recorded rule options %+v (%v), the pipeline ran with %+v", rules, ok, opts.Processor)
	}

	valid := map[string]bool{}
	wantReasons := map[string]int{}
	for _, m := range msgs {
		if m.valid {
			valid[m.id] = true
		}
		if m.bad != "" {
			wantReasons[m.bad]++
		}
	}
	shifts := sink.Shifts()
	if len(shifts) != len(valid) {
		t.Fatalf("%d shifts stored, want %d distinct valid", len(shifts), len(valid))
	}
	for id := range valid {
		if _, ok := shifts[id]; !ok {
			t.Fatalf("%s missing", id)
		}
	}
	st := p.Stats()
	if st.Duplicates != int64(len(msgs)-len(valid)-len(sink.Rejects())) || st.Messages != int64(len(msgs)) {
		t.Fatalf("stats %+v for %d messages", st, len(msgs))
	}

	// rejects: in the sink and in the dead-letter topic, with reason and source
	gotReasons := map[string]int{}
	for _, r := range sink.Rejects() {
		gotReasons[r.Reason]++
	}
	if !maps.Equal(gotReasons, wantReasons) {
		t.Fatalf("rejects %v, want %v", gotReasons, wantReasons)
	}
	dlq := readAll(t, addr, env.topic("shift-events-dlq"))
	dlqReasons := map[string]int{}
	for _, m := range dlq {
		dlqReasons[header(m, "error.reason")]++
		if header(m, "source.topic") != env.topic("shift-events") || header(m, "source.offset") == "" || header(m, "source.partition") == "" {
			t.Fatalf("dead letter without source: %v", m.Headers)
		}
		if len(m.Key) == 0 {
			t.Fatalf("dead letter lost its key")
		}
	}
	if !maps.Equal(dlqReasons, wantReasons) {
		t.Fatalf("dead letters %v, want %v", dlqReasons, wantReasons)
	}

	// alerts: the same ids in the sink and on the topic; the planted ones there
	alerts := sink.Alerts()
	topic := readAll(t, addr, env.topic("shift-alerts"))
	ids := map[string]bool{}
	for _, m := range topic {
		var full map[string]any
		if err := json.Unmarshal(m.Value, &full); err != nil {
			t.Fatal(err)
		}
		id := full["alert_id"].(string)
		ids[id] = true
		if string(m.Key) != full["plant_id"] {
			t.Fatalf("alert keyed %q, plant %v", m.Key, full["plant_id"])
		}
		for _, f := range []string{"alert_id", "type", "plant_id", "industry", "role", "unit", "worker_id", "event_id", "day", "rate", "norm_rate", "ratio", "scrap_share", "group_size", "bulk_share", "detected_at"} {
			if _, ok := full[f]; !ok {
				t.Fatalf("alert message lacks %s: %s", f, m.Value)
			}
		}
	}
	if !maps.Equal(ids, boolKeys(alerts)) {
		t.Fatalf("topic has %d alert ids, sink %d", len(ids), len(alerts))
	}
	rec := alerts[processors.ShiftAlertID(processors.RecordShift, "plant-1-30-w3")]
	if rec.Type != processors.RecordShift || !(rec.Ratio > 6) {
		t.Fatalf("planted record not found: %+v", rec)
	}
	if s := alerts[processors.ShiftAlertID(processors.SuspectRecord, "plant-2-31-w4")]; s.Type != processors.SuspectRecord {
		t.Fatal("planted suspect record not found")
	}
	if st.Alerts[processors.CommonPace] == 0 {
		t.Fatal("no common pace found in shops that hold one")
	}
}

func boolKeys[V any](m map[string]V) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

// TestRestartGivesSameResult stops and restarts pipelines on one sink while
// the input arrives in parts — between parts, in the middle of a part, and
// around failing commits — and compares everything stored with one
// uninterrupted run over the same topic.
func TestRestartGivesSameResult(t *testing.T) {
	env := testKafka(t, 4, "shift-events")
	addr, in := env.addr, env.topic("shift-events")
	msgs := workload()
	third := len(msgs) / 3

	restarted := NewMemorySink()
	opts := env.options("restarted")
	produce(t, addr, in, msgs[:third])
	runUntil(t, opts, restarted, caughtUp(t))
	produce(t, addr, in, msgs[third:2*third])
	runUntil(t, opts, restarted, func(p *Pipeline) bool { return p.Stats().Messages > 0 }) // stops mid-part
	runUntil(t, opts, restarted, caughtUp(t))
	produce(t, addr, in, msgs[2*third:])
	restarted.FailNext = 2 // retried, nothing lost or doubled
	runUntil(t, opts, restarted, func(p *Pipeline) bool { return p.Stats().Batches > 0 })
	runUntil(t, opts, restarted, caughtUp(t))

	whole := NewMemorySink()
	runUntil(t, env.options("whole"), whole, caughtUp(t))

	a, b := whole.Shifts(), restarted.Shifts()
	if len(a) != len(b) {
		t.Fatalf("%d shifts vs %d", len(a), len(b))
	}
	for id, s := range a {
		r, ok := b[id]
		if !ok || r.Late != s.Late || r.Norm.Count != s.Norm.Count || !sameF(r.Norm.Median, s.Norm.Median) || !sameF(r.Ratio, s.Ratio) || r.Offset != s.Offset {
			t.Fatalf("%s differs after restarts:\n%+v\n%+v", id, s, r)
		}
	}
	wa, wb := slices.Sorted(maps.Keys(whole.Alerts())), slices.Sorted(maps.Keys(restarted.Alerts()))
	if !slices.Equal(wa, wb) || len(wa) == 0 {
		t.Fatalf("alert ids differ: %d vs %d", len(wa), len(wb))
	}
	if len(restarted.Rejects()) != len(whole.Rejects()) {
		t.Fatalf("rejects %d vs %d", len(restarted.Rejects()), len(whole.Rejects()))
	}
}

func sameF(a, b float64) bool { return a == b || (a != a && b != b) }

func testLogOut() io.Writer {
	if testingVerbose() {
		return os.Stderr
	}
	return io.Discard
}

func testingVerbose() bool { return os.Getenv("STAKHANOV_TEST_LOG") != "" }

// TestWritersSplitLargeFlushes: one flush can carry more alerts for one
// partition than the broker takes in one record batch (message.max.bytes,
// 1 MiB by default); the writers must split them rather than be refused,
// and every alert must reach the topic exactly once.
func TestWritersSplitLargeFlushes(t *testing.T) {
	env := testKafka(t, 1, "shift-events", "shift-alerts", "shift-events-dlq")
	p, err := New(env.options("big"), NewMemorySink())
	if err != nil {
		t.Fatal(err)
	}
	defer p.proc.alerts.Close()
	msgs := make([]kafka.Message, 12_000)
	for i := range msgs {
		a := processors.Alert{ID: fmt.Sprintf("%032d", i), Type: processors.CommonPace, PlantID: "plant-with-a-long-name",
			Industry: "machine-building", Role: "assembly-brigade", Unit: "tractors", Day: 1, DetectedAt: time.Unix(86400*2, 0)}
		msgs[i] = kafka.Message{Key: []byte(a.PlantID), Value: AppendAlertJSON(nil, &a)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.proc.alerts.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("%d alerts (%d bytes) in one write: %.600v", len(msgs), len(msgs)*len(msgs[0].Value), err)
	}
	// every alert arrived, once
	seen := make(map[string]int, len(msgs))
	for _, m := range readAll(t, env.addr, env.topic("shift-alerts")) {
		var a struct {
			ID string `json:"alert_id"`
		}
		if err := json.Unmarshal(m.Value, &a); err != nil {
			t.Fatalf("alert message at offset %d is not an alert: %v", m.Offset, err)
		}
		seen[a.ID]++
	}
	var missing, doubled []string
	for i := range msgs {
		id := fmt.Sprintf("%032d", i)
		switch seen[id] {
		case 1:
		case 0:
			missing = append(missing, id)
		default:
			doubled = append(doubled, id)
		}
		delete(seen, id)
	}
	if len(missing) > 0 || len(doubled) > 0 || len(seen) > 0 {
		t.Fatalf("of %d alerts written, %d are missing from the topic (e.g. %q), %d arrived more than once (e.g. %q), and %d ids were never written",
			len(msgs), len(missing), missing[:min(3, len(missing))], len(doubled), doubled[:min(3, len(doubled))], len(seen))
	}
}
