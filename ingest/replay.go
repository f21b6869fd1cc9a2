package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Replaying the results topic. The sink stores what the processors
// published to <group>-results; that topic is therefore a log of
// everything the DuckDB file holds, and a file can be made again from it —
// when the old one is damaged, say — by reading it from the start into a
// new one through the same batches and commits the sink role uses. Rows
// and offsets land together as ever, so a sink started on the new file
// resumes where the replay ended. That needs the topic to still hold each
// partition's start: the results topic is created with the delete policy,
// and once retention has deleted the start of a partition, a replay from
// it would miss rows.

// ErrResultsTruncated: retention has deleted the start of some partitions
// of the results topic, so that a replay would miss the rows they carried.
var ErrResultsTruncated = errors.New("the results topic no longer holds the start of every partition")

// PartitionSpan is what one partition of the results topic holds.
type PartitionSpan struct {
	Partition int32 `json:"partition"`
	// Start is the first offset the partition still holds: 0 unless
	// retention (or a deletion of records) removed the ones before it.
	Start int64 `json:"start"`
	// End is the high watermark: the offset the next result will take.
	End int64 `json:"end"`
}

// TruncatedError names the partitions whose start a replay needs and the
// topic no longer holds. It wraps ErrResultsTruncated.
type TruncatedError struct {
	Topic string
	// Partitions are those that lack results: each holds from Start on,
	// and the replay needed them from Needed.
	Partitions []TruncatedPartition
}

// TruncatedPartition is a partition whose results Needed…Start-1 are gone.
type TruncatedPartition struct {
	PartitionSpan
	Needed int64 `json:"needed"` // where the replay had to start
}

// Missing is how many results are gone.
func (p TruncatedPartition) Missing() int64 { return p.Start - p.Needed }

func (e *TruncatedError) Error() string {
	var parts []string
	for _, p := range e.Partitions {
		parts = append(parts, fmt.Sprintf("partition %d holds offsets %d to %d, offsets %d to %d (%d results) are deleted",
			p.Partition, p.Start, p.End-1, p.Needed, p.Start-1, p.Missing()))
	}
	return fmt.Sprintf("%v: %s: %s", ErrResultsTruncated, e.Topic, strings.Join(parts, "; "))
}

func (e *TruncatedError) Unwrap() error { return ErrResultsTruncated }

// ReplayOptions configure ReplayResults. Start from DefaultReplayOptions.
type ReplayOptions struct {
	// AllowPartial replays what the topic still holds when retention has
	// deleted the start of some partitions: the rows of the deleted results
	// are missing from the sink, and the result's Truncated says which.
	// Default false: ReplayResults refuses with a *TruncatedError before
	// it stores anything.
	AllowPartial bool
	// ProgressEvery is how often Progress is called. Default 5 s.
	ProgressEvery time.Duration
	// Progress, when set, is called every ProgressEvery and once at the
	// end, from the goroutine that called ReplayResults.
	Progress func(ReplayProgress)
}

// DefaultReplayOptions returns the defaults.
func DefaultReplayOptions() ReplayOptions {
	return ReplayOptions{ProgressEvery: 5 * time.Second}
}

// Validate reports the first option outside its domain.
func (o ReplayOptions) Validate() error {
	if o.ProgressEvery <= 0 {
		return fmt.Errorf("%w: replay progress interval %v not positive", ErrInvalidOptions, o.ProgressEvery)
	}
	return nil
}

