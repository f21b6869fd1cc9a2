// Package norms holds the norm rule: a shift's norm is the median rate of
// its peer group's shifts whose start lies in the trailing window
// [start − window, start), the shift itself excluded, with the mean, p90
// (linear interpolation, as DuckDB's quantile_cont), the median absolute
// deviation and the count beside it.
//
// A Window keeps one group's recent shifts in event-time order, and a few
// views: the window of one start time with its rates kept sorted, so that
// the median and p90 are read off by index. Shifts come in slots — a shop's
// workers start together — so nearly every question is about a start time
// already asked, in order or not: a shop that uploads a day's reports in a
// random order interleaves its few slots, each with its view, and a new
// shift enters the views it belongs to. A question about a new start time
// makes its view from the nearest one, moving the few shifts that differ one
// by one, or many by sorting them and merging; in-order input moves its one
// view forward in place. Every path gives exactly the numbers of the rule
// read literally (a property test checks this against a brute-force
// computation), so restoring a window from storage in any order reproduces
// every later norm.
//
// No Kafka, no DuckDB, no wall clock: times are Unix seconds of event time.
package norms
