package ingest

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/stakhanov/stakhanov/processors"
)

// Stats are running totals of this process since it started. The first
// five are the processing role's, counted as results are published (a
// partition that replays after a move counts its replay again); the last
// three the sink role's.
type Stats struct {
	Messages   int64 // input messages processed
	Duplicates int64 // dropped as repeats of an event_id
	Late       int64
	// TooLate are the late shifts whose plant no longer held their whole
	// trailing window: stored without a norm, judged for nothing.
	TooLate int64
	Rejects int64
	// RejectsByReason splits Rejects by their reason (shift.Reason…).
	RejectsByReason map[string]int64
	Alerts          map[processors.AlertType]int64

	Shifts  int64 // shift rows newly stored
	Stored  int64 // shifts and rejects received by the sink, repeats included
	Batches int64 // sink commits
}

type counters struct {
	messages, shifts, stored, duplicates, late, tooLate, rejects, batches atomic.Int64
	alerts                                                                [4]atomic.Int64

	mu      sync.Mutex
	reasons map[string]int64
}

func (c *counters) reject(reason string) {
	c.mu.Lock()
	if c.reasons == nil {
		c.reasons = map[string]int64{}
	}
	c.reasons[reason]++
	c.mu.Unlock()
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
		Messages: c.messages.Load(), Shifts: c.shifts.Load(), Stored: c.stored.Load(), Duplicates: c.duplicates.Load(),
		Late: c.late.Load(), TooLate: c.tooLate.Load(), Rejects: c.rejects.Load(), Batches: c.batches.Load(),
		Alerts: make(map[processors.AlertType]int64, len(processors.AlertTypes)),
	}
	for i, t := range processors.AlertTypes {
		s.Alerts[t] = c.alerts[i].Load()
	}
	c.mu.Lock()
	s.RejectsByReason = maps.Clone(c.reasons)
	c.mu.Unlock()
	if s.RejectsByReason == nil {
		s.RejectsByReason = map[string]int64{}
	}
	return s
}
