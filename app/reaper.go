package app

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The embedded broker expires a classic consumer-group member with a session
// timer that it starts when it answers the member. A member that dies while
// its JoinGroup waits for the rebalance never gets that timer: the answer
// cannot be delivered, the rebalance completes with the dead member in it,
// the leader assigns it partitions, and those partitions stall until some
// later rebalance. Apache Kafka expires such a member after its session
// timeout. The reaper gives the embedded broker that behaviour: it watches
// the group requests each member sends, and a member of a stable group that
// has been silent for longer than its session timeout is removed with a
// LeaveGroup on its behalf, which starts the rebalance that hands its
// partitions to the living.
//
// Only stable groups are reaped because members waiting in JoinGroup or
// SyncGroup legitimately send nothing for up to the rebalance timeout.
type reaper struct {
	cluster *kfake.Cluster
	addr    string
	log     *slog.Logger
	every   time.Duration

	mu     sync.Mutex
	seen   map[string]map[string]seenMember // group → member id → last request
	stable map[string]stableMark            // group → since when stable, by generation
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

func newReaper(c *kfake.Cluster, addr string, log *slog.Logger) *reaper {
	r := &reaper{
		cluster: c,
		addr:    addr,
		log:     log,
		every:   time.Second,
		seen:    map[string]map[string]seenMember{},
		stable:  map[string]stableMark{},
	}
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		c.ControlKey(int16(key), r.observe)
	}
	return r
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

// run sweeps until ctx ends.
func (r *reaper) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.sweep(ctx, time.Now())
		}
	}
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

	client := &kafka.Client{Addr: kafka.TCP(r.addr), Timeout: 5 * time.Second}
	for _, d := range dead {
		resp, err := client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{
			GroupID: d.group,
			Members: []kafka.LeaveGroupRequestMember{{ID: d.member}},
		})
		if err == nil && resp.Error != nil {
			err = resp.Error
		}
		if err != nil {
			r.log.Warn("embedded broker: removing a silent group member failed; will retry",
				"group", d.group, "member", d.member, "err", err)
			continue
		}
		r.log.Info("embedded broker: removed a group member silent past its session timeout",
			"group", d.group, "member", d.member, "silent", d.for_.Round(time.Millisecond))
	}
}
