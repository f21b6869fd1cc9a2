package app

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/stakhanov/stakhanov/ingest"
	"github.com/stakhanov/stakhanov/simulator"
)

// ProduceOptions configure the simulator's producer.
type ProduceOptions struct {
	Brokers []string
	// Topic receives the events. Default "shift-events".
	Topic string
	// Partitions is used when the topic has to be created. Default 8.
	Partitions int
	// Rate caps messages per second; 0 sends as fast as the broker takes
	// them. Default 0.
	Rate float64
	// Chunk is how many messages one write carries. Default 5000.
	Chunk int
	// Max stops after this many messages; 0 sends the whole stream.
	// Default 0.
	Max int64
	// OnSend, when set, is called with each write's messages just before
	// they are handed to the client, and the time of that hand-over: what
	// a latency measurement counts from. It runs on the producing
	// goroutine, so it must not block. Default nil.
	OnSend func(msgs []simulator.Message, at time.Time)
}

// DefaultProduceOptions returns the defaults.
func DefaultProduceOptions(brokers ...string) ProduceOptions {
	return ProduceOptions{Brokers: brokers, Topic: "shift-events", Partitions: 8, Chunk: 5000}
}

// Validate reports the first option outside its domain.
func (o ProduceOptions) Validate() error {
	switch {
	case len(o.Brokers) == 0:
		return errors.New("produce: no brokers")
	case o.Topic == "":
		return errors.New("produce: empty topic")
	case o.Partitions < 1:
		return fmt.Errorf("produce: partitions %d < 1", o.Partitions)
	case !(o.Rate >= 0) || math.IsInf(o.Rate, 1):
		return fmt.Errorf("produce: rate %v not a finite number ≥ 0", o.Rate)
	case o.Chunk < 1:
		return fmt.Errorf("produce: chunk %d < 1", o.Chunk)
	case o.Max < 0:
		return fmt.Errorf("produce: max %d < 0", o.Max)
	}
	return nil
}

// Produce sends the simulator's stream to Kafka, keyed by plant_id with
// Java's default partitioner, and counts what it sent in sent.
func Produce(ctx context.Context, o ProduceOptions, sim *simulator.Sim, sent *atomic.Int64) error {
	if err := o.Validate(); err != nil {
		return err
	}
	// One transport for the client that may create the topic and the
	// writer: kafka-go answers metadata from its transport's cache, so a
	// topic created through another transport stays unknown to this one
	// for a while.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(o.Brokers...), Timeout: 30 * time.Second, Transport: tr}
	if _, err := ingest.PartitionCount(ctx, client, o.Topic); err != nil {
		if err := ingest.EnsureTopics(ctx, client, o.Partitions, o.Topic); err != nil {
			return err
		}
	}
	w := &kafka.Writer{
		Addr: kafka.TCP(o.Brokers...), Topic: o.Topic, Transport: tr,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    o.Chunk,
		BatchBytes:   1 << 20, // the broker's default message.max.bytes
		BatchTimeout: time.Millisecond,
	}
	defer w.Close()
	buf := make([]kafka.Message, 0, o.Chunk)
	var pending []simulator.Message // buf's messages as simulated, for OnSend
	start := time.Now()
	var n int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if o.Rate > 0 {
			// pace against the schedule, not per message: steady on average
			due := start.Add(time.Duration(float64(n+int64(len(buf))) / o.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		if o.OnSend != nil {
			o.OnSend(pending, time.Now())
			clear(pending) // let the values go
			pending = pending[:0]
		}
		if err := w.WriteMessages(ctx, buf...); err != nil {
			return fmt.Errorf("producing to %s: %w", o.Topic, err)
		}
		n += int64(len(buf))
		if sent != nil {
			sent.Add(int64(len(buf)))
		}
		buf = buf[:0]
		return nil
	}
	chunk := o.Chunk
	if o.Rate > 0 {
		chunk = max(1, min(o.Chunk, int(o.Rate/100))) // ~10 ms of input per write
	}
	for taken := int64(0); o.Max == 0 || taken < o.Max; taken++ {
		m, ok := sim.Next()
		if !ok {
			break
		}
		if o.OnSend != nil {
			pending = append(pending, m)
		}
		buf = append(buf, kafka.Message{Key: m.Key, Value: m.Value, Time: time.Now()})
		if len(buf) >= chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}
