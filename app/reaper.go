package app

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The embedded broker expires a classic consumer-group member with a session
// timer that it starts when it answers the member. Two kinds of member never
// get that timer, and so are never expired, where Apache Kafka expires them
// after their session timeout:
//
//   - one whose connection closes in the middle of joining (its JoinGroup or
//     SyncGroup unanswered, or answered but not followed by its SyncGroup):
//     the broker answers into the closed connection as if the answer had
//     arrived. Such a member is counted in the rebalance, may be made its
//     leader, whose SyncGroup the living then wait for until the rebalance
//     timeout, and keeps the partitions it is given. The broker's connections
//     are watched (connwatch.go), and such a member is removed as soon as its
//     connection closes;
//   - any other member that falls silent in a stable group without a timer
//     running: the reaper watches the group requests each member sends, and
//     one silent for longer than its session timeout is removed.
//
// Both are removed with a LeaveGroup on the member's behalf, which starts the
// rebalance that hands its partitions to the living. Members waiting in
// JoinGroup or SyncGroup on a live connection are never touched: they
// legitimately send nothing for up to the rebalance timeout.
type reaper struct {
	cluster *kfake.Cluster
	addr    string
	log     *slog.Logger
	every   time.Duration
	wake    chan struct{} // a connection was lost

	mu     sync.Mutex
	seen   map[string]map[string]seenMember // group → member id → last request
	stable map[string]stableMark            // group → since when stable, by generation
	gone   []lostEntry                      // members lost with their connections, to remove
}

// lostEntry is a lost member still to remove; one whose id is unknown is
// looked for among the group's members by its connection's address until
// until.
type lostEntry struct {
	lostMember
	until time.Time
}

type seenMember struct {
	at      time.Time
	session time.Duration
}

type stableMark struct {
	epoch int32
	since time.Time
}

// defaultSession is assumed for a member whose JoinGroup the reaper never
// saw; it is Kafka's default session.timeout.ms.
const defaultSession = 45 * time.Second

// newReaper makes a reaper; attach gives it its broker.
func newReaper(log *slog.Logger) *reaper {
	return &reaper{
		log:    log,
		every:  time.Second,
		wake:   make(chan struct{}, 1),
		seen:   map[string]map[string]seenMember{},
		stable: map[string]stableMark{},
	}
}

// attach starts observing c's group requests; addr is where a LeaveGroup
// is sent.
func (r *reaper) attach(c *kfake.Cluster, addr string) {
	r.cluster, r.addr = c, addr
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		c.ControlKey(int16(key), r.observe)
	}
}

// listen is the broker's listener: its connections are watched.
func (r *reaper) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &watchListener{Listener: ln, ev: r}, nil
}

// joined: a connection saw member's JoinGroup answered.
func (r *reaper) joined(group, member string, sessionMillis int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.touch(group, member, time.Now(), time.Duration(sessionMillis)*time.Millisecond)
}

// lost: a connection closed with these members in the middle of joining.
// A member the broker created for a first JoinGroup that had no answer has
// an id nobody saw; it is looked for by its connection's address for a few
// seconds (the broker may not have handled that JoinGroup yet).
func (r *reaper) lost(ms []lostMember) {
	r.mu.Lock()
	for _, m := range ms {
		r.gone = append(r.gone, lostEntry{lostMember: m, until: time.Now().Add(5 * time.Second)})
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// observe runs on the broker's request loop; it only records and never
// handles the request, so the broker serves it as usual.
func (r *reaper) observe(req kmsg.Request) (kmsg.Response, error, bool) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch q := req.(type) {
	case *kmsg.JoinGroupRequest:
		if q.MemberID != "" {
			r.touch(q.Group, q.MemberID, now, time.Duration(q.SessionTimeoutMillis)*time.Millisecond)
		}
	case *kmsg.SyncGroupRequest:
		r.touch(q.Group, q.MemberID, now, 0)
	case *kmsg.HeartbeatRequest:
		r.touch(q.Group, q.MemberID, now, 0)
	case *kmsg.OffsetCommitRequest:
		r.touch(q.Group, q.MemberID, now, 0)
	case *kmsg.LeaveGroupRequest:
		delete(r.seen[q.Group], q.MemberID)
		for _, m := range q.Members {
			delete(r.seen[q.Group], m.MemberID)
		}
	}
	return nil, nil, false
}

func (r *reaper) touch(group, member string, at time.Time, session time.Duration) {
	if group == "" || member == "" {
		return
	}
	ms := r.seen[group]
	if ms == nil {
		ms = map[string]seenMember{}
		r.seen[group] = ms
	}
	s := ms[member]
	s.at = at
	if session > 0 {
		s.session = session
	}
	ms[member] = s
}

// run removes lost members as they are reported and sweeps for silent
// ones until ctx ends.
func (r *reaper) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			r.removeLost(ctx, time.Now())
		case <-t.C:
			r.removeLost(ctx, time.Now())
			r.sweep(ctx, time.Now())
		}
	}
}

