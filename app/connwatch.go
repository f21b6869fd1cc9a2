package app

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The embedded broker answers a JoinGroup or SyncGroup into a connection
// that has closed as if the answer had arrived: whether the member then
// gets a session timer depends on a race inside the broker, and a member
// without one is never expired. Such a member is counted in the next
// rebalance, may be made its leader (whose SyncGroup the living then wait
// for until the rebalance timeout) and keeps the partitions it is given.
// Apache Kafka expires it after its session timeout in every case.
//
// The broker's connections are therefore watched: for each one, the group
// requests it carries and the answers written back. When a connection
// closes while a member's JoinGroup or SyncGroup on it has no answer, or
// after its JoinGroup was answered but before it sent its SyncGroup, that
// member can take no further part in the group — the next request of a
// live client would have been that SyncGroup, on the same connection —
// and the reaper removes it at once (reaper.lost).

// lostMember is a group member whose connection closed in the middle of
// joining.
type lostMember struct {
	group  string
	member string // "" when its first JoinGroup, which names none, had no answer
	host   string // the connection's remote address, which the broker records for a member it creates
	why    string
}

// connEvents is what a watched connection reports.
type connEvents interface {
	// joined: a JoinGroup was answered without error: member's session
	// timeout is now known.
	joined(group, member string, sessionMillis int32)
	// lost: the connection closed with these members in the middle of
	// joining.
	lost([]lostMember)
}

type watchListener struct {
	net.Listener
	ev connEvents
}

func (l *watchListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newWatchedConn(c, l.ev), nil
}

// watchedConn passes everything through and follows the group requests:
// requests are read from the client, answers written to it.
type watchedConn struct {
	net.Conn
	ev   connEvents
	host string

	mu      sync.Mutex
	in, out frameStream
	pending map[int32]groupCall // correlation id → a JoinGroup or SyncGroup awaiting its answer
	synced  map[string]string   // group → member whose JoinGroup was answered here and who has not sent its SyncGroup
	once    sync.Once
}

type groupCall struct {
	req           kmsg.Request // *kmsg.JoinGroupRequest or *kmsg.SyncGroupRequest
	group, member string
}

// frameLimit bounds what is kept of one group request or answer; larger
// ones are let through unread (a JoinGroup's member metadata is small).
const frameLimit = 4 << 20

func newWatchedConn(c net.Conn, ev connEvents) *watchedConn {
	w := &watchedConn{Conn: c, ev: ev, host: c.RemoteAddr().String(), pending: map[int32]groupCall{}, synced: map[string]string{}}
	// a request starts with its key, version and correlation id
	w.in = frameStream{peek: 8, decide: func(first []byte) int {
		switch int16(binary.BigEndian.Uint16(first)) {
		case kmsg.JoinGroup.Int16(), kmsg.SyncGroup.Int16():
			return frameLimit
		}
		return 0
	}, frame: w.request}
	// an answer starts with its correlation id
	w.out = frameStream{peek: 4, decide: func(first []byte) int {
		if _, ok := w.pending[int32(binary.BigEndian.Uint32(first))]; ok {
			return frameLimit
		}
		return 0
	}, frame: w.answer}
	return w
}

func (w *watchedConn) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 {
		w.mu.Lock()
		w.in.feed(p[:n])
		w.mu.Unlock()
	}
	if err != nil {
		w.gone()
	}
	return n, err
}

func (w *watchedConn) Write(p []byte) (int, error) {
	n, err := w.Conn.Write(p)
	if n > 0 {
		w.mu.Lock()
		w.out.feed(p[:n])
		w.mu.Unlock()
	}
	if err != nil {
		w.gone()
	}
	return n, err
}

func (w *watchedConn) Close() error {
	w.gone()
	return w.Conn.Close()
}

