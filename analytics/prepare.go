package analytics

import (
	"cmp"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/stakhanov/stakhanov/ingest"
)

// Prepare builds the batch's shifts into the Arrow record Commit inserts,
// outside the commit's lock, so that the sink builds one batch while the
// previous one commits (ingest.Preparer). Building is a fifth of a
// commit's time when done inside it (BENCHMARKS.md). Commit uses the record
// when screen keeps every shift, as it nearly always does; otherwise, or
// when the batch changed since, it builds again from the shifts it keeps.
func (s *Store) Prepare(b *ingest.Batch) {
	if s.opts.ReadOnly || len(b.Shifts) == 0 {
		return
	}
	if b.Prepared != nil {
		b.Prepared.Release()
	}
	l := newShiftLoader(defaultLoaderConfig)
	topic := cmp.Or(b.SourceTopic, b.Topic)
	l.fill(topic, b.Shifts, nil, make(map[string]struct{}, len(b.Shifts)))
	rec := l.b.NewRecordBatch()
	l.b.Release()
	b.Prepared = &preparedShifts{rec: rec, n: len(b.Shifts), topic: topic}
}

// preparedShifts is what Prepare built from a batch of n shifts.
type preparedShifts struct {
	rec   arrow.RecordBatch // nil once taken
	n     int
	topic string
}

func (p *preparedShifts) Release() {
	if p.rec != nil {
		p.rec.Release()
		p.rec = nil
	}
}

// take hands the record to the caller if it still matches the batch and
// every shift is kept.
func (p *preparedShifts) take(b *ingest.Batch, keep []bool) arrow.RecordBatch {
	if p == nil || p.rec == nil || p.n != len(b.Shifts) || p.topic != cmp.Or(b.SourceTopic, b.Topic) {
		return nil
	}
	for _, k := range keep {
		if !k {
			return nil
		}
	}
	rec := p.rec
	p.rec = nil
	return rec
}