// removeLost removes the members lost with their connections.
func (r *reaper) removeLost(ctx context.Context, now time.Time) {
	r.mu.Lock()
	todo := r.gone
	r.gone = nil
	r.mu.Unlock()
	var again []lostEntry
	for _, l := range todo {
		if l.member != "" {
			r.leave(ctx, l.group, l.member, "embedded broker: removed a group member whose connection closed in the middle of joining", "why", l.why)
			continue
		}
		found := false
		if info := r.cluster.GroupInfo(l.group); info != nil {
			for _, m := range info.Members {
				r.mu.Lock()
				_, known := r.seen[l.group][m.MemberID]
				r.mu.Unlock()
				// created for that connection's JoinGroup, and never heard of since
				if m.ClientHost == l.host && !known {
					found = true
					r.leave(ctx, l.group, m.MemberID, "embedded broker: removed a group member whose connection closed in the middle of joining", "why", l.why)
				}
			}
		}
		if !found && now.Before(l.until) {
			again = append(again, l)
		}
	}
	if len(again) > 0 {
		r.mu.Lock()
		r.gone = append(r.gone, again...)
		r.mu.Unlock()
	}
}

// leave removes member from group with a LeaveGroup on its behalf and logs
// msg with args; a failure is logged and left to the next sweep.
func (r *reaper) leave(ctx context.Context, group, member, msg string, args ...any) bool {
	client := &kafka.Client{Addr: kafka.TCP(r.addr), Timeout: 5 * time.Second}
	resp, err := client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{
		GroupID: group,
		Members: []kafka.LeaveGroupRequestMember{{ID: member}},
	})
	if err == nil && resp.Error != nil {
		err = resp.Error
	}
	if err == nil && len(resp.Members) > 0 && resp.Members[0].Error != nil {
		err = resp.Members[0].Error
	}
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, kafka.UnknownMemberId) {
			r.log.Warn("embedded broker: removing a group member failed", "group", group, "member", member, "err", err)
		}
		return false
	}
	r.log.Info(msg, append([]any{"group", group, "member", member}, args...)...)
	return true
}

// silent is a member to remove.
type silent struct {
	group, member string
	for_          time.Duration
}

func (r *reaper) sweep(ctx context.Context, now time.Time) {
	r.mu.Lock()
	groups := make([]string, 0, len(r.seen))
	for g := range r.seen {
		groups = append(groups, g)
	}
	r.mu.Unlock()

	var dead []silent
	for _, g := range groups {
		info := r.cluster.GroupInfo(g)
		r.mu.Lock()
		if info == nil {
			delete(r.seen, g)
			delete(r.stable, g)
			r.mu.Unlock()
			continue
		}
		if info.State != "Stable" {
			delete(r.stable, g)
			r.mu.Unlock()
			continue
		}
		mark, ok := r.stable[g]
		if !ok || mark.epoch != info.Epoch {
			mark = stableMark{epoch: info.Epoch, since: now}
			r.stable[g] = mark
		}
		present := make(map[string]bool, len(info.Members))
		for _, m := range info.Members {
			present[m.MemberID] = true
			s := r.seen[g][m.MemberID]
			last := mark.since
			if s.at.After(last) {
				last = s.at
			}
			session := s.session
			if session == 0 {
				session = defaultSession
			}
			if quiet := now.Sub(last); quiet > session {
				dead = append(dead, silent{group: g, member: m.MemberID, for_: quiet})
			}
		}
		for id := range r.seen[g] {
			if !present[id] {
				delete(r.seen[g], id)
			}
		}
		r.mu.Unlock()
	}

	for _, d := range dead {
		r.leave(ctx, d.group, d.member, "embedded broker: removed a group member silent past its session timeout",
			"silent", d.for_.Round(time.Millisecond))
	}
}
