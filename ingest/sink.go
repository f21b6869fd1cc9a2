package ingest

import (
	"context"
	"errors"

	"github.com/stakhanov/stakhanov/processors"
)

// ErrSinkFailed is wrapped by a Sink's error that waiting cannot cure: its
// storage is damaged, and another attempt would only write more into it.
// The sink role stops at once with such an error instead of retrying it,
// and Run returns it.
var ErrSinkFailed = errors.New("ingest: the sink cannot store any more")

// Reject is a message that is not a valid shift event, as stored beside the
// results and sent to the dead-letter topic.
type Reject struct {
	Topic     string
	Partition int32
	Offset    int64
	Reason    string // a shift.Reason… code
	Detail    string // human-readable detail
	Key       []byte
	Value     []byte
}

// Batch is the unit of exactly-once delivery: everything derived from a run
// of input messages, with the input offsets it brings each partition to. A
// sink stores all of it, offsets included, or none of it.
type Batch struct {
	Topic string // the topic the offsets belong to
	// SourceTopic is the input topic the shifts were read from (their
	// Partition and Offset are its); Topic when empty.
	SourceTopic string
	Shifts      []processors.Shift
	// Stream is the topic the processors read: the input, or the
	// repartition topic when the input is re-keyed. Positions has, for each
	// shift, the message of Stream it came from (Offset -1 when unknown).
	// A sink stores per partition of Stream the position after the last
	// shift it stored, in the same transaction, and skips a shift below
	// it: the repeat of a processor that replayed input. Shifts without a
	// position, or with Stream empty, are checked by event id instead.
	Stream    string
	Positions []Position
	Alerts    []processors.Alert
	Norms     []processors.NormRow
	Rejects   []Reject
	// Offsets maps a partition of Topic to the next offset to consume.
	Offsets map[int32]int64

	// Prepared is a Preparer's own form of the batch, from Prepare; a
	// Commit that finds it stale (the batch changed since) ignores it.
	Prepared Prepared
}

// Prepared is what a Preparer built ahead of a commit.
type Prepared interface {
	// Release frees it; Commit and Reset release what they were given.
	Release()
}

// Preparer is a Sink that can do part of a commit's work ahead of it,
// outside its transaction: the sink role prepares a full batch while the
// previous one commits, so that the two overlap on two cores.
type Preparer interface {
	// Prepare sets b.Prepared. It may run while Commit runs on another
	// batch, and must not change what Commit stores.
	Prepare(b *Batch)
}

// Position is where in the processors' input a shift came from.
type Position struct {
	Partition int32
	Offset    int64
}

// Reset empties the batch, keeping its capacity.
func (b *Batch) Reset() {
	clear(b.Shifts)
	b.Shifts = b.Shifts[:0]
	b.Positions = b.Positions[:0]
	clear(b.Alerts)
	b.Alerts = b.Alerts[:0]
	clear(b.Norms)
	b.Norms = b.Norms[:0]
	clear(b.Rejects)
	b.Rejects = b.Rejects[:0]
	clear(b.Offsets)
	if b.Prepared != nil {
		b.Prepared.Release()
		b.Prepared = nil
	}
}

// CommitResult says what a commit stored.
type CommitResult struct {
	// ShiftsInserted is below len(Batch.Shifts) when some shifts were
	// already stored: repeated positions or event ids.
	ShiftsInserted int
	AlertsInserted int
}

// RulesRecorder is a Sink that keeps, beside the rows, the rule options they
// are computed under. The sink role calls RecordRules with its own
// Options.Processor each time it starts, before it stores anything: the
// processes of a pipeline share one configuration, and a processor refuses
// a checkpoint made under other options.
type RulesRecorder interface {
	RecordRules(ctx context.Context, o processors.Options) error
}

// Sink stores batches atomically with their offsets: the sink's copy of the
// offsets is what the sink role resumes from.
type Sink interface {
	// Commit stores the batch and its offsets in one transaction. An
	// error is retried with backoff, unless it wraps ErrSinkFailed.
	Commit(ctx context.Context, b *Batch) (CommitResult, error)
	// Offsets returns the next offset to consume for each partition of
	// topic that has any stored.
	Offsets(ctx context.Context, topic string) (map[int32]int64, error)
}
