package analytics

import (
	"context"
	"fmt"
)

// Offsets returns the next offset to consume for each partition of topic
// that has any stored.
func (s *Store) Offsets(ctx context.Context, topic string) (map[int32]int64, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT kafka_partition, next_offset FROM ingest_offsets WHERE topic = ?`, topic)
	if err != nil {
		return nil, fmt.Errorf("analytics: offsets: %w", err)
	}
	defer rows.Close()
	out := make(map[int32]int64)
	for rows.Next() {
		var p int32
		var o int64
		if err := rows.Scan(&p, &o); err != nil {
			return nil, fmt.Errorf("analytics: offsets: %w", err)
		}
		out[p] = o
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics: offsets: %w", err)
	}
	return out, nil
}
