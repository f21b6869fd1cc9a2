package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteRecords deletes the records of topic's partition below offset
// before, as retention does (Kafka's DeleteRecords, on the embedded broker
// and on Apache Kafka alike): the partition's log then starts at before.
func DeleteRecords(t testing.TB, addr, topic string, partition int32, before int64) {
	t.Helper()
	c, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.TimeoutMillis = 30_000
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, before
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shards := c.RequestSharded(ctx, req)
	for _, sh := range shards {
		if sh.Err != nil {
			t.Fatalf("deleting records of %s/%d below %d: %v", topic, partition, before, sh.Err)
		}
		resp := sh.Resp.(*kmsg.DeleteRecordsResponse)
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					t.Fatalf("deleting records of %s/%d below %d: %v", topic, rp.Partition, before, err)
				}
				if rp.LowWatermark != before {
					t.Fatalf("deleting records of %s/%d below %d: the log starts at %d", topic, rp.Partition, before, rp.LowWatermark)
				}
			}
		}
	}
}
