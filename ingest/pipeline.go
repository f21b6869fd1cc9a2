package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// Pipeline consumes the input topic and feeds a Sink. Make one with New and
// call Run once.
type Pipeline struct {
	opts   Options
	sink   Sink
	log    *slog.Logger
	client *kafka.Client
	alerts *kafka.Writer
	dlq    *kafka.Writer

	mu        sync.Mutex
	procs     map[int32]*partitionState
	committed map[int32]int64 // next offset stored, per owned partition
	high      map[int32]int64 // high watermark last seen, per owned partition

	count counters
}

type partitionState struct {
	proc      *processors.Partition
	processed int64 // next offset the processor has consumed up to
	stored    int64 // next offset the sink holds
}

// New checks the options and prepares the Kafka clients; Run connects.
func New(opts Options, sink Sink) (*Pipeline, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	addr := kafka.TCP(opts.Brokers...)
	writer := func(topic string) *kafka.Writer {
		return &kafka.Writer{
			Addr:  addr,
			Topic: topic,
			// Java's default partitioner, so keyed alerts land where a JVM
			// producer would put them.
			Balancer:     &kafka.Murmur2Balancer{},
			RequiredAcks: kafka.RequireAll,
			BatchSize:    10_000,
			// a produce batch over the broker's message.max.bytes (1 MiB by
			// default) is refused whole; stay under it
			BatchBytes:   1 << 20,
			BatchTimeout: time.Millisecond,
			MaxAttempts:  3,
		}
	}
	return &Pipeline{
		opts:      opts,
		sink:      sink,
		log:       opts.logger(),
		client:    &kafka.Client{Addr: addr, Timeout: 30 * time.Second},
		alerts:    writer(opts.AlertsTopic),
		dlq:       writer(opts.DLQTopic),
		procs:     make(map[int32]*partitionState),
		committed: make(map[int32]int64),
		high:      make(map[int32]int64),
	}, nil
}

// Stats returns the running totals.
func (p *Pipeline) Stats() Stats { return p.count.snapshot() }

// Progress returns, for each partition this process owns, the next offset
// stored by the sink (absent until the first commit of a partition nothing
// was stored for) and the high watermark last seen.
func (p *Pipeline) Progress() (stored, high map[int32]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.committed), maps.Clone(p.high)
}

