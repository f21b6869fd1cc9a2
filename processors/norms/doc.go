// Package norms holds the norm rule: a shift's norm is the median rate of
// its peer group's shifts whose start lies in the trailing window
// [start − window, start), the shift itself excluded, with the mean, p90
// (linear interpolation, as DuckDB's quantile_cont), the median absolute
// deviation and the count beside it.
//
// A Window keeps one group's recent shifts in event-time order. Most shifts
// arrive in order, so the window also keeps the rates of its current span
// sorted and slides it forward: the median and p90 are then read off by
// index. A shift older than the current span is answered from a copy. Both
// paths give exactly the same numbers (a property test checks this against a
// brute-force computation), so restoring a window from storage in any order
// reproduces every later norm.
//
// No Kafka, no DuckDB, no wall clock: times are Unix seconds of event time.
package norms
