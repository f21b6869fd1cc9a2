package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/processors"
	"github.com/stakhanov/stakhanov/shift"
)

// processorRole runs the rules over the partitions its consumer group
// generation assigns, with state that follows the partition through the
// checkpoint topic.
type processorRole struct {
	*base
	count   *counters
	alerts  *kafka.Writer
	dlq     *kafka.Writer
	results *kafka.Writer
	ckpt    *checkpoints

	mu        sync.Mutex
	processed map[int32]int64 // next input offset published, per owned partition
	high      map[int32]int64
	parts     map[int32]*procStatus // owned partitions, for Pipeline.Partitions
	joined    bool                  // a generation was assigned

	// abandoned stops a role the way a killed process stops: no final
	// checkpoint, nothing flushed (set by tests)
	abandoned atomic.Bool
}

func newProcessorRole(b *base, count *counters) *processorRole {
	return &processorRole{
		base:      b,
		count:     count,
		alerts:    b.writer(b.opts.AlertsTopic, keyedByPlant),
		dlq:       b.writer(b.opts.DLQTopic, keyedByPlant),
		results:   b.writer(b.opts.ResultsTopic(), samePartition{}),
		ckpt:      &checkpoints{base: b, topic: b.opts.CheckpointTopic(), w: b.writer(b.opts.CheckpointTopic(), samePartition{})},
		processed: map[int32]int64{},
		high:      map[int32]int64{},
		parts:     map[int32]*procStatus{},
	}
}

// procStatus is what the metrics and readiness see of one partition.
type procStatus struct {
	restored   bool
	from       int64 // the offset processing resumed at
	target     int64 // the high watermark when it resumed: the replay to catch up
	streamTime time.Time
	stateBytes int64
}

func (r *processorRole) close() {
	r.alerts.Close()
	r.dlq.Close()
	r.results.Close()
	r.ckpt.close()
}

func (r *processorRole) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	group, err := r.joinGroup(r.opts.Group, r.opts.processInput())
	if err != nil {
		return err
	}
	err = r.generations(ctx, r.opts.Group, group, func(gen *kafka.Generation) error {
		assigned := gen.Assignments[r.opts.processInput()]
		owned := map[int32]bool{}
		var wg sync.WaitGroup
		for _, a := range assigned {
			part := int32(a.ID)
			owned[part] = true
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				if err := r.partition(gctx, gen, part); err != nil {
					cancel(err) // fatal: stop the whole role
				}
			})
		}
		r.mu.Lock()
		for part := range r.processed {
			if !owned[part] {
				delete(r.processed, part)
				delete(r.high, part)
			}
		}
		for part := range r.parts {
			if !owned[part] {
				delete(r.parts, part)
			}
		}
		for part := range owned {
			if r.parts[part] == nil {
				r.parts[part] = &procStatus{target: -1}
			}
		}
		r.joined = true
		r.mu.Unlock()
		r.log.Info("partitions assigned", "role", "process", "group", r.opts.Group, "generation", gen.ID,
			"topic", r.opts.processInput(), "partitions", sortedKeys(owned))
		wg.Wait()
		return nil
	})
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause
	}
	return err
}

