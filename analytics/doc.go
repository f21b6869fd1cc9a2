// Package analytics is the pipeline's DuckDB sink: results and the input
// offsets they bring each partition to go into one DuckDB file in one
// transaction, so after a crash the stored offsets say exactly which input
// is already in the tables (exactly-once without Kafka transactions).
// Deterministic event and alert ids make a reprocessed message a no-op
// under the primary key. The same file tells the sink where to resume
// (Offsets) and answers ad-hoc SQL for the command line; processor state
// is not restored from it.
//
// Shifts and alerts travel as Arrow record batches through a registered
// view and one INSERT OR IGNORE, the only bulk path that also reports how
// many rows were new. That view, in duckdb-go v2.10506.0, is persistent
// and ignores projections and filters, so each one is read by exactly one
// full-width INSERT and dropped before COMMIT (see newLoader). Norms and
// rejects are a few rows per batch, where a query Appender is cheaper.
//
// Over the tables, the file carries the views of the analytical model
// (views.go; docs/analytics.md for analysts), created by read-write opens.
//
// Stored conventions: NaN is NULL; an absent section and an alert's empty
// worker or event id are NULL; days are UTC dates; connections run with
// TimeZone UTC so that ad-hoc date arithmetic agrees with the pipeline.
// Build with -tags duckdb_arrow, like the rest of the project.
package analytics
