package ingest

import (
	"sync/atomic"

	"github.com/stakhanov/stakhanov/processors"
)

// Stats are running totals since the pipeline started. Counts are of what
// the sink has committed, so they survive as they are stored.
type Stats struct {
	Messages   int64 // input messages consumed and committed
	Shifts     int64 // shift rows stored
	Duplicates int64 // dropped as repeats (processor or sink)
	Late       int64
	Rejects    int64
	Alerts     map[processors.AlertType]int64
	Batches    int64
}

type counters struct {
	messages, shifts, duplicates, late, rejects, batches atomic.Int64
	alerts                                               [4]atomic.Int64
}

func alertIndex(t processors.AlertType) int {
	for i, x := range processors.AlertTypes {
		if x == t {
			return i
		}
	}
	return -1
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Messages: c.messages.Load(), Shifts: c.shifts.Load(), Duplicates: c.duplicates.Load(),
		Late: c.late.Load(), Rejects: c.rejects.Load(), Batches: c.batches.Load(),
		Alerts: make(map[processors.AlertType]int64, len(processors.AlertTypes)),
	}
	for i, t := range processors.AlertTypes {
		s.Alerts[t] = c.alerts[i].Load()
	}
	return s
}
