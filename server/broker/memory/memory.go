// Package memory is the embedded broker: a cluster of one node, with no
// network between publish and delivery.
package memory

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/tertulia/tertulia/server/hub"
)

// Broker is the in-process hub.Broker. Publish delivers synchronously, in the
// caller's goroutine; one topic's events are delivered one at a time, in the
// order their Publish calls took the topic's turn.
type Broker struct {
	mu      sync.RWMutex // protects handler and subs
	handler func(topic string, ev *hub.Event)
	subs    map[string]*topicState

	pmu   sync.Mutex                     // protects conns, users and rooms
	conns map[string]*conn               // by connection id
	users map[string]int                 // user id -> connections
	rooms map[string]map[string]struct{} // room -> connection ids

	bans bans
}

// conn is a connection and the rooms it is in, so that forgetting it costs
// its own rooms, not every room.
type conn struct {
	hub.Conn
	rooms map[string]struct{}
}

type topicState struct {
	mu   sync.Mutex // serialises delivery of this topic
	refs int
}

var _ hub.Broker = (*Broker)(nil)

// New returns an empty broker.
func New() *Broker {
	return &Broker{
		subs:  make(map[string]*topicState),
		conns: make(map[string]*conn),
		users: make(map[string]int),
		rooms: make(map[string]map[string]struct{}),
		bans:  bans{all: make(map[banKey]hub.Ban), now: time.Now},
	}
}

// SetHandler implements hub.Broker.
func (b *Broker) SetHandler(h func(topic string, ev *hub.Event)) {
	b.mu.Lock()
	b.handler = h
	b.mu.Unlock()
}

// Publish implements hub.Broker.
func (b *Broker) Publish(_ context.Context, topic string, ev *hub.Event) error {
	b.mu.RLock()
	st, h := b.subs[topic], b.handler
	b.mu.RUnlock()
	if st == nil || h == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	h(topic, ev)
	return nil
}

// Subscribe implements hub.Broker. Subscriptions are counted: a topic stays
// subscribed until as many Unsubscribe calls.
func (b *Broker) Subscribe(_ context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.subs[topic]
	if st == nil {
		st = &topicState{}
		b.subs[topic] = st
	}
	st.refs++
	return nil
}

// Unsubscribe implements hub.Broker.
func (b *Broker) Unsubscribe(_ context.Context, topic string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st := b.subs[topic]; st != nil {
		if st.refs--; st.refs <= 0 {
			delete(b.subs, topic)
		}
	}
	return nil
}

// AddConn implements hub.Presence.
func (b *Broker) AddConn(_ context.Context, c hub.Conn) (bool, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if _, ok := b.conns[c.ID]; ok {
		return false, nil
	}
	b.conns[c.ID] = &conn{Conn: c, rooms: make(map[string]struct{})}
	b.users[c.User]++
	return b.users[c.User] == 1, nil
}

// RemoveConn implements hub.Presence.
func (b *Broker) RemoveConn(_ context.Context, c hub.Conn) (bool, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	cs, ok := b.conns[c.ID]
	if !ok {
		return false, nil
	}
	delete(b.conns, c.ID)
	for room := range cs.rooms {
		b.removeMember(room, c.ID)
	}
	if b.users[c.User]--; b.users[c.User] > 0 {
		return false, nil
	}
	delete(b.users, c.User)
	return true, nil
}

// AddMember implements hub.Presence.
func (b *Broker) AddMember(_ context.Context, room string, c hub.Conn) error {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	cs, ok := b.conns[c.ID]
	if !ok {
		return nil // the connection is gone already
	}
	m := b.rooms[room]
	if m == nil {
		m = make(map[string]struct{})
		b.rooms[room] = m
	}
	m[c.ID] = struct{}{}
	cs.rooms[room] = struct{}{}
	return nil
}

// RemoveMember implements hub.Presence.
func (b *Broker) RemoveMember(_ context.Context, room string, c hub.Conn) error {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	if cs, ok := b.conns[c.ID]; ok {
		delete(cs.rooms, room)
	}
	b.removeMember(room, c.ID)
	return nil
}

// removeMember takes a connection out of a room's members. The caller holds pmu.
func (b *Broker) removeMember(room, id string) {
	if m := b.rooms[room]; m != nil {
		delete(m, id)
		if len(m) == 0 {
			delete(b.rooms, room)
		}
	}
}

// UserConns implements hub.Presence.
func (b *Broker) UserConns(_ context.Context, user string) (int, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	return b.users[user], nil
}

// Snapshot implements hub.Presence.
func (b *Broker) Snapshot(context.Context) (hub.Snapshot, error) {
	b.pmu.Lock()
	defer b.pmu.Unlock()
	s := hub.Snapshot{Connections: len(b.conns), Rooms: make(map[string]int, len(b.rooms))}
	for u := range b.users {
		s.Users = append(s.Users, u)
	}
	sort.Strings(s.Users)
	for r, m := range b.rooms {
		s.Rooms[r] = len(m)
	}
	return s, nil
}
