package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/segmentio/kafka-go"
)

// Pipeline runs the roles Options.Roles names in one process. Make one
// with New and call Run once.
type Pipeline struct {
	base
	sink  Sink
	count counters
	proc  *processorRole
	store *sinkRole
	repar *repartitionRole
}

// New checks the options and prepares the Kafka clients; Run connects. The
// sink is needed only when Options.Roles includes RoleSink.
func New(opts Options, sink Sink) (*Pipeline, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Roles&RoleSink != 0 && sink == nil {
		return nil, fmt.Errorf("%w: the sink role needs a sink", ErrInvalidOptions)
	}
	b, err := newBase(opts)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{base: b, sink: sink}
	if opts.Roles&RoleProcess != 0 {
		p.proc = newProcessorRole(&p.base, &p.count)
		if opts.Repartition {
			p.repar = newRepartitionRole(&p.base)
		}
	}
	if opts.Roles&RoleSink != 0 {
		p.store = newSinkRole(&p.base, sink, &p.count)
	}
	return p, nil
}

// Stats returns the running totals of this process.
func (p *Pipeline) Stats() Stats { return p.count.snapshot() }

// Progress returns, for each input partition this process processes, the
// next offset published and the high watermark last seen.
func (p *Pipeline) Progress() (processed, high map[int32]int64) {
	if p.proc == nil {
		return map[int32]int64{}, map[int32]int64{}
	}
	return p.proc.progress()
}

// CheckpointBytes returns the size of each input partition's latest
// checkpoint: the processors' snapshot of its state (windows, open days,
// remembered event ids, as processors.Partition.AppendSnapshot writes it),
// which is what a partition's next owner loads. It reads the checkpoint
// topic, so it answers for the whole group, whichever process wrote them; a
// partition never checkpointed is absent. After Run has returned, it is the
// state as it stood at the end of the input processed.
func (p *Pipeline) CheckpointBytes(ctx context.Context) (map[int32]int64, error) {
	n, err := PartitionCount(ctx, p.client, p.opts.CheckpointTopic())
	if err != nil {
		return nil, err
	}
	c := &checkpoints{base: &p.base, topic: p.opts.CheckpointTopic()} // reads only: no writer
	out := map[int32]int64{}
	for part := range int32(n) {
		cp, ok, err := c.load(ctx, part)
		if err != nil {
			return nil, fmt.Errorf("checkpoint of partition %d: %w", part, err)
		}
		if ok {
			out[part] = int64(len(cp.state))
		}
	}
	return out, nil
}

// Run runs the roles until ctx is cancelled; then each finishes what it
// holds (the sink commits its batch, processors checkpoint their state)
// and Run returns nil. It returns an error when a role cannot go on: the
// sink cannot store within the shutdown timeout, or a checkpoint was made
// under other rule options.
func (p *Pipeline) Run(ctx context.Context) error {
	if p.proc != nil {
		defer p.proc.close()
	}
	if p.repar != nil {
		defer p.repar.close()
	}
	if err := p.retry(ctx, "preparing topics", p.prepareTopics); err != nil {
		return nilOnCancel(ctx, err)
	}
	var roles []func(context.Context) error
	if p.proc != nil {
		roles = append(roles, p.proc.run)
	}
	if p.repar != nil {
		roles = append(roles, p.repar.run)
	}
	if p.store != nil {
		roles = append(roles, p.store.run)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errs := make([]error, len(roles))
	for i, run := range roles {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				errs[i] = err
				cancel(err) // one role failing stops the others
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// prepareTopics creates the internal topics, and the output topics when
// asked, with the input's partition count: partition p of each belongs to
// input partition p.
func (p *Pipeline) prepareTopics(ctx context.Context) error {
	n, err := PartitionCount(ctx, p.client, p.opts.InputTopic)
	if err != nil {
		return err
	}
	topics := []kafka.TopicConfig{
		{Topic: p.opts.ResultsTopic()},
		{Topic: p.opts.CheckpointTopic(), ConfigEntries: []kafka.ConfigEntry{
			{ConfigName: "cleanup.policy", ConfigValue: "compact"},
			// roll segments often so that old checkpoints can be compacted
			{ConfigName: "segment.ms", ConfigValue: "300000"},
			{ConfigName: "min.cleanable.dirty.ratio", ConfigValue: "0.2"},
		}},
	}
	if p.opts.Repartition {
		topics = append(topics, kafka.TopicConfig{Topic: p.opts.RepartitionTopic()})
	}
	if p.opts.CreateTopics {
		topics = append(topics, kafka.TopicConfig{Topic: p.opts.AlertsTopic}, kafka.TopicConfig{Topic: p.opts.DLQTopic})
	}
	for i := range topics {
		topics[i].NumPartitions, topics[i].ReplicationFactor = n, -1
	}
	if err := createTopics(ctx, p.client, topics); err != nil {
		return err
	}
	for _, t := range []string{p.opts.ResultsTopic(), p.opts.CheckpointTopic()} {
		if m, err := PartitionCount(ctx, p.client, t); err != nil {
			return err
		} else if m != n {
			return fmt.Errorf("internal topic %s has %d partitions, input %s has %d: delete it, or use another --group", t, m, p.opts.InputTopic, n)
		}
	}
	return nil
}

// Lag returns, for every input partition, the messages not yet through:
// input not yet processed by the group plus results not yet stored by the
// sink. It asks Kafka and the sink, so it answers for the whole topology.
func (p *Pipeline) Lag(ctx context.Context) (map[int32]int64, error) {
	// Upstream first: once a stage is seen drained, everything it passed
	// on is already in the next stage's log when that one is asked.
	lag := map[int32]int64{}
	if p.opts.Repartition {
		if err := p.addLag(ctx, lag, p.opts.InputTopic, func(ctx context.Context) (map[int32]int64, error) {
			return groupOffsets(ctx, p.client, p.opts.RepartitionGroup(), p.opts.InputTopic)
		}); err != nil {
			return nil, err
		}
	}
	in := p.opts.processInput()
	if err := p.addLag(ctx, lag, in, func(ctx context.Context) (map[int32]int64, error) {
		return groupOffsets(ctx, p.client, p.opts.Group, in)
	}); err != nil {
		return nil, err
	}
	if p.sink != nil {
		if err := p.addLag(ctx, lag, p.opts.ResultsTopic(), func(ctx context.Context) (map[int32]int64, error) {
			return p.sink.Offsets(ctx, p.opts.ResultsTopic())
		}); err != nil {
			return nil, err
		}
	}
	return lag, nil
}

func (p *Pipeline) addLag(ctx context.Context, lag map[int32]int64, topic string, done func(context.Context) (map[int32]int64, error)) error {
	start, end, err := EndOffsets(ctx, p.client, topic)
	if err != nil {
		return err
	}
	at, err := done(ctx)
	if err != nil {
		return err
	}
	for part, e := range end {
		from, ok := at[part]
		if !ok || from < 0 {
			from = start[part]
		}
		lag[part] += max(e-from, 0)
	}
	return nil
}

// groupOffsets returns a consumer group's committed offsets of topic.
func groupOffsets(ctx context.Context, c *kafka.Client, group, topic string) (map[int32]int64, error) {
	n, err := PartitionCount(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, n)
	for i := range parts {
		parts[i] = i
	}
	res, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, err)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("offsets of group %s: %w", group, res.Error)
	}
	out := map[int32]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error == nil && po.CommittedOffset >= 0 {
			out[int32(po.Partition)] = po.CommittedOffset
		}
	}
	return out, nil
}
