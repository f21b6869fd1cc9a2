package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/stakhanov/stakhanov/processors"
)

// started runs a pipeline in the background and returns its stop.
func started(t *testing.T, o Options, sink Sink) (*Pipeline, func()) {
	t.Helper()
	p, err := New(o, sink)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return p, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline stopped with %v", err)
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sameStored compares two sinks: every shift with its norm, every alert
// with all its fields, every reject. Source partition and offset are
// compared too unless the inputs were partitioned differently.
func sameStored(t *testing.T, a, b *MemorySink, sameSource bool) {
	t.Helper()
	sa, sb := a.Shifts(), b.Shifts()
	if len(sa) != len(sb) || len(sa) == 0 {
		t.Fatalf("%d shifts vs %d", len(sa), len(sb))
	}
	for id, x := range sa {
		y, ok := sb[id]
		if !sameSource {
			x.Partition, x.Offset, y.Partition, y.Offset = 0, 0, 0, 0
		}
		if !ok || !sameShiftRow(x, y) {
			t.Fatalf("%s differs:\n%+v\n%+v", id, x, y)
		}
	}
	aa, ab := a.Alerts(), b.Alerts()
	if !slices.Equal(slices.Sorted(maps.Keys(aa)), slices.Sorted(maps.Keys(ab))) || len(aa) == 0 {
		t.Fatalf("alert ids differ: %d vs %d", len(aa), len(ab))
	}
	for id, x := range aa {
		if y := ab[id]; !sameAlert(x, y) {
			t.Fatalf("alert %s differs:\n%+v\n%+v", id, x, y)
		}
	}
	if len(a.Rejects()) != len(b.Rejects()) {
		t.Fatalf("rejects %d vs %d", len(a.Rejects()), len(b.Rejects()))
	}
}

func eqf(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) }

func sameShiftRow(x, y processors.Shift) bool {
	return x.Event == y.Event && x.Partition == y.Partition && x.Offset == y.Offset && x.Late == y.Late &&
		x.Norm.Count == y.Norm.Count && eqf(x.Norm.Median, y.Norm.Median) && eqf(x.Norm.Mean, y.Norm.Mean) &&
		eqf(x.Norm.P90, y.Norm.P90) && eqf(x.Norm.MAD, y.Norm.MAD) && eqf(x.Norm.Bulk, y.Norm.Bulk) &&
		eqf(x.Ratio, y.Ratio) && eqf(x.CrewNorm, y.CrewNorm) && eqf(x.CrewRatio, y.CrewRatio) && eqf(x.Rate, y.Rate)
}

func sameAlert(x, y processors.Alert) bool {
	rx, ry := x, y
	rx.Rate, rx.NormRate, rx.Ratio, rx.ScrapShare, rx.BulkShare = 0, 0, 0, 0, 0
	ry.Rate, ry.NormRate, ry.Ratio, ry.ScrapShare, ry.BulkShare = 0, 0, 0, 0, 0
	return rx == ry && eqf(x.Rate, y.Rate) && eqf(x.NormRate, y.NormRate) && eqf(x.Ratio, y.Ratio) &&
		eqf(x.ScrapShare, y.ScrapShare) && eqf(x.BulkShare, y.BulkShare)
}

