package ingest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/simulator"
)

// simulated is a simulator run as messages; prefix, when set, renames
// every plant (key and plant_id), so that two runs hold different plants.
func simulated(t *testing.T, cfg simulator.Config, prefix string) []msg {
	t.Helper()
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []msg
	for m, ok := sim.Next(); ok; m, ok = sim.Next() {
		key, value := string(m.Key), string(m.Value)
		if prefix != "" {
			value = strings.Replace(value, `"plant_id":"`+key+`"`, `"plant_id":"`+prefix+key+`"`, 1)
			key = prefix + key
		}
		out = append(out, msg{key: key, value: value})
	}
	return out
}

// TestBackfillBesideLivePlants: plants backfilling two years of history,
// interleaved on the same partitions with the live reports of other
// plants, change nothing of the live plants' analysis, and are analysed
// themselves as if they were alone — with 1, 3 or 8 partitions. Under one
// clock per partition, every live shift behind the backfill's later dates
// would be late, and the live plants would raise no alert at all.
func TestBackfillBesideLivePlants(t *testing.T) {
	if testing.Short() {
		t.Skip("about 400 000 messages")
	}
	live := simulated(t, simulator.DefaultConfig(), "") // 24 plants, summer 1935
	bcfg := simulator.DefaultConfig()
	bcfg.Seed, bcfg.Plants, bcfg.Days, bcfg.Stakhanov = 7, 4, 730, false
	bcfg.Start = time.Date(1938, 1, 1, 0, 0, 0, 0, time.UTC) // after the live plants' summer
	backfill := simulated(t, bcfg, "archive-")
	// the backfill arrives as fast as it can be read: about seven of its
	// reports beside each live one
	var mixed []msg
	for i, j := 0, 0; i < len(live) || j < len(backfill); {
		for k := 0; k < 7 && j < len(backfill); k++ {
			mixed = append(mixed, backfill[j])
			j++
		}
		if i < len(live) {
			mixed = append(mixed, live[i])
			i++
		}
	}

	env := testKafka(t, 8, "alone", "archive")
	run := func(name, topic string, msgs []msg) *MemorySink {
		produce(t, env.addr, env.topic(topic), msgs)
		sink := NewMemorySink()
		o := env.options(name)
		o.InputTopic = env.topic(topic)
		runUntil(t, o, sink, caughtUp(t))
		return sink
	}
	alone := run("alone", "alone", live)
	archive := run("archive", "archive", backfill)
	byPlant := func(sink *MemorySink, archived bool) (map[string]processors.Shift, map[string]processors.Alert) {
		shifts, alerts := map[string]processors.Shift{}, map[string]processors.Alert{}
		for id, s := range sink.Shifts() {
			if strings.HasPrefix(s.PlantID, "archive-") == archived {
				s.Partition, s.Offset = 0, 0
				shifts[id] = s
			}
		}
		for id, a := range sink.Alerts() {
			if strings.HasPrefix(a.PlantID, "archive-") == archived {
				alerts[id] = a
			}
		}
		return shifts, alerts
	}
	same := func(what string, wantShifts, gotShifts map[string]processors.Shift, wantAlerts, gotAlerts map[string]processors.Alert) {
		t.Helper()
		if len(gotShifts) != len(wantShifts) || len(gotAlerts) != len(wantAlerts) || len(wantAlerts) == 0 {
			t.Fatalf("%s: %d shifts and %d alerts, alone %d and %d", what, len(gotShifts), len(gotAlerts), len(wantShifts), len(wantAlerts))
		}
		for id, w := range wantShifts {
			if g, ok := gotShifts[id]; !ok || !sameShiftRow(w, g) {
				t.Fatalf("%s: shift %s differs:\n got %+v\nwant %+v", what, id, g, w)
			}
		}
		for id, w := range wantAlerts {
			if g, ok := gotAlerts[id]; !ok || !sameAlert(w, g) {
				t.Fatalf("%s: alert %s differs:\n got %+v\nwant %+v", what, id, g, w)
			}
		}
	}
	liveShifts, liveAlerts := byPlant(alone, false)
	archShifts, archAlerts := byPlant(archive, true)
	for _, parts := range []int{1, 3, 8} {
		t.Run(fmt.Sprintf("%d partitions", parts), func(t *testing.T) {
			topic := fmt.Sprintf("mixed-%d", parts)
			c := &kafka.Client{Addr: kafka.TCP(env.addr), Timeout: 30 * time.Second}
			if err := EnsureTopics(context.Background(), c, parts, env.topic(topic)); err != nil {
				t.Fatal(err)
			}
			mixedSink := run(topic, topic, mixed)
			s, a := byPlant(mixedSink, false)
			same("the live plants", liveShifts, s, liveAlerts, a)
			s, a = byPlant(mixedSink, true)
			same("the backfilled plants", archShifts, s, archAlerts, a)
			t.Logf("%d partitions: %d live alerts, %d backfill alerts, as each alone", parts, len(liveAlerts), len(archAlerts))
		})
	}
}

// TestFromFutureIsDeadLettered: a shift that starts long after its record
// was written (a clock set to 2099) goes to the dead-letter topic and the
// rejects with reason from_future, and moves no clock: the plant's next
// report, of the same day as its first, is on time.
func TestFromFutureIsDeadLettered(t *testing.T) {
	env := testKafka(t, 1, "shift-events")
	report := `{"event_id":"%s","plant_id":"gaz","industry":"automotive","role":"lathe-operator","worker_id":"w1","shift_start":"%s","shift_hours":8,"output":80,"unit":"parts"}`
	produce(t, env.addr, env.topic("shift-events"), []msg{
		{key: "gaz", value: fmt.Sprintf(report, "a", "1936-03-01T06:00:00Z")},
		{key: "gaz", value: fmt.Sprintf(report, "2099", "2099-12-31T06:00:00Z")},
		{key: "gaz", value: fmt.Sprintf(report, "b", "1936-03-01T14:00:00Z")},
	})
	sink := NewMemorySink()
	o := env.options("future")
	runUntil(t, o, sink, caughtUp(t))
	shifts := sink.Shifts()
	if len(shifts) != 2 || shifts["b"].Late || shifts["a"].Late {
		t.Fatalf("stored %d shifts (b late %v): the 2099 report moved the plant's clock", len(shifts), shifts["b"].Late)
	}
	rejects := sink.Rejects()
	if len(rejects) != 1 || rejects[0].Reason != processors.ReasonFromFuture || rejects[0].Offset != 1 ||
		!strings.Contains(rejects[0].Detail, "2099-12-31T06:00:00Z") {
		t.Fatalf("rejects %+v, want the 2099 report with reason %s", rejects, processors.ReasonFromFuture)
	}
	dlq := readAll(t, env.addr, o.DLQTopic)
	if len(dlq) != 1 || header(dlq[0], "error.reason") != processors.ReasonFromFuture || !strings.Contains(string(dlq[0].Value), "2099") {
		t.Fatalf("%d dead letters, want the 2099 report with its reason", len(dlq))
	}
}
