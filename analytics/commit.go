package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/duckdb/duckdb-go/v2"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// ErrClosed is returned by Commit after Close.
var ErrClosed = errors.New("analytics: store is closed")

// Commit stores the batch and its offsets in one transaction: all of it or,
// on error, none of it. Repeats are skipped and left out of the counts: a
// shift at a position of the batch's Stream below the one stored for its
// partition, and (see screen) a shift whose event id is stored when its
// position cannot vouch for it; an alert id already stored; an event or
// alert id earlier in the batch (the first wins). A norm row replaces a
// stored one of the same group and day (the last in the batch wins).
func (s *Store) Commit(ctx context.Context, b *ingest.Batch) (ingest.CommitResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.opts.ReadOnly:
		return ingest.CommitResult{}, ErrReadOnly
	case s.loaders == nil:
		return ingest.CommitResult{}, ErrClosed
	case len(b.Shifts)+len(b.Alerts)+len(b.Norms)+len(b.Rejects)+len(b.Offsets) == 0:
		return ingest.CommitResult{}, nil
	case b.Topic == "" && (len(b.Offsets) > 0 || len(b.Shifts) > 0):
		return ingest.CommitResult{}, errors.New("analytics: commit: batch without a topic")
	}
	if err := s.writable(); err != nil {
		return ingest.CommitResult{}, fmt.Errorf("analytics: commit: %w", err)
	}
	if s.invalid != nil {
		if err := s.reopen(ctx); err != nil {
			return ingest.CommitResult{}, sinkFailed(err)
		}
	}
	res, err := s.commit(ctx, b, false)
	var de *duckdb.Error
	if errors.As(err, &de) && de.Type == duckdb.ErrorTypeConstraint {
		// an id stored before: again, skipping what is there
		res, err = s.commit(ctx, b, true)
	}
	if err != nil {
		err = s.check(err)
		if isFatal(err) {
			s.invalid = err
		}
		return ingest.CommitResult{}, sinkFailed(fmt.Errorf("analytics: commit: %w", err))
	}
	s.commits.Add(1)
	return res, nil
}

// writable refuses to write into a file the Store found damaged: a
// commit would append rows and offsets beside the damage, and its
// checkpoint rewrite blocks, into a file that has to be rebuilt anyway.
func (s *Store) writable() error {
	if d := s.damage.Load(); d != nil {
		return fmt.Errorf("refused: %w: %w", ingest.ErrSinkFailed, d)
	}
	return nil
}

// sinkFailed marks a damaged file's error as one the sink role must not
// retry.
func sinkFailed(err error) error {
	if errors.Is(err, ErrCorrupt) && !errors.Is(err, ingest.ErrSinkFailed) {
		return fmt.Errorf("%w: %w", ingest.ErrSinkFailed, err)
	}
	return err
}

// Commits is how many commits this Store has made: a reader that saw the
// same count before has seen everything the Store wrote since.
func (s *Store) Commits() uint64 { return s.commits.Load() }

// commitStage names the steps of a commit, for tests that fail one.
type commitStage string

const (
	stageShifts  commitStage = "shifts"
	stageAlerts  commitStage = "alerts"
	stageNorms   commitStage = "norms"
	stageRejects commitStage = "rejects"
	stageOffsets commitStage = "offsets"
)

func (s *Store) commit(ctx context.Context, b *ingest.Batch, onConflict bool) (res ingest.CommitResult, err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return res, err
	}
	tx := &commitTx{conn: conn, onConflict: onConflict}
	defer func() {
		_ = conn.Close() // returns it to the pool; the error is only ErrConnDone
		// Only now that the transaction has ended can no scan reach the
		// views' streams.
		for _, release := range tx.releases {
			release()
		}
	}()
	err = inTx(ctx, conn, func() error {
		var err error
		res, err = s.stages(ctx, tx, b)
		return err
	})
	if err != nil {
		return ingest.CommitResult{}, err
	}
	return res, nil
}

