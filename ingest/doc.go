// Package ingest is the Kafka edge of the pipeline: it consumes shift
// events, runs each input partition's processor, and hands the results to a
// Sink with the offsets they bring each partition to.
//
// Delivery model. The sink, not Kafka, is the record of progress: a batch's
// rows and its input offsets are stored in one transaction, and a partition
// resumes from the sink's offset with its processor rebuilt from the sink's
// rows (processors.Partition.Restore). Bad records and alerts are published
// to Kafka before that transaction, so after a crash they may be sent again —
// with the same alert ids — but never lost. Group offsets are committed to
// Kafka after each batch only so that lag shows in the usual tools.
//
// Partition ownership comes from a kafka-go ConsumerGroup generation, which
// names the partitions this process owns; each owned partition has one
// fetch-and-process goroutine, and one loop batches their results into the
// sink. A rebalance ends the generation: the loop flushes what it holds, and
// the next generation restores whichever partitions it is given.
package ingest
