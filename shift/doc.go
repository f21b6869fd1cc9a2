// Package shift is the data contract of the pipeline's input: the shift
// event, version 1.
//
// A shift event is one JSON object per Kafka message value. Decode turns the
// bytes into an Event or a *BadRecordError whose Reason is a short, stable
// code (such as "missing_field" or "scrap_above_output") that travels with the
// message to the dead-letter topic. The decoder is hand-written rather than
// built on encoding/json because it is the hot path of the pipeline and
// because the contract is stricter than JSON itself: duplicate keys, control
// characters in identifiers, non-finite numbers and timestamps outside
// [1900, 2100) are all bad records.
//
// The package has no Kafka or DuckDB imports; every other layer depends on it.
package shift
