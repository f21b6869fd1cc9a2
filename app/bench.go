package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/analytics"
	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/simulator"
)

// BenchOptions configure the benchmark. Start from DefaultBenchOptions.
type BenchOptions struct {
	// Events is the number of simulated messages to fill a fresh input
	// topic with. Default 1 000 000. Ignored when Input is set.
	Events int
	// Input names an existing, already filled topic to measure on instead
	// of filling a fresh one (a peer, such as the Kafka Streams one in
	// bench/, can then measure on the very same topic); the ceiling and the
	// pipeline read it from its start, and the event count is its message
	// count. Default "": fill a fresh topic.
	Input string
	// Brokers to measure against; empty starts the embedded broker.
	Brokers []string
	// Partitions of the topics the benchmark creates: the fresh input and
	// the latency phase's input. Default 8.
	Partitions int
	// Rate is the latency phase's input rate, events per second. Default
	// 20 000.
	Rate float64
	// LatencyDuration is how long the latency phase produces: Rate ×
	// LatencyDuration events from the start of the same simulated stream
	// the fresh input holds (of a stream that long when the input is
	// shorter). Default 20 s.
	LatencyDuration time.Duration
	// Dir holds the DuckDB files; empty uses a temporary directory, removed
	// afterwards.
	Dir string
	// Progress receives progress lines (nil for none). Default os.Stderr.
	Progress io.Writer
	// BatchMaxEvents overrides the pipeline's batch bound (0: its default).
	BatchMaxEvents int
	// ShuffleDays sends each day's reports in a random order
	// (simulator.Config.ShuffleDays), in the fresh input and the latency
	// phase: what out-of-order input within the allowed lateness costs.
	// Default false.
	ShuffleDays bool

	// afterPipeline sees the throughput phase's store before it closes:
	// tests compare the batch query with the pipeline's rows through it.
	afterPipeline func(context.Context, *analytics.Store) error
}

// Defaults of BenchOptions.
const (
	DefaultBenchEvents          = 1_000_000
	DefaultBenchPartitions      = 8
	DefaultBenchRate            = 20_000
	DefaultBenchLatencyDuration = 20 * time.Second
)

// DefaultBenchOptions returns the defaults.
func DefaultBenchOptions() BenchOptions {
	return BenchOptions{Events: DefaultBenchEvents, Partitions: DefaultBenchPartitions, Rate: DefaultBenchRate,
		LatencyDuration: DefaultBenchLatencyDuration, Progress: os.Stderr}
}

// Validate reports the first option outside its domain.
func (o BenchOptions) Validate() error {
	switch {
	case o.Input == "" && o.Events < 1:
		return fmt.Errorf("bench: events %d must be positive", o.Events)
	case o.Partitions < 1:
		return fmt.Errorf("bench: partitions %d must be positive", o.Partitions)
	case !(o.Rate > 0) || math.IsInf(o.Rate, 1):
		return fmt.Errorf("bench: rate %v must be a positive number", o.Rate)
	case o.LatencyDuration < 100*time.Millisecond:
		return fmt.Errorf("bench: latency duration %v shorter than 100ms", o.LatencyDuration)
	case o.BatchMaxEvents < 0:
		return fmt.Errorf("bench: batch max events %d negative", o.BatchMaxEvents)
	}
	return nil
}