// ReplayProgress says how far a replay has got.
type ReplayProgress struct {
	Topic string `json:"topic"`
	// Partitions: where each partition's replay started (From), the next
	// offset to read (Next) and where it stops (End, the high watermark
	// when the replay began).
	Partitions []PartitionProgress `json:"partitions"`
	// Truncated are the partitions whose start was deleted (with
	// AllowPartial; without it the replay refuses them).
	Truncated []TruncatedPartition `json:"truncated,omitempty"`
	// Messages is the results messages stored; Shifts, Alerts, Norms and
	// Rejects the items they carried; ShiftsStored and AlertsStored those
	// the sink stored as new.
	Messages     int64 `json:"messages"`
	Shifts       int64 `json:"shifts"`
	Alerts       int64 `json:"alerts"`
	Norms        int64 `json:"norms"`
	Rejects      int64 `json:"rejects"`
	ShiftsStored int64 `json:"shifts_stored"`
	AlertsStored int64 `json:"alerts_stored"`
	Commits      int64 `json:"commits"`
	// Elapsed is the time since the replay began.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Done: every partition has reached its End.
	Done bool `json:"done"`
}

// PartitionProgress is one partition's part of a ReplayProgress.
type PartitionProgress struct {
	Partition int32 `json:"partition"`
	From      int64 `json:"from"`
	Next      int64 `json:"next"` // the next offset to store: the sink holds From…Next-1
	End       int64 `json:"end"`
}

// Fraction is the share of the results to replay that are stored.
func (p ReplayProgress) Fraction() float64 {
	var total, done int64
	for _, pp := range p.Partitions {
		total += pp.End - pp.From
		done += pp.Next - pp.From
	}
	if total == 0 {
		return 1
	}
	return float64(done) / float64(total)
}

// ResultsSpan reads what each partition of opts' results topic holds.
func ResultsSpan(ctx context.Context, opts Options) ([]PartitionSpan, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b, err := newBase(opts)
	if err != nil {
		return nil, err
	}
	defer b.conn.Transport.CloseIdleConnections()
	return b.resultsSpan(ctx)
}

func (b *base) resultsSpan(ctx context.Context) ([]PartitionSpan, error) {
	topic := b.opts.ResultsTopic()
	start, end, err := EndOffsets(ctx, b.client, topic)
	if err != nil {
		if auth := b.authFailure("reading "+topic, err); auth != nil {
			return nil, auth
		}
		return nil, err
	}
	out := make([]PartitionSpan, 0, len(end))
	for p, e := range end {
		out = append(out, PartitionSpan{Partition: p, Start: start[p], End: e})
	}
	slices.SortFunc(out, func(a, b PartitionSpan) int { return int(a.Partition - b.Partition) })
	return out, nil
}

// ReplayResults stores opts' results topic in sink, through the batches
// and commits the sink role makes: each partition from the offset the sink
// has stored for it (the start of the partition for a sink that has none)
// to the end the partition had when the replay began. The rule options of
// opts are recorded first (RulesRecorder). Rows and the results offsets
// they reach commit together, so a replay stopped half-way — or a sink role
// started after it — goes on from where it ended, each result stored once.
//
// When the topic no longer holds where a partition has to start, it
// refuses with a *TruncatedError (ErrResultsTruncated) before it stores
// anything, unless ro.AllowPartial. A commit that fails is retried with
// backoff as the sink role does; one wrapping ErrSinkFailed ends the
// replay. The progress returned says how far it got, also on error.
func ReplayResults(ctx context.Context, opts Options, sink Sink, ro ReplayOptions) (ReplayProgress, error) {
	if err := errors.Join(opts.Validate(), ro.Validate()); err != nil {
		return ReplayProgress{}, err
	}
	if sink == nil {
		return ReplayProgress{}, fmt.Errorf("%w: no sink to replay into", ErrInvalidOptions)
	}
	b, err := newBase(opts)
	if err != nil {
		return ReplayProgress{}, err
	}
	defer b.conn.Transport.CloseIdleConnections()
	rp := &replay{base: &b, sink: sink, ro: ro, started: time.Now()}
	return rp.run(ctx)
}

type replay struct {
	*base
	sink    Sink
	ro      ReplayOptions
	started time.Time
	prog    ReplayProgress
	at      map[int32]*PartitionProgress

	mu        sync.Mutex           // guards truncated, which fetchAll adds to
	truncated []TruncatedPartition // found while replaying
}

