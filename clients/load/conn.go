package load

import (
	"context"
	"sync/atomic"
	"time"
)

// conn is one client connection of either transport. send and join may be
// called from one goroutine at a time; close may be called from any and
// waits for the connection's reader to stop.
type conn interface {
	join(room, id string) error
	send(room string, payload []byte) error
	close()
}

// dialer opens connections of one transport; each delivers what it reads to m.
type dialer interface {
	dial(ctx context.Context, user string, m *member) (conn, error)
	name() string
}

// member is what the tool knows of one connection: it is the sink its reader
// goroutine reports to. Its counters are atomics read by the scenario.
type member struct {
	hist    *Histogram
	joinID  string        // the id of this connection's own join_room
	joined  chan struct{} // closed when that join's room_joined arrives
	gotJoin atomic.Bool

	messages atomic.Int64 // chat messages with a send time received
	ended    atomic.Bool  // the connection ended
	dropped  atomic.Bool  // ...and not because the tool closed it
	errMsg   atomic.Pointer[string]
}

func newMember(h *Histogram, joinID string) *member {
	return &member{hist: h, joinID: joinID, joined: make(chan struct{})}
}

// onJoined is called by readers for every room_joined frame.
func onJoined[T string | []byte](m *member, id T) {
	if string(id) == m.joinID && m.gotJoin.CompareAndSwap(false, true) {
		close(m.joined)
	}
}

// onMessage is called by readers for every chat message, with its payload.
func onMessage[T string | []byte](m *member, payload T, now time.Time) {
	sent, ok := payloadTime(payload)
	if !ok {
		return
	}
	m.messages.Add(1)
	if m.hist != nil {
		m.hist.Record(now.Sub(time.Unix(0, sent)))
	}
}

// onEnd is called once by the reader when the connection ends; closedByUs
// says the tool ended it.
func (m *member) onEnd(err error, closedByUs bool) {
	m.ended.Store(true)
	if !closedByUs {
		m.dropped.Store(true)
		if err != nil {
			s := err.Error()
			m.errMsg.Store(&s)
		}
	}
}

// waitJoined waits for this connection's own room_joined.
func (m *member) waitJoined(ctx context.Context) error {
	select {
	case <-m.joined:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