// Run consumes until ctx is cancelled, then finishes the batch in hand,
// commits it and returns nil. It returns an error only when the sink cannot
// store a batch within the shutdown timeout, or on invalid setup.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.alerts.Close()
	defer p.dlq.Close()

	// Flushing must outlive ctx by up to ShutdownTimeout: a signal asks
	// for a clean stop, not for the batch in hand to be dropped.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(p.opts.ShutdownTimeout, cancelFlush) })
	defer stopTimer()

	if err := p.retry(ctx, "preparing topics", p.prepareTopics); err != nil {
		return nilOnCancel(ctx, err)
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                p.opts.Group,
		Brokers:           p.opts.Brokers,
		Topics:            []string{p.opts.InputTopic},
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { p.log.Debug("kafka group: " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return fmt.Errorf("ingest: consumer group: %w", err)
	}
	closeGroup := context.AfterFunc(ctx, func() { group.Close() })
	defer closeGroup()
	defer group.Close()

	backoff := p.opts.RetryBackoff
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
			return nil
		}
		if err != nil {
			p.log.Warn("joining consumer group failed; retrying", "group", p.opts.Group, "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, p.opts.RetryBackoffMax)
			continue
		}
		backoff = p.opts.RetryBackoff
		if err := p.generation(ctx, flushCtx, gen); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func nilOnCancel(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// prepareTopics creates the output topics with the input's partition count.
func (p *Pipeline) prepareTopics(ctx context.Context) error {
	if !p.opts.CreateTopics {
		return nil
	}
	n, err := PartitionCount(ctx, p.client, p.opts.InputTopic)
	if err != nil {
		return err
	}
	return EnsureTopics(ctx, p.client, n, p.opts.AlertsTopic, p.opts.DLQTopic)
}

// partResult is what one fetch of one partition produced.
type partResult struct {
	partition int32
	next      int64
	messages  int
	out       processors.Output
	rejects   []Reject
}

func (p *Pipeline) generation(ctx, flushCtx context.Context, gen *kafka.Generation) error {
	assigned := gen.Assignments[p.opts.InputTopic]
	var stored map[int32]int64
	if err := p.retry(ctx, "reading stored offsets", func(ctx context.Context) (err error) {
		stored, err = p.sink.Offsets(ctx, p.opts.InputTopic)
		return err
	}); err != nil {
		return nilOnCancel(ctx, err)
	}

	owned := make(map[int32]bool, len(assigned))
	results := make(chan *partResult, 2*len(assigned)+1)
	var wg sync.WaitGroup
	for _, a := range assigned {
		part := int32(a.ID)
		owned[part] = true
		next, ok := stored[part]
		if !ok {
			next = kafka.FirstOffset
		}
		ps := p.procs[part]
		if ps == nil || ps.processed != next || ps.stored != next {
			var err error
			ps, err = p.restore(ctx, part, next)
			if err != nil {
				return nilOnCancel(ctx, err)
			}
			p.procs[part] = ps
		}
		if next >= 0 {
			p.mu.Lock()
			p.committed[part] = next
			p.mu.Unlock()
		}
		wg.Add(1)
		gen.Start(func(gctx context.Context) {
			defer wg.Done()
			p.consume(gctx, part, ps, results)
		})
	}
	p.mu.Lock()
	for part := range p.procs {
		if !owned[part] {
			delete(p.procs, part)
			delete(p.committed, part)
			delete(p.high, part)
		}
	}
	p.mu.Unlock()
	p.log.Info("partitions assigned", "group", p.opts.Group, "generation", gen.ID, "topic", p.opts.InputTopic, "partitions", sortedKeys(owned))

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Two batches alternate: one fills while the other commits, so that
	// decoding and the rules run on one core while DuckDB writes on the
	// other. At most one commit is in flight, which keeps commits in order.
	fill := newPending(p.opts.InputTopic)
	spare := newPending(p.opts.InputTopic)
	var (
		inflight  bool
		committed = make(chan error, 1)
		due       bool // the fill batch has waited BatchMaxWait
		timer     = time.NewTimer(time.Hour)
		fail      error
	)
	timer.Stop()
	start := func() {
		timer.Stop()
		due = false
		if fill.messages == 0 {
			return
		}
		cur := fill
		fill, spare = spare, nil
		inflight = true
		go func() {
			err := p.flush(flushCtx, gen, cur)
			spare = cur // read only after committed is received
			committed <- err
		}()
	}
	wait := func() error {
		if !inflight {
			return nil
		}
		err := <-committed
		inflight = false
		return err
	}
	defer func() {
		if fail != nil {
			// state ran ahead of what is stored: rebuild it next time
			p.mu.Lock()
			clear(p.procs)
			p.mu.Unlock()
		}
	}()
	for {
		in := results
		if fill.messages >= p.opts.BatchMaxEvents {
			in = nil // full and waiting for the commit in flight: hold back
		}
		var doneCommit chan error
		if inflight {
			doneCommit = committed
		}
		select {
		case r := <-in:
			if fill.messages == 0 {
				timer.Reset(p.opts.BatchMaxWait)
			}
			fill.add(r)
			if fill.messages >= p.opts.BatchMaxEvents && !inflight {
				start()
			}
		case <-timer.C:
			due = true
			if !inflight {
				start()
			}
		case err := <-doneCommit:
			inflight = false
			if err != nil {
				fail = err
				return err
			}
			if due || fill.messages >= p.opts.BatchMaxEvents {
				start()
			}
		case <-done:
			if fail = wait(); fail != nil {
				return fail
			}
			for {
				select {
				case r := <-results:
					fill.add(r)
					continue
				default:
				}
				break
			}
			start()
			fail = wait()
			return fail
		}
	}
}

func newPending(topic string) *pending {
	return &pending{batch: Batch{Topic: topic, Offsets: map[int32]int64{}}}
}

type pending struct {
	batch    Batch
	messages int
	dups     int
	late     int
	parts    []int32
}

func (b *pending) add(r *partResult) {
	b.messages += r.messages
	b.dups += r.out.Duplicates
	for i := range r.out.Shifts {
		if r.out.Shifts[i].Late {
			b.late++
		}
	}
	b.batch.Shifts = append(b.batch.Shifts, r.out.Shifts...)
	b.batch.Alerts = append(b.batch.Alerts, r.out.Alerts...)
	b.batch.Norms = append(b.batch.Norms, r.out.Norms...)
	b.batch.Rejects = append(b.batch.Rejects, r.rejects...)
	b.batch.Offsets[r.partition] = r.next
}

func (b *pending) reset() {
	b.batch.Reset()
	b.messages, b.dups, b.late = 0, 0, 0
}

// flush publishes dead letters and alerts, then stores the batch with its
// offsets. Every step retries until flushCtx ends: a partition waits rather
// than loses a record.
func (p *Pipeline) flush(ctx context.Context, gen *kafka.Generation, b *pending) error {
	if len(b.batch.Rejects) > 0 {
		msgs := make([]kafka.Message, len(b.batch.Rejects))
		for i, r := range b.batch.Rejects {
			msgs[i] = DeadLetter(r)
		}
		if err := p.retry(ctx, "publishing dead letters to "+p.opts.DLQTopic, func(ctx context.Context) error {
			return p.dlq.WriteMessages(ctx, msgs...)
		}); err != nil {
			return fmt.Errorf("ingest: dead letters not published: %w", err)
		}
	}
	if len(b.batch.Alerts) > 0 {
		msgs := make([]kafka.Message, len(b.batch.Alerts))
		for i := range b.batch.Alerts {
			a := &b.batch.Alerts[i]
			msgs[i] = kafka.Message{Key: []byte(a.PlantID), Value: AppendAlertJSON(nil, a)}
		}
		if err := p.retry(ctx, "publishing alerts to "+p.opts.AlertsTopic, func(ctx context.Context) error {
			return p.alerts.WriteMessages(ctx, msgs...)
		}); err != nil {
			return fmt.Errorf("ingest: alerts not published: %w", err)
		}
	}
	var res CommitResult
	if err := p.retry(ctx, "storing a batch", func(ctx context.Context) (err error) {
		res, err = p.sink.Commit(ctx, &b.batch)
		return err
	}); err != nil {
		return fmt.Errorf("ingest: batch not stored: %w", err)
	}

	c := &p.count
	c.messages.Add(int64(b.messages))
	c.shifts.Add(int64(res.ShiftsInserted))
	c.duplicates.Add(int64(b.dups + len(b.batch.Shifts) - res.ShiftsInserted))
	c.late.Add(int64(b.late))
	c.rejects.Add(int64(len(b.batch.Rejects)))
	c.batches.Add(1)
	for i := range b.batch.Alerts {
		if k := alertIndex(b.batch.Alerts[i].Type); k >= 0 {
			c.alerts[k].Add(1)
		}
	}

	commits := make(map[int]int64, len(b.batch.Offsets))
	p.mu.Lock()
	for part, next := range b.batch.Offsets {
		p.committed[part] = next
		if ps := p.procs[part]; ps != nil {
			ps.stored = next
		}
		commits[int(part)] = next
	}
	p.mu.Unlock()
	// Kafka's copy of the offsets only feeds lag monitoring; the sink's
	// copy is authoritative, so a failure here is logged, not retried.
	if err := gen.CommitOffsets(map[string]map[int]int64{p.opts.InputTopic: commits}); err != nil {
		p.log.Debug("committing group offsets failed", "err", err)
	}
	b.reset()
	return nil
}

// restore rebuilds a partition's processor from the sink.
func (p *Pipeline) restore(ctx context.Context, part int32, next int64) (*partitionState, error) {
	start := time.Now()
	proc, err := processors.NewPartition(p.opts.Processor, part)
	if err != nil {
		return nil, err
	}
	var streamTime time.Time
	rows := 0
	err = p.retry(ctx, "restoring partition "+strconv.Itoa(int(part)), func(ctx context.Context) error {
		proc, _ = processors.NewPartition(p.opts.Processor, part)
		rows = 0
		var err error
		streamTime, err = p.sink.StreamTime(ctx, p.opts.InputTopic, part)
		if err != nil {
			return err
		}
		since := streamTime.Add(-p.opts.Processor.Retention())
		return proc.Restore(streamTime, func(add func(*shift.Event, bool) error) error {
			return p.sink.Replay(ctx, p.opts.InputTopic, part, since, func(ev *shift.Event, late bool) error {
				rows++
				return add(ev, late)
			})
		})
	})
	if err != nil {
		return nil, err
	}
	if rows > 0 || next >= 0 {
		p.log.Info("partition restored", "partition", part, "next_offset", next, "stream_time", streamTime,
			"shifts_replayed", rows, "took", time.Since(start).Round(time.Millisecond))
	}
	return &partitionState{proc: proc, processed: next, stored: next}, nil
}

// consume fetches one partition and runs its processor until gctx ends.
func (p *Pipeline) consume(gctx context.Context, part int32, ps *partitionState, results chan<- *partResult) {
	next := ps.processed
	backoff := p.opts.RetryBackoff
	var buf []byte
	for gctx.Err() == nil {
		resp, err := p.client.Fetch(gctx, &kafka.FetchRequest{
			Topic: p.opts.InputTopic, Partition: int(part), Offset: next,
			MinBytes: 1, MaxBytes: int64(p.opts.FetchMaxBytes), MaxWait: p.opts.FetchMaxWait,
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err != nil {
			if gctx.Err() != nil {
				return
			}
			if errors.Is(err, kafka.OffsetOutOfRange) {
				p.log.Warn("stored offset is outside the partition's log; continuing from its start",
					"partition", part, "offset", next)
				next = kafka.FirstOffset
				continue
			}
			p.log.Warn("fetch failed; retrying", "partition", part, "offset", next, "err", err, "backoff", backoff)
			if !sleep(gctx, backoff) {
				return
			}
			backoff = min(2*backoff, p.opts.RetryBackoffMax)
			continue
		}
		backoff = p.opts.RetryBackoff
		p.mu.Lock()
		p.high[part] = resp.HighWatermark
		p.mu.Unlock()

		r := &partResult{partition: part}
		for {
			rec, err := resp.Records.ReadRecord()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					p.log.Warn("reading fetched records failed", "partition", part, "err", err)
				}
				break
			}
			if next >= 0 && rec.Offset < next {
				continue // a compressed batch may start before the offset asked for
			}
			buf = readBytes(buf[:0], rec.Value)
			ev, derr := shift.Decode(buf)
			if derr != nil {
				var bad *shift.BadRecordError
				errors.As(derr, &bad)
				r.rejects = append(r.rejects, Reject{
					Topic: p.opts.InputTopic, Partition: part, Offset: rec.Offset,
					Reason: bad.Reason, Detail: bad.Error(),
					Key: readBytes(nil, rec.Key), Value: append([]byte(nil), buf...),
				})
			} else if perr := ps.proc.Process(&ev, rec.Offset, &r.out); perr != nil && !errors.Is(perr, processors.ErrDuplicate) {
				p.log.Error("processing failed", "partition", part, "offset", rec.Offset, "err", perr)
			}
			r.messages++
			next = rec.Offset + 1
		}
		if r.messages == 0 {
			continue
		}
		r.next = next
		ps.processed = next
		select {
		case results <- r:
		case <-gctx.Done():
			return
		}
	}
}

// readBytes appends the whole of a record's key or value to dst; nil stays
// nil (Kafka tells a missing key from an empty one).
func readBytes(dst []byte, b kafka.Bytes) []byte {
	if b == nil {
		return dst
	}
	n := b.Len()
	if dst == nil {
		dst = make([]byte, 0, n)
	}
	start := len(dst)
	dst = append(dst, make([]byte, n)...)
	if _, err := io.ReadFull(b, dst[start:]); err != nil {
		return dst[:start]
	}
	return dst
}

// DeadLetter is the dead-letter message of a reject: its original key and
// value with the reason and source in headers.
func DeadLetter(r Reject) kafka.Message {
	return kafka.Message{
		Key:   r.Key,
		Value: r.Value,
		Headers: []kafka.Header{
			{Key: "error.reason", Value: []byte(r.Reason)},
			{Key: "error.detail", Value: []byte(r.Detail)},
			{Key: "source.topic", Value: []byte(r.Topic)},
			{Key: "source.partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
			{Key: "source.offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
		},
	}
}

// retry runs fn until it succeeds or ctx ends, backing off and logging what
// it is waiting for.
func (p *Pipeline) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := p.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				p.log.Info("recovered", "task", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		p.log.Warn("waiting: "+what+" failed", "err", err, "attempt", attempt, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		backoff = min(2*backoff, p.opts.RetryBackoffMax)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func sortedKeys(m map[int32]bool) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	for i := 1; i < len(ks); i++ {
		for j := i; j > 0 && ks[j] < ks[j-1]; j-- {
			ks[j], ks[j-1] = ks[j-1], ks[j]
		}
	}
	return ks
}

// Lag returns, for every partition of the input topic, how many messages
// lie between what the sink has stored and the end of the log. It asks the
// sink, not this process, so it answers for the whole group.
func (p *Pipeline) Lag(ctx context.Context) (map[int32]int64, error) {
	start, end, err := EndOffsets(ctx, p.client, p.opts.InputTopic)
	if err != nil {
		return nil, err
	}
	stored, err := p.sink.Offsets(ctx, p.opts.InputTopic)
	if err != nil {
		return nil, err
	}
	lag := make(map[int32]int64, len(end))
	for part, e := range end {
		from, ok := stored[part]
		if !ok {
			from = start[part]
		}
		lag[part] = max(e-from, 0)
	}
	return lag, nil
}
