package app

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEmbeddedBrokerExpiresMemberDeadInJoin: a member that dies while its
// JoinGroup waits must not keep its partitions for ever on the embedded
// broker. Without the reaper the surviving member's generations stay at half
// the partitions.
func TestEmbeddedBrokerExpiresMemberDeadInJoin(t *testing.T) {
	const topic, group, partitions = "reap-in", "reap-group", 4
	b, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: partitions, Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           []string{b.Addr},
		Topics:            []string{topic},
		HeartbeatInterval: 500 * time.Millisecond,
		SessionTimeout:    6 * time.Second,
		RebalanceTimeout:  6 * time.Second,
		Timeout:           5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()

	owned := func(gen *kafka.Generation) int { return len(gen.Assignments[topic]) }
	gen, err := cg.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := owned(gen); n != partitions {
		t.Fatalf("first generation owns %d partitions, want %d", n, partitions)
	}

	joinAndDie(t, b.Addr, group, topic)

	// The dead member's join forces a rebalance in which it is counted and
	// given partitions; a later generation must own them all again.
	sawSplit := false
	for {
		gen, err = cg.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the partitions to come back (split seen: %v): %v", sawSplit, err)
		}
		n := owned(gen)
		t.Logf("generation %d owns %d of %d partitions", gen.ID, n, partitions)
		if n < partitions {
			sawSplit = true
			continue
		}
		if !sawSplit {
			t.Fatal("the dead member was never given partitions: the scenario did not happen")
		}
		return
	}
}

// joinAndDie sends the two JoinGroup requests a new member sends (the
// first only obtains a member id) and closes its connection before the
// second is answered, as a process killed in that moment does.
func joinAndDie(t *testing.T, addr, group, topic string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))

	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = 5
	join.Group = group
	join.SessionTimeoutMillis = 6000
	join.RebalanceTimeoutMillis = 6000
	join.ProtocolType = "consumer"
	for _, name := range []string{"range", "roundrobin"} {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = name
		p.Metadata = meta.AppendTo(nil)
		join.Protocols = append(join.Protocols, p)
	}
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("dying-member"))
	if _, err := conn.Write(f.AppendRequest(nil, join, 1)); err != nil {
		t.Fatal(err)
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(conn, body); err != nil {
		t.Fatal(err)
	}
	resp := join.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Version = join.Version
	if err := resp.ReadFrom(body[4:]); err != nil { // after the correlation id
		t.Fatal(err)
	}
	if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
		t.Fatalf("first join: error %d, member %q; want MEMBER_ID_REQUIRED with an id", resp.ErrorCode, resp.MemberID)
	}
	join.MemberID = resp.MemberID
	if _, err := conn.Write(f.AppendRequest(nil, join, 2)); err != nil {
		t.Fatal(err)
	}
	// Give the broker time to read the request before the connection goes.
	time.Sleep(200 * time.Millisecond)
}