// partition processes one partition until its generation ends.
func (r *processorRole) partition(ctx context.Context, gen *kafka.Generation, part int32) error {
	start := time.Now()
	proc, cp, err := r.restore(ctx, part)
	if err != nil {
		return nilOnCancel(ctx, err)
	}
	next := kafka.FirstOffset
	if cp.chunks > 0 {
		next = cp.offset
	}
	st := proc.Stats()
	r.log.Info("partition restored", "partition", part, "checkpoint_generation", cp.gen, "next_offset", next,
		"stream_time", proc.StreamTime(), "window_shifts", st.WindowShifts, "state_bytes", len(cp.state),
		"took", time.Since(start).Round(time.Millisecond))
	r.mu.Lock()
	r.parts[part] = &procStatus{restored: true, from: next, target: -1, streamTime: proc.StreamTime(), stateBytes: int64(len(cp.state))}
	r.mu.Unlock()
	cp.state = nil

	// published: the state holds exactly what has been published, so it
	// may be checkpointed
	published, dirty := true, false
	lastSave := time.Now()
	save := func(ctx context.Context) {
		if !published || !dirty {
			return
		}
		var err error
		snap := proc.AppendSnapshot(nil)
		if err = r.retry(ctx, "checkpointing partition "+strconv.Itoa(int(part)), func(ctx context.Context) (err error) {
			cp, err = r.ckpt.save(ctx, part, cp, next, snap)
			return err
		}); err == nil {
			dirty = false
			lastSave = time.Now()
			r.mu.Lock()
			if ps := r.parts[part]; ps != nil {
				ps.stateBytes = int64(len(snap))
			}
			r.mu.Unlock()
		} else {
			// not fatal: the next owner starts from the last checkpoint
			// written and replays the input since
			r.log.Warn("checkpoint not written", "partition", part, "next_offset", next,
				"last_checkpoint_generation", cp.gen, "err", err)
		}
	}
	defer func() {
		if r.abandoned.Load() {
			return
		}
		// a clean hand-over: the next owner replays nothing
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ShutdownTimeout)
		defer cancel()
		save(fctx)
	}()

	topic := r.opts.processInput()
	var res Results
	var out processors.Output
	var buf []byte
	for ctx.Err() == nil {
		resp, from, err := r.fetch(ctx, topic, part, next, r.opts.FetchMaxBytes)
		if err != nil {
			return nil
		}
		r.mu.Lock()
		r.high[part] = resp.HighWatermark
		if ps := r.parts[part]; ps != nil && ps.target < 0 {
			ps.target = resp.HighWatermark
			if ps.from < 0 { // from the start of the log
				ps.from = resp.LogStartOffset
			}
		}
		r.mu.Unlock()
		clearResults(&res)
		out.Reset()
		messages, lastOffset := 0, int64(-1)
		for rec := range r.records(resp, from, topic, part) {
			srcTopic, srcPart, srcOff := sourceOf(rec, topic, part)
			buf = readBytes(buf[:0], rec.Value)
			ev, derr := shift.Decode(buf)
			if derr != nil {
				var bad *shift.BadRecordError
				errors.As(derr, &bad)
				res.Rejects = append(res.Rejects, Reject{
					Topic: srcTopic, Partition: srcPart, Offset: srcOff,
					Reason: bad.Reason, Detail: bad.Error(),
					Key: readBytes(nil, rec.Key), Value: append([]byte(nil), buf...),
				})
			} else {
				n := len(out.Shifts)
				switch perr := proc.Process(&ev, processors.Input{Offset: srcOff, LogTime: rec.Time}, &out); {
				case errors.Is(perr, processors.ErrFromFuture):
					res.Rejects = append(res.Rejects, Reject{
						Topic: srcTopic, Partition: srcPart, Offset: srcOff, Reason: processors.ReasonFromFuture,
						Detail: fmt.Sprintf("%s: shift_start %s is %s after the record's timestamp %s (margin %s)",
							processors.ReasonFromFuture, ev.ShiftStart.Format(time.RFC3339), ev.ShiftStart.Sub(rec.Time).Round(time.Second),
							rec.Time.UTC().Format(time.RFC3339), r.opts.Processor.FutureMargin),
						Key: readBytes(nil, rec.Key), Value: append([]byte(nil), buf...),
					})
				case perr != nil && !errors.Is(perr, processors.ErrDuplicate):
					r.log.Error("processing failed", "partition", part, "offset", rec.Offset, "err", perr)
				}
				if len(out.Shifts) > n {
					out.Shifts[n].Partition = srcPart
					res.Positions = append(res.Positions, rec.Offset)
				}
			}
			messages++
			lastOffset = rec.Offset
		}
		if messages == 0 {
			if dirty && time.Since(lastSave) >= r.opts.CheckpointInterval {
				save(ctx)
			}
			continue
		}
		res.Shifts, res.Alerts, res.Norms = out.Shifts, out.Alerts, out.Norms
		published = false
		if r.abandoned.Load() {
			return nil
		}
		if err := r.publish(ctx, part, &res); err != nil {
			if ctx.Err() != nil {
				// the generation ended before the results were out: the
				// next owner restores the last checkpoint and redoes them
				return nil
			}
			return err
		}
		published, dirty = true, true
		next = lastOffset + 1
		r.account(&res, &out, messages)
		r.mu.Lock()
		r.processed[part] = next
		if ps := r.parts[part]; ps != nil {
			ps.streamTime = proc.StreamTime()
		}
		r.mu.Unlock()
		// Kafka's group offsets feed lag tools; the checkpoint is what
		// resumes, so a failure here is only logged
		if err := gen.CommitOffsets(map[string]map[int]int64{topic: {int(part): next}}); err != nil {
			r.log.Debug("committing group offsets failed", "err", err)
		}
		if time.Since(lastSave) >= r.opts.CheckpointInterval {
			save(ctx)
		}
	}
	return nil
}

