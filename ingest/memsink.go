package ingest

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/stakhanov/stakhanov/processors"
)

// MemorySink keeps everything in memory with the same contract as a
// database sink: a batch and its offsets land together, a repeated event_id
// or alert_id, or a reject of the same source offset, is ignored. It serves tests and measurements of the pipeline
// without a database; it is not durable.
type MemorySink struct {
	mu      sync.Mutex
	shifts  map[string]processors.Shift
	alerts  map[string]processors.Alert
	norms   []processors.NormRow
	rejects []Reject
	rejKeys map[rejectKey]bool
	offsets map[string]map[int32]int64
	rules   *processors.Options

	// FailNext makes the next n commits fail, for fault tests.
	FailNext int
}

type rejectKey struct {
	topic     string
	partition int32
	offset    int64
}

// NewMemorySink returns an empty sink.
func NewMemorySink() *MemorySink {
	return &MemorySink{
		shifts:  map[string]processors.Shift{},
		alerts:  map[string]processors.Alert{},
		rejKeys: map[rejectKey]bool{},
		offsets: map[string]map[int32]int64{},
	}
}

var _ RulesRecorder = (*MemorySink)(nil)

// RecordRules implements RulesRecorder: it keeps o, replacing the options
// a previous start recorded.
func (m *MemorySink) RecordRules(ctx context.Context, o processors.Options) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.rules = &o
	return nil
}

// Rules returns the options recorded last; ok is false before any.
func (m *MemorySink) Rules() (o processors.Options, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rules == nil {
		return o, false
	}
	return *m.rules, true
}

// ErrInjected is returned by commits failed through FailNext.
var ErrInjected = errorString("memory sink: injected failure")

type errorString string

func (e errorString) Error() string { return string(e) }

// Commit implements Sink.
func (m *MemorySink) Commit(ctx context.Context, b *Batch) (CommitResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return CommitResult{}, err
	}
	if m.FailNext > 0 {
		m.FailNext--
		return CommitResult{}, ErrInjected
	}
	var res CommitResult
	for _, s := range b.Shifts {
		if _, ok := m.shifts[s.EventID]; ok {
			continue
		}
		m.shifts[s.EventID] = s
		res.ShiftsInserted++
	}
	for _, a := range b.Alerts {
		if _, ok := m.alerts[a.ID]; ok {
			continue
		}
		m.alerts[a.ID] = a
		res.AlertsInserted++
	}
	m.norms = append(m.norms, b.Norms...)
	for _, r := range b.Rejects {
		k := rejectKey{r.Topic, r.Partition, r.Offset}
		if !m.rejKeys[k] {
			m.rejKeys[k] = true
			m.rejects = append(m.rejects, r)
		}
	}
	if m.offsets[b.Topic] == nil {
		m.offsets[b.Topic] = map[int32]int64{}
	}
	for p, o := range b.Offsets {
		m.offsets[b.Topic][p] = o
	}
	return res, nil
}

// Offsets implements Sink.
func (m *MemorySink) Offsets(ctx context.Context, topic string) (map[int32]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := maps.Clone(m.offsets[topic])
	if out == nil {
		out = map[int32]int64{}
	}
	return out, nil
}

// Shifts returns the stored shifts by event id.
func (m *MemorySink) Shifts() map[string]processors.Shift {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.shifts)
}

// Alerts returns the stored alerts by id.
func (m *MemorySink) Alerts() map[string]processors.Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.alerts)
}

// Rejects returns the stored rejects.
func (m *MemorySink) Rejects() []Reject {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.rejects)
}

var _ Sink = (*MemorySink)(nil)
