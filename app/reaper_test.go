package app

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stakhanov/stakhanov/internal/testenv"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEmbeddedBrokerRemovesMemberLostWhileJoining: a member whose
// connection closes in the middle of joining must not stay in the group on
// the embedded broker, where nothing would ever expire it: it is removed as
// soon as its connection closes. Its JoinGroup asks for a 60 s session, so
// that an expiry after the session timeout (what Apache Kafka does, and
// what the reaper does for a member silent in a stable group) would come
// too late for the test's 30 s: the survivor must own every partition again,
// alone in the group, well before.
func TestEmbeddedBrokerRemovesMemberLostWhileJoining(t *testing.T) {
	for _, tc := range []struct {
		name string
		die  func(t *testing.T, addr, group, topic string)
	}{
		// a client of JoinGroup v4+ is given its id first, then joins with it
		{"its JoinGroup with an id unanswered", func(t *testing.T, addr, group, topic string) {
			c := dialRaw(t, addr)
			defer c.close()
			resp := c.join(t, 5, group, topic, "")
			if resp.ErrorCode != kerr.MemberIDRequired.Code || resp.MemberID == "" {
				t.Fatalf("first join: error %d, member %q; want MEMBER_ID_REQUIRED with an id", resp.ErrorCode, resp.MemberID)
			}
			c.send(t, c.joinRequest(5, group, topic, resp.MemberID))
			waitMember(t, addr, group, resp.MemberID)
		}},
		// kafka-go's JoinGroup (v1): the broker makes the member at once,
		// and its id is only in the answer that never arrives
		{"its first JoinGroup unanswered", func(t *testing.T, addr, group, topic string) {
			c := dialRaw(t, addr)
			defer c.close()
			c.send(t, c.joinRequest(1, group, topic, ""))
			waitMember(t, addr, group, "dying-member-")
		}},
		// answered (the survivor rejoins, the rebalance completes), but no
		// SyncGroup follows: whoever the broker made leader waits for it
		{"its JoinGroup answered, no SyncGroup sent", func(t *testing.T, addr, group, topic string) {
			c := dialRaw(t, addr)
			defer c.close()
			if resp := c.join(t, 1, group, topic, ""); resp.ErrorCode != 0 {
				t.Fatalf("join: error %d", resp.ErrorCode)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic, group, partitions = "reap-in", "reap-group", 4
			var logs testenv.LogBuffer
			b, err := StartBroker(BrokerOptions{Listen: "127.0.0.1:0", Partitions: partitions, Topics: []string{topic},
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()

			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
			gen, err := cg.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := len(gen.Assignments[topic]); n != partitions {
				t.Fatalf("first generation owns %d partitions, want %d", n, partitions)
			}

			before := gen.ID
			tc.die(t, b.Addr, group, topic)

			client := &kafka.Client{Addr: kafka.TCP(b.Addr), Timeout: 5 * time.Second}
			for {
				members := "?"
				if res, err := client.DescribeGroups(ctx, &kafka.DescribeGroupsRequest{GroupIDs: []string{group}}); err == nil && len(res.Groups) == 1 {
					var ids []string
					for _, m := range res.Groups[0].Members {
						ids = append(ids, m.MemberID)
					}
					members = strings.Join(ids, ", ")
					if gen.ID > before && len(ids) == 1 && ids[0] == gen.MemberID && len(gen.Assignments[topic]) == partitions {
						break
					}
				}
				t.Logf("generation %d owns %d of %d partitions; members %s", gen.ID, len(gen.Assignments[topic]), partitions, members)
				next, err := cg.Next(ctx)
				if errors.Is(err, kafka.RebalanceInProgress) && ctx.Err() == nil {
					// kafka-go hands the survivor's own rejoin race to
					// the caller: ask again, as the pipeline does
					continue
				}
				gen = next
				if err != nil {
					t.Fatalf("the lost member is still in the group, or the survivor has not all partitions back (members %s): %v;\nbroker log:\n%s",
						members, err, logs.String())
				}
			}
			for !strings.Contains(logs.String(), "removed a group member whose connection closed in the middle of joining") {
				if ctx.Err() != nil {
					t.Fatalf("the broker did not say why it removed the member; log:\n%s", logs.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("generation %d owns all %d partitions alone; %s", gen.ID, partitions, strings.TrimSpace(logs.String()))
		})
	}
}

// waitMember waits until the group lists a member whose id starts with
// prefix: the broker has handled its JoinGroup.
func waitMember(t *testing.T, addr, group, prefix string) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 5 * time.Second}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		res, err := client.DescribeGroups(context.Background(), &kafka.DescribeGroupsRequest{GroupIDs: []string{group}})
		if err != nil || len(res.Groups) != 1 {
			continue
		}
		for _, m := range res.Groups[0].Members {
			if strings.HasPrefix(m.MemberID, prefix) {
				return
			}
		}
	}
	t.Fatalf("no member %s… in group %s after 10 s", prefix, group)
}

// rawClient speaks the group protocol over one connection, as a dying
// client would, without any client library's retries.
type rawClient struct {
	conn net.Conn
	f    *kmsg.RequestFormatter
	corr int32
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawClient{conn: conn, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("dying-member"))}
}

func (c *rawClient) close() { c.conn.Close() }

func (c *rawClient) joinRequest(version int16, group, topic, member string) *kmsg.JoinGroupRequest {
	meta := kmsg.NewConsumerMemberMetadata()
	meta.Topics = []string{topic}
	join := kmsg.NewPtrJoinGroupRequest()
	join.Version = version
	join.Group, join.MemberID = group, member
	join.SessionTimeoutMillis = 60_000 // its expiry would come too late for the test
	join.RebalanceTimeoutMillis = 6000
	join.ProtocolType = "consumer"
	for _, name := range []string{"range", "roundrobin"} {
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name = name
		p.Metadata = meta.AppendTo(nil)
		join.Protocols = append(join.Protocols, p)
	}
	return join
}

func (c *rawClient) send(t *testing.T, req kmsg.Request) {
	t.Helper()
	c.corr++
	if _, err := c.conn.Write(c.f.AppendRequest(nil, req, c.corr)); err != nil {
		t.Fatal(err)
	}
}

// join sends a JoinGroup and reads its answer.
func (c *rawClient) join(t *testing.T, version int16, group, topic, member string) *kmsg.JoinGroupResponse {
	t.Helper()
	join := c.joinRequest(version, group, topic, member)
	c.send(t, join)
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(c.conn, body); err != nil {
		t.Fatal(err)
	}
	resp := join.ResponseKind().(*kmsg.JoinGroupResponse)
	if err := resp.ReadFrom(body[4:]); err != nil { // after the correlation id
		t.Fatal(err)
	}
	return resp
}

// TestConnWatchFollowsGroupCalls: the watch of a connection reads the
// requests and answers it carries, fed in pieces of any size among other
// traffic, and reports exactly the members left in the middle of joining.
func TestConnWatchFollowsGroupCalls(t *testing.T) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("c"))
	req := func(r kmsg.Request, corr int32) []byte { return f.AppendRequest(nil, r, corr) }
	answer := func(r kmsg.Response, corr int32) []byte {
		b := []byte{0, 0, 0, 0, 0, 0, 0, 0}
		if r.IsFlexible() {
			b = append(b, 0)
		}
		b = r.AppendTo(b)
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
		binary.BigEndian.PutUint32(b[4:], uint32(corr))
		return b
	}
	join := func(version int16, group, member string) *kmsg.JoinGroupRequest {
		j := kmsg.NewPtrJoinGroupRequest()
		j.Version, j.Group, j.MemberID, j.SessionTimeoutMillis, j.ProtocolType = version, group, member, 7000, "consumer"
		return j
	}
	joined := func(j *kmsg.JoinGroupRequest, member string, code int16) kmsg.Response {
		r := j.ResponseKind().(*kmsg.JoinGroupResponse)
		r.MemberID, r.ErrorCode, r.Generation = member, code, 3
		return r
	}
	sync := func(version int16, group, member string) *kmsg.SyncGroupRequest {
		s := kmsg.NewPtrSyncGroupRequest()
		s.Version, s.Group, s.MemberID, s.Generation = version, group, member, 3
		return s
	}
	fetch := kmsg.NewPtrFetchRequest()
	fetch.Version = 11
	big := kmsg.NewPtrFetchResponse()
	big.Version = 11
	bt := kmsg.NewFetchResponseTopic()
	bp := kmsg.NewFetchResponseTopicPartition()
	bp.RecordBatches = bytes.Repeat([]byte{7}, 200_000)
	bt.Partitions = append(bt.Partitions, bp)
	big.Topics = append(big.Topics, bt)

	jOld, jNew, jAnswered, jFailed := join(1, "g1", ""), join(9, "g2", "m2"), join(7, "g3", ""), join(5, "g4", "m4")
	sPending, sDone := sync(5, "g5", "m5"), sync(3, "g6", "m6")
	jSynced := join(1, "g6", "")
	// client → broker, and broker → client
	in := [][]byte{req(fetch, 1), req(jOld, 2), req(jNew, 3), req(jAnswered, 4), req(jFailed, 5), req(sPending, 6), req(jSynced, 7), req(sDone, 8), req(fetch, 9)}
	out := [][]byte{answer(big, 1), answer(joined(jAnswered, "m3", 0), 4), answer(joined(jFailed, "", kerr.UnknownMemberID.Code), 5),
		answer(joined(jSynced, "m6", 0), 7), answer(sDone.ResponseKind(), 8), answer(big, 9)}

	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 20 {
		ev := &recordedEvents{}
		w := newWatchedConn(fakeAddrConn{}, ev)
		feed := func(s *frameStream, frames [][]byte) {
			all := bytes.Join(frames, nil)
			for len(all) > 0 {
				n := 1 + rng.IntN(min(len(all), 1+round*round*50))
				s.feed(all[:n])
				all = all[n:]
			}
		}
		// the calls of 2-7 are all in flight before their answers are
		// written; the SyncGroup of 8 follows the answer to its JoinGroup 7
		feed(&w.in, in[:7])
		feed(&w.out, out[:4])
		feed(&w.in, in[7:])
		feed(&w.out, out[4:])
		w.gone()
		w.gone() // once only

		got := map[string]string{}
		for _, l := range ev.gone {
			if l.host != "127.0.0.1:4242" {
				t.Fatalf("lost member with host %q", l.host)
			}
			got[l.group+"/"+l.member] = l.why
		}
		want := map[string]string{
			"g1/": "before its JoinGroup was answered", "g2/m2": "before its JoinGroup was answered",
			"g3/m3": "before it sent its SyncGroup", "g5/m5": "before its SyncGroup was answered",
		}
		if len(got) != len(want) || ev.calls != 1 {
			t.Fatalf("round %d: lost %v in %d reports, want %v", round, got, ev.calls, want)
		}
		for k, why := range want {
			if !strings.Contains(got[k], why) {
				t.Fatalf("round %d: %s lost because %q, want %q", round, k, got[k], why)
			}
		}
		if len(ev.answered) != 2 || ev.answered[0] != "g3/m3/7000" || ev.answered[1] != "g6/m6/7000" {
			t.Fatalf("round %d: joined %v", round, ev.answered)
		}
	}
}

type recordedEvents struct {
	answered []string
	gone     []lostMember
	calls    int
}

func (r *recordedEvents) joined(group, member string, session int32) {
	r.answered = append(r.answered, group+"/"+member+"/"+itoa(int64(session)))
}

func (r *recordedEvents) lost(ms []lostMember) { r.gone = append(r.gone, ms...); r.calls++ }

type fakeAddrConn struct{ net.Conn }

func (fakeAddrConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4242}
}