// stages writes the batch's parts and offsets inside the commit's
// transaction.
func (s *Store) stages(ctx context.Context, tx *commitTx, b *ingest.Batch) (res ingest.CommitResult, err error) {
	L := s.loaders
	// done ends a stage: it names a failed one, and lets a test fail one.
	done := func(stage commitStage, err error) error {
		if err == nil && L.hook != nil {
			err = L.hook(stage)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", stage, err)
		}
		return nil
	}
	step := func(stage commitStage, fill func(), l *loader) (int64, error) {
		fill()
		n, err := l.load(ctx, tx)
		return n, done(stage, err)
	}
	var next map[int32]int64
	if len(b.Shifts) > 0 {
		var keep []bool
		if keep, next, err = screen(ctx, tx, b); err != nil {
			return res, done(stageShifts, err)
		}
		var n int64
		prep, _ := b.Prepared.(*preparedShifts)
		if rec := prep.take(b, keep); rec != nil {
			n, err = L.shifts.loadRecord(ctx, tx, rec)
			err = done(stageShifts, err)
		} else {
			n, err = step(stageShifts, func() { L.shifts.fill(cmp.Or(b.SourceTopic, b.Topic), b.Shifts, keep, L.seen) }, L.shifts.loader)
		}
		if err != nil {
			return res, err
		}
		res.ShiftsInserted = int(n)
	}
	if len(b.Alerts) > 0 {
		n, err := step(stageAlerts, func() { L.alerts.fill(b.Alerts, L.seen) }, L.alerts.loader)
		if err != nil {
			return res, err
		}
		res.AlertsInserted = int(n)
	}
	if len(b.Norms) > 0 {
		if err := done(stageNorms, appendNorms(ctx, tx, b.Norms, L.normAt)); err != nil {
			return res, err
		}
	}
	if len(b.Rejects) > 0 {
		if err := done(stageRejects, appendRejects(ctx, tx, b.Rejects)); err != nil {
			return res, err
		}
	}
	if len(b.Offsets) > 0 {
		if err := done(stageOffsets, upsertOffsets(ctx, tx, b.Topic, b.Offsets)); err != nil {
			return res, err
		}
	}
	if len(next) > 0 {
		// with the rows, so that a rolled-back batch leaves them unseen
		if err := done(stageOffsets, upsertOffsets(ctx, tx, b.Stream, next)); err != nil {
			return res, err
		}
	}
	return res, nil
}

