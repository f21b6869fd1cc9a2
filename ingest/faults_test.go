package ingest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stakhanov/stakhanov/internal/testenv"
)

// TestDeadLetterTopicUnavailable: while the dead-letter topic cannot be
// written, a bad record is not dropped: its partition waits, saying why,
// and goes on — nothing lost — once the topic is there.
func TestDeadLetterTopicUnavailable(t *testing.T) {
	env := testKafka(t, 1, "shift-events", "shift-alerts")
	o := env.options("nodlq")
	o.CreateTopics = false // the dead-letter topic does not exist yet
	o.RetryBackoffMax = 200 * time.Millisecond
	var logs testenv.LogBuffer
	o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogOut()), nil))
	valid := `{"event_id":"e-%d","plant_id":"gaz","industry":"automotive","role":"lathe-operator","worker_id":"w1","shift_start":"1936-03-01T08:00:00Z","shift_hours":8,"output":80,"unit":"parts"}`
	produce(t, env.addr, env.topic("shift-events"), []msg{
		{key: "gaz", value: fmt.Sprintf(valid, 1)},
		{key: "gaz", value: "not json"},
		{key: "gaz", value: fmt.Sprintf(valid, 2)},
	})
	sink := NewMemorySink()
	_, stop := started(t, o, sink)
	defer func() {
		if t.Failed() {
			t.Logf("the pipeline's log:\n%s", logs.String())
		}
	}()

	// The partition has fetched the bad record and tried, more than once,
	// to publish it: from then on it must hold back everything of that
	// fetch, so that the results topic, and the sink, have nothing yet.
	waiting := fmt.Sprintf("waiting: publishing to %s for input partition 0 failed", o.DLQTopic)
	waitFor(t, "the partition to say it waits for the dead-letter topic (twice)", func() bool {
		return bytes.Count(logs.Bytes(), []byte(waiting)) >= 2
	})
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(env.addr), Timeout: 10 * time.Second, Transport: tr}
	_, results, err := EndOffsets(context.Background(), c, o.ResultsTopic())
	if err != nil {
		t.Fatal(err)
	}
	if results[0] != 0 || len(sink.Shifts()) != 0 {
		t.Fatalf("while the bad record could not be published, %d results were published and %d shifts stored: the partition went on without it",
			results[0], len(sink.Shifts()))
	}
	if err := EnsureTopics(context.Background(), c, 1, o.DLQTopic); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the partition to go on", func() bool { return len(sink.Shifts()) == 2 && len(sink.Rejects()) == 1 })
	stop()
	if got := len(readAll(t, env.addr, o.DLQTopic)); got < 1 {
		t.Fatalf("%d dead letters", got)
	}
}
