package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/simulator"
)

// latencyOptions are the part of BenchOptions the latency phase uses.
type latencyOptions struct {
	brokers    []string
	run        string // names the phase's topics and group
	path       string // its DuckDB file
	partitions int
	rate       float64
	duration   time.Duration
	// streamEvents sizes the simulated stream whose first rate × duration
	// messages are sent (a stream of rate × duration when that is longer).
	streamEvents int
	batch        int  // the pipeline's batch bound; 0 for its default
	shuffle      bool // each day's reports in a random order
}

type latencyResult struct {
	events    int64   // messages sent
	sendRate  float64 // events over the time it took to send them
	measured  int     // distinct alerts timed
	unmatched int     // alerts read whose cause was not among the messages sent
	published int64   // alerts the pipeline published
	p50, p99  time.Duration
}

// latencyRun measures, at a fixed input rate, the time from an event's send
// to its alert's arrival on the alerts topic. On a fresh input topic, with
// the pipeline (both roles, a fresh group) already fetching every
// partition and a reader on the alerts topic, a producer sends the
// simulated stream at o.rate, noting when it hands each write to the client.
//
// Which event causes an alert follows the rules (package processors):
//   - a shift alert (record_shift, suspect_record) is caused by its own
//     event, the alert's event_id;
//   - a day alert (pace_setter, common_pace) is caused by the event that
//     closes its day: the first of its plant whose shift_start moves the
//     plant's stream time to the day's end plus the allowed lateness or
//     later. Stream time is the plant's own and moves only with on-time
//     shifts (simulator.KindValid: duplicates are dropped, late shifts and
//     bad records leave it); the stream never leaves a plant silent long
//     enough for its days to close by log time.
//
// An alert re-sent (at least once) is timed at its first arrival.
func latencyRun(ctx context.Context, o latencyOptions, say func(string, ...any)) (res *latencyResult, err error) {
	topic := "bench-" + o.run + "-latency"
	iopts := benchIngestOptions(o.brokers, topic, topic, "bench-latency-"+o.run, o.batch)
	client := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}
	// The alerts topic exists before the pipeline starts, so that its
	// reader is in place before the first alert.
	if err := ingest.EnsureTopics(ctx, client, o.partitions, topic, iopts.AlertsTopic, iopts.DLQTopic); err != nil {
		return nil, err
	}
	n := max(1, int64(math.Round(o.rate*o.duration.Seconds())))
	say("latency: %d events at %.0f/s into %s, alerts timed on %s…", n, o.rate, topic, iopts.AlertsTopic)

	store, err := analytics.Open(ctx, analytics.DefaultOptions(o.path))
	if err != nil {
		return nil, err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", o.path, cerr)
		}
	}()
	p, err := ingest.New(iopts, store)
	if err != nil {
		return nil, err
	}
	pipeCtx, cancelPipe := context.WithCancel(ctx)
	pipe := &running{done: make(chan struct{})}
	go func() {
		pipe.err = p.Run(pipeCtx)
		close(pipe.done)
	}()
	stopPipeline := func() error {
		cancelPipe()
		<-pipe.done
		return pipe.err
	}
	defer stopPipeline()

	reader := &alertReader{client: client, topic: iopts.AlertsTopic}
	readCtx, cancelRead := context.WithCancel(ctx)
	defer cancelRead()
	waitRead := reader.start(readCtx, o.partitions)

	// Joining the group and restoring (empty) checkpoints is start-up, not
	// latency: the first message waits for every partition to be fetched.
	if err := waitFor(ctx, pipe, time.Minute, "the pipeline to fetch every partition", func() bool {
		_, high := p.Progress()
		return len(high) == o.partitions
	}); err != nil {
		return nil, err
	}

	// The start of the stream the input holds, so that the phase sees the
	// same plants; a stream of n when the input is shorter, so that the
	// phase lasts its duration.
	cfg := simulator.ConfigForEvents(max(o.streamEvents, int(n)))
	cfg.DiscardTruth, cfg.ShuffleDays = true, o.shuffle
	sim, err := simulator.New(cfg)
	if err != nil {
		return nil, err
	}
	cs := newCauses(iopts.Processor)
	po := DefaultProduceOptions(o.brokers...)
	po.Topic, po.Partitions, po.Rate, po.Max, po.OnSend = topic, o.partitions, o.rate, n, cs.sent
	var sent atomic.Int64
	start := time.Now()
	stopTicker := ticker(func() { say("  sent %d of %d, alerts read %d", sent.Load(), n, reader.count()) }, 2*time.Second)
	err = Produce(ctx, po, sim, &sent)
	stopTicker()
	if err != nil {
		return nil, err
	}
	took := time.Since(start)
	res = &latencyResult{events: sent.Load(), sendRate: float64(sent.Load()) / took.Seconds()}
	// Below the rate asked for, the producer could not keep up (a busy
	// machine): the figures then hold for the rate achieved.
	say("  %d events in %s: %.0f per second", res.events, took.Round(time.Millisecond), res.sendRate)

	// A message counts as processed once its alerts are acknowledged, so
	// when all are, the alerts topic is complete; then the reader catches up
	// with its end.
	if err := waitFor(ctx, pipe, 2*time.Minute, "the pipeline to process every event", func() bool {
		return p.Stats().Messages >= res.events
	}); err != nil {
		return nil, err
	}
	_, end, err := ingest.EndOffsets(ctx, client, iopts.AlertsTopic)
	if err != nil {
		return nil, err
	}
	if err := waitFor(ctx, pipe, time.Minute, "the alert reader to reach the end of the alerts", func() bool {
		return reader.reached(end)
	}); err != nil {
		return nil, err
	}
	cancelRead()
	if err := waitRead(); err != nil {
		return nil, err
	}
	for _, k := range p.Stats().Alerts {
		res.published += k
	}
	if err := stopPipeline(); err != nil {
		return nil, err
	}

	first := map[string]arrival{}
	for _, a := range reader.arrivals {
		if f, ok := first[a.alert.AlertID]; !ok || a.at.Before(f.at) {
			first[a.alert.AlertID] = a
		}
	}
	var lat []time.Duration
	types := map[string]int{}
	for _, a := range first {
		types[a.alert.Type]++
		at, ok, err := cs.cause(&a.alert)
		if err != nil {
			return nil, err
		}
		if !ok {
			res.unmatched++
			continue
		}
		lat = append(lat, a.at.Sub(at))
	}
	if len(lat) == 0 {
		return nil, fmt.Errorf("bench: no alert arrived in the latency phase (%d events): give it more events", res.events)
	}
	slices.Sort(lat)
	res.measured = len(lat)
	res.p50, res.p99 = quantile(lat, 0.50), quantile(lat, 0.99)
	say("  %d alerts timed (%d published, %d without a cause found; %v): p50 %s, p99 %s",
		res.measured, res.published, res.unmatched, types, res.p50.Round(10*time.Microsecond), res.p99.Round(10*time.Microsecond))
	return res, nil
}

