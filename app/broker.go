package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// BrokerOptions configure the embedded Kafka-protocol broker.
type BrokerOptions struct {
	// Listen is the address to serve; the embedded broker serves loopback
	// only. Default "127.0.0.1:9092"; port 0 picks a free one.
	Listen string
	// Partitions is the partition count of the topics it creates, the input
	// topic included. Default 8.
	Partitions int
	// Topics are created at start. Default the pipeline's input topic.
	Topics []string
	// DataDir persists the log across restarts; empty keeps it in memory.
	DataDir string
	// Logger receives the broker's notable events. Default slog.Default().
	Logger *slog.Logger
}

// DefaultBrokerOptions returns the defaults.
func DefaultBrokerOptions() BrokerOptions {
	return BrokerOptions{Listen: "127.0.0.1:9092", Partitions: 8, Topics: []string{"shift-events"}}
}

// Validate checks the options.
func (o BrokerOptions) Validate() error {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("broker listen address %q: %w", o.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("broker listen address %q: the embedded broker serves loopback only", o.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("broker listen port %q invalid", port)
	}
	if o.Partitions < 1 {
		return fmt.Errorf("broker partitions %d < 1", o.Partitions)
	}
	return nil
}

// Broker is a running embedded broker.
type Broker struct {
	cluster *kfake.Cluster
	stop    context.CancelFunc
	done    chan struct{}
	// Addr is the bootstrap address clients use.
	Addr string
}

// StartBroker starts an in-process Kafka-protocol broker (franz-go's kfake)
// that creates missing topics on first use with the configured partition
// count, as a development cluster would.
func StartBroker(o BrokerOptions) (*Broker, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	_, portStr, _ := net.SplitHostPort(o.Listen)
	port, _ := strconv.Atoi(portStr)
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	r := newReaper(log)
	opts := []kfake.Opt{
		kfake.ListenFn(r.listen),
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(o.Partitions),
	}
	if len(o.Topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(o.Partitions), o.Topics...))
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting embedded broker on %s: %w", o.Listen, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) == 0 {
		c.Close()
		return nil, errors.New("embedded broker has no listener")
	}
	ctx, stop := context.WithCancel(context.Background())
	b := &Broker{cluster: c, Addr: addrs[0], stop: stop, done: make(chan struct{})}
	r.attach(c, b.Addr)
	go func() {
		defer close(b.done)
		r.run(ctx)
	}()
	return b, nil
}

// Close stops the broker.
func (b *Broker) Close() {
	b.stop()
	<-b.done
	b.cluster.Close()
}
