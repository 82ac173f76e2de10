package load

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/tertulia/tertulia/proto/chat/v1/chatcodes"
)

// conn is one client connection of either transport, set up: its welcome
// and, if it joined a room, its own room_joined have been read. send may be
// called from one goroutine at a time; close may be called from any and
// waits for the connection's reader to stop.
type conn interface {
	send(room string, payload []byte) error
	close()
}

// dialer opens connections of one transport; each delivers what it reads to
// m. dial returns once the connection is set up: connected, its welcome
// read, and, unless room is "", room joined with id joinID and its
// room_joined read. It is how long this takes that the connect rate counts.
type dialer interface {
	dial(ctx context.Context, user, room, joinID string, m *member) (conn, error)
	name() string
}

// member is what the tool knows of one connection: it is the sink its reader
// reports to, one event at a time (first the dialing goroutine, during the
// set-up, then the connection's reader). Its counters are atomics read by
// the scenario.
type member struct {
	hist   *Histogram
	joinID string        // the id of this connection's own join_room; "" if it joins no room
	ready  chan struct{} // closed when set up, or when the set-up failed (then setupErr is set)

	// Set-up state, owned by whoever reads the connection at the time.
	welcomed, joined, isReady bool
	setupErr                  error

	seen    seqTally      // the tool's messages received, each told apart
	refused atomic.Int64  // messages this connection sent that the server refused as unavailable
	ended   atomic.Bool   // the connection ended
	gone    chan struct{} // closed when the connection ends
	dropped atomic.Bool   // ...and not because the tool closed it
	errMsg  atomic.Pointer[string]
}

func newMember(h *Histogram, joinID string) *member {
	return &member{hist: h, joinID: joinID, ready: make(chan struct{}), gone: make(chan struct{})}
}

// codeUnavailable is the error code of a message the server could not take
// (its broker is away): the message was refused, not lost, and the sender
// was told so.
const codeUnavailable = chatcodes.CodeUnavailable

// onWelcome is called for the connection's first frame, its welcome.
func (m *member) onWelcome() {
	m.welcomed = true
	m.checkReady()
}

// onJoined is called for every room_joined frame.
func onJoined[T string | []byte](m *member, id T) {
	if m.joinID != "" && string(id) == m.joinID {
		m.joined = true
		m.checkReady()
	}
}

// onError is called for every error frame: the refusal of this
// connection's join fails its set-up; a message refused as unavailable is
// counted as refused.
func onError[T string | []byte](m *member, code, id, text T) {
	switch {
	case m.joinID != "" && string(id) == m.joinID:
		m.failSetup(fmt.Errorf("join refused: %s: %s", code, text))
	case string(code) == codeUnavailable:
		m.refused.Add(1)
	}
}

// onMessage is called by readers for every chat message, with its payload
// and the time its frame was read; messages not stamped by the tool are
// skipped. A copy of a message already received counts as extra, and its
// latency is recorded as well.
func onMessage[T string | []byte](m *member, payload T, now time.Time) {
	s, ok := readStamp(payload)
	if !ok {
		return
	}
	m.seen.record(s, now)
	if m.hist != nil {
		m.hist.Record(now.Sub(time.Unix(0, s.sent)))
	}
}

// received is how many of the tool's messages the connection read: each
// distinct one once, plus the extra copies.
func (m *member) received() int64 {
	return m.seen.got.Load() + m.seen.extra.Load()
}

func (m *member) checkReady() {
	if !m.isReady && m.welcomed && (m.joined || m.joinID == "") {
		m.isReady = true
		close(m.ready)
	}
}

func (m *member) failSetup(err error) {
	if !m.isReady {
		m.isReady, m.setupErr = true, err
		close(m.ready)
	}
}

// onEnd is called once by the reader when the connection ends; closedByUs
// says the tool ended it.
func (m *member) onEnd(err error, closedByUs bool) {
	m.ended.Store(true)
	close(m.gone)
	if !closedByUs {
		m.dropped.Store(true)
		if err != nil {
			s := err.Error()
			m.errMsg.Store(&s)
		}
	}
	if err == nil {
		err = errors.New("connection closed")
	}
	m.failSetup(fmt.Errorf("before set-up: %w", err))
}

// waitReady waits until the connection is set up, by a reader goroutine
// other than the caller; the error says why the set-up failed.
func (m *member) waitReady(ctx context.Context) error {
	select {
	case <-m.ready:
		return m.setupErr
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
