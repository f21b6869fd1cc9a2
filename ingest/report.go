package ingest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/processors"
)

// GroupReport is how a pipeline's consumer groups stand, read from the
// brokers alone: what `stakhanov status` prints. It needs no running
// process and changes nothing.
type GroupReport struct {
	Group     string `json:"group"`
	SinkGroup string `json:"sink_group"`
	// Input is the topic the processors read (the input, or the
	// repartition topic); Results the sink's.
	Input   string `json:"input"`
	Results string `json:"results"`
	// the brokers' group states ("Stable", "Empty", …)
	GroupState string            `json:"group_state"`
	SinkState  string            `json:"sink_group_state"`
	Partitions []PartitionReport `json:"partitions"`
}

// PartitionReport is one partition of the processors' input, with the
// results partition of the same number the sink reads.
type PartitionReport struct {
	Partition int32 `json:"partition"`
	// Committed is the processors' group offset (the next input offset to
	// process), -1 when none; End the high watermark; Lag the difference
	// (from the log start when nothing is committed).
	Committed int64 `json:"committed"`
	End       int64 `json:"end"`
	Lag       int64 `json:"lag"`
	// Owner is the member processing it ("client-id@host"), "" when none.
	Owner string `json:"owner"`
	// StreamTime is the partition's event-time clock in its latest
	// checkpoint, zero when it has none; CheckpointOffset the input offset
	// the checkpoint resumes at (-1: none).
	StreamTime       time.Time `json:"stream_time"`
	CheckpointOffset int64     `json:"checkpoint_offset"`
	// The sink's group on the results partition (-1: none).
	SinkCommitted int64  `json:"sink_committed"`
	SinkEnd       int64  `json:"sink_end"`
	SinkLag       int64  `json:"sink_lag"`
	SinkOwner     string `json:"sink_owner"`
}

// Report reads the pipeline's groups as opts names them (brokers,
// security, group, input).
func Report(ctx context.Context, opts Options) (*GroupReport, error) {
	b, err := newBase(opts)
	if err != nil {
		return nil, err
	}
	r := &GroupReport{Group: opts.Group, SinkGroup: opts.SinkGroup(), Input: opts.processInput(), Results: opts.ResultsTopic()}
	start, end, err := EndOffsets(ctx, b.client, r.Input)
	if err != nil {
		return nil, b.reportErr(err)
	}
	committed, state, owners, err := b.groupView(ctx, r.Group, r.Input, len(end))
	if err != nil {
		return nil, err
	}
	r.GroupState = state
	// the internal topics exist once a pipeline has run
	_, rend, rerr := EndOffsets(ctx, b.client, r.Results)
	var scommitted map[int32]int64
	var sowners map[int32]string
	if rerr == nil {
		if scommitted, r.SinkState, sowners, err = b.groupView(ctx, r.SinkGroup, r.Results, len(rend)); err != nil {
			return nil, err
		}
	}
	ck := &checkpoints{base: &b, topic: opts.CheckpointTopic()}
	_, ckErr := PartitionCount(ctx, b.client, ck.topic)
	for part := range int32(len(end)) {
		p := PartitionReport{Partition: part, Committed: -1, End: end[part], Owner: owners[part], CheckpointOffset: -1,
			SinkCommitted: -1, SinkEnd: -1, SinkOwner: sowners[part]}
		from := start[part]
		if c, ok := committed[part]; ok {
			p.Committed, from = c, c
		}
		p.Lag = max(p.End-from, 0)
		if e, ok := rend[part]; ok {
			p.SinkEnd = e
			sfrom := int64(0)
			if c, ok := scommitted[part]; ok {
				p.SinkCommitted, sfrom = c, c
			}
			p.SinkLag = max(e-sfrom, 0)
		}
		if ckErr == nil {
			cp, ok, err := ck.load(ctx, part)
			if err != nil {
				return nil, fmt.Errorf("checkpoint of partition %d: %w", part, b.reportErr(err))
			}
			if ok {
				p.CheckpointOffset = cp.offset
				if t, has, err := processors.SnapshotStreamTime(cp.state); err == nil && has {
					p.StreamTime = t
				}
			}
		}
		r.Partitions = append(r.Partitions, p)
	}
	return r, nil
}

func (b *base) reportErr(err error) error {
	if auth := b.authFailure("reading the group", err); auth != nil {
		return auth
	}
	return err
}

// groupView reads a group's committed offsets on topic, its state and
// which member owns each partition.
func (b *base) groupView(ctx context.Context, group, topic string, partitions int) (map[int32]int64, string, map[int32]string, error) {
	parts := make([]int, partitions)
	for i := range parts {
		parts[i] = i
	}
	of, err := b.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err == nil && of.Error != nil {
		err = of.Error
	}
	if errors.Is(err, kafka.GroupIdNotFound) {
		// a group that never committed (some brokers answer so)
		return map[int32]int64{}, "Dead", map[int32]string{}, nil
	}
	if err != nil {
		return nil, "", nil, fmt.Errorf("offsets of group %s: %w", group, b.reportErr(err))
	}
	committed := map[int32]int64{}
	for _, p := range of.Topics[topic] {
		if p.Error == nil && p.CommittedOffset >= 0 {
			committed[int32(p.Partition)] = p.CommittedOffset
		}
	}
	dg, err := b.client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
	if err != nil {
		return nil, "", nil, fmt.Errorf("describing group %s: %w", group, b.reportErr(err))
	}
	owners := map[int32]string{}
	state := ""
	for _, g := range dg.Groups {
		if errors.Is(g.Error, kafka.GroupIdNotFound) {
			continue
		}
		if g.Error != nil {
			return nil, "", nil, fmt.Errorf("describing group %s: %w", group, g.Error)
		}
		state = g.GroupState
		for _, m := range g.Members {
			for _, t := range m.MemberAssignments.Topics {
				if t.Topic != topic {
					continue
				}
				for _, p := range t.Partitions {
					owners[int32(p)] = m.ClientID + "@" + strings.TrimPrefix(m.ClientHost, "/")
				}
			}
		}
	}
	return committed, state, owners, nil
}
