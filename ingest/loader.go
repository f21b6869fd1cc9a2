package ingest

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// sinkRole reads the results topic and stores it in the Sink: rows and the
// results offsets they bring each partition to commit together, so each
// result is stored exactly once however often a processor re-sent it.
type sinkRole struct {
	*base
	sink  Sink
	count *counters

	mu     sync.Mutex
	stored map[int32]int64
	high   map[int32]int64
	joined bool // a generation was assigned
}

func newSinkRole(b *base, sink Sink, count *counters) *sinkRole {
	return &sinkRole{base: b, sink: sink, count: count, stored: map[int32]int64{}, high: map[int32]int64{}}
}

// loaded is what one fetch of one results partition decoded.
type loaded struct {
	partition int32
	next      int64
	messages  int
	res       Results
}

func (r *sinkRole) run(ctx context.Context) error {
	// Flushing must outlive ctx by up to ShutdownTimeout: a signal asks
	// for a clean stop, not for the batch in hand to be dropped.
	flushCtx, cancelFlush := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelFlush()
	stopTimer := context.AfterFunc(ctx, func() { time.AfterFunc(r.opts.ShutdownTimeout, cancelFlush) })
	defer stopTimer()

	if rr, ok := r.sink.(RulesRecorder); ok {
		if err := r.retry(ctx, "recording the rule options", func(ctx context.Context) error {
			return rr.RecordRules(ctx, r.opts.Processor)
		}); err != nil {
			return nilOnCancel(ctx, err)
		}
	}
	group, err := r.joinGroup(r.opts.SinkGroup(), r.opts.ResultsTopic())
	if err != nil {
		return err
	}
	return r.generations(ctx, r.opts.SinkGroup(), group, func(gen *kafka.Generation) error {
		return r.generation(ctx, flushCtx, gen)
	})
}

func (r *sinkRole) generation(ctx, flushCtx context.Context, gen *kafka.Generation) error {
	topic := r.opts.ResultsTopic()
	assigned := gen.Assignments[topic]
	var stored map[int32]int64
	if err := r.retry(ctx, "reading stored offsets", func(ctx context.Context) (err error) {
		stored, err = r.sink.Offsets(ctx, topic)
		return err
	}); err != nil {
		return nilOnCancel(ctx, err)
	}
	owned := map[int32]bool{}
	in := make(chan *loaded, 2*len(assigned)+1)
	var wg sync.WaitGroup
	r.mu.Lock()
	r.joined = true
	clear(r.stored)
	clear(r.high)
	for _, a := range assigned {
		part := int32(a.ID)
		owned[part] = true
		next, ok := stored[part]
		if ok {
			r.stored[part] = next
		} else {
			next = kafka.FirstOffset
		}
		wg.Add(1)
		gen.Start(func(gctx context.Context) {
			defer wg.Done()
			r.consume(gctx, part, next, in)
		})
	}
	r.mu.Unlock()
	r.log.Info("partitions assigned", "role", "sink", "group", r.opts.SinkGroup(), "generation", gen.ID, "topic", topic, "partitions", sortedKeys(owned))
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Two batches alternate: one fills while the other commits, so that
	// decoding runs on one core while DuckDB writes on the other. At most
	// one commit is in flight, which keeps commits in order.
	fill, spare := r.newPending(), r.newPending()
	var (
		inflight  bool
		committed = make(chan error, 1)
		due       bool // the fill batch has waited BatchMaxWait
		timer     = time.NewTimer(time.Hour)
	)
	timer.Stop()
	// A full batch waiting for the commit in flight is prepared meanwhile
	// when the sink can (ingest.Preparer): DuckDB's Arrow input is built on
	// the other core. preparing is closed when that is done.
	preparer, _ := r.sink.(Preparer)
	var preparing chan struct{}
	prepare := func() {
		if preparer == nil || preparing != nil {
			return
		}
		ch, b := make(chan struct{}), &fill.batch
		preparing = ch
		go func() { defer close(ch); preparer.Prepare(b) }()
	}
	start := func() {
		timer.Stop()
		due = false
		if fill.messages == 0 {
			return
		}
		if preparing != nil {
			<-preparing
			preparing = nil
		}
		cur := fill
		fill, spare = spare, nil
		inflight = true
		go func() {
			err := r.flush(flushCtx, gen, cur)
			spare = cur // read only after committed is received
			committed <- err
		}()
	}
	wait := func() error {
		if !inflight {
			return nil
		}
		inflight = false
		return <-committed
	}
	for {
		recv := in
		if fill.rows >= r.opts.SinkBatchMaxRows {
			recv = nil // full and waiting for the commit in flight: hold back
		}
		var doneCommit chan error
		if inflight {
			doneCommit = committed
		}
		select {
		case l := <-recv:
			if fill.messages == 0 {
				timer.Reset(r.opts.BatchMaxWait)
			}
			fill.add(l)
			if fill.rows >= r.opts.SinkBatchMaxRows {
				if inflight {
					prepare()
				} else {
					start()
				}
			}
		case <-timer.C:
			due = true
			if !inflight {
				start()
			}
		case err := <-doneCommit:
			inflight = false
			if err != nil {
				return err
			}
			if due || fill.rows >= r.opts.SinkBatchMaxRows {
				start()
			}
		case <-done:
			if preparing != nil {
				<-preparing // before the batch changes again
				preparing = nil
			}
			if err := wait(); err != nil {
				return err
			}
			for drained := false; !drained; {
				select {
				case l := <-in:
					fill.add(l)
				default:
					drained = true
				}
			}
			start()
			return wait()
		}
	}
}

