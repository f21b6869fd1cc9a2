// Package processors turns decoded shift events into enriched shifts, alerts
// and daily norms, in event time.
//
// Each input partition has its own Partition processor, and within it each
// plant (the messages' key) keeps its own clock: its stream time, the
// largest shift_start of its own accepted shifts. A plant's backfill of old
// history, a plant a day behind, or one that falls silent changes nothing
// for any other plant, whatever the partitioning. For each shift the
// processor reads the group's norm over the trailing window (package
// norms), judges it for a record (package records), then adds it to the
// window and to its day. A day closes when its plant's stream time reaches
// the day's end plus the allowed lateness, or when the plant has been silent
// for Options.IdleClose of the log's time (the Kafka record timestamps,
// which a replay reads again unchanged); closing judges each of the day's
// groups for pace (package pace) and records the group's norm.
//
// A shift that arrives after its day closed, or that starts more than a
// window before its plant's stream time, is late: it enters no state, so
// what was emitted stays true, but while its plant still holds its whole
// trailing window it gets its norm and may raise a record alert that says
// it was late. A repeated event_id of a plant within the retention span is
// a duplicate and is dropped. A shift that starts more than
// Options.FutureMargin after its record was written is refused
// (ErrFromFuture) before it can move any clock.
//
// State is a pure function of the partition's input — events, offsets and
// record timestamps — in offset order: a snapshot (AppendSnapshot,
// LoadSnapshot) and the input after it give exactly what the uninterrupted
// processor gives. Each plant keeps only the last Options.Retention of its
// own event time; a plant silent in the log's time for a retention span is
// forgotten, so state stays bounded however many plants pass.
//
// Nothing here reads the wall clock or imports Kafka or DuckDB.
package processors
