// Package ingest is the Kafka edge of the pipeline. It runs the topology
// as roles that one process or many share:
//
//	input ──(repartition by plant_id, when producers did not key by it)──►
//	  process: one processors.Partition per input partition, state
//	           checkpointed to a compacted topic
//	     ├─► alerts topic     (deterministic alert ids)
//	     ├─► dead-letter topic (original key and value, reason headers)
//	     └─► results topic    (enriched shifts, alerts, norms, rejects)
//	  sink: results ──► Sink (DuckDB), rows and results offsets in one
//	        transaction
//
// Ownership comes from kafka-go ConsumerGroup generations, which name the
// partitions a process owns; partition p of every internal topic belongs to
// input partition p. When a partition moves — a process joins, leaves or
// dies — its new owner loads the partition's latest checkpoint from Kafka
// and replays only the input after it; nothing is shared on disk.
//
// Delivery. A processor publishes a fetch's alerts, dead letters and
// results, waits for all three to be acknowledged, and only then may
// checkpoint the state that produced them. A replay after a crash therefore
// re-sends results identical to the lost ones (processing is a pure
// function of checkpoint and input), alerts with the same ids and dead
// letters with the same source: at least once on the topics. The sink stores
// each result exactly once — its offsets commit with the rows, and repeated
// ids are ignored. Group offsets are committed to Kafka too, for lag tools.
package ingest