// sourceOf names where a record first entered the pipeline: the input
// topic itself, or the headers the repartitioner copied.
func sourceOf(rec *kafka.Record, topic string, part int32) (string, int32, int64) {
	var t string
	p, o := int64(-1), int64(-1)
	for _, h := range rec.Headers {
		switch h.Key {
		case "source.topic":
			t = string(h.Value)
		case "source.partition":
			p, _ = strconv.ParseInt(string(h.Value), 10, 32)
		case "source.offset":
			o, _ = strconv.ParseInt(string(h.Value), 10, 64)
		}
	}
	if t == "" || p < 0 || o < 0 {
		return topic, part, rec.Offset
	}
	return t, int32(p), o
}

func (r *processorRole) restore(ctx context.Context, part int32) (*processors.Partition, checkpoint, error) {
	proc, err := processors.NewPartition(r.opts.Processor, part)
	if err != nil {
		return nil, checkpoint{}, err
	}
	var cp checkpoint
	var ok bool
	if err := r.retry(ctx, "reading checkpoint of partition "+strconv.Itoa(int(part)), func(ctx context.Context) (err error) {
		cp, ok, err = r.ckpt.load(ctx, part)
		if errors.Is(err, ErrCheckpointCorrupt) {
			return backoffStop{err}
		}
		return err
	}); err != nil {
		return nil, cp, err
	}
	if !ok {
		return proc, checkpoint{}, nil
	}
	changed, err := proc.LoadSnapshot(cp.state)
	if err != nil {
		if errors.Is(err, processors.ErrSnapshotOptions) {
			return nil, cp, fmt.Errorf("partition %d: %w; the checkpoint topic %s holds another partition's state: "+
				"check that the input topic's partition count did not change, or start a new consumer group (--group)",
				part, err, r.opts.CheckpointTopic())
		}
		return nil, cp, fmt.Errorf("partition %d: restoring checkpoint generation %d: %w", part, cp.gen, err)
	}
	if len(changed) > 0 {
		// Thresholds apply to each event as it is judged: the input after
		// the checkpoint — replayed or new — is judged under the new ones,
		// while rows already stored keep the old ones' verdicts.
		r.log.Warn("rule options differ from the checkpoint's; the new ones apply from the next event processed",
			"partition", part, "checkpoint_generation", cp.gen, "changed", changed)
	}
	return proc, cp, nil
}

// backoffStop ends a retry: the error will not go away by waiting.
type backoffStop struct{ error }

func (b backoffStop) Unwrap() error { return b.error }

func clearResults(r *Results) {
	r.Shifts, r.Positions, r.Alerts, r.Norms = r.Shifts[:0], r.Positions[:0], r.Alerts[:0], r.Norms[:0]
	clear(r.Rejects)
	r.Rejects = r.Rejects[:0]
}

