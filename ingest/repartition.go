package ingest

import (
	"context"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/shift"
)

// repartitionRole re-keys input that producers did not key by plant_id:
// it reads the input partitions its group generation assigns, merges them
// in event-time order, and writes each message to the repartition topic
// keyed by plant_id, with its origin in source.* headers. A message that is
// not a valid event keeps its key and goes on too: the processor rejects
// it with its true origin. At least once: a repeat after a crash is the
// same event_id, which the processor drops.
type repartitionRole struct {
	*base
	out    *kafka.Writer
	joined atomic.Bool // a generation was assigned
}

func newRepartitionRole(b *base) *repartitionRole {
	return &repartitionRole{base: b, out: b.writer(b.opts.RepartitionTopic(), keyedByPlant)}
}

func (r *repartitionRole) close() { r.out.Close() }

type fwd struct {
	part int32
	off  int64
	ts   int64     // shift start; MinInt64 for a bad record, which goes at once
	at   time.Time // the record's timestamp, which the re-keyed record keeps
	key  []byte
	val  []byte
}

type fwdChunk struct {
	part  int32
	items []fwd
	atEnd bool // the fetch reached the high watermark
}

func (r *repartitionRole) run(ctx context.Context) error {
	group, err := r.joinGroup(r.opts.RepartitionGroup(), r.opts.InputTopic)
	if err != nil {
		return err
	}
	return r.generations(ctx, r.opts.RepartitionGroup(), group, func(gen *kafka.Generation) error {
		assigned := gen.Assignments[r.opts.InputTopic]
		r.joined.Store(true)
		chunks := make(chan fwdChunk, 2*len(assigned)+1)
		owned := map[int32]bool{}
		var wg sync.WaitGroup
		for _, a := range assigned {
			part, next := int32(a.ID), a.Offset
			owned[part] = true
			wg.Add(1)
			gen.Start(func(gctx context.Context) {
				defer wg.Done()
				r.fetchLoop(gctx, part, next, chunks)
			})
		}
		r.log.Info("partitions assigned", "role", "repartition", "group", r.opts.RepartitionGroup(), "generation", gen.ID, "partitions", sortedKeys(owned))
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		r.merge(ctx, gen, owned, chunks, done)
		return nil
	})
}

func (r *repartitionRole) fetchLoop(ctx context.Context, part int32, next int64, out chan<- fwdChunk) {
	for ctx.Err() == nil {
		resp, from, err := r.fetch(ctx, r.opts.InputTopic, part, next, r.opts.FetchMaxBytes)
		if err != nil {
			return
		}
		c := fwdChunk{part: part}
		for rec := range r.records(resp, from, r.opts.InputTopic, part) {
			f := fwd{part: part, off: rec.Offset, ts: math.MinInt64, at: rec.Time, key: readBytes(nil, rec.Key), val: readBytes(nil, rec.Value)}
			if ev, err := shift.Decode(f.val); err == nil {
				f.ts, f.key = ev.ShiftStart.Unix(), []byte(ev.PlantID)
			}
			c.items = append(c.items, f)
			next = rec.Offset + 1
		}
		c.atEnd = next >= resp.HighWatermark
		if len(c.items) == 0 && !c.atEnd {
			continue
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
	}
}

// merge forwards in event-time order across the owned partitions: it takes
// the earliest head, waiting for a partition whose queue ran dry while its
// log still holds data, so that a plant's shifts keep their time order
// however the producer spread them.
func (r *repartitionRole) merge(ctx context.Context, gen *kafka.Generation, owned map[int32]bool, in <-chan fwdChunk, done <-chan struct{}) {
	queues := map[int32][]fwd{}
	idle := map[int32]bool{} // queue empty and log read to its end
	for p := range owned {
		idle[p] = false
	}
	var batch []kafka.Message
	commits := map[int]int64{}
	flush := func() bool {
		if len(batch) == 0 {
			return true
		}
		if err := r.retry(ctx, "repartitioning", func(ctx context.Context) error { return r.out.WriteMessages(ctx, batch...) }); err != nil {
			return false
		}
		if err := gen.CommitOffsets(map[string]map[int]int64{r.opts.InputTopic: commits}); err != nil {
			r.log.Debug("committing group offsets failed", "err", err)
		}
		batch, commits = batch[:0], map[int]int64{}
		return true
	}
	receive := func(c fwdChunk) {
		queues[c.part] = append(queues[c.part], c.items...)
		idle[c.part] = c.atEnd && len(queues[c.part]) == 0
	}
	for {
		// take whatever has arrived
		for more := true; more; {
			select {
			case c := <-in:
				receive(c)
			default:
				more = false
			}
		}
		best, blocked := int32(-1), false
		for p := range owned {
			q := queues[p]
			if len(q) == 0 {
				if !idle[p] {
					blocked = true
				}
				continue
			}
			if best < 0 || q[0].ts < queues[best][0].ts || (q[0].ts == queues[best][0].ts && p < best) {
				best = p
			}
		}
		if best >= 0 && !blocked {
			f := queues[best][0]
			queues[best] = queues[best][1:]
			if len(queues[best]) == 0 {
				idle[best] = false // unknown until its next fetch says
			}
			// the original timestamp: the processors' log time and
			// future guard go by when the plant's record was written
			batch = append(batch, kafka.Message{Key: f.key, Value: f.val, Time: f.at, Headers: []kafka.Header{
				{Key: "source.topic", Value: []byte(r.opts.InputTopic)},
				{Key: "source.partition", Value: []byte(strconv.Itoa(int(f.part)))},
				{Key: "source.offset", Value: []byte(strconv.FormatInt(f.off, 10))},
			}})
			commits[int(f.part)] = f.off + 1
			if len(batch) >= 5000 && !flush() {
				return
			}
			continue
		}
		if !flush() {
			return
		}
		select {
		case c := <-in:
			receive(c)
		case <-done:
			flush()
			return
		case <-ctx.Done():
			return
		}
	}
}
