package analytics

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"runtime"
	"time"
)

// BatchOptions configure BatchNorms. Start from DefaultBatchOptions.
type BatchOptions struct {
	// Window is the trailing span of a shift's norm, [start − Window,
	// start). Default 28 days, the pipeline's (processors.Options.Window):
	// another value answers another question than the stored norm_rate.
	Window time.Duration
	// Rows returns every shift's norm in BatchResult.Rows, for checking
	// them against the pipeline's. Default false: a benchmark of millions of
	// shifts needs only the count.
	Rows bool
	// Threads are DuckDB's worker threads for the query, so that it runs
	// on the machine's cores whatever the store was opened with (the
	// pipeline's store keeps DuckDB to one thread, Options.Threads). The
	// setting is the database's: the store's other work shares it until
	// the query ends and the store's own value is restored. Default
	// runtime.NumCPU(); 0 keeps the store's.
	Threads int
}

// DefaultBatchWindow is the default BatchOptions.Window.
const DefaultBatchWindow = 28 * 24 * time.Hour

// DefaultBatchOptions returns the defaults.
func DefaultBatchOptions() BatchOptions {
	return BatchOptions{Window: DefaultBatchWindow, Threads: runtime.NumCPU()}
}

// Validate reports the first option outside its domain.
func (o BatchOptions) Validate() error {
	// Whole seconds, as the processors require, so that the interval
	// literal below is exact.
	if o.Window < time.Second || o.Window%time.Second != 0 {
		return fmt.Errorf("%w: batch window %v not whole seconds ≥ 1s", ErrInvalidOptions, o.Window)
	}
	if o.Threads < 0 {
		return fmt.Errorf("%w: batch threads %d negative", ErrInvalidOptions, o.Threads)
	}
	return nil
}

// BatchNorm is one shift's norm as the batch query computes it.
type BatchNorm struct {
	EventID string
	// Norm is the median rate of the peer group's shifts in the window;
	// NaN with no history, as in processors.
	Norm float64
	// Count is the number of shifts in the window.
	Count int64
	// Ratio is rate / Norm; NaN when Norm is NaN or 0.
	Ratio float64
}

// BatchResult is what BatchNorms measured.
type BatchResult struct {
	// Shifts is the number of shifts the query computed a norm for: the
	// stored on-time shifts.
	Shifts int64
	// Took is the query alone: loading its input and reading its result
	// are not counted.
	Took time.Duration
	// Rows holds every shift's norm when BatchOptions.Rows asked for them,
	// in no particular order.
	Rows []BatchNorm
}

// batchNormsSQL computes each shift's norm and ratio in one query: the
// median rate of its peer group over [shift_start − window, shift_start).
// RANGE … PRECEDING includes the window's first instant; EXCLUDE GROUP
// drops the shift and every shift of the group starting at the same instant,
// which makes the upper bound open, as the contract's norm is. The window is
// an interval of seconds only (no days), so no time zone enters the
// arithmetic. CREATE TABLE AS materialises every row, so nothing can be
// optimised away.
const batchNormsSQL = `CREATE TEMP TABLE batch_norms AS
SELECT event_id,
       median(rate) OVER w AS norm_rate,
       count(rate) OVER w AS norm_count,
       rate / nullif(median(rate) OVER w, 0) AS ratio
FROM batch_input
WINDOW w AS (PARTITION BY plant_id, role, unit ORDER BY shift_start
             RANGE BETWEEN INTERVAL '%d seconds' PRECEDING AND CURRENT ROW EXCLUDE GROUP)`