// BenchResult holds the figures of one run. The eight tagged fields are
// the JSON object, and nothing else is; the untagged ones say what they
// were measured on, for the table.
type BenchResult struct {
	// PipelineEventsPerS: input messages over the time from the pipeline's
	// start until DuckDB holds all of them, committed exactly once, with
	// alerts and dead letters acknowledged (acks=all).
	PipelineEventsPerS float64 `json:"pipeline_events_per_s"`
	// CeilingEventsPerS: input messages over the time a do-nothing
	// consumer group takes to read them all with the pipeline's fetch call.
	CeilingEventsPerS float64 `json:"ceiling_events_per_s"`
	// RatioToCeiling is PipelineEventsPerS / CeilingEventsPerS.
	RatioToCeiling float64 `json:"ratio_to_ceiling"`
	// DuckDBBatchEventsPerS: on-time shifts over the time of the one
	// window-function query (analytics.Store.BatchNorms) that computes all
	// their norms and ratios, its input already loaded.
	DuckDBBatchEventsPerS float64 `json:"duckdb_batch_events_per_s"`
	// P50AlertLatencyMS and P99AlertLatencyMS: percentiles (linear
	// interpolation) of an alert's arrival on the alerts topic minus the
	// send time of the input message that caused it, at Rate (see
	// latencyRun for which message causes which alert).
	P50AlertLatencyMS float64 `json:"p50_alert_latency_ms"`
	P99AlertLatencyMS float64 `json:"p99_alert_latency_ms"`
	// StateBytesPerWorker is StateBytes / ActiveWorkers.
	StateBytesPerWorker float64 `json:"state_bytes_per_worker"`
	// PeakRSSMB is the process's peak resident set over the whole run
	// (VmHWM), the embedded broker and its topics included.
	PeakRSSMB float64 `json:"peak_rss_mb"`

	Events int64  `json:"-"` // input messages of the throughput phases
	Input  string `json:"-"` // their topic
	Broker string `json:"-"`
	// Rate, LatencyEvents: the latency phase's input; SentRate the rate
	// the producer achieved, below Rate when it could not keep up.
	Rate          float64 `json:"-"`
	SentRate      float64 `json:"-"`
	LatencyEvents int64   `json:"-"`
	// AlertsMeasured: distinct alerts read back and timed; AlertsPublished:
	// alerts the pipeline published in the phase (equal unless one was
	// re-sent); AlertsUnmatched: alerts read whose cause was not found
	// among the messages sent (0 unless the bench's model of the pipeline
	// is wrong), left out of the percentiles.
	AlertsMeasured  int   `json:"-"`
	AlertsPublished int64 `json:"-"`
	AlertsUnmatched int   `json:"-"`
	// BatchShifts: the on-time shifts the batch query computed.
	BatchShifts int64 `json:"-"`
	// StateBytes: the processors' state at the end of the pipeline phase,
	// summed over partitions, as its checkpoints hold it (the snapshot
	// AppendSnapshot writes: windows, open days, remembered event ids);
	// ActiveWorkers: distinct (plant_id, worker_id) with an on-time shift
	// in the 28-day window before their partition's final stream time
	// (analytics.Store.ActiveWorkers).
	StateBytes    int64 `json:"-"`
	ActiveWorkers int64 `json:"-"`
}

// Bench measures, on one input (a fresh topic of simulated events, or
// Input): a do-nothing consumer group (the ceiling the client and broker
// give), the whole pipeline into DuckDB with alerts published, the state it
// holds at the end, and DuckDB computing the same norms in one batch query
// over the pipeline's own rows. Then, on a fresh topic fed at Rate from the
// start of the same simulated stream, the latency from an event's send to
// its alert.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	res := &BenchResult{Broker: "embedded", Rate: o.Rate}
	brokers := o.Brokers
	if len(brokers) == 0 {
		b, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: o.Partitions})
		if err != nil {
			return nil, err
		}
		defer b.Close()
		brokers = []string{b.Addr}
	} else {
		res.Broker = strings.Join(brokers, ",")
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "stakhanov-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	say := func(f string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, f+"\n", a...)
		}
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}

	topic := o.Input
	if topic == "" {
		topic = "bench-" + run
		n, err := fill(ctx, brokers, topic, o, say)
		if err != nil {
			return nil, err
		}
		res.Events = n
	} else {
		start, end, err := ingest.EndOffsets(ctx, client, topic)
		if err != nil {
			return nil, fmt.Errorf("bench: input %s: %w", topic, err)
		}
		for p, e := range end {
			res.Events += e - start[p]
		}
		if res.Events == 0 {
			return nil, fmt.Errorf("bench: input %s holds no messages", topic)
		}
		say("input: %s, %d messages in %d partitions", topic, res.Events, len(end))
	}
	res.Input = topic

	say("ceiling: a consumer group reading the topic and doing nothing else…")
	d, err := ceiling(ctx, brokers, topic, "bench-ceiling-"+run)
	if err != nil {
		return nil, err
	}
	res.CeilingEventsPerS = float64(res.Events) / d.Seconds()
	say("  %.0f events/s", res.CeilingEventsPerS)

	if err := throughput(ctx, brokers, topic, run, filepath.Join(dir, "bench.duckdb"), o, res, say); err != nil {
		return nil, err
	}

	// The latency phase replays the start of the stream a fresh input
	// holds; on a given input that is a stream of its size.
	lat, err := latencyRun(ctx, latencyOptions{
		brokers: brokers, run: run, path: filepath.Join(dir, "latency.duckdb"), partitions: o.Partitions,
		rate: o.Rate, duration: o.LatencyDuration, streamEvents: int(res.Events), batch: o.BatchMaxEvents,
		shuffle: o.ShuffleDays,
	}, say)
	if err != nil {
		return nil, err
	}
	res.SentRate = lat.sendRate
	res.LatencyEvents, res.AlertsMeasured, res.AlertsPublished, res.AlertsUnmatched = lat.events, lat.measured, lat.published, lat.unmatched
	res.P50AlertLatencyMS = float64(lat.p50) / float64(time.Millisecond)
	res.P99AlertLatencyMS = float64(lat.p99) / float64(time.Millisecond)
	res.PeakRSSMB = peakRSSMB()
	return res, nil
}

