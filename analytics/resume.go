package analytics

import (
	"context"
	"database/sql"
	"fmt"
)

// Offsets returns the next offset to consume for each partition of topic
// that has any stored.
func (s *Store) Offsets(ctx context.Context, topic string) (map[int32]int64, error) {
	out, err := readOffsets(ctx, s.db, topic)
	if err != nil {
		return nil, sinkFailed(fmt.Errorf("analytics: offsets: %w", s.check(err)))
	}
	return out, nil
}

// readOffsets reads ingest_offsets for topic, on the database or inside a
// commit's transaction.
func readOffsets(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, topic string) (map[int32]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT kafka_partition, next_offset FROM ingest_offsets WHERE topic = ?`, topic)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[int32]int64)
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, err
		}
		out[p] = o
	}
	return out, rows.Err()
}
