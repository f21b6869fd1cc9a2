package ingest

import (
	"context"
	"errors"
	"fmt"

	"github.com/segmentio/kafka-go"
)

// ErrTopicMissing says a topic the pipeline needs does not exist.
var ErrTopicMissing = errors.New("topic does not exist")

// PartitionCount returns the number of partitions of topic.
func PartitionCount(ctx context.Context, c *kafka.Client, topic string) (int, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata of %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
				return 0, fmt.Errorf("%s: %w", topic, ErrTopicMissing)
			}
			return 0, fmt.Errorf("metadata of %s: %w", topic, t.Error)
		}
		if len(t.Partitions) == 0 {
			return 0, fmt.Errorf("%s: %w", topic, ErrTopicMissing)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("%s: %w", topic, ErrTopicMissing)
}

// EnsureTopics creates the topics that do not exist yet, with the given
// partition count and the cluster's default replication.
func EnsureTopics(ctx context.Context, c *kafka.Client, partitions int, topics ...string) error {
	var cfg []kafka.TopicConfig
	for _, t := range topics {
		cfg = append(cfg, kafka.TopicConfig{Topic: t, NumPartitions: partitions, ReplicationFactor: -1})
	}
	return createTopics(ctx, c, cfg)
}

func createTopics(ctx context.Context, c *kafka.Client, topics []kafka.TopicConfig) error {
	res, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("creating topics: %w", err)
	}
	for t, err := range res.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("creating topic %s: %w", t, err)
		}
	}
	return nil
}

// EndOffsets returns the log start and end offsets of every partition of
// topic.
func EndOffsets(ctx context.Context, c *kafka.Client, topic string) (start, end map[int32]int64, err error) {
	n, err := PartitionCount(ctx, c, topic)
	if err != nil {
		return nil, nil, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for p := 0; p < n; p++ {
		req.Topics[topic] = append(req.Topics[topic], kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	res, err := c.ListOffsets(ctx, req)
	if err != nil {
		return nil, nil, fmt.Errorf("listing offsets of %s: %w", topic, err)
	}
	start, end = map[int32]int64{}, map[int32]int64{}
	for _, po := range res.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("listing offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		start[int32(po.Partition)] = po.FirstOffset
		end[int32(po.Partition)] = po.LastOffset
	}
	return start, end, nil
}