// quantile of sorted durations by linear interpolation between closest
// ranks, as processors/norms and DuckDB's quantile_cont.
func quantile(sorted []time.Duration, q float64) time.Duration {
	h := q * float64(len(sorted)-1)
	i := int(h)
	if i >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	return sorted[i] + time.Duration((h-float64(i))*float64(sorted[i+1]-sorted[i]))
}

// running is a pipeline's Run in its goroutine: err is set once done is
// closed.
type running struct {
	done chan struct{}
	err  error
}

// waitFor polls cond until it holds. It gives up when ctx ends, the
// pipeline stops or limit passes: each would otherwise hang the benchmark.
func waitFor(ctx context.Context, pipe *running, limit time.Duration, what string, cond func() bool) error {
	deadline := time.After(limit)
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-pipe.done:
			if pipe.err != nil {
				return fmt.Errorf("bench: the pipeline stopped while waiting for %s: %w", what, pipe.err)
			}
			return fmt.Errorf("bench: the pipeline stopped while waiting for %s", what)
		case <-deadline:
			return fmt.Errorf("bench: waited %s for %s", limit, what)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// alertMessage is the part of the contract's alert message the latency
// measurement reads.
type alertMessage struct {
	AlertID    string    `json:"alert_id"`
	Type       string    `json:"type"`
	PlantID    string    `json:"plant_id"`
	EventID    string    `json:"event_id"`
	Day        string    `json:"day"`
	DetectedAt time.Time `json:"detected_at"`
}

type arrival struct {
	alert alertMessage
	at    time.Time
}

// alertReader reads every partition of the alerts topic from its start,
// noting when each fetch answered: with MinBytes 1 the broker answers as
// soon as an alert is there, so that is its arrival.
type alertReader struct {
	client *kafka.Client
	topic  string

	mu       sync.Mutex
	arrivals []arrival
	next     map[int32]int64
}

// start reads until ctx ends; wait returns the first error met.
func (r *alertReader) start(ctx context.Context, partitions int) (wait func() error) {
	r.next = map[int32]int64{}
	var wg sync.WaitGroup
	errs := make([]error, partitions)
	for part := range partitions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[part] = r.read(ctx, int32(part))
		}()
	}
	return func() error {
		wg.Wait()
		return errors.Join(errs...)
	}
}