func upsertOffsets(ctx context.Context, tx *commitTx, topic string, offsets map[int32]int64) error {
	parts := make([]int32, 0, len(offsets))
	for p := range offsets {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	args := make([]any, 0, 3*len(parts))
	for _, p := range parts {
		args = append(args, topic, p, offsets[p])
	}
	q := "INSERT OR REPLACE INTO ingest_offsets VALUES " +
		strings.Repeat("(?, ?, ?), ", len(parts)-1) + "(?, ?, ?)"
	_, err := tx.conn.ExecContext(ctx, q, args...)
	return err
}

// loaders are a Store's Arrow builders, for the two tables loaded through
// a view, and the scratch space of the in-batch deduplication.
type loaders struct {
	shifts *shiftLoader
	alerts *alertLoader

	seen   map[string]struct{}
	normAt map[normKey]int

	// hook, when set by a test, runs after each stage; an error from it
	// fails the commit there.
	hook func(commitStage) error
}

// loaderConfig holds the encoding choices, kept switchable so the
// benchmarks can compare them.
type loaderConfig struct {
	// dict sends the low-cardinality string columns dictionary-encoded.
	dict bool
}

// defaultLoaderConfig is plain strings: in BenchmarkCommit dictionary
// encoding was never faster (from even to ~25 % slower per 50k-shift
// commit), the Go-side hashing eating what DuckDB saves.
var defaultLoaderConfig = loaderConfig{dict: false}

func newLoaders(cfg loaderConfig) *loaders {
	return &loaders{
		shifts: newShiftLoader(cfg),
		alerts: newAlertLoader(cfg),
		seen:   make(map[string]struct{}),
		normAt: make(map[normKey]int),
	}
}

func (l *loaders) release() {
	l.shifts.b.Release()
	l.alerts.b.Release()
}

// lowCard is the type of a string column with few distinct values.
func lowCard(cfg loaderConfig) arrow.DataType {
	if cfg.dict {
		return tDict
	}
	return tString
}

// builders looks a loader's column builders up by name, so that the
// column lists below are the only place that fixes their order.
type builders struct{ b *array.RecordBuilder }

func (bs builders) get(name string) array.Builder {
	idx := bs.b.Schema().FieldIndices(name)
	if len(idx) != 1 {
		panic("analytics: no column " + name)
	}
	return bs.b.Field(idx[0])
}
func (bs builders) str(name string) strCol { return newStrCol(bs.get(name)) }
func (bs builders) f64(name string) *array.Float64Builder {
	return bs.get(name).(*array.Float64Builder)
}
func (bs builders) i32(name string) *array.Int32Builder { return bs.get(name).(*array.Int32Builder) }
func (bs builders) i64(name string) *array.Int64Builder { return bs.get(name).(*array.Int64Builder) }
func (bs builders) date(name string) *array.Date32Builder {
	return bs.get(name).(*array.Date32Builder)
}
func (bs builders) ts(name string) *array.TimestampBuilder {
	return bs.get(name).(*array.TimestampBuilder)
}

type shiftLoader struct {
	*loader
	eventID, plantID, industry, section, role, workerID, unit, topic strCol

	crewSize, partition, normCount *array.Int32Builder
	offset                         *array.Int64Builder
	shiftStart                     *array.TimestampBuilder
	day                            *array.Date32Builder
	late                           *array.BooleanBuilder

	shiftHours, output, scrap, rate, normRate, ratio, scrapShare,
	normMean, normP90, normMAD, normBulk, crewRate, crewNormRate, crewRatio *array.Float64Builder
}

func newShiftLoader(cfg loaderConfig) *shiftLoader {
	lc := lowCard(cfg)
	// no key on shifts: screen has dropped what is stored
	l := newLoader("shifts", "INSERT", []column{
		{"event_id", tString},
		{"plant_id", lc},
		{"industry", lc},
		{"section", lc},
		{"role", lc},
		{"worker_id", tString},
		{"crew_size", tInt32},
		{"shift_start", tTimestamp},
		{"shift_hours", tFloat64},
		{"output", tFloat64},
		{"unit", lc},
		{"scrap", tFloat64},
		{"rate", tFloat64},
		{"norm_rate", tFloat64},
		{"ratio", tFloat64},
		{"late", tBool},
		{"kafka_partition", tInt32},
		{"kafka_offset", tInt64},
		{"kafka_topic", lc},
		{"day", tDate},
		{"scrap_share", tFloat64},
		{"norm_count", tInt32},
		{"norm_mean", tFloat64},
		{"norm_p90", tFloat64},
		{"norm_mad", tFloat64},
		{"norm_bulk", tFloat64},
		{"crew_rate", tFloat64},
		{"crew_norm_rate", tFloat64},
		{"crew_ratio", tFloat64},
	})
	bs := builders{l.b}
	return &shiftLoader{
		loader:       l,
		eventID:      bs.str("event_id"),
		plantID:      bs.str("plant_id"),
		industry:     bs.str("industry"),
		section:      bs.str("section"),
		role:         bs.str("role"),
		workerID:     bs.str("worker_id"),
		unit:         bs.str("unit"),
		topic:        bs.str("kafka_topic"),
		crewSize:     bs.i32("crew_size"),
		partition:    bs.i32("kafka_partition"),
		normCount:    bs.i32("norm_count"),
		offset:       bs.i64("kafka_offset"),
		shiftStart:   bs.ts("shift_start"),
		day:          bs.date("day"),
		late:         bs.get("late").(*array.BooleanBuilder),
		shiftHours:   bs.f64("shift_hours"),
		output:       bs.f64("output"),
		scrap:        bs.f64("scrap"),
		rate:         bs.f64("rate"),
		normRate:     bs.f64("norm_rate"),
		ratio:        bs.f64("ratio"),
		scrapShare:   bs.f64("scrap_share"),
		normMean:     bs.f64("norm_mean"),
		normP90:      bs.f64("norm_p90"),
		normMAD:      bs.f64("norm_mad"),
		normBulk:     bs.f64("norm_bulk"),
		crewRate:     bs.f64("crew_rate"),
		crewNormRate: bs.f64("crew_norm_rate"),
		crewRatio:    bs.f64("crew_ratio"),
	}
}

// fill appends the shifts screen kept (all when keep is nil), skipping any
// whose event id came earlier in the batch: the processors keep the first
// of a repeat.
func (l *shiftLoader) fill(topic string, shifts []processors.Shift, keep []bool, seen map[string]struct{}) {
	defer clear(seen)
	l.b.Reserve(len(shifts))
	for i := range shifts {
		sh := &shifts[i]
		if keep != nil && !keep[i] {
			continue
		}
		if _, dup := seen[sh.EventID]; dup {
			continue
		}
		seen[sh.EventID] = struct{}{}
		l.eventID.append(sh.EventID)
		l.plantID.append(sh.PlantID)
		l.industry.append(sh.Industry)
		l.section.appendNullable(sh.Section)
		l.role.append(sh.Role)
		l.workerID.append(sh.WorkerID)
		l.crewSize.Append(int32(sh.CrewSize))
		l.shiftStart.Append(arrow.Timestamp(sh.ShiftStart.UnixMicro()))
		appendFloat(l.shiftHours, sh.ShiftHours)
		appendFloat(l.output, sh.Output)
		l.unit.append(sh.Unit)
		appendFloat(l.scrap, sh.Scrap)
		appendFloat(l.rate, sh.Rate)
		appendFloat(l.ratio, sh.Ratio)
		l.late.Append(sh.Late)
		l.partition.Append(sh.Partition)
		l.offset.Append(sh.Offset)
		l.topic.append(topic)
		l.day.Append(arrow.Date32(shift.DayOf(sh.ShiftStart)))
		appendFloat(l.scrapShare, sh.ScrapShare)
		if n := &sh.Norm; n.Count > 0 {
			appendFloat(l.normRate, n.Median)
			l.normCount.Append(int32(n.Count))
			appendFloat(l.normMean, n.Mean)
			appendFloat(l.normP90, n.P90)
			appendFloat(l.normMAD, n.MAD)
			appendFloat(l.normBulk, n.Bulk)
		} else {
			// No history: the zero Norm is no norm, not a norm of 0.
			l.normRate.AppendNull()
			l.normCount.AppendNull()
			l.normMean.AppendNull()
			l.normP90.AppendNull()
			l.normMAD.AppendNull()
			l.normBulk.AppendNull()
		}
		appendFloat(l.crewRate, sh.CrewRate)
		appendFloat(l.crewNormRate, sh.CrewNorm)
		appendFloat(l.crewRatio, sh.CrewRatio)
	}
}

type alertLoader struct {
	*loader
	id, typ, plantID, industry, role, unit, workerID, eventID strCol

	day                                          *array.Date32Builder
	rate, normRate, ratio, scrapShare, bulkShare *array.Float64Builder
	groupSize                                    *array.Int32Builder
	detectedAt                                   *array.TimestampBuilder
	late                                         *array.BooleanBuilder
}

func newAlertLoader(cfg loaderConfig) *alertLoader {
	lc := lowCard(cfg)
	l := newLoader("alerts", "INSERT OR IGNORE", []column{
		{"alert_id", tString},
		{"type", lc},
		{"plant_id", lc},
		{"industry", lc},
		{"role", lc},
		{"unit", lc},
		{"worker_id", tString},
		{"event_id", tString},
		{"day", tDate},
		{"rate", tFloat64},
		{"norm_rate", tFloat64},
		{"ratio", tFloat64},
		{"scrap_share", tFloat64},
		{"group_size", tInt32},
		{"bulk_share", tFloat64},
		{"detected_at", tTimestamp},
		{"late", tBool},
	})
	bs := builders{l.b}
	return &alertLoader{
		loader:     l,
		id:         bs.str("alert_id"),
		typ:        bs.str("type"),
		plantID:    bs.str("plant_id"),
		industry:   bs.str("industry"),
		role:       bs.str("role"),
		unit:       bs.str("unit"),
		workerID:   bs.str("worker_id"),
		eventID:    bs.str("event_id"),
		day:        bs.date("day"),
		rate:       bs.f64("rate"),
		normRate:   bs.f64("norm_rate"),
		ratio:      bs.f64("ratio"),
		scrapShare: bs.f64("scrap_share"),
		bulkShare:  bs.f64("bulk_share"),
		groupSize:  bs.i32("group_size"),
		detectedAt: bs.ts("detected_at"),
		late:       bs.get("late").(*array.BooleanBuilder),
	}
}

func (l *alertLoader) fill(alerts []processors.Alert, seen map[string]struct{}) {
	defer clear(seen)
	l.b.Reserve(len(alerts))
	for i := range alerts {
		a := &alerts[i]
		if _, dup := seen[a.ID]; dup {
			continue
		}
		seen[a.ID] = struct{}{}
		l.id.append(a.ID)
		l.typ.append(string(a.Type))
		l.plantID.append(a.PlantID)
		l.industry.append(a.Industry)
		l.role.append(a.Role)
		l.unit.append(a.Unit)
		l.workerID.appendNullable(a.WorkerID)
		l.eventID.appendNullable(a.EventID)
		l.day.Append(arrow.Date32(a.Day))
		appendFloat(l.rate, a.Rate)
		appendFloat(l.normRate, a.NormRate)
		appendFloat(l.ratio, a.Ratio)
		appendFloat(l.scrapShare, a.ScrapShare)
		l.groupSize.Append(int32(a.GroupSize))
		appendFloat(l.bulkShare, a.BulkShare)
		l.detectedAt.Append(arrow.Timestamp(a.DetectedAt.UnixMicro()))
		l.late.Append(a.Late)
	}
}
