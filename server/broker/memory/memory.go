// Package memory is the embedded broker: a cluster of one node, with no
// network between publish and delivery.
package memory

import (
	"context"
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

	presence

	history
	bans bans
}

type topicState struct {
	mu   sync.Mutex // serialises delivery of this topic
	refs int
}

var _ hub.Broker = (*Broker)(nil)

// New returns an empty broker.
func New() *Broker {
	b := &Broker{subs: make(map[string]*topicState), history: newHistory(), bans: bans{all: make(map[banKey]hub.Ban), now: time.Now}}
	b.presence.init()
	return b
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