// BatchNorms computes, in one DuckDB query with window functions, the norm
// and ratio of every on-time shift stored, the way the pipeline computed
// them one event at a time: the batch counterpart the benchmark compares
// the stream with. Its input is the stored shifts that are not late —
// exactly those that entered the pipeline's windows — copied into a
// temporary table first, untimed, so that only the query is measured.
// Nothing is written to the file; the temporary tables go when it returns.
func (s *Store) BatchNorms(ctx context.Context, o BatchOptions) (*BatchResult, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// One connection: temporary tables belong to it.
	conn, err := s.handle().Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("analytics: batch norms: %w", err)
	}
	defer conn.Close()
	defer func() {
		// a failed query may leave either table; a fresh context lets the
		// clean-up run after a cancelled one
		dctx := context.WithoutCancel(ctx)
		_, _ = conn.ExecContext(dctx, "DROP TABLE IF EXISTS temp.batch_norms")
		_, _ = conn.ExecContext(dctx, "DROP TABLE IF EXISTS temp.batch_input")
	}()
	if _, err := conn.ExecContext(ctx, `CREATE OR REPLACE TEMP TABLE batch_input AS
		SELECT event_id, plant_id, role, unit, worker_id, shift_start, rate FROM shifts WHERE NOT late`); err != nil {
		return nil, fmt.Errorf("analytics: batch norms: loading the input: %w", err)
	}
	if _, err := conn.ExecContext(ctx, "DROP TABLE IF EXISTS temp.batch_norms"); err != nil {
		return nil, fmt.Errorf("analytics: batch norms: %w", err)
	}
	if o.Threads > 0 && o.Threads != s.opts.Threads {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET GLOBAL threads = %d", o.Threads)); err != nil {
			return nil, fmt.Errorf("analytics: batch norms: %w", err)
		}
		defer func() {
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("SET GLOBAL threads = %d", s.opts.Threads))
		}()
	}
	start := time.Now()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(batchNormsSQL, int64(o.Window/time.Second))); err != nil {
		return nil, fmt.Errorf("analytics: batch norms: the query: %w", err)
	}
	res := &BatchResult{Took: time.Since(start)}
	if err := conn.QueryRowContext(ctx, "SELECT count(*) FROM temp.batch_norms").Scan(&res.Shifts); err != nil {
		return nil, fmt.Errorf("analytics: batch norms: counting: %w", err)
	}
	if !o.Rows {
		return res, nil
	}
	rows, err := conn.QueryContext(ctx, "SELECT event_id, norm_rate, norm_count, ratio FROM temp.batch_norms")
	if err != nil {
		return nil, fmt.Errorf("analytics: batch norms: reading: %w", err)
	}
	defer rows.Close()
	res.Rows = make([]BatchNorm, 0, res.Shifts)
	for rows.Next() {
		var r BatchNorm
		var norm, ratio sql.NullFloat64
		if err := rows.Scan(&r.EventID, &norm, &r.Count, &ratio); err != nil {
			return nil, fmt.Errorf("analytics: batch norms: reading: %w", err)
		}
		r.Norm, r.Ratio = orNaN(norm), orNaN(ratio)
		res.Rows = append(res.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("analytics: batch norms: reading: %w", err)
	}
	return res, nil
}

func orNaN(f sql.NullFloat64) float64 {
	if !f.Valid {
		return math.NaN()
	}
	return f.Float64
}

// ActiveWorkers counts the workers with state in the pipeline's windows at
// the end of what is stored: distinct (plant_id, worker_id) with an on-time
// shift starting in [T − window, T], where T is the stream time of the
// shift's input partition (topic and partition) — the latest start of an on-time shift there,
// which is what advances a partition's stream time in processors. It is the
// denominator of the benchmark's state bytes per worker. A store without
// shifts has none.
func (s *Store) ActiveWorkers(ctx context.Context, window time.Duration) (int64, error) {
	if window <= 0 || window%time.Second != 0 {
		return 0, fmt.Errorf("%w: window %v not whole seconds > 0", ErrInvalidOptions, window)
	}
	var n sql.NullInt64
	err := s.handle().QueryRowContext(ctx, fmt.Sprintf(`
		WITH stream AS (
			SELECT kafka_topic, kafka_partition, max(shift_start) AS t FROM shifts WHERE NOT late
			GROUP BY kafka_topic, kafka_partition
		)
		SELECT count(DISTINCT (s.plant_id, s.worker_id))
		FROM shifts s JOIN stream USING (kafka_topic, kafka_partition)
		WHERE NOT s.late AND s.shift_start >= stream.t - INTERVAL '%d seconds'`, int64(window/time.Second))).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("analytics: active workers: %w", err)
	}
	return n.Int64, nil
}
