package analytics

import (
	"context"
	"database/sql/driver"
	"fmt"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

const benchBatch = 50_000

// BenchmarkCommit measures the commit of 50k-shift batches with their
// offsets, each batch of new event ids, into a growing file: the Arrow
// view path as shipped, with dictionary-encoded strings, and the
// Appender (a query appender, since a plain one cannot INSERT OR IGNORE)
// for comparison.
func BenchmarkCommit(b *testing.B) {
	variants := []struct {
		name   string
		commit func(ctx context.Context, s *Store, batch *ingest.Batch) error
		cfg    loaderConfig
	}{
		{"arrow", commitArrow, loaderConfig{dict: false}},
		{"arrow-dict", commitArrow, loaderConfig{dict: true}},
		{"appender", commitAppender, loaderConfig{}},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			s, _ := openTemp(b)
			s.loaders = newLoaders(v.cfg)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				batch := shiftBatch(i*benchBatch, benchBatch, int32(i%4), int64(i/4*benchBatch))
				b.StartTimer()
				if err := v.commit(ctx, s, batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "rows/s")
			b.StopTimer()
			if n := count(b, s, "shifts"); n != b.N*benchBatch {
				b.Fatalf("%d shifts stored, want %d", n, b.N*benchBatch)
			}
		})
	}
}

func commitArrow(ctx context.Context, s *Store, batch *ingest.Batch) error {
	res, err := s.Commit(ctx, batch)
	if err == nil && res.ShiftsInserted != len(batch.Shifts) {
		err = fmt.Errorf("inserted %d of %d", res.ShiftsInserted, len(batch.Shifts))
	}
	return err
}

// commitAppender is the Appender alternative of Commit, for shifts and
// offsets only. It cannot report how many rows were inserted.
func commitAppender(ctx context.Context, s *Store, batch *ingest.Batch) error {
	var cols []string
	for _, f := range s.loaders.shifts.b.Schema().Fields() {
		cols = append(cols, f.Name)
	}
	return benchTx(ctx, s, batch, func(tx *commitTx) error {
		return withAppender(ctx, tx, "INSERT OR IGNORE", "shifts", cols, func(a *duckdb.Appender) error {
			for i := range batch.Shifts {
				sh := &batch.Shifts[i]
				var section driver.Value
				if sh.Section != "" {
					section = sh.Section
				}
				nf := func(f float64) driver.Value { return orNull(f) }
				err := a.AppendRow(sh.EventID, sh.PlantID, sh.Industry, section, sh.Role, sh.WorkerID,
					int32(sh.CrewSize), sh.ShiftStart, sh.ShiftHours, sh.Output, sh.Unit, sh.Scrap,
					nf(sh.Rate), nf(sh.Norm.Median), nf(sh.Ratio), sh.Late, sh.Partition, sh.Offset,
					batch.Topic, shift.DayOf(sh.ShiftStart).Start(), nf(sh.ScrapShare), int32(sh.Norm.Count),
					nf(sh.Norm.Mean), nf(sh.Norm.P90), nf(sh.Norm.MAD), nf(sh.Norm.Bulk),
					nf(sh.CrewRate), nf(sh.CrewNorm), nf(sh.CrewRatio))
				if err != nil {
					return err
				}
			}
			return nil
		})
	})
}

// BenchmarkCommitNorms compares the two ways for the small parts of a
// batch: a day's norms (tens to hundreds of rows) with INSERT OR REPLACE,
// through the shipped Appender or through an Arrow view.
func BenchmarkCommitNorms(b *testing.B) {
	for _, rows := range []int{10, 1000} {
		for _, v := range []string{"arrow", "appender"} {
			b.Run(fmt.Sprintf("%s/%d", v, rows), func(b *testing.B) {
				s, _ := openTemp(b)
				ctx := context.Background()
				norms := make([]processors.NormRow, rows)
				for i := range norms {
					norms[i] = processors.NormRow{Group: shift.GroupKey{PlantID: fmt.Sprint("p", i), Role: "r", Unit: "t"},
						Norm: processors.Norm{Count: 20, Median: 2, Mean: 2, P90: 3, MAD: 0.1, Bulk: 0.5}}
				}
				batch := &ingest.Batch{Topic: testTopic, Norms: norms, Offsets: map[int32]int64{0: 1}}
				arrowNorms := newNormLoader()
				b.ResetTimer()
				for i := range b.N {
					for j := range norms {
						norms[j].Day = shift.Day(i)
					}
					var err error
					if v == "appender" {
						_, err = s.Commit(ctx, batch)
					} else {
						err = benchTx(ctx, s, batch, func(tx *commitTx) error {
							arrowNorms.fill(norms)
							_, err := arrowNorms.load(ctx, tx)
							return err
						})
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "rows/s")
				b.StopTimer()
				if n := count(b, s, "norms"); n != b.N*rows {
					b.Fatalf("%d norms stored, want %d", n, b.N*rows)
				}
			})
		}
	}
}

// benchTx commits what load puts in, with the batch's offsets.
func benchTx(ctx context.Context, s *Store, batch *ingest.Batch, load func(*commitTx) error) (err error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	tx := &commitTx{conn: conn}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
		conn.Close()
		for _, r := range tx.releases {
			r()
		}
	}()
	if _, err := conn.ExecContext(ctx, "BEGIN TRANSACTION"); err != nil {
		return err
	}
	if err := load(tx); err != nil {
		return err
	}
	if err := upsertOffsets(ctx, tx, batch.Topic, batch.Offsets); err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// normLoader is the Arrow alternative to appendNorms, kept for the
// comparison. It does not deduplicate.
type normLoader struct {
	*loader
	plantID, role, unit          strCol
	day                          *array.Date32Builder
	shifts                       *array.Int32Builder
	median, mean, p90, mad, bulk *array.Float64Builder
}

func newNormLoader() *normLoader {
	l := newLoader("norms", "INSERT OR REPLACE", []column{
		{"plant_id", tString},
		{"role", tString},
		{"unit", tString},
		{"day", tDate},
		{"shifts", tInt32},
		{"median_rate", tFloat64},
		{"mean_rate", tFloat64},
		{"p90_rate", tFloat64},
		{"mad_rate", tFloat64},
		{"bulk_share", tFloat64},
	})
	bs := builders{l.b}
	return &normLoader{
		loader:  l,
		plantID: bs.str("plant_id"),
		role:    bs.str("role"),
		unit:    bs.str("unit"),
		day:     bs.date("day"),
		shifts:  bs.i32("shifts"),
		median:  bs.f64("median_rate"),
		mean:    bs.f64("mean_rate"),
		p90:     bs.f64("p90_rate"),
		mad:     bs.f64("mad_rate"),
		bulk:    bs.f64("bulk_share"),
	}
}

// fill appends the last row of each group and day. DuckDB's INSERT OR
// REPLACE keeps the first of two conflicting rows of one statement, but a
// later row of the batch is the later recomputation.
func (l *normLoader) fill(rows []processors.NormRow) {
	for i := range rows {
		r := &rows[i]
		l.plantID.append(r.Group.PlantID)
		l.role.append(r.Group.Role)
		l.unit.append(r.Group.Unit)
		l.day.Append(arrow.Date32(r.Day))
		l.shifts.Append(int32(r.Norm.Count))
		appendFloat(l.median, r.Norm.Median)
		appendFloat(l.mean, r.Norm.Mean)
		appendFloat(l.p90, r.Norm.P90)
		appendFloat(l.mad, r.Norm.MAD)
		appendFloat(l.bulk, r.Norm.Bulk)
	}
}
