// Package app wires the layers into the commands of the stakhanov binary:
// the embedded broker, the simulator's producer, the long-running pipeline
// (ingest into an analytics.Store), the demo that runs all of them in one
// process, and the benchmark. Each command is a function with an Options
// struct, so tests drive exactly what users run.
package app