func (r *alertReader) read(ctx context.Context, part int32) error {
	next := int64(0)
	for {
		resp, err := r.client.Fetch(ctx, &kafka.FetchRequest{Topic: r.topic, Partition: int(part), Offset: next,
			MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
		at := time.Now()
		if err == nil {
			err = resp.Error
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && waitedOut(ctx, err, 100*time.Millisecond) {
			continue // a topic just created has no leader yet on Apache Kafka
		}
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s/%d: %w", r.topic, part, err)
		}
		var got []arrival
		for {
			rec, err := resp.Records.ReadRecord()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					return fmt.Errorf("reading %s/%d: %w", r.topic, part, err)
				}
				break
			}
			if rec.Offset < next {
				continue // a batch may start before the offset asked for
			}
			var value []byte
			if rec.Value != nil {
				if value, err = io.ReadAll(rec.Value); err != nil {
					return fmt.Errorf("reading %s/%d@%d: %w", r.topic, part, rec.Offset, err)
				}
			}
			var a arrival
			if err := json.Unmarshal(value, &a.alert); err != nil {
				return fmt.Errorf("alert %s/%d@%d is not the contract's message: %w", r.topic, part, rec.Offset, err)
			}
			a.at = at
			got = append(got, a)
			next = rec.Offset + 1
		}
		r.mu.Lock()
		r.arrivals = append(r.arrivals, got...)
		r.next[part] = next
		r.mu.Unlock()
	}
}

func (r *alertReader) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.arrivals)
}

// reached: every partition has been read up to end.
func (r *alertReader) reached(end map[int32]int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for part, e := range end {
		if r.next[part] < e {
			return false
		}
	}
	return true
}

// causes remembers what was sent, to find each alert's cause.
type causes struct {
	lateness time.Duration
	// sentAt: send time of each on-time event, by event_id
	sentAt map[string]time.Time
	// advances[plant]: each message that raised the plant's stream time,
	// in send order: so both fields ascend.
	advances map[string][]advance
}

type advance struct {
	streamTime int64 // Unix seconds
	at         time.Time
}

func newCauses(o processors.Options) *causes {
	return &causes{lateness: o.AllowedLateness, sentAt: map[string]time.Time{}, advances: map[string][]advance{}}
}

// sent is Produce's OnSend. A plant's messages share a partition, which
// receives them in the order they are sent: the producer writes
// synchronously, one write at a time.
func (c *causes) sent(msgs []simulator.Message, at time.Time) {
	for i := range msgs {
		m := &msgs[i]
		if m.Kind != simulator.KindValid {
			continue
		}
		c.sentAt[m.EventID] = at
		plant := string(m.Key)
		st := m.ShiftStart.Unix()
		if a := c.advances[plant]; len(a) == 0 || st > a[len(a)-1].streamTime {
			c.advances[plant] = append(a, advance{streamTime: st, at: at})
		}
	}
}

// cause returns the send time of the message that caused alert a; ok is
// false when no message sent did.
func (c *causes) cause(a *alertMessage) (at time.Time, ok bool, err error) {
	switch processors.AlertType(a.Type) {
	case processors.RecordShift, processors.SuspectRecord:
		at, ok = c.sentAt[a.EventID]
		return at, ok, nil
	case processors.PaceSetter, processors.CommonPace:
		day, err := time.Parse(time.DateOnly, a.Day)
		if err != nil {
			return at, false, fmt.Errorf("alert %s: day %q: %w", a.AlertID, a.Day, err)
		}
		closes := day.Add(24*time.Hour + c.lateness)
		if !closes.Equal(a.DetectedAt) {
			// the pipeline closed the day at another time than the bench
			// assumes: its lateness differs, and every figure would be off
			return at, false, fmt.Errorf("alert %s of day %s detected at %s, not at the day's end plus %s",
				a.AlertID, a.Day, a.DetectedAt.Format(time.RFC3339), c.lateness)
		}
		adv := c.advances[a.PlantID]
		i := sort.Search(len(adv), func(i int) bool { return adv[i].streamTime >= closes.Unix() })
		if i == len(adv) {
			return at, false, nil
		}
		return adv[i].at, true, nil
	}
	return at, false, fmt.Errorf("alert %s of unknown type %q", a.AlertID, a.Type)
}
