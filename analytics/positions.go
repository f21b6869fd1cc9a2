package analytics

import (
	"context"
	"fmt"

	"github.com/stakhanov/stakhanov/ingest"
)

// screen decides which of a batch's shifts are new. shifts has no key: a
// unique index on event_id cost half of every insert and grew with the
// table (BENCHMARKS.md), so a repeat is recognised by where it came from.
//
// A processor's results for partition p of its input come in p's order,
// and replaying that input after a restart gives the same shift at the
// same position. ingest_offsets holds, for each partition of the batch's
// Stream, the position after the last shift stored; a shift below it is a
// repeat. The event id check the key used to make is left for the shifts
// positions cannot vouch for: those without a position, those of a
// partition with nothing stored yet (the first batch after an upgrade or
// with another input), and Unchecked ones, which the processor could not
// check against the ids it remembers.
//
// keep[i] says whether to store shift i; next is the position to store
// for each partition of Stream that advanced.
func screen(ctx context.Context, tx *commitTx, b *ingest.Batch) (keep []bool, next map[int32]int64, err error) {
	n := len(b.Shifts)
	keep = make([]bool, n)
	positioned := b.Stream != "" && len(b.Positions) == n
	var stored map[int32]int64
	if positioned {
		if stored, err = readOffsets(ctx, tx.conn, b.Stream); err != nil {
			return nil, nil, fmt.Errorf("read positions: %w", err)
		}
		next = make(map[int32]int64)
	}
	var check []int
	for i := range b.Shifts {
		keep[i] = true
		if !positioned || b.Positions[i].Offset < 0 {
			check = append(check, i)
			continue
		}
		pos := b.Positions[i]
		known, ok := stored[pos.Partition]
		if cur, seen := next[pos.Partition]; seen && pos.Offset < cur || ok && pos.Offset < known {
			keep[i] = false // a replayed position
			continue
		}
		next[pos.Partition] = pos.Offset + 1
		if !ok || b.Shifts[i].Unchecked {
			check = append(check, i)
		}
	}
	if len(check) == 0 {
		return keep, next, nil
	}
	ids := make([]string, len(check))
	for j, i := range check {
		ids[j] = b.Shifts[i].EventID
	}
	have, err := storedEventIDs(ctx, tx, ids)
	if err != nil {
		return nil, nil, err
	}
	for _, i := range check {
		if _, dup := have[b.Shifts[i].EventID]; dup {
			keep[i] = false
		}
	}
	return keep, next, nil
}

// storedEventIDs returns which of ids shifts holds: one pass over the
// event_id column, joined to the list.
func storedEventIDs(ctx context.Context, tx *commitTx, ids []string) (map[string]struct{}, error) {
	rows, err := tx.conn.QueryContext(ctx,
		`SELECT event_id FROM shifts WHERE event_id IN (SELECT unnest(?::VARCHAR[]))`, ids)
	if err != nil {
		return nil, fmt.Errorf("check event ids: %w", err)
	}
	defer rows.Close()
	have := make(map[string]struct{})
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("check event ids: %w", err)
		}
		have[id] = struct{}{}
	}
	return have, rows.Err()
}
