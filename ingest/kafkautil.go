package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// base holds what every role needs: options, a logger, a Kafka client,
// and the connector every connection is made with (TLS, SASL).
type base struct {
	opts   Options
	log    *slog.Logger
	conn   *Connector
	client *kafka.Client
}

func newBase(opts Options) (base, error) {
	conn, err := NewConnector(opts.Brokers, opts.Security)
	if err != nil {
		return base{}, fmt.Errorf("%w: %w", ErrInvalidOptions, err)
	}
	return base{opts: opts, log: opts.logger(), conn: conn, client: conn.Client(30 * time.Second)}, nil
}

// authFailure turns a refusal of the credentials or of TLS into the error
// that stops the pipeline: the same settings would only be refused again,
// and retrying would hide a configuration error behind a stream of
// warnings.
func (b *base) authFailure(what string, err error) error {
	if !IsAuthError(err) {
		return nil
	}
	if errors.Is(err, ErrAuthentication) {
		return err
	}
	return fmt.Errorf("%s: %w: %w (check kafka.tls and kafka.sasl settings)", what, ErrAuthentication, err)
}

// writer makes a producer for topic. Acks from all in-sync replicas: a
// record the pipeline relies on (an alert, a dead letter, a result, a
// checkpoint) must survive a broker failover.
func (b *base) writer(topic string, balancer kafka.Balancer) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(b.opts.Brokers...),
		Transport:    b.conn.Transport,
		Topic:        topic,
		Balancer:     balancer,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    10_000,
		// a produce batch over the broker's message.max.bytes (1 MiB by
		// default) is refused whole; stay under it
		BatchBytes:   1 << 20,
		BatchTimeout: time.Millisecond,
		MaxAttempts:  3,
	}
}

// keyedByPlant is Java's default partitioner, so that keyed alerts land
// where a JVM producer would put them.
var keyedByPlant = &kafka.Murmur2Balancer{}

// samePartition sends a message to the partition number its key starts
// with ("3" or "3/…"): results and checkpoints of input partition p go to
// partition p of their topic, which keeps them in order and lets the
// reader of p read only p.
type samePartition struct{}

func (samePartition) Balance(msg kafka.Message, partitions ...int) int {
	n := 0
	for _, c := range msg.Key {
		if c < '0' || c > '9' {
			break
		}
		n = n*10 + int(c-'0')
	}
	for _, p := range partitions {
		if p == n {
			return p
		}
	}
	return partitions[n%len(partitions)]
}

func partitionKey(p int32, rest string) []byte {
	k := strconv.AppendInt(nil, int64(p), 10)
	if rest != "" {
		k = append(k, '/')
		k = append(k, rest...)
	}
	return k
}

// retry runs fn until it succeeds or ctx ends, backing off and logging what
// it is waiting for.
func (b *base) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	backoff := b.opts.RetryBackoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				b.log.Info("recovered", "task", what, "attempts", attempt)
			}
			return nil
		}
		var stop backoffStop
		if errors.As(err, &stop) {
			return fmt.Errorf("%s: %w", what, stop.error)
		}
		if errors.Is(err, ErrSinkFailed) {
			return fmt.Errorf("%s: %w", what, err)
		}
		if auth := b.authFailure(what, err); auth != nil {
			return auth
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		b.log.Warn("waiting: "+what+" failed", "err", err, "attempt", attempt, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return fmt.Errorf("%s: %w (gave up: %w)", what, err, ctx.Err())
		}
		backoff = min(2*backoff, b.opts.RetryBackoffMax)
	}
}

// fetch reads one batch of a partition from offset, retrying until it gets
// an answer or ctx ends. OffsetOutOfRange (the log was truncated under
// us) moves to the log's start, with a warning.
func (b *base) fetch(ctx context.Context, topic string, part int32, offset int64, maxBytes int) (*kafka.FetchResponse, int64, error) {
	backoff := b.opts.RetryBackoff
	for {
		resp, err := b.client.Fetch(ctx, &kafka.FetchRequest{
			Topic: topic, Partition: int(part), Offset: offset,
			MinBytes: 1, MaxBytes: int64(maxBytes), MaxWait: b.opts.FetchMaxWait,
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err == nil {
			return resp, offset, nil
		}
		if ctx.Err() != nil {
			return nil, offset, ctx.Err()
		}
		if errors.Is(err, kafka.OffsetOutOfRange) {
			b.log.Warn("offset is outside the partition's log; continuing from its start", "topic", topic, "partition", part, "offset", offset)
			offset = kafka.FirstOffset
			continue
		}
		b.log.Warn(fmt.Sprintf("waiting: fetching %s/%d failed", topic, part), "offset", offset, "err", err, "backoff", backoff)
		if !sleep(ctx, backoff) {
			return nil, offset, ctx.Err()
		}
		backoff = min(2*backoff, b.opts.RetryBackoffMax)
	}
}

// records yields the records of a fetch at or after offset from: a
// compressed batch may start before the offset asked for. A response that
// breaks off is logged; the next fetch asks again from where it stopped.
func (b *base) records(resp *kafka.FetchResponse, from int64, topic string, part int32) iter.Seq[*kafka.Record] {
	return func(yield func(*kafka.Record) bool) {
		for {
			rec, err := resp.Records.ReadRecord()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					b.log.Warn("reading fetched records failed", "topic", topic, "partition", part, "err", err)
				}
				return
			}
			if from >= 0 && rec.Offset < from {
				continue
			}
			if !yield(rec) {
				return
			}
		}
	}
}

// joinGroup makes a consumer group on topic.
func (b *base) joinGroup(id, topic string) (*kafka.ConsumerGroup, error) {
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                id,
		Brokers:           b.opts.Brokers,
		Dialer:            b.conn.Dialer,
		Topics:            []string{topic},
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		JoinGroupBackoff:  time.Second,
		StartOffset:       kafka.FirstOffset,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { b.log.Debug("kafka group " + id + ": " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer group %s: %w", id, err)
	}
	return g, nil
}

// generations runs each generation of group with fn until ctx ends. fn
// returns when its generation is over; an error from it is fatal.
func (b *base) generations(ctx context.Context, id string, group *kafka.ConsumerGroup, fn func(*kafka.Generation) error) error {
	closeGroup := context.AfterFunc(ctx, func() { group.Close() })
	defer closeGroup()
	defer group.Close()
	backoff := b.opts.RetryBackoff
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
			return nil
		}
		if auth := b.authFailure("joining consumer group "+id, err); auth != nil {
			return auth
		}
		if err != nil {
			b.log.Warn("waiting: joining consumer group failed", "group", id, "err", err, "backoff", backoff)
			if !sleep(ctx, backoff) {
				return nil
			}
			backoff = min(2*backoff, b.opts.RetryBackoffMax)
			continue
		}
		backoff = b.opts.RetryBackoff
		if err := fn(gen); err != nil {
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
	dst = slices.Grow(dst, n)[:start+n]
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

func sortedKeys[V any](m map[int32]V) []int32 {
	ks := make([]int32, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
