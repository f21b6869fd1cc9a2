// Package processors turns decoded shift events into enriched shifts, alerts
// and daily norms, in event time.
//
// The model follows Kafka Streams: each input partition has its own
// Partition processor and its own stream time, the largest shift_start it
// has seen, so a quiet or historic partition never holds another back. For
// each shift the processor reads the group's norm over the trailing window
// (package norms), judges it for a record (package records), then adds it to
// the window and to its day. A day closes when its partition's stream time
// reaches the day's end plus the allowed lateness; closing judges each of the
// day's groups for pace (package pace) and records the group's norm.
//
// A shift that arrives after its day closed, or that starts before its
// partition's window, is late: it is kept with its norm, but raises no alert
// and changes no state, so what was emitted stays true. A repeated event_id
// within the retention span is a duplicate and is dropped.
//
// State is a pure function of the partition's accepted shifts in offset
// order, and only the last Options.Retention of event time matters. That is
// what Restore relies on: replaying the stored shifts of that span rebuilds
// state that answers every later event exactly as the uninterrupted
// processor would.
//
// Nothing here reads the wall clock or imports Kafka or DuckDB.
package processors