func (r *replay) run(ctx context.Context) (ReplayProgress, error) {
	topic := r.opts.ResultsTopic()
	r.prog.Topic = topic
	span, err := r.resultsSpan(ctx)
	if err != nil {
		return r.progress(), err
	}
	stored, err := r.sink.Offsets(ctx, topic)
	if err != nil {
		return r.progress(), fmt.Errorf("reading the sink's offsets: %w", err)
	}
	r.at = map[int32]*PartitionProgress{}
	for _, s := range span {
		need := stored[s.Partition] // 0 when the sink has nothing
		pp := &PartitionProgress{Partition: s.Partition, From: max(need, s.Start), End: s.End}
		pp.Next = pp.From
		if need < s.Start {
			r.prog.Truncated = append(r.prog.Truncated, TruncatedPartition{PartitionSpan: s, Needed: need})
		}
		r.at[s.Partition] = pp
	}
	if len(r.prog.Truncated) > 0 && !r.ro.AllowPartial {
		return r.progress(), &TruncatedError{Topic: topic, Partitions: r.prog.Truncated}
	}
	if len(r.prog.Truncated) > 0 {
		r.log.Warn("replaying what the results topic still holds: the rows of deleted results will be missing",
			"err", (&TruncatedError{Topic: topic, Partitions: r.prog.Truncated}).Error())
	}
	if rr, ok := r.sink.(RulesRecorder); ok {
		if err := r.retry(ctx, "recording the rule options", func(ctx context.Context) error {
			return rr.RecordRules(ctx, r.opts.Processor)
		}); err != nil {
			return r.progress(), err
		}
	}

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	in := make(chan *loaded, 2*len(span)+2)
	fetchErr := make(chan error, 1)
	go func() { fetchErr <- r.fetchAll(fctx, in) }()

	tick := time.NewTicker(r.ro.ProgressEvery)
	defer tick.Stop()
	fill := newPending(r.opts)
	flush := func() error {
		if fill.messages == 0 {
			return nil
		}
		if err := r.commit(ctx, fill); err != nil {
			return err
		}
		fill.reset()
		return nil
	}
	for {
		select {
		case l, ok := <-in:
			if !ok {
				if err := <-fetchErr; err != nil {
					return r.progress(), err
				}
				if err := flush(); err != nil {
					return r.progress(), err
				}
				r.prog.Done = true
				p := r.progress()
				if r.ro.Progress != nil {
					r.ro.Progress(p)
				}
				return p, nil
			}
			fill.add(l)
			if fill.rows >= r.opts.SinkBatchMaxRows {
				if err := flush(); err != nil {
					return r.progress(), err
				}
			}
		case <-tick.C:
			if r.ro.Progress != nil {
				r.ro.Progress(r.progress())
			}
		case <-ctx.Done():
			return r.progress(), fmt.Errorf("replay stopped: %w", context.Cause(ctx))
		}
	}
}

// commit stores a batch as the sink role's flush does, and counts it.
func (r *replay) commit(ctx context.Context, p *pending) error {
	var res CommitResult
	if err := r.retry(ctx, "storing a batch", func(ctx context.Context) (err error) {
		res, err = r.sink.Commit(ctx, &p.batch)
		return err
	}); err != nil {
		return err
	}
	b := &p.batch
	r.prog.Messages += int64(p.messages)
	r.prog.Shifts += int64(len(b.Shifts))
	r.prog.Alerts += int64(len(b.Alerts))
	r.prog.Norms += int64(len(b.Norms))
	r.prog.Rejects += int64(len(b.Rejects))
	r.prog.ShiftsStored += int64(res.ShiftsInserted)
	r.prog.AlertsStored += int64(res.AlertsInserted)
	r.prog.Commits++
	for part, next := range b.Offsets {
		r.at[part].Next = next
	}
	return nil
}

func (r *replay) progress() ReplayProgress {
	p := r.prog
	p.Partitions = make([]PartitionProgress, 0, len(r.at))
	for _, pp := range r.at {
		p.Partitions = append(p.Partitions, *pp)
	}
	slices.SortFunc(p.Partitions, func(a, b PartitionProgress) int { return int(a.Partition - b.Partition) })
	r.mu.Lock()
	p.Truncated = append(slices.Clone(r.prog.Truncated), r.truncated...)
	r.mu.Unlock()
	p.Elapsed = time.Since(r.started)
	return p
}