// request notes a JoinGroup or SyncGroup read from the client.
func (w *watchedConn) request(body []byte, whole bool) {
	if !whole {
		return
	}
	r := kbin.Reader{Src: body}
	key, version, corr := r.Int16(), r.Int16(), r.Int32()
	r.NullableString() // client id
	req := kmsg.RequestForKey(key)
	if req == nil || !r.Ok() {
		return
	}
	req.SetVersion(version)
	if req.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if err := req.ReadFrom(r.Src); err != nil {
		return
	}
	switch q := req.(type) {
	case *kmsg.JoinGroupRequest:
		delete(w.synced, q.Group)
		w.pending[corr] = groupCall{req: q, group: q.Group, member: q.MemberID}
	case *kmsg.SyncGroupRequest:
		delete(w.synced, q.Group)
		w.pending[corr] = groupCall{req: q, group: q.Group, member: q.MemberID}
	}
}

// answer notes the answer to a pending call written to the client.
func (w *watchedConn) answer(body []byte, whole bool) {
	r := kbin.Reader{Src: body}
	corr := r.Int32()
	call, ok := w.pending[corr]
	if !ok || !r.Ok() {
		return
	}
	delete(w.pending, corr) // answered, whatever it says
	join, ok := call.req.(*kmsg.JoinGroupRequest)
	if !ok || !whole {
		return
	}
	resp := join.ResponseKind().(*kmsg.JoinGroupResponse)
	if resp.IsFlexible() {
		kmsg.SkipTags(&r)
	}
	if err := resp.ReadFrom(r.Src); err != nil || resp.ErrorCode != 0 || resp.MemberID == "" {
		return
	}
	w.synced[call.group] = resp.MemberID
	w.ev.joined(call.group, resp.MemberID, join.SessionTimeoutMillis)
}

// gone reports, once, the members this connection leaves in the middle of
// joining.
func (w *watchedConn) gone() {
	w.once.Do(func() {
		w.mu.Lock()
		var lost []lostMember
		for _, call := range w.pending {
			why := "its connection closed before its JoinGroup was answered"
			if _, ok := call.req.(*kmsg.SyncGroupRequest); ok {
				why = "its connection closed before its SyncGroup was answered"
			}
			lost = append(lost, lostMember{group: call.group, member: call.member, host: w.host, why: why})
		}
		for g, m := range w.synced {
			lost = append(lost, lostMember{group: g, member: m, host: w.host,
				why: "its connection closed after its JoinGroup was answered, before it sent its SyncGroup"})
		}
		w.mu.Unlock()
		if len(lost) > 0 {
			w.ev.lost(lost)
		}
	})
}

// frameStream follows Kafka's size-prefixed frames through a byte stream
// fed in pieces of any size. Of each frame it reads the first peek bytes,
// asks decide how many to keep (0 for none), and hands frame what it kept
// once the frame is complete: whole says that is the entire frame.
type frameStream struct {
	peek   int
	decide func(first []byte) int
	frame  func(kept []byte, whole bool)

	size    [4]byte
	nsize   int
	length  int // of the current frame
	left    int // of the current frame, still to come
	keep    int
	decided bool
	buf     []byte
}

func (s *frameStream) feed(p []byte) {
	for len(p) > 0 {
		if s.nsize < 4 {
			n := copy(s.size[s.nsize:], p)
			s.nsize += n
			p = p[n:]
			if s.nsize < 4 {
				return
			}
			s.length = int(binary.BigEndian.Uint32(s.size[:]))
			s.left, s.buf, s.decided = s.length, s.buf[:0], false
			if s.length < s.peek {
				s.decided = true // too short to be a frame of interest
				s.keep = 0
			}
			if s.left == 0 {
				s.nsize = 0
			}
			continue
		}
		if !s.decided {
			n := min(s.peek-len(s.buf), len(p))
			s.buf = append(s.buf, p[:n]...)
			s.left -= n
			p = p[n:]
			if len(s.buf) < s.peek {
				return
			}
			s.keep, s.decided = s.decide(s.buf), true
			if s.keep == 0 {
				s.buf = s.buf[:0]
			}
		}
		n := min(s.left, len(p))
		if room := s.keep - len(s.buf); room > 0 {
			s.buf = append(s.buf, p[:min(n, room)]...)
		}
		s.left -= n
		p = p[n:]
		if s.left == 0 {
			if s.keep > 0 {
				s.frame(s.buf, len(s.buf) == s.length)
			}
			s.nsize = 0
			if cap(s.buf) > 64<<10 {
				s.buf = nil
			}
		}
	}
}
