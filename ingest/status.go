package ingest

import (
	"cmp"
	"slices"
	"time"
)

// PartitionStatus is one partition this process owns, as metrics and
// health checks see it.
type PartitionStatus struct {
	Role      Role // RoleProcess or RoleSink
	Topic     string
	Partition int32
	// Next is the next offset to process (processing role) or to store
	// (sink role); -1 before the first batch.
	Next int64
	// High is the partition's high watermark at the last fetch; -1 before
	// the first.
	High int64
	// The processing role's only:
	StreamTime time.Time // the partition's event-time clock; zero before any event
	StateBytes int64     // the last checkpoint of its state (snapshot bytes)
	Restored   bool      // its state is loaded from the checkpoint topic
	// RestoreProgress is how much of the input between the checkpoint it
	// resumed from and the high watermark it found then has been processed
	// again: 1 once caught up (and for a partition that started fresh).
	RestoreProgress float64
}

// Lag is High − Next, 0 when either is unknown.
func (s PartitionStatus) Lag() int64 {
	if s.High < 0 || s.Next < 0 {
		return 0
	}
	return max(s.High-s.Next, 0)
}

// Partitions lists the partitions this process owns, by role and number.
func (p *Pipeline) Partitions() []PartitionStatus {
	var out []PartitionStatus
	if r := p.proc; r != nil {
		r.mu.Lock()
		for part, ps := range r.parts {
			s := PartitionStatus{Role: RoleProcess, Topic: r.opts.processInput(), Partition: part, Next: -1, High: -1,
				StreamTime: ps.streamTime, StateBytes: ps.stateBytes, Restored: ps.restored}
			if n, ok := r.processed[part]; ok {
				s.Next = n
			}
			if h, ok := r.high[part]; ok {
				s.High = h
			}
			if s.Next < 0 && s.High == 0 {
				s.Next = 0 // an empty partition: nothing to do
			}
			s.RestoreProgress = restoreProgress(ps, s.Next)
			out = append(out, s)
		}
		r.mu.Unlock()
	}
	if r := p.store; r != nil {
		r.mu.Lock()
		for part, h := range r.high {
			s := PartitionStatus{Role: RoleSink, Topic: r.opts.ResultsTopic(), Partition: part, Next: -1, High: h}
			if n, ok := r.stored[part]; ok {
				s.Next = n
			}
			if s.Next < 0 && s.High == 0 {
				s.Next = 0
			}
			out = append(out, s)
		}
		r.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b PartitionStatus) int {
		return cmp.Or(cmp.Compare(a.Role, b.Role), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

func restoreProgress(ps *procStatus, next int64) float64 {
	switch {
	case !ps.restored || ps.target < 0:
		return 0
	case ps.target <= ps.from || next >= ps.target:
		return 1
	case next < ps.from:
		return 0
	}
	return float64(next-ps.from) / float64(ps.target-ps.from)
}

// Ready says whether every role of this process has joined its consumer
// group and every partition it was given has its state restored: from
// then on it is doing its share. A process given no partitions (more
// members than partitions) is ready too.
func (p *Pipeline) Ready() bool {
	if r := p.proc; r != nil {
		r.mu.Lock()
		ok := r.joined
		for _, ps := range r.parts {
			ok = ok && ps.restored
		}
		r.mu.Unlock()
		if !ok {
			return false
		}
	}
	if r := p.repar; r != nil && !r.joined.Load() {
		return false
	}
	if r := p.store; r != nil {
		r.mu.Lock()
		ok := r.joined
		r.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}
