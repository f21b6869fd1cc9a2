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
	fs := newFlags("bench", "bench [--events N] [--brokers HOST:PORT] [--json]")
	o := app.DefaultBenchOptions()
	fs.IntVar(&o.Events, "events", o.Events, "simulated events to fill the input with")
	brokers := fs.String("brokers", "", "brokers to measure against (default: the embedded broker)")
	fs.IntVar(&o.Partitions, "partitions", o.Partitions, "partitions of the benchmark topic")
	asJSON := fs.Bool("json", false, "print one JSON object")
	fs.IntVar(&o.BatchMaxEvents, "batch-max-events", 0, "the pipeline's batch bound (default: run's default)")
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
	fmt.Fprintf(tw, "events\t%d\n", r.Events)
	fmt.Fprintf(tw, "broker\t%s\n", r.Broker)
	fmt.Fprintf(tw, "pipeline_events_per_s\t%.0f\n", r.PipelineEventsPerS)
	fmt.Fprintf(tw, "ceiling_events_per_s\t%.0f\n", r.CeilingEventsPerS)
	fmt.Fprintf(tw, "ratio_to_ceiling\t%.2f\n", r.RatioToCeiling)
	fmt.Fprintf(tw, "peak_rss_mb\t%.0f\n", r.PeakRSSMB)
	return tw.Flush()
}