// emptyFetchLimit is how many fetches in a row may bring nothing from below
// a partition's end before the replay gives up on it: a topic of this
// pipeline has no gaps in its offsets.
const emptyFetchLimit = 20

// fetchAll reads every partition from its From to its End, a fetch of each
// in turn so that partitions advance together as they do in the sink role,
// and sends what it decodes to out, which it closes.
func (r *replay) fetchAll(ctx context.Context, out chan<- *loaded) error {
	defer close(out)
	topic := r.opts.ResultsTopic()
	next, end, empty := map[int32]int64{}, map[int32]int64{}, map[int32]int{}
	var parts []int32
	for part, pp := range r.at {
		if pp.From < pp.End {
			next[part], end[part] = pp.From, pp.End
			parts = append(parts, part)
		}
	}
	slices.Sort(parts)
	var buf []byte
	for len(parts) > 0 {
		for i := 0; i < len(parts); i++ {
			part := parts[i]
			resp, err := r.fetchAt(ctx, topic, part, next[part])
			if err != nil {
				return err
			}
			l := &loaded{partition: part}
			for rec := range r.records(resp, next[part], topic, part) {
				if rec.Offset >= end[part] {
					break
				}
				buf = readBytes(buf[:0], rec.Value)
				if err := DecodeResults(buf, &l.res); err != nil {
					return fmt.Errorf("%s/%d offset %d: %w", topic, part, rec.Offset, err)
				}
				l.messages++
				next[part] = rec.Offset + 1
			}
			if l.messages == 0 {
				if empty[part]++; empty[part] >= emptyFetchLimit {
					return fmt.Errorf("%s/%d: no result at offset %d, below the partition's end %d", topic, part, next[part], end[part])
				}
			} else {
				empty[part] = 0
				l.next = next[part]
				select {
				case out <- l:
				case <-ctx.Done():
					return nil
				}
			}
			if next[part] >= end[part] {
				parts = slices.Delete(parts, i, i+1)
				i--
			}
		}
	}
	return nil
}

// fetchAt fetches a partition at offset, retrying what may pass. Unlike
// the sink role's fetch it does not skip to the log's start when offset
// was deleted under it: that loses results, which only AllowPartial
// accepts.
func (r *replay) fetchAt(ctx context.Context, topic string, part int32, offset int64) (*kafka.FetchResponse, error) {
	backoff := r.opts.RetryBackoff
	for {
		resp, err := r.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: int(part), Offset: offset,
			MinBytes: 1, MaxBytes: int64(r.opts.FetchMaxBytes), MaxWait: r.opts.FetchMaxWait,
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if auth := r.authFailure("fetching "+topic, err); auth != nil {
			return nil, auth
		}
		if errors.Is(err, kafka.OffsetOutOfRange) {
			span, serr := r.resultsSpan(ctx)
			if serr != nil {
				return nil, serr
			}
			for _, s := range span {
				if s.Partition != part || s.Start <= offset {
					continue
				}
				tp := TruncatedPartition{PartitionSpan: s, Needed: offset}
				if !r.ro.AllowPartial {
					return nil, fmt.Errorf("while replaying: %w", &TruncatedError{Topic: topic, Partitions: []TruncatedPartition{tp}})
				}
				r.log.Warn("retention deleted results while they were replayed: their rows will be missing",
					"topic", topic, "partition", part, "from", offset, "to", s.Start-1)
				r.mu.Lock()
				r.truncated = append(r.truncated, tp)
				r.mu.Unlock()
				offset = s.Start
			}
			continue
		}
		r.log.Warn(fmt.Sprintf("waiting: fetching %s/%d failed", topic, part), "offset", offset, "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, r.opts.RetryBackoffMax)
	}
}
