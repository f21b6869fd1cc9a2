package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime/pprof"
	"text/tabwriter"

	"github.com/stakhanov/stakhanov/app"
)

func bench(ctx context.Context, args []string) error {
	fs := newFlags("bench", "bench [--events N] [--shuffle] [--input TOPIC] [--brokers HOST:PORT] [--rate R] [--json]")
	o := app.DefaultBenchOptions()
	fs.IntVar(&o.Events, "events", o.Events, "simulated events to fill a fresh input with")
	fs.StringVar(&o.Input, "input", "", "measure on this existing, filled topic instead of filling a fresh one")
	brokers := fs.String("brokers", "", "brokers to measure against (default: the embedded broker)")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of the topics the bench creates")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "input rate of the latency phase, events/s")
	fs.DurationVar(&o.LatencyDuration, "latency-duration", o.LatencyDuration, "how long the latency phase sends at --rate")
	asJSON := fs.Bool("json", false, "print one JSON object of the eight figures")
	fs.IntVar(&o.BatchMaxEvents, "batch-max-events", 0, "the pipeline's batch bound (default: run's default)")
	fs.BoolVar(&o.ShuffleDays, "shuffle", false, "send each day's reports in a random order (out of order within the allowed lateness)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the run to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	o.Brokers = splitList(*brokers)
	r, err := app.Bench(ctx, o)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "events\t%d\t(%s)\n", r.Events, r.Input)
	fmt.Fprintf(tw, "broker\t%s\n", r.Broker)
	fmt.Fprintf(tw, "pipeline_events_per_s\t%.0f\n", r.PipelineEventsPerS)
	fmt.Fprintf(tw, "ceiling_events_per_s\t%.0f\n", r.CeilingEventsPerS)
	fmt.Fprintf(tw, "ratio_to_ceiling\t%.2f\n", r.RatioToCeiling)
	fmt.Fprintf(tw, "duckdb_batch_events_per_s\t%.0f\t(%d on-time shifts)\n", r.DuckDBBatchEventsPerS, r.BatchShifts)
	fmt.Fprintf(tw, "rate\t%.0f\t(latency phase: %d events, sent at %.0f/s)\n", r.Rate, r.LatencyEvents, r.SentRate)
	fmt.Fprintf(tw, "alerts measured\t%d\t(%d published, %d without a cause found)\n", r.AlertsMeasured, r.AlertsPublished, r.AlertsUnmatched)
	fmt.Fprintf(tw, "p50_alert_latency_ms\t%.2f\n", r.P50AlertLatencyMS)
	fmt.Fprintf(tw, "p99_alert_latency_ms\t%.2f\n", r.P99AlertLatencyMS)
	fmt.Fprintf(tw, "state_bytes_per_worker\t%.0f\t(%d bytes / %d workers)\n", r.StateBytesPerWorker, r.StateBytes, r.ActiveWorkers)
	fmt.Fprintf(tw, "peak_rss_mb\t%.0f\n", r.PeakRSSMB)
	return tw.Flush()
}