// fill produces the simulated stream of ~o.Events messages to a fresh topic.
func fill(ctx context.Context, brokers []string, topic string, o BenchOptions, say func(string, ...any)) (int64, error) {
	cfg := simulator.ConfigForEvents(o.Events)
	cfg.DiscardTruth, cfg.ShuffleDays = true, o.ShuffleDays
	sim, err := simulator.New(cfg)
	if err != nil {
		return 0, err
	}
	say("filling %s with ~%d simulated events…", topic, o.Events)
	po := DefaultProduceOptions(brokers...)
	po.Topic, po.Partitions = topic, o.Partitions
	var sent atomic.Int64
	start := time.Now()
	stopTicker := ticker(func() { say("  produced %d", sent.Load()) }, 2*time.Second)
	err = Produce(ctx, po, sim, &sent)
	stopTicker()
	if err != nil {
		return 0, err
	}
	say("  %d events in %s", sent.Load(), time.Since(start).Round(time.Millisecond))
	return sent.Load(), nil
}

// throughput runs the pipeline phase, then measures the state it left and
// the batch query over the rows it stored.
func throughput(ctx context.Context, brokers []string, topic, run, path string, o BenchOptions, res *BenchResult, say func(string, ...any)) (err error) {
	store, err := analytics.Open(ctx, analytics.DefaultOptions(path))
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	say("pipeline: the same topic into DuckDB, exactly once, alerts published…")
	iopts := benchIngestOptions(brokers, topic, "bench-"+run, "bench-pipeline-"+run, o.BatchMaxEvents)
	d, p, err := pipelineRun(ctx, iopts, store, res.Events, say)
	if err != nil {
		return err
	}
	res.PipelineEventsPerS = float64(res.Events) / d.Seconds()
	res.RatioToCeiling = res.PipelineEventsPerS / res.CeilingEventsPerS
	say("  %.0f events/s", res.PipelineEventsPerS)

	say("state: the processors' checkpoints over the workers in their windows…")
	sizes, err := p.CheckpointBytes(ctx)
	if err != nil {
		return err
	}
	for _, n := range sizes {
		res.StateBytes += n
	}
	if res.ActiveWorkers, err = store.ActiveWorkers(ctx, iopts.Processor.Window); err != nil {
		return err
	}
	if res.ActiveWorkers == 0 {
		return errors.New("bench: no worker has a shift in the window: nothing to divide the state by")
	}
	res.StateBytesPerWorker = float64(res.StateBytes) / float64(res.ActiveWorkers)
	say("  %d bytes in %d partitions for %d workers: %.0f bytes per worker",
		res.StateBytes, len(sizes), res.ActiveWorkers, res.StateBytesPerWorker)

	say("duckdb batch: the same norms in one window-function query over the pipeline's on-time shifts…")
	bo := analytics.DefaultBatchOptions()
	bo.Window = iopts.Processor.Window
	batch, err := store.BatchNorms(ctx, bo)
	if err != nil {
		return err
	}
	if batch.Shifts == 0 {
		return errors.New("bench: the batch query had no shifts to compute")
	}
	res.BatchShifts = batch.Shifts
	res.DuckDBBatchEventsPerS = float64(batch.Shifts) / batch.Took.Seconds()
	say("  %d shifts in %s: %.0f per second", batch.Shifts, batch.Took.Round(time.Millisecond), res.DuckDBBatchEventsPerS)
	if o.afterPipeline != nil {
		return o.afterPipeline(ctx, store)
	}
	return nil
}

