package ingest

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/internal/badcorpus"
)

// TestBadInputCorpus sends every kind of bad message of the corpus,
// each followed by a valid report, through one partition: each bad one
// reaches the dead-letter topic whole, with its reason and origin, and the
// rejects, none reaches the shifts, and every valid report after it is
// stored — the partition keeps flowing.
func TestBadInputCorpus(t *testing.T) {
	cases, err := badcorpus.Load()
	if err != nil {
		t.Fatal(err)
	}
	env := testKafka(t, 1, "shift-events")
	in := env.topic("shift-events")
	w := &kafka.Writer{Addr: kafka.TCP(env.addr), Topic: in, Balancer: &kafka.LeastBytes{}, RequiredAcks: kafka.RequireAll,
		BatchSize: 1, BatchBytes: 1 << 20, BatchTimeout: time.Millisecond}
	defer w.Close()
	want := map[int64]badcorpus.Case{} // offset → case
	var offset int64
	sent := 0
	for i, c := range cases {
		if !c.ThroughKafka {
			continue
		}
		valid := fmt.Sprintf(`{"event_id":"after-%d","plant_id":"gaz","industry":"automotive","role":"lathe-operator","worker_id":"w%d","shift_start":"1936-03-01T08:00:00Z","shift_hours":8,"output":80,"unit":"parts"}`, i, i)
		if err := w.WriteMessages(context.Background(),
			kafka.Message{Key: []byte("gaz"), Value: c.Value},
			kafka.Message{Key: []byte("gaz"), Value: []byte(valid)}); err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		want[offset] = c
		offset += 2
		sent++
	}
	sink := NewMemorySink()
	runUntil(t, env.options("bad"), sink, caughtUp(t))

	if got := len(sink.Shifts()); got != sent {
		t.Fatalf("%d shifts stored, want the %d valid reports", got, sent)
	}
	rejects := map[int64]Reject{}
	for _, r := range sink.Rejects() {
		rejects[r.Offset] = r
	}
	dlq := map[int64]kafka.Message{}
	for _, m := range readAll(t, env.addr, env.topic("shift-events-dlq")) {
		off, _ := strconv.ParseInt(header(m, "source.offset"), 10, 64)
		dlq[off] = m
	}
	for off, c := range want {
		r, ok := rejects[off]
		if !ok || r.Reason != c.Reason || r.Topic != in {
			t.Errorf("%s: reject %+v, want reason %s", c.Name, r, c.Reason)
		}
		m, ok := dlq[off]
		if !ok || header(m, "error.reason") != c.Reason || string(m.Value) != string(c.Value) || header(m, "source.topic") != in {
			t.Errorf("%s: dead letter missing, or not whole, or without its reason", c.Name)
		}
		if len(r.Value) > rejectKeep {
			t.Errorf("%s: %d bytes stored in rejects", c.Name, len(r.Value))
		}
	}
	if len(rejects) != len(want) || len(dlq) != len(want) {
		t.Errorf("%d rejects and %d dead letters for %d bad messages", len(rejects), len(dlq), len(want))
	}
}
