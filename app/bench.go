package app

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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

// BenchOptions configure the benchmark.
type BenchOptions struct {
	// Events is the number of simulated messages to fill the input with.
	// Default 1 000 000.
	Events int
	// Brokers to measure against; empty starts the embedded broker.
	Brokers []string
	// Partitions of the benchmark's input topic. Default 8.
	Partitions int
	// Dir holds the DuckDB file; empty uses a temporary directory, removed
	// afterwards.
	Dir string
	// Progress receives progress lines (nil for none).
	Progress io.Writer
	// BatchMaxEvents overrides the pipeline's batch bound (0: its default).
	BatchMaxEvents int
}

// DefaultBenchOptions returns the defaults.
func DefaultBenchOptions() BenchOptions {
	return BenchOptions{Events: 1_000_000, Partitions: 8, Progress: os.Stderr}
}

// BenchResult holds the figures of one run. Field names are the JSON keys.
type BenchResult struct {
	Events             int64   `json:"events"`
	Broker             string  `json:"broker"`
	PipelineEventsPerS float64 `json:"pipeline_events_per_s"`
	CeilingEventsPerS  float64 `json:"ceiling_events_per_s"`
	RatioToCeiling     float64 `json:"ratio_to_ceiling"`
	PeakRSSMB          float64 `json:"peak_rss_mb"`
}

// Bench fills a fresh topic with simulated events and measures, on that
// topic, a do-nothing consumer group (the ceiling the client and broker
// give) and the whole pipeline into DuckDB with alerts published.
func Bench(ctx context.Context, o BenchOptions) (*BenchResult, error) {
	if o.Events < 1 || o.Partitions < 1 {
		return nil, fmt.Errorf("bench: events %d and partitions %d must be positive", o.Events, o.Partitions)
	}
	res := &BenchResult{Broker: "embedded"}
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
	topic := "bench-" + run

	cfg := simulator.ConfigForEvents(o.Events)
	cfg.DiscardTruth = true
	sim, err := simulator.New(cfg)
	if err != nil {
		return nil, err
	}
	say("filling %s with ~%d simulated events…", topic, o.Events)
	po := DefaultProduceOptions(brokers...)
	po.Topic, po.Partitions = topic, o.Partitions
	var sent atomic.Int64
	fillStart := time.Now()
	stopTicker := ticker(func() { say("  produced %d", sent.Load()) }, 2*time.Second)
	err = Produce(ctx, po, sim, &sent)
	stopTicker()
	if err != nil {
		return nil, err
	}
	res.Events = sent.Load()
	say("  %d events in %s", res.Events, time.Since(fillStart).Round(time.Millisecond))

	say("ceiling: a consumer group reading the topic and doing nothing else…")
	d, err := ceiling(ctx, brokers, topic, "bench-ceiling-"+run)
	if err != nil {
		return nil, err
	}
	res.CeilingEventsPerS = float64(res.Events) / d.Seconds()
	say("  %.0f events/s", res.CeilingEventsPerS)

	say("pipeline: the same topic into DuckDB, exactly once, alerts published…")
	d, err = pipelineRun(ctx, brokers, topic, run, filepath.Join(dir, "bench.duckdb"), res.Events, o.BatchMaxEvents, say)
	if err != nil {
		return nil, err
	}
	res.PipelineEventsPerS = float64(res.Events) / d.Seconds()
	res.RatioToCeiling = res.PipelineEventsPerS / res.CeilingEventsPerS
	say("  %.0f events/s", res.PipelineEventsPerS)
	res.PeakRSSMB = peakRSSMB()
	return res, nil
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
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 30 * time.Second}
	_, end, err := ingest.EndOffsets(ctx, client, topic)
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
	gen, err := g.Next(ctx)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	var firstErr atomic.Value
	var bytes atomic.Int64
	for _, a := range gen.Assignments[topic] {
		part, stop := a.ID, end[int32(a.ID)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := int64(0)
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

// pipelineRun runs the pipeline over topic until DuckDB holds all of it.
func pipelineRun(ctx context.Context, brokers []string, topic, run, path string, events int64, batch int, say func(string, ...any)) (time.Duration, error) {
	store, err := analytics.Open(ctx, analytics.DefaultOptions(path))
	if err != nil {
		return 0, err
	}
	defer store.Close()
	o := ingest.DefaultOptions(brokers...)
	o.InputTopic, o.AlertsTopic, o.DLQTopic = topic, topic+"-alerts", topic+"-dlq"
	o.Group = "bench-pipeline-" + run
	if batch > 0 {
		o.BatchMaxEvents = batch
	}
	o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	p, err := ingest.New(o, store)
	if err != nil {
		return 0, err
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
			return 0, err
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
					return 0, err
				}
				return elapsed, nil
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