// benchIngestOptions are the pipeline's defaults on the benchmark's topics
// and a group of its own, so that no earlier run's state is reused.
func benchIngestOptions(brokers []string, input, outPrefix, group string, batch int) ingest.Options {
	o := ingest.DefaultOptions(brokers...)
	o.InputTopic, o.AlertsTopic, o.DLQTopic = input, outPrefix+"-alerts", outPrefix+"-dlq"
	o.Group = group
	if batch > 0 {
		o.BatchMaxEvents = batch
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	return o
}

func ticker(f func(), every time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				f()
			}
		}
	}()
	return func() { close(done) }
}

// ceiling reads every message of topic through a consumer group generation
// with the same fetch call the pipeline uses, touching each value.
func ceiling(ctx context.Context, brokers []string, topic, group string) (time.Duration, error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second, Transport: &kafka.Transport{}}
	first, end, err := ingest.EndOffsets(ctx, client, topic)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{ID: group, Brokers: brokers, Topics: []string{topic},
		StartOffset: kafka.FirstOffset, JoinGroupBackoff: time.Second})
	if err != nil {
		return 0, err
	}
	defer g.Close()
	gen, err := nextGeneration(ctx, g)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var firstErr atomic.Value
	var bytes atomic.Int64
	for _, a := range gen.Assignments[topic] {
		part, from, stop := a.ID, first[int32(a.ID)], end[int32(a.ID)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := from // a given input may have lost its head to retention
			buf := make([]byte, 0, 4096)
			for next < stop {
				resp, err := client.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: part, Offset: next, MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 100 * time.Millisecond})
				if err == nil {
					err = resp.Error
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				for {
					rec, err := resp.Records.ReadRecord()
					if err != nil {
						break
					}
					if rec.Offset < next {
						continue
					}
					n := rec.Value.Len()
					buf = buf[:n]
					if _, err := io.ReadFull(rec.Value, buf); err != nil {
						break
					}
					bytes.Add(int64(n))
					next = rec.Offset + 1
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// nextGeneration joins the group, waiting out what a broker answers while
// it is still starting: on a fresh Apache Kafka the offsets topic, and so
// the group coordinator, comes some seconds after the first request.
func nextGeneration(ctx context.Context, g *kafka.ConsumerGroup) (*kafka.Generation, error) {
	for {
		gen, err := g.Next(ctx)
		if err == nil || !waitedOut(ctx, err, 500*time.Millisecond) {
			return gen, err
		}
	}
}

// waitedOut reports whether err is one Kafka says to retry, after waiting
// d for the broker to get past it; false when ctx ended meanwhile.
func waitedOut(ctx context.Context, err error, d time.Duration) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) || !kerr.Temporary() {
		return false
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// pipelineRun runs the pipeline over its input until the store holds all
// of it, then stops it cleanly (processors checkpoint their final state)
// and returns the time to get there and the stopped pipeline.
func pipelineRun(ctx context.Context, o ingest.Options, store *analytics.Store, events int64, say func(string, ...any)) (time.Duration, *ingest.Pipeline, error) {
	p, err := ingest.New(o, store)
	if err != nil {
		return 0, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	last := time.Now()
	for {
		select {
		case err := <-done:
			if err == nil {
				err = errors.New("pipeline stopped before the end of the input")
			}
			return 0, nil, err
		case <-time.After(20 * time.Millisecond):
		}
		st := p.Stats()
		if time.Since(last) > 2*time.Second {
			say("  processed %d of %d, stored %d shifts", st.Messages, events, st.Shifts)
			last = time.Now()
		}
		if st.Messages >= events {
			if lag, err := p.Lag(ctx); err == nil && sum(lag) == 0 {
				elapsed := time.Since(start)
				cancel()
				if err := <-done; err != nil {
					return 0, nil, err
				}
				return elapsed, p, nil
			}
		}
	}
}

// peakRSSMB reads the process's peak resident set from /proc (Linux).
func peakRSSMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}
