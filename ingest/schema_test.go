package ingest

import (
	"bytes"
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/schemas"
	"github.com/stakhanov/stakhanov/shift"
	"github.com/stakhanov/stakhanov/simulator"
)

// TestSchemaPublishedAlerts: every message a pipeline run publishes on the
// alerts topic validates against schemas/alert.schema.json.
func TestSchemaPublishedAlerts(t *testing.T) {
	// A short simulated run, planted densely enough that every alert type
	// turns up in a few seconds.
	cfg := simulator.DefaultConfig()
	cfg.Days, cfg.Plants = 21, 7
	cfg.RecordRate, cfg.SuspectRate, cfg.PaceRate = 0.03, 0.03, 0.04
	sim, err := simulator.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []msg
	var last simulator.Message
	for {
		m, ok := sim.Next()
		if !ok {
			break
		}
		msgs = append(msgs, msg{key: string(m.Key), value: string(m.Value)})
		if m.Kind == simulator.KindValid {
			last = m
		}
	}
	// A valid shift so short that its rate overflows float64: its record
	// alert has a null rate and ratio, which the schema must allow.
	overflow := strings.Replace(string(last.Value), `"event_id":"`+last.EventID+`"`, `"event_id":"`+last.EventID+`-overflow"`, 1)
	overflow = regexp.MustCompile(`"shift_hours":[0-9.]+`).ReplaceAllString(overflow, `"shift_hours":5e-324`)
	if _, err := shift.Decode([]byte(overflow)); err != nil || overflow == string(last.Value) {
		t.Fatalf("overflowing shift %s: %v", overflow, err)
	}
	msgs = append(msgs, msg{key: string(last.Key), value: overflow})

	env := testKafka(t, 4, "shift-events")
	produce(t, env.addr, env.topic("shift-events"), msgs)
	sink := NewMemorySink()
	runUntil(t, env.options("schema"), sink, caughtUp(t))

	published := readAll(t, env.addr, env.topic("shift-alerts"))
	byType := map[string][][]byte{}
	ids := map[string]bool{}
	for _, m := range published {
		var head struct {
			ID   string `json:"alert_id"`
			Type string `json:"type"`
		}
		// a message without a readable type still gets validated, under
		// a name of its own
		if err := json.Unmarshal(m.Value, &head); err != nil || head.Type == "" {
			head.Type = "unreadable"
		}
		ids[head.ID] = true
		byType[head.Type] = append(byType[head.Type], m.Value)
	}
	// the topic holds the stored alerts, so none escapes validation
	if !maps.Equal(ids, boolKeys(sink.Alerts())) {
		t.Fatalf("%d alert ids published, %d stored", len(ids), len(sink.Alerts()))
	}
	for _, typ := range processors.AlertTypes {
		if len(byType[string(typ)]) == 0 {
			t.Errorf("no %s alert among the %d published", typ, len(published))
		}
	}
	if !slices.ContainsFunc(byType[string(processors.RecordShift)], func(v []byte) bool {
		return bytes.Contains(v, []byte(`"rate":null`))
	}) {
		t.Errorf("no record alert with a null rate among the %d published", len(published))
	}
	for _, typ := range slices.Sorted(maps.Keys(byType)) {
		t.Run(typ, func(t *testing.T) {
			for _, v := range byType[typ] {
				if err := schemas.ValidateAlert(v); err != nil {
					t.Errorf("%v\n%s", err, v)
				}
			}
			t.Logf("%d alerts", len(byType[typ]))
		})
	}
}