// consume fetches and decodes one results partition until gctx ends.
func (r *sinkRole) consume(gctx context.Context, part int32, next int64, out chan<- *loaded) {
	topic := r.opts.ResultsTopic()
	var buf []byte
	for gctx.Err() == nil {
		resp, from, err := r.fetch(gctx, topic, part, next, r.opts.FetchMaxBytes)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.high[part] = resp.HighWatermark
		r.mu.Unlock()
		l := &loaded{partition: part}
		for rec := range r.records(resp, from, topic, part) {
			buf = readBytes(buf[:0], rec.Value)
			if err := DecodeResults(buf, &l.res); err != nil {
				// results are written by this program: a message it cannot
				// read is a bug or a foreign writer, and skipping it would
				// lose rows silently
				r.log.Error("undecodable result; the partition waits", "partition", part, "offset", rec.Offset, "err", err)
				sleep(gctx, r.opts.RetryBackoffMax)
				return
			}
			l.messages++
			next = rec.Offset + 1
		}
		if l.messages == 0 {
			continue
		}
		l.next = next
		select {
		case out <- l:
		case <-gctx.Done():
			return
		}
	}
}

type pending struct {
	batch    Batch
	messages int // results messages: a batch of none holds nothing to store
	rows     int // shifts, alerts, norms and rejects: what bounds memory
}

func (r *sinkRole) newPending() *pending { return newPending(r.opts) }

// newPending is an empty batch of the results topic of o, as the sink role
// and ReplayResults fill it.
func newPending(o Options) *pending {
	return &pending{batch: Batch{
		Topic: o.ResultsTopic(), SourceTopic: o.InputTopic,
		// results partition p holds what the processor of partition p of
		// its input produced
		Stream:  o.processInput(),
		Offsets: map[int32]int64{},
	}}
}

func (b *pending) add(l *loaded) {
	b.messages += l.messages
	b.rows += len(l.res.Shifts) + len(l.res.Alerts) + len(l.res.Norms) + len(l.res.Rejects)
	b.batch.Shifts = append(b.batch.Shifts, l.res.Shifts...)
	for i := range l.res.Shifts {
		pos := int64(-1)
		if i < len(l.res.Positions) {
			pos = l.res.Positions[i]
		}
		b.batch.Positions = append(b.batch.Positions, Position{Partition: l.partition, Offset: pos})
	}
	b.batch.Alerts = append(b.batch.Alerts, l.res.Alerts...)
	b.batch.Norms = append(b.batch.Norms, l.res.Norms...)
	b.batch.Rejects = append(b.batch.Rejects, l.res.Rejects...)
	b.batch.Offsets[l.partition] = l.next
}

func (b *pending) reset() {
	b.batch.Reset()
	b.messages, b.rows = 0, 0
}

// flush stores the batch with its offsets, retrying until ctx ends.
func (r *sinkRole) flush(ctx context.Context, gen *kafka.Generation, b *pending) error {
	var res CommitResult
	if err := r.retry(ctx, "storing a batch", func(ctx context.Context) (err error) {
		start := time.Now()
		res, err = r.sink.Commit(ctx, &b.batch)
		if err == nil && r.opts.OnCommit != nil {
			r.opts.OnCommit(time.Since(start), b.rows)
		}
		return err
	}); err != nil {
		return err
	}
	r.count.shifts.Add(int64(res.ShiftsInserted))
	r.count.stored.Add(int64(len(b.batch.Shifts) + len(b.batch.Rejects)))
	r.count.batches.Add(1)
	commits := make(map[int]int64, len(b.batch.Offsets))
	r.mu.Lock()
	for part, next := range b.batch.Offsets {
		r.stored[part] = next
		commits[int(part)] = next
	}
	r.mu.Unlock()
	if err := gen.CommitOffsets(map[string]map[int]int64{r.opts.ResultsTopic(): commits}); err != nil {
		r.log.Debug("committing group offsets failed", "err", err)
	}
	b.reset()
	return nil
}