// TestScaleOutWithACrash: three processing instances and one sink share an
// 8-partition input that arrives while they run; one processing instance
// dies without a word (no final checkpoint, results half out), another
// joins later and must take a share: partitions of its own, and input
// produced after it joined processed by it. The stored rows and alerts
// equal one instance's.
func TestScaleOutWithACrash(t *testing.T) {
	env := testKafka(t, 8, "shift-events", "shift-events-2")
	addr := env.addr
	msgs := workloadOf(16) // every partition gets plants

	one := NewMemorySink()
	optsOne := env.options("one")
	produce(t, addr, env.topic("shift-events"), msgs)
	runUntil(t, optsOne, one, caughtUp(t))

	// the same input again, on its own topic, arriving in parts
	in := env.topic("shift-events-2")
	o := func(role Role) Options {
		x := env.options("many")
		x.InputTopic, x.Roles = in, role
		x.CheckpointInterval = 50 * time.Millisecond
		return x
	}
	many := NewMemorySink()
	sink, stopSink := started(t, o(RoleSink), many)
	p1, stop1 := started(t, o(RoleProcess), nil)
	p2, stop2 := started(t, o(RoleProcess), nil)
	p3, stop3 := started(t, o(RoleProcess), nil)
	// feed the first half slowly, so that the group settles on three
	// members while there is still input to share
	half := len(msgs) / 2
	for i := 0; i < half; i += 100 {
		produce(t, addr, in, msgs[i:min(i+100, half)])
		time.Sleep(30 * time.Millisecond)
	}
	waitFor(t, "work on every instance", func() bool {
		return p1.Stats().Messages > 0 && p2.Stats().Messages > 0 && p3.Stats().Messages > 0
	})
	p2.proc.abandoned.Store(true) // killed: its partitions go to the others
	stop2()
	threeQuarters := half + (len(msgs)-half)/2
	produce(t, addr, in, msgs[half:threeQuarters])
	// a newcomer takes a share: once the group has given it partitions,
	// the last quarter arrives, and some of it must be its to process
	p4, stop4 := started(t, o(RoleProcess), nil)
	waitFor(t, "the newcomer to be given partitions and restore them", func() bool {
		return p4.Ready() && len(processing(p4)) > 0
	})
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	_, joinedAt, err := EndOffsets(context.Background(), &kafka.Client{Addr: kafka.TCP(addr), Transport: tr}, in)
	if err != nil {
		t.Fatal(err)
	}
	produce(t, addr, in, msgs[threeQuarters:])
	waitFor(t, "all input through", func() bool { return caughtUp(t)(sink) })
	owned := processing(p4)
	done, _ := p4.Progress()
	after := int64(0) // input produced after the newcomer joined, processed by it
	for _, part := range owned {
		after += max(done[part]-joinedAt[part], 0)
	}
	if len(owned) == 0 || after == 0 || p4.Stats().Messages == 0 {
		t.Fatalf("the newcomer owns partitions %v and processed %d messages, %d of them produced after it joined (input ends then %v, its progress %v): it took no share of the work",
			owned, p4.Stats().Messages, after, joinedAt, done)
	}
	t.Logf("the newcomer owns partitions %v and processed %d messages produced after it joined", owned, after)
	// state came back from checkpoints: the partitions replayed only the
	// input after their last checkpoint, not their whole history
	processed := p1.Stats().Messages + p2.Stats().Messages + p3.Stats().Messages + p4.Stats().Messages
	if extra := processed - int64(len(msgs)); extra > int64(len(msgs))/20 {
		t.Errorf("%d messages processed twice of %d: restores replayed more than since the checkpoint", extra, len(msgs))
	} else {
		t.Logf("%d of %d messages processed twice after the crash", extra, len(msgs))
	}
	stop1()
	stop3()
	stop4()
	stopSink()
	sameStored(t, one, many, true)
}

// processing lists the input partitions p processes now.
func processing(p *Pipeline) []int32 {
	var out []int32
	for _, s := range p.Partitions() {
		if s.Role == RoleProcess {
			out = append(out, s.Partition)
		}
	}
	return out
}

// TestRepartitionedInputMatchesKeyed: input spread round-robin over the
// partitions, re-keyed through the repartition topic, gives what the same
// input keyed by plant gives.
func TestRepartitionedInputMatchesKeyed(t *testing.T) {
	env := testKafka(t, 8, "shift-events", "rr-events")
	addr := env.addr
	msgs := workload()
	produce(t, addr, env.topic("shift-events"), msgs)
	keyed := NewMemorySink()
	runUntil(t, env.options("keyed"), keyed, caughtUp(t))

	w := &kafka.Writer{Addr: kafka.TCP(addr), Topic: env.topic("rr-events"), Balancer: &kafka.RoundRobin{}, RequiredAcks: kafka.RequireAll, BatchSize: 1, BatchTimeout: time.Millisecond}
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(m.value)}
	}
	if err := w.WriteMessages(context.Background(), km...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	rr := NewMemorySink()
	o := env.options("rr")
	o.InputTopic, o.Repartition = env.topic("rr-events"), true
	runUntil(t, o, rr, caughtUp(t))
	sameStored(t, keyed, rr, false)
	for _, r := range rr.Rejects() {
		if r.Topic != env.topic("rr-events") {
			t.Fatalf("reject names %s/%d/%d, not its origin", r.Topic, r.Partition, r.Offset)
		}
	}
}

// TestChangedOptionsApply: state checkpointed under one set of rule
// options restarts under another: the run goes on, and says which options
// changed and that they apply from the next event.
func TestChangedOptionsApply(t *testing.T) {
	env := testKafka(t, 2, "shift-events")
	produce(t, env.addr, env.topic("shift-events"), workload())
	runUntil(t, env.options("opts"), NewMemorySink(), caughtUp(t))

	o := env.options("opts")
	o.Processor.Window = 14 * 24 * time.Hour
	o.Processor.PaceSetterRatio = 1.8
	var logs testenv.LogBuffer
	o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(&logs, testLogOut()), nil))
	_, stop := started(t, o, NewMemorySink())
	defer stop()
	waitFor(t, "the restored partitions to say what changed", func() bool {
		return strings.Count(logs.String(), "rule options differ from the checkpoint's") == 2
	})
	for _, want := range []string{"window: 672h0m0s in snapshot → 336h0m0s", "pace_setter_ratio: 1.5 in snapshot → 1.8"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %q:\n%s", want, logs.String())
		}
	}
}
