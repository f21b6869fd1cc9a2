package ingest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// TestDeadLetterTopicUnavailable: while the dead-letter topic cannot be
// written, a bad record is not dropped: its partition waits, saying why,
// and goes on — nothing lost — once the topic is there.
func TestDeadLetterTopicUnavailable(t *testing.T) {
	env := testKafka(t, 1, "shift-events", "shift-alerts")
	o := env.options("nodlq")
	o.CreateTopics = false // the dead-letter topic does not exist yet
	o.RetryBackoffMax = 200 * time.Millisecond
	valid := `{"event_id":"e-%d","plant_id":"gaz","industry":"automotive","role":"lathe-operator","worker_id":"w1","shift_start":"1936-03-01T08:00:00Z","shift_hours":8,"output":80,"unit":"parts"}`
	produce(t, env.addr, env.topic("shift-events"), []msg{
		{key: "gaz", value: fmt.Sprintf(valid, 1)},
		{key: "gaz", value: "not json"},
		{key: "gaz", value: fmt.Sprintf(valid, 2)},
	})
	sink := NewMemorySink()
	p, stop := started(t, o, sink)
	time.Sleep(3 * time.Second)
	if n := len(sink.Shifts()); n != 0 {
		t.Fatalf("%d shifts stored while the bad record could not be published: the partition went on without it", n)
	}
	c := &kafka.Client{Addr: kafka.TCP(env.addr), Timeout: 10 * time.Second, Transport: &kafka.Transport{}}
	if err := EnsureTopics(context.Background(), c, 1, o.DLQTopic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partition to go on", func() bool { return len(sink.Shifts()) == 2 && len(sink.Rejects()) == 1 })
	stop()
	if got := len(readAll(t, env.addr, o.DLQTopic)); got < 1 {
		t.Fatalf("%d dead letters", got)
	}
	_ = p
}
