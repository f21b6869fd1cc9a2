package app

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

func quiet() *slog.Logger {
	if os.Getenv("STAKHANOV_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// TestDemo runs the demo as a user does and checks what it found against
// the simulator's ground truth.
func TestDemo(t *testing.T) {
	o := DefaultDemoOptions()
	o.DuckDB = filepath.Join(t.TempDir(), "demo.duckdb")
	o.Out, o.Progress = io.Discard, nil
	res, err := Demo(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	tr := res.Truth
	if res.Stats.Messages != tr.Messages || res.Stats.Shifts != tr.Valid || res.Stats.Duplicates != tr.DuplicateCount ||
		res.Stats.Late != tr.LateCount || res.Stats.Rejects != tr.MalformedCount {
		t.Fatalf("stats %+v against truth %+v", res.Stats, tr)
	}
	if res.FoundRecords != len(tr.RecordShifts) || res.FoundSuspects != len(tr.SuspectRecords) ||
		res.FoundPaceSetters+res.OpenPaceSetters != len(tr.PaceSetters) {
		t.Fatalf("found records %d/%d suspects %d/%d pace-setters %d+%d/%d", res.FoundRecords, len(tr.RecordShifts),
			res.FoundSuspects, len(tr.SuspectRecords), res.FoundPaceSetters, res.OpenPaceSetters, len(tr.PaceSetters))
	}
	if res.NearMisses == 0 || res.NearMissesAsPlanted != res.NearMisses {
		t.Errorf("near misses judged as planted: %d of %d", res.NearMissesAsPlanted, res.NearMisses)
	}
	for _, at := range processors.AlertTypes {
		if res.Stats.Alerts[at] == 0 {
			t.Errorf("no %s alert in the demo", at)
		}
	}
	// nothing beyond the planted: record alerts are exactly the truth
	store := openStore(t, o.DuckDB)
	db := store.DB()
	got := column(t, db, `SELECT event_id FROM alerts WHERE type = 'record_shift' ORDER BY 1`)
	want := slices.Sorted(slices.Values(tr.RecordShifts))
	if !slices.Equal(got, want) {
		t.Fatalf("record alerts %v, truth %v", got, want)
	}
	late := column(t, db, `SELECT event_id FROM shifts WHERE late ORDER BY 1`)
	if !slices.Equal(late, slices.Sorted(slices.Values(tr.Late))) {
		t.Fatalf("late shifts %d, truth %d", len(late), len(tr.Late))
	}
	reasons := map[string]int{}
	for _, m := range tr.Malformed {
		reasons[m.Reason]++
	}
	stored := map[string]int{}
	rows, err := db.Query(`SELECT reason, count(*) FROM rejects GROUP BY reason`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r string
		var n int
		_ = rows.Scan(&r, &n)
		stored[r] = n
	}
	rows.Close()
	if !maps.Equal(reasons, stored) || len(stored) < 8 {
		t.Fatalf("rejects by reason %v, truth %v", stored, reasons)
	}
	if n := column(t, db, `SELECT count(*)::VARCHAR FROM shifts s JOIN rejects r ON s.kafka_offset = r.kafka_offset AND s.kafka_partition = r.kafka_partition`); n[0] != "0" {
		t.Fatalf("a bad record reached shifts")
	}
	// common-pace days: equal to the truth except where the truth says an
	// implementation may differ
	common := map[string]bool{}
	for _, k := range column(t, db, `SELECT plant_id || '|' || role || '|' || unit || '|' || strftime(day, '%Y-%m-%d') FROM alerts WHERE type = 'common_pace'`) {
		common[k] = true
	}
	border := map[string]bool{}
	for _, g := range tr.Borderline {
		border[fmt.Sprintf("%s|%s|%s|%s", g.Group.PlantID, g.Group.Role, g.Group.Unit, g.Day)] = true
	}
	end := o.Simulation.Start.AddDate(0, 0, o.Simulation.Days)
	missing := 0
	for _, g := range tr.CommonPaceDays {
		k := fmt.Sprintf("%s|%s|%s|%s", g.Group.PlantID, g.Group.Role, g.Group.Unit, g.Day)
		if !common[k] && !border[k] && !g.Day.End().Add(6*time.Hour).After(end) {
			missing++
		}
		delete(common, k)
	}
	for k := range common {
		if !border[k] {
			t.Errorf("common_pace not in the truth: %s", k)
		}
	}
	if missing > 0 {
		t.Fatalf("%d common-pace days of the truth missing", missing)
	}
	checkAlerts(t, db, tr, end)
	checkNearMisses(t, db, tr, end)
	// the file says which options it was judged under: the demo's, the defaults
	recorded := map[string]analytics.RuleOption{}
	rows, err = db.Query(`SELECT name, value, unit, description FROM rule_options`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var r analytics.RuleOption
		if err := rows.Scan(&r.Name, &r.Value, &r.Unit, &r.Description); err != nil {
			t.Fatal(err)
		}
		recorded[r.Name] = r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	ran := analytics.RuleOptions(processors.DefaultOptions())
	for _, r := range ran {
		if recorded[r.Name] != r {
			t.Errorf("rule_options has %+v, want %+v", recorded[r.Name], r)
		}
	}
	if len(recorded) != len(ran) {
		t.Errorf("rule_options has %d rows, want %d", len(recorded), len(ran))
	}
	// the file is left closed, and a second demo replaces it
	store.Close()
	if _, err := Demo(context.Background(), o); err != nil {
		t.Fatalf("a second demo over the first's file: %v", err)
	}
}

// contractLateness is the contract's allowed lateness (docs/contract.md),
// written out rather than read from processors.DefaultOptions: a default
// that drifts from the contract must fail here.
const contractLateness = 6 * time.Hour

// closedBy says whether a day had closed when the stream ended at end.
func closedBy(d shift.Day, end time.Time) bool { return !d.End().Add(contractLateness).After(end) }

// checkAlerts: the suspect records and pace-setters stored are exactly the
// truth's (the days still open at the end aside), and every alert was
// detected when the contract says: a shift alert at the shift's end, a day
// alert at the day's end plus the allowed lateness.
func checkAlerts(t *testing.T, db *sql.DB, tr *simulator.Truth, end time.Time) {
	t.Helper()
	got := column(t, db, `SELECT event_id FROM alerts WHERE type = 'suspect_record' ORDER BY 1`)
	if want := slices.Sorted(slices.Values(tr.SuspectRecords)); !slices.Equal(got, want) {
		t.Errorf("suspect alerts %v, truth %v", got, want)
	}
	var want []string
	for _, p := range tr.PaceSetters {
		if closedBy(p.Day, end) {
			want = append(want, fmt.Sprintf("%s|%s|%s|%s|%s", p.Group.PlantID, p.Group.Role, p.Group.Unit, p.Day, p.WorkerID))
		}
	}
	slices.Sort(want)
	got = column(t, db, `SELECT concat_ws('|', plant_id, role, unit, strftime(day, '%Y-%m-%d'), worker_id)
		FROM alerts WHERE type = 'pace_setter' ORDER BY 1`)
	if !slices.Equal(got, want) {
		t.Errorf("%d pace_setter alerts, truth %d:\n%v\n%v", len(got), len(want), got, want)
	}
	rows, err := db.Query(`SELECT a.type, a.alert_id, a.day, a.detected_at, s.shift_start, s.shift_hours
		FROM alerts a LEFT JOIN shifts s USING (event_id)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	wrong := 0
	for rows.Next() {
		var typ, id string
		var day, detected time.Time
		var start sql.NullTime
		var hours sql.NullFloat64
		if err := rows.Scan(&typ, &id, &day, &detected, &start, &hours); err != nil {
			t.Fatal(err)
		}
		want := day.Add(24*time.Hour + contractLateness)
		if typ == string(processors.RecordShift) || typ == string(processors.SuspectRecord) {
			want = start.Time.Add(time.Duration(hours.Float64 * float64(time.Hour)))
		}
		if !detected.Equal(want) {
			if wrong++; wrong <= 5 {
				t.Errorf("%s %s detected at %v, want %v", typ, id, detected.UTC(), want.UTC())
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if wrong > 0 {
		t.Errorf("%d alerts detected at another time than the contract's", wrong)
	}
}

// checkNearMisses: every near miss the simulator planted raised exactly
// the alerts the truth says, no more, and the pipeline judged it on exactly
// the truth's numbers: a shift's norm, window count and ratio, a day's
// median, workers and share at the common level. Open days aside.
func checkNearMisses(t *testing.T, db *sql.DB, tr *simulator.Truth, end time.Time) {
	t.Helper()
	if len(tr.NearRecords) == 0 || len(tr.NearDays) == 0 {
		t.Fatal("the simulation planted no near misses")
	}
	for _, n := range tr.NearRecords {
		var rate, norm, ratio, scrap float64
		var count int
		var late bool
		err := db.QueryRow(`SELECT rate, norm_rate, norm_count, ratio, scrap_share, late FROM shifts WHERE event_id = ?`,
			n.EventID).Scan(&rate, &norm, &count, &ratio, &scrap, &late)
		if err != nil {
			t.Errorf("near miss %s: %v", n.EventID, err)
			continue
		}
		if late || rate != n.Rate || norm != n.Norm || count != n.Count || ratio != n.Ratio || scrap != n.ScrapShare {
			t.Errorf("%s near miss %s stored with rate %v, norm %v over %d shifts, ratio %v, scrap share %v (late %v); truth %+v",
				n.Threshold, n.EventID, rate, norm, count, ratio, scrap, late, n)
		}
		got := strings.Join(column(t, db, `SELECT type FROM alerts WHERE event_id = ? ORDER BY 1`, n.EventID), ",")
		if got != n.Alert {
			t.Errorf("%s near miss %s (ratio %v over %d shifts, scrap share %v): alerts %q, truth %q",
				n.Threshold, n.EventID, n.Ratio, n.Count, n.ScrapShare, got, n.Alert)
		}
	}
	for _, n := range tr.NearDays {
		if !closedBy(n.Day, end) {
			continue
		}
		rows, err := db.Query(`SELECT type, coalesce(worker_id, ''), norm_rate, ratio, group_size, bulk_share FROM alerts
			WHERE plant_id = ? AND role = ? AND unit = ? AND day = ?::DATE AND type IN ('pace_setter', 'common_pace')`,
			n.Group.PlantID, n.Group.Role, n.Group.Unit, n.Day.String())
		if err != nil {
			t.Fatal(err)
		}
		pace, common := false, false
		for rows.Next() {
			var typ, worker string
			var median, ratio, bulk float64
			var workers int
			if err := rows.Scan(&typ, &worker, &median, &ratio, &workers, &bulk); err != nil {
				t.Fatal(err)
			}
			if median != n.Median || workers != n.Workers || bulk != n.Bulk {
				t.Errorf("%s near miss %v %s: %s with median %v, %d workers, bulk %v; truth %+v",
					n.Threshold, n.Group, n.Day, typ, median, workers, bulk, n)
			}
			switch {
			case typ == string(processors.CommonPace):
				common = true
			case worker == n.WorkerID:
				pace = true
				if ratio != n.Ratio {
					t.Errorf("%s near miss %v %s: pace-setter %s at %v, truth %v", n.Threshold, n.Group, n.Day, worker, ratio, n.Ratio)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		if pace != n.PaceSetter || common != n.Common {
			t.Errorf("%s near miss %v %s (%d workers, %s at %v× the median, %v at the common level): pace_setter %v, common_pace %v; truth %v, %v",
				n.Threshold, n.Group, n.Day, n.Workers, n.WorkerID, n.Ratio, n.Bulk, pace, common, n.PaceSetter, n.Common)
		}
	}
}

func TestDemoRefusesForeignFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mine.duckdb")
	s, err := analytics.Open(context.Background(), analytics.DefaultOptions(path))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	o := DefaultDemoOptions()
	o.DuckDB, o.Out, o.Progress = path, io.Discard, nil
	if _, err := Demo(context.Background(), o); err == nil {
		t.Fatal("demo overwrote a file it did not make")
	}
}

func openRO(t *testing.T, path string) *sql.DB { return openStore(t, path).DB() }

func openStore(t *testing.T, path string) *analytics.Store {
	t.Helper()
	o := analytics.DefaultOptions(path)
	o.ReadOnly = true
	s, err := analytics.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func column(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	return out
}

// runTo runs the pipeline command until stop says so, then stops it as
// SIGTERM would.
func runTo(t *testing.T, o RunOptions, stop func(*ingest.Pipeline) bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.started = func(p *ingest.Pipeline) {
		go func() {
			for !stop(p) {
				time.Sleep(20 * time.Millisecond)
			}
			cancel()
		}()
	}
	done := make(chan error, 1)
	go func() { _, err := Run(ctx, o); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("run did not finish in 90s")
	}
}

func caughtUp(p *ingest.Pipeline) bool {
	lag, err := p.Lag(context.Background())
	if err != nil || len(lag) == 0 {
		return false
	}
	for _, l := range lag {
		if l != 0 {
			return false
		}
	}
	return true
}

// TestRunRestartMatchesOneRun: the run command over a simulated topic,
// once without a break and once stopped twice in the middle; both DuckDB
// files hold the same rows, and each run's alerts topic the ids of its
// alerts table. Dead letters carry their reason and source.
func TestRunRestartMatchesOneRun(t *testing.T) {
	b := testBroker(t, 8)
	input := b.topic("shift-events")
	sim, msgs, produce := simulatedInput(t, b.Addr, input)
	dir := t.TempDir()
	opts := func(name string) RunOptions {
		io := ingest.DefaultOptions(b.Addr)
		io.InputTopic = input
		io.Group, io.AlertsTopic, io.DLQTopic = b.topic(name), b.topic(name+"-alerts"), b.topic(name+"-dlq")
		io.BatchMaxEvents = 2000
		io.Logger = quiet()
		return RunOptions{Ingest: io, DuckDB: analytics.DefaultOptions(filepath.Join(dir, name+".duckdb"))}
	}
	// the restarted run sees the input arrive in parts and is stopped
	// between them and in the middle of one
	third := len(msgs) / 3
	produce(msgs[:third])
	runTo(t, opts("twice"), caughtUp)
	produce(msgs[third : 2*third])
	runTo(t, opts("twice"), func(p *ingest.Pipeline) bool { return p.Stats().Batches > 0 })
	runTo(t, opts("twice"), caughtUp)
	produce(msgs[2*third:])
	runTo(t, opts("twice"), caughtUp)
	runTo(t, opts("once"), caughtUp)

	db := openRO(t, filepath.Join(dir, "once.duckdb"))
	if _, err := db.Exec(fmt.Sprintf(`ATTACH '%s' AS twice (READ_ONLY)`, filepath.Join(dir, "twice.duckdb"))); err != nil {
		t.Fatal(err)
	}
	// ingest_offsets hold each group's own results topic: not compared
	for _, table := range []string{"shifts", "alerts", "rejects", "norms"} {
		n := column(t, db, fmt.Sprintf(`SELECT count(*)::VARCHAR FROM ((SELECT * FROM %[1]s EXCEPT ALL SELECT * FROM twice.%[1]s) UNION ALL (SELECT * FROM twice.%[1]s EXCEPT ALL SELECT * FROM %[1]s))`, table))
		if n[0] != "0" {
			t.Errorf("%s differs between one run and a restarted one: %s rows", table, n[0])
		}
	}
	if n := column(t, db, `SELECT count(*)::VARCHAR FROM shifts`); n[0] != fmt.Sprint(sim.Truth().Valid) {
		t.Fatalf("shifts %s, distinct valid events %d", n[0], sim.Truth().Valid)
	}

	for _, name := range []string{"once", "twice"} {
		topic := map[string]bool{}
		for _, m := range readTopic(t, b.Addr, b.topic(name+"-alerts")) {
			var a struct {
				ID string `json:"alert_id"`
			}
			if err := json.Unmarshal(m.Value, &a); err != nil {
				t.Fatal(err)
			}
			topic[a.ID] = true
		}
		table := map[string]bool{}
		prefix := ""
		if name == "twice" {
			prefix = "twice."
		}
		for _, id := range column(t, db, `SELECT alert_id FROM `+prefix+`alerts`) {
			table[id] = true
		}
		if !maps.Equal(topic, table) || len(table) == 0 {
			t.Errorf("%s: alerts topic has %d ids, table %d", name, len(topic), len(table))
		}
		dlq := readTopic(t, b.Addr, b.topic(name+"-dlq"))
		reasons := map[string]int{}
		for _, m := range dlq {
			h := map[string]string{}
			for _, x := range m.Headers {
				h[x.Key] = string(x.Value)
			}
			if h["source.topic"] != input || h["source.partition"] == "" || h["source.offset"] == "" || h["error.reason"] == "" {
				t.Fatalf("dead letter headers %v", h)
			}
			reasons[h["error.reason"]]++
		}
		want := map[string]int{}
		for _, m := range sim.Truth().Malformed {
			want[m.Reason]++
		}
		// a restart may publish a dead letter again; every one is there
		for r, n := range want {
			if reasons[r] < n {
				t.Errorf("%s: %d dead letters for %s, want %d", name, reasons[r], r, n)
			}
		}
	}
}

func readTopic(t *testing.T, addr, topic string) []kafka.Message {
	t.Helper()
	// its own transport: the shared default one may hold metadata from
	// before the pipeline created topic
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}
	ctx := context.Background()
	_, end, err := ingest.EndOffsets(ctx, c, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for part, e := range end {
		if e == 0 {
			continue
		}
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

// broker is where a test's topics live: an embedded broker of its own, or
// the real cluster KAFKA_BROKERS names, with topic and group names
// prefixed so that tests sharing it do not meet.
type broker struct {
	Addr   string
	prefix string
}

func (b *broker) topic(name string) string { return b.prefix + name }

// runOptionsOn are run's defaults on b's topics for group name (its
// alerts and dead letters named after it), writing path, quietly, with
// metrics on a free port.
func runOptionsOn(b *broker, input, name, path string) RunOptions {
	o := DefaultRunOptions(b.Addr)
	o.MetricsAddr = "127.0.0.1:0"
	o.Ingest.InputTopic = input
	o.Ingest.Group, o.Ingest.AlertsTopic, o.Ingest.DLQTopic = b.topic(name), b.topic(name+"-alerts"), b.topic(name+"-dlq")
	o.Ingest.Logger = quiet()
	o.DuckDB = analytics.DefaultOptions(path)
	o.ReportEvery = 0
	return o
}

func testBroker(t *testing.T, partitions int) *broker {
	t.Helper()
	b := &broker{}
	if addrs := os.Getenv("KAFKA_BROKERS"); addrs != "" {
		b.Addr = strings.Split(addrs, ",")[0]
		// topic names allow [a-zA-Z0-9._-]: a subtest's "/" must go
		name := strings.Map(func(r rune) rune {
			if r == '.' || r == '_' || r == '-' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
				return r
			}
			return '-'
		}, t.Name())
		b.prefix = fmt.Sprintf("%s-%d-", name, time.Now().UnixNano()%1e9)
	} else {
		eb, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: partitions, Topics: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(eb.Close)
		b.Addr = eb.Addr
	}
	// the default transport, which the tests' producers share: creating
	// the topic through it refreshes what they know
	c := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 30 * time.Second}
	if err := ingest.EnsureTopics(context.Background(), c, partitions, b.topic("shift-events")); err != nil {
		t.Fatal(err)
	}
	return b
}

// simulatedInput is the default simulation as Kafka messages, and a
// producer of parts of it to topic, keyed as a JVM producer would.
func simulatedInput(t *testing.T, addr, topic string) (*simulator.Sim, []kafka.Message, func([]kafka.Message)) {
	t.Helper()
	sim, err := simulator.New(simulator.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var msgs []kafka.Message
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		msgs = append(msgs, kafka.Message{Key: m.Key, Value: m.Value})
	}
	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 5000, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { w.Close() })
	return sim, msgs, func(part []kafka.Message) {
		if err := w.WriteMessages(context.Background(), part...); err != nil {
			t.Fatal(err)
		}
	}
}