// publish sends one fetch's dead letters, alerts and results and returns
// when all are acknowledged.
func (r *processorRole) publish(ctx context.Context, part int32, res *Results) error {
	type job struct {
		topic string
		write func(context.Context) error
	}
	var jobs []job
	if len(res.Rejects) > 0 {
		msgs := make([]kafka.Message, len(res.Rejects))
		for i, rj := range res.Rejects {
			msgs[i] = DeadLetter(rj)
		}
		jobs = append(jobs, job{r.opts.DLQTopic, func(ctx context.Context) error { return r.dlq.WriteMessages(ctx, msgs...) }})
	}
	if len(res.Alerts) > 0 {
		msgs := make([]kafka.Message, len(res.Alerts))
		for i := range res.Alerts {
			a := &res.Alerts[i]
			msgs[i] = kafka.Message{Key: []byte(a.PlantID), Value: AppendAlertJSON(nil, a)}
		}
		jobs = append(jobs, job{r.opts.AlertsTopic, func(ctx context.Context) error { return r.alerts.WriteMessages(ctx, msgs...) }})
	}
	// The dead letter carries a bad record whole; the results (and so the
	// rejects table) carry at most rejectKeep bytes of its key and value,
	// so that one huge record cannot make a result message too large.
	for i := range res.Rejects {
		res.Rejects[i] = boundReject(res.Rejects[i])
	}
	encoded, err := EncodeResults(nil, res, checkpointChunk)
	if err != nil {
		return fmt.Errorf("encoding results of partition %d: %w", part, err)
	}
	key := partitionKey(part, "")
	msgs := make([]kafka.Message, len(encoded))
	for i, b := range encoded {
		msgs[i] = kafka.Message{Key: key, Value: b}
	}

	// Dead letters and alerts first, then the results: nothing reaches
	// DuckDB whose copy on those topics is not acknowledged, so while the
	// dead-letter topic cannot be written the partition waits, and the
	// tables never hold a reject or an alert the topics lack.
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.retry(ctx, fmt.Sprintf("publishing to %s for input partition %d", j.topic, part), j.write)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return r.retry(ctx, fmt.Sprintf("publishing to %s for input partition %d", r.opts.ResultsTopic(), part), func(ctx context.Context) error {
		return r.results.WriteMessages(ctx, msgs...)
	})
}

// rejectKeep bounds the key and value of a reject stored in DuckDB.
const rejectKeep = 64 << 10

func boundReject(rj Reject) Reject {
	if n := len(rj.Value); n > rejectKeep {
		rj.Value = rj.Value[:rejectKeep:rejectKeep]
		rj.Detail += fmt.Sprintf(" [value cut to %d of %d bytes here; the dead letter has it whole]", rejectKeep, n)
	}
	if n := len(rj.Key); n > rejectKeep {
		rj.Key = rj.Key[:rejectKeep:rejectKeep]
		rj.Detail += fmt.Sprintf(" [key cut to %d of %d bytes here]", rejectKeep, n)
	}
	return rj
}

func (r *processorRole) account(res *Results, out *processors.Output, messages int) {
	c := r.count
	c.messages.Add(int64(messages))
	c.duplicates.Add(int64(out.Duplicates))
	c.rejects.Add(int64(len(res.Rejects)))
	for i := range res.Rejects {
		c.reject(res.Rejects[i].Reason)
	}
	for i := range out.Shifts {
		if out.Shifts[i].Late {
			c.late.Add(1)
		}
	}
	c.tooLate.Add(int64(out.TooLate))
	for i := range out.Alerts {
		if k := alertIndex(out.Alerts[i].Type); k >= 0 {
			c.alerts[k].Add(1)
		}
	}
}

func (r *processorRole) progress() (processed, high map[int32]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	processed, high = map[int32]int64{}, map[int32]int64{}
	for k, v := range r.processed {
		processed[k] = v
	}
	for k, v := range r.high {
		high[k] = v
	}
	return processed, high
}
