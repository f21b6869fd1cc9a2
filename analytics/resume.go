package analytics

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/stakhanov/stakhanov/shift"
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

// StreamTime returns the largest shift_start stored for the partition, or
// the zero time when it has none.
func (s *Store) StreamTime(ctx context.Context, topic string, partition int32) (time.Time, error) {
	var t sql.NullTime
	err := s.db.QueryRowContext(ctx,
		`SELECT max(shift_start) FROM shifts WHERE kafka_topic = ? AND kafka_partition = ?`,
		topic, partition).Scan(&t)
	if err != nil {
		return time.Time{}, fmt.Errorf("analytics: stream time: %w", err)
	}
	if !t.Valid {
		return time.Time{}, nil
	}
	return t.Time.UTC(), nil
}

const replayQuery = `SELECT event_id, plant_id, industry, section, role, worker_id,
	crew_size, shift_start, shift_hours, output, unit, scrap, late
FROM shifts
WHERE kafka_topic = ? AND kafka_partition = ? AND shift_start >= ?
ORDER BY kafka_offset`

// Replay calls fn, in offset order, for each stored shift of the partition
// whose shift_start is at or after since, with the event as it was decoded
// and the late flag it was stored with. Each call gets a new Event that fn
// may keep. Rows arrive as Arrow record batches of a streaming query, so a
// replay of millions of shifts holds one batch at a time. An error from fn
// stops the replay and is returned wrapped.
func (s *Store) Replay(ctx context.Context, topic string, partition int32, since time.Time,
	fn func(ev *shift.Event, late bool) error) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("analytics: replay: %w", err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		a, err := duckdb.NewArrowFromConn(dc.(driver.Conn))
		if err != nil {
			return err
		}
		rr, err := a.QueryContext(ctx, replayQuery, topic, partition, since.UTC())
		if err != nil {
			return err
		}
		defer rr.Release()
		in := make(interner)
		for rr.Next() {
			if err := replayBatch(rr.RecordBatch(), in, fn); err != nil {
				return err
			}
		}
		return rr.Err()
	})
	if err != nil {
		return fmt.Errorf("analytics: replay: %w", err)
	}
	return nil
}

// replayColumns are replayQuery's columns, typed.
type replayColumns struct {
	eventID, plantID, industry, section, role, workerID, unit stringArray
	crewSize                                                  *array.Int32
	shiftStart                                                *array.Timestamp
	startUnit                                                 arrow.TimeUnit
	shiftHours, output, scrap                                 *array.Float64
	late                                                      *array.Boolean
}

// stringArray is any Arrow string layout; which one DuckDB exports
// depends on its settings.
type stringArray interface {
	arrow.Array
	Value(int) string
}

func replayBatch(rec arrow.RecordBatch, in interner, fn func(*shift.Event, bool) error) error {
	var c replayColumns
	var ok [13]bool
	c.eventID, ok[0] = rec.Column(0).(stringArray)
	c.plantID, ok[1] = rec.Column(1).(stringArray)
	c.industry, ok[2] = rec.Column(2).(stringArray)
	c.section, ok[3] = rec.Column(3).(stringArray)
	c.role, ok[4] = rec.Column(4).(stringArray)
	c.workerID, ok[5] = rec.Column(5).(stringArray)
	c.crewSize, ok[6] = rec.Column(6).(*array.Int32)
	c.shiftStart, ok[7] = rec.Column(7).(*array.Timestamp)
	c.shiftHours, ok[8] = rec.Column(8).(*array.Float64)
	c.output, ok[9] = rec.Column(9).(*array.Float64)
	c.unit, ok[10] = rec.Column(10).(stringArray)
	c.scrap, ok[11] = rec.Column(11).(*array.Float64)
	c.late, ok[12] = rec.Column(12).(*array.Boolean)
	for i, good := range ok {
		if !good {
			return fmt.Errorf("unexpected Arrow type %s for column %s",
				rec.Column(i).DataType(), rec.ColumnName(i))
		}
	}
	c.startUnit = c.shiftStart.DataType().(*arrow.TimestampType).Unit
	for i := 0; i < int(rec.NumRows()); i++ {
		ev := &shift.Event{
			// Arrow strings point into the batch's buffers, which are
			// reused for the next batch: every kept string is a copy.
			EventID:    strings.Clone(str(c.eventID, i)),
			PlantID:    in.get(str(c.plantID, i)),
			Industry:   in.get(str(c.industry, i)),
			Section:    in.get(str(c.section, i)),
			Role:       in.get(str(c.role, i)),
			WorkerID:   in.get(str(c.workerID, i)),
			CrewSize:   int(c.crewSize.Value(i)),
			ShiftStart: c.shiftStart.Value(i).ToTime(c.startUnit).UTC(),
			ShiftHours: floatOrNaN(c.shiftHours, i),
			Output:     floatOrNaN(c.output, i),
			Unit:       in.get(str(c.unit, i)),
			Scrap:      floatOrNaN(c.scrap, i),
		}
		if err := fn(ev, c.late.Value(i)); err != nil {
			return err
		}
	}
	return nil
}

func str(a stringArray, i int) string {
	if a.IsNull(i) {
		return ""
	}
	return a.Value(i)
}

// floatOrNaN undoes the NaN-as-NULL rule of the stored data.
func floatOrNaN(a *array.Float64, i int) float64 {
	if a.IsNull(i) {
		return math.NaN()
	}
	return a.Value(i)
}

// interner shares the strings that repeat across shifts (plant, role,
// worker, …), so that events a processor keeps in its windows after a
// replay do not each carry their own copy.
type interner map[string]string

// maxInterned bounds the interner on a replay of unusually diverse data.
const maxInterned = 1 << 20

func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	v := strings.Clone(s)
	if len(in) < maxInterned {
		in[v] = v
	}
	return v
}
